"""Budget solver: the multiple-choice knapsack over uplift predictions.

Given per-user revenue uplift ``r[i, k]`` and cost uplift ``c[i, k]`` for
incentive levels ``k = 1..K`` (control = 0, with zero uplift), find one arm per
user maximising ``sum_i r[i, a_i]`` subject to ``sum_i c[i, a_i] <= B``.

Method (exact Lagrangian + greedy completion):

1. For a multiplier ``lam >= 0`` every user independently takes
   ``a_i(lam) = argmax_k r[i, k] - lam * c[i, k]`` (control when no score is
   positive); the spend ``S(lam)`` is a non-increasing step function whose
   steps sit at the breakpoints ``(r_j - r_k) / (c_j - c_k)`` of each user's
   upper envelope.
2. The smallest ``lam*`` with ``S(lam*) <= B`` is found by narrowing a bracket
   ``S(lo) > B >= S(hi)`` onto breakpoints. Only the *active* users, whose
   decision changes inside the bracket, are kept (as compact copies); every
   user whose decision no longer changes is settled. While many are active,
   the spend drops at a sample of their crossing points place the budget
   between two pivots; then the pivot is the median crossing point. When few
   users remain active their breakpoints are enumerated and searched exactly.
3. For large ``n`` the first bracket comes from the same solve on a random
   subsample (itself bracketed the same way when large): around the
   subsample's multiplier, each subsampled user's next breakpoint above and
   below bounds the subsample's spend curve, and the bracket is where that
   bound is ``_BRACKET_Z`` standard errors above and below the (scaled)
   budget. The full data is then read once: one blocked pass finds every
   user's choice at ``hi`` and settles those whose choice also attains the
   best score at ``lo`` (scores are linear in the multiplier, so that choice
   holds on all of ``(lo, hi]``); a few percent stay active. A bracket that
   misses ``lam*`` is detected exactly and costs one more pass.
4. The budget left at ``lam*`` is spent greedily, best revenue per cost first,
   on upgrades of the users near the threshold (those with an upgrade earning
   within ``_GREEDY_BAND`` of ``lam*`` per unit of cost; every user for small
   problems), stopping as soon as no remaining candidate fits. This is the
   classical LP rounding: the result is feasible and within
   ``max_i max_k r[i, k]`` of the integer optimum. It does not depend on the
   subsample (``random_state``), except that among levels whose scores tie
   at ``lam*`` only up to rounding a user may get either.

Speed: a pass over the data works on blocks of a few thousand users in reused
buffers, transposed to (K, rows) for numpy so that the max over levels is a
vectorised reduction over contiguous memory (numpy's reductions and argmax
along a short trailing axis are not). The solve costs about two ``np.argmax``
passes over the (n, K) score matrix, and its peak memory is a fraction of the
input's (the int64 assignment, the active users' rows and the subsample's).
Torch tensors (CPU or CUDA) are processed in torch on
their device with the same kernels, never copied to numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import array_api_compat
import numpy as np

from ._solver_backends import _ops_for, _scan, _scan_many
from ._validation import check_budget, check_uplift

__all__ = ["BudgetAllocation", "allocate_at_multiplier", "solve_budget_allocation"]

# Problems up to this many users are solved directly (no subsample bracket).
_DIRECT_SIZE = 20_000
# Size of the subsample that brackets the multiplier of larger problems (at
# most 1/8 of the users; a subsample above _DIRECT_SIZE is bracketed in turn).
_SUBSAMPLE_SIZE = 50_000
# Half-width of the bracket in standard errors of the subsample's spend (a
# bracket that misses costs one more pass, with the margin widened by the miss).
_BRACKET_Z = 3.5
# Active users at or below which breakpoints are enumerated exactly.
_ENUMERATE_SIZE = 1_024
# Crossing points sampled to place the budget among them (narrowing).
_NARROW_SAMPLE = 4_096
# Upgrades the greedy completion considers: all of them for problems up to
# this many users, else those whose revenue per extra cost is within
# _GREEDY_BAND (relative) below lam* (the users near the threshold).
_FULL_GREEDY_SIZE = 20_000
_GREEDY_BAND = 2.0**-10
# Candidates ranked per round of the greedy completion (partial selection).
_GREEDY_BATCH = 1_024


@dataclass(frozen=True)
class BudgetAllocation:
    """Result of :func:`solve_budget_allocation`.

    Attributes
    ----------
    assignment : array of shape (n_users,)
        Chosen arm per user: 0 = control, ``k`` = column ``k - 1`` of the
        uplift matrices. Same array library (and device) as the input.
    multiplier : float
        Lagrange multiplier ``lam*`` (price of one cost unit) of the solution.
    spend : float
        Total cost uplift of the assignment (never above ``budget``).
    value : float
        Total revenue uplift of the assignment.
    dual_bound : float
        Upper bound on the optimal value: the Lagrangian dual at ``lam*``.
    budget : float
        Total budget used.
    """

    assignment: object
    multiplier: float
    spend: float
    value: float
    dual_bound: float
    budget: float

    @property
    def optimality_gap(self):
        """Relative gap ``(dual_bound - value) / |dual_bound|`` (0 when both are 0)."""
        denom = abs(self.dual_bound)
        return 0.0 if denom == 0 else (self.dual_bound - self.value) / denom


# -- array backends ---------------------------------------------------------------------
# Both backends work on blocks of a few thousand users (numpy) or more (torch)
# and expose the same kernels. numpy's blocks are transposed to (K, rows) in
# reused buffers, so that the max over levels is a vectorised reduction over
# contiguous rows (numpy's reductions and argmax along a short trailing axis
# are not vectorised); torch's are row-major views (its reductions over a
# short trailing dimension are). The first maximising level is found as
# ``K - max_k(w_k * [s_k == max])`` with weights ``w = K, K-1, ..., 1``
# (exact: it compares each score with the maximum of the same scores). The
# score is always ``r + (-lam) * c``, which equals ``r - lam * c`` exactly in
# IEEE arithmetic, in every code path, so all paths agree on every choice.


def _check_inputs(revenue_uplift, cost_uplift):
    """Validated ``(r, c)``; torch tensors stay tensors (detached, same device).

    A finite sum implies finite entries, so for well-formed float tensors one
    reduction per matrix replaces the element-wise ``isfinite`` scan (torch's
    is several times slower than a pass of the solver); anything else, and
    any non-finite sum, goes through :func:`check_uplift`, which raises the
    package's uniform errors.
    """
    r, c = revenue_uplift, cost_uplift
    if array_api_compat.is_torch_array(r) and array_api_compat.is_torch_array(c):
        import torch

        r, c = r.detach(), c.detach()
        if (r.ndim == 2 and r.shape == c.shape and r.dtype == c.dtype and r.is_floating_point()
                and r.device == c.device
                and bool(torch.isfinite(r.sum()) & torch.isfinite(c.sum()))):
            return r, c
    r, c = check_uplift(r, c, allow_torch=True)
    if array_api_compat.is_torch_array(r):
        r, c = r.detach(), c.detach()
    return r, c


def allocate_at_multiplier(revenue_uplift, cost_uplift, multiplier):
    """Each user's best arm at a fixed price of cost.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like or torch.Tensor of shape (n_users, n_levels)
        Uplift against control of every incentive level (control excluded).
    multiplier : float
        Price of one cost unit, ``lam >= 0`` (``inf`` allowed).

    Returns
    -------
    assignment : array of shape (n_users,)
        ``argmax_k r[i, k] - lam * c[i, k]``, plus one; 0 (control) unless the
        best score is positive.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget import allocate_at_multiplier
    >>> r = np.array([[1.0, 3.0], [0.5, 0.6]])
    >>> c = np.array([[1.0, 2.0], [1.0, 2.0]])
    >>> allocate_at_multiplier(r, c, 0.4)
    array([2, 1])
    >>> allocate_at_multiplier(r, c, 0.8)
    array([2, 0])
    """
    r, c = _check_inputs(revenue_uplift, cost_uplift)
    lam = float(multiplier)
    if math.isnan(lam) or lam < 0:
        raise ValueError(f"`multiplier` must be >= 0; got {multiplier}.")
    ops = _ops_for(r)
    out = ops.zeros_int(r.shape[0])
    for a, b in ops.blocks(r.shape[0]):
        out[a:b] = ops.choose(*ops.load(r, c, a, b), lam, values=False)[0]
    return out


class _Solver:
    """State of one solve: the bracket, the settled users and the active ones.

    Settled users' choices are final (written to ``assignment``) and enter the
    totals ``settled_spend`` / ``settled_value``; the active ones are kept as
    compact row-major copies ``ra``, ``ca`` with their choices and chosen
    values at both ends of the bracket.
    """

    def __init__(self, r, c, budget, random_state, ops=None):
        self.r, self.c, self.budget = r, c, budget
        self.n, self.k = r.shape
        self.ops = _ops_for(r) if ops is None else ops
        self.random_state = random_state
        self.assignment = self.ops.zeros_int(self.n)
        self._curve = None  # the subsample's spend curve (see initial_bracket)

    # -- full pass -------------------------------------------------------------------
    def full_pass(self, lo, hi, exact_lo=False):
        """Choices at ``hi`` for every user; settle those whose choice holds on ``(lo, hi]``.

        Returns the spend at ``lo`` and at ``hi``. The spend at ``hi`` is
        exact. At ``lo`` the settled users are counted with their choice at
        ``hi``, which attains the maximum at ``lo`` too; a lower level tied
        with it at ``lo`` (the first-maximum rule's choice) must cost more
        (it scores less at ``hi``), so the returned spend at ``lo`` is at most
        the exact one: above the budget it proves ``lam* > lo``. With
        ``exact_lo`` the first maximising level at ``lo`` is found for every
        user and the spend at ``lo`` is exact.
        """
        ops, r, c = self.ops, self.r, self.c
        self.lo, self.hi = lo, hi
        tot_c = tot_r = 0.0
        parts = []
        for a, b in ops.blocks(self.n):
            rt, ct = ops.load(r, c, a, b)
            if exact_lo or math.isinf(hi):
                arm_lo = ops.choose(rt, ct, lo, values=False)[0]
                arm_hi, r_hi, c_hi = ops.choose(rt, ct, hi)
                d = ops.nonzero(arm_lo != arm_hi)
                al = arm_lo[d]
                r_lo, c_lo = ops.pick(rt, ct, al, d)
            else:
                arm_hi, r_hi, c_hi, d, al, r_lo, c_lo = ops.pass_block(rt, ct, lo, hi)
            tot_c = tot_c + ops.sum64(c_hi)
            tot_r = tot_r + ops.sum64(r_hi)
            self.assignment[a:b] = arm_hi
            if d.shape[0]:
                # the active users' rows, copied while the block is in cache
                parts.append((d + a, al, arm_hi[d], r_lo, c_lo, r_hi[d], c_hi[d],
                              r[a:b][d], c[a:b][d]))
        if parts:
            cols = [ops.concat([p[i] for p in parts]) for i in range(9)]
        else:
            e = ops.zeros_int(0)
            z = r[:0, 0]
            cols = [e, e, e, z, z, z, z, r[:0], c[:0]]
        (self.act, self.arm_lo, self.arm_hi, self.r_lo, self.c_lo, self.r_hi, self.c_hi,
         self.ra, self.ca) = cols
        spend_hi = ops.to_float(tot_c)
        act_c_hi, act_r_hi = ops.to_float(ops.sum64(self.c_hi)), ops.to_float(ops.sum64(self.r_hi))
        self.settled_spend = spend_hi - act_c_hi
        self.settled_value = ops.to_float(tot_r) - act_r_hi
        spend_lo = self.settled_spend + ops.to_float(ops.sum64(self.c_lo))
        return spend_lo, spend_hi

    # -- bracket ---------------------------------------------------------------------
    def initial_bracket(self):
        """A bracket around ``lam*`` from the same solve on a random subsample.

        Around the subsample's multiplier ``lam_s``, each subsampled user's
        next breakpoint above (below) ``lam_s`` and the cost it sheds (adds)
        there bound the subsample's spend curve: counting only these first
        steps over-estimates the spend above ``lam_s`` and under-estimates it
        below. ``hi`` (``lo``) is where that bound crosses the scaled budget
        minus (plus) ``_BRACKET_Z`` standard errors of the subsample's spend.
        A bracket that misses ``lam*`` only costs time: :meth:`solve`
        detects it and widens it.
        """
        if self.n <= _DIRECT_SIZE:
            return 0.0, math.inf
        ops = self.ops
        m = min(_SUBSAMPLE_SIZE, self.n // 8)
        rng = np.random.default_rng(self.random_state)
        idx = ops.asarray(np.sort(rng.integers(0, self.n, size=m)))
        rs, cs = ops.take_rows(self.r, idx), ops.take_rows(self.c, idx)
        scale = self._scale = m / self.n
        sub = _Solver(rs, cs, self.budget * scale, self.random_state, ops=ops)
        lam_s = sub.solve(greedy=False).multiplier
        spend = sub.spend
        lvl = sub.assignment - 1
        chosen_c = cs[ops.arange(m), lvl * (lvl > 0)] * (sub.assignment > 0)
        se = ops.to_float(ops.std64(chosen_c)) * math.sqrt(m)
        budget_s = self.budget * scale
        # Each user's first breakpoints around lam_s. Users settled in the
        # subsample's own bracket (lo_s, hi_s] have none inside it, so its
        # active users suffice unless the bounds land outside it.
        (lo_s, hi_s), (_, rows, ra_s, ca_s) = sub.bracket, sub.near[0]
        for near in (True, False):
            if near:
                u, shed, d, add = self._first_breakpoints(ra_s, ca_s, sub.assignment[rows])
            else:
                u, shed, d, add = self._first_breakpoints(rs, cs, sub.assignment)
            self._curve = (u, shed, d, add, spend, se, budget_s, lam_s)
            lo = self._curve_bound(False, _BRACKET_Z)
            hi = self._curve_bound(True, _BRACKET_Z)
            if lo_s <= lo and hi <= hi_s:
                break
        self._z = [_BRACKET_Z, _BRACKET_Z]
        if not lo < hi:  # degenerate: lam_s sits on the only breakpoints
            lo, hi = lo * (1 - 2**-20), hi * (1 + 2**-20) + 2**-1074
        return lo, hi

    def _first_breakpoints(self, r, c, arm):
        """Each user's first breakpoint above and below their choice ``arm``.

        Returns numpy ``(u, shed, d, add)``: ``u`` where a cheaper option
        first overtakes the choice (``inf`` if none) and the cost ``shed``
        there, ``d`` where a costlier one does, at a positive multiplier
        (``-inf`` if none) and the cost ``add`` there. Among options tied at
        the breakpoint the smallest cost change is counted, which keeps the
        spend bound built from them one-sided.
        """
        ops = self.ops
        xp = array_api_compat.array_namespace(r)
        m = r.shape[0]
        # float64, transposed to (options, users), control first
        z = xp.zeros((1, m), dtype=xp.float64, device=array_api_compat.device(r))
        R = xp.concat([z, xp.astype(r.T, xp.float64)], axis=0)
        C = xp.concat([z, xp.astype(c.T, xp.float64)], axis=0)
        cols = ops.arange(m)
        dc = C - C[arm, cols]
        cross = (R - R[arm, cols]) / xp.where(dc == 0, 1.0, dc)  # where option j overtakes
        up = xp.where(dc < 0, cross, math.inf)
        u = xp.min(up, axis=0)
        shed = xp.min(xp.where(up == u, -dc, math.inf), axis=0)
        down = xp.where((dc > 0) & (cross > 0), cross, -math.inf)
        d = xp.max(down, axis=0)
        add = xp.min(xp.where(down == d, dc, math.inf), axis=0)
        return tuple(ops.to_numpy(x) for x in (u, shed, d, add))

    @staticmethod
    def _first_crossing(lam, step, need, lam_s, ascending):
        """Multiplier where the steps, taken from ``lam_s`` outwards, first sum to ``need``.

        ``lam`` holds each user's first breakpoint in the direction (infinite
        when there is none) and ``step`` the spend it sheds or adds there.
        Returns ``lam_s`` when nothing is needed, and ``inf`` (``0``) when
        the steps never reach ``need``.
        """
        if need <= 0:
            return lam_s
        fin = np.isfinite(lam)
        key, step = (lam[fin] if ascending else -lam[fin]), step[fin]
        # the smallest keys first, by partial selection; widened until they suffice
        t = 4096
        while True:
            if t < key.shape[0]:
                part = np.argpartition(key, t - 1)[:t]
            else:
                part = np.arange(key.shape[0])
            order = part[np.argsort(key[part], kind="stable")]
            cum = np.cumsum(step[order])
            j = int(np.searchsorted(cum, need))
            if j < cum.shape[0]:
                # the steps happen just past the breakpoint (at it, users tie):
                # go halfway to the next larger key (breakpoints a few ulps
                # apart are the same ratio computed from different values)
                v = float(key[order[j]])
                after = key[order[j:]]
                after = after[after > v + abs(v) * 2**-30]
                if after.shape[0]:
                    v = 0.5 * (v + float(after.min()))
                elif t >= key.shape[0]:
                    v += abs(v) * 2**-20
                else:
                    t *= 8
                    continue
                v = v if ascending else -v
                return v if ascending else max(v, 0.0)
            if t >= key.shape[0]:
                return math.inf if ascending else 0.0
            t *= 8

    def _curve_bound(self, above, z):
        """Multiplier where the subsample's spend bound is ``z`` standard errors off the budget."""
        u, shed, d, add, spend, se, budget_s, lam_s = self._curve
        if above:
            return self._first_crossing(u, shed, spend - (budget_s - z * se), lam_s, True)
        return self._first_crossing(d, add, budget_s + z * se - spend, lam_s, False)

    def widen_below(self, lo, spend_lo):
        """New lower end after a bracket whose ``lo`` fits the budget (``lam* <= lo``).

        The subsample's curve missed by the gap between its bound at ``lo``
        and the (scaled) spend measured there; the new end is that many
        standard errors further, plus the usual margin (0 without a curve).
        """
        if self._curve is None:
            return 0.0
        se, budget_s = self._curve[5], self._curve[6]
        short = budget_s + self._z[0] * se - spend_lo * self._scale
        self._z[0] = max(self._z[0] + 1, short / se + _BRACKET_Z) if se > 0 else math.inf
        new = self._curve_bound(False, self._z[0]) if se > 0 else 0.0
        return new if new < lo else 0.0

    def widen_above(self, hi, spend_hi):
        """New upper end after a bracket whose ``hi`` overspends (``lam* > hi``); see above."""
        if self._curve is None:
            return math.inf
        se, budget_s = self._curve[5], self._curve[6]
        over = spend_hi * self._scale - (budget_s - self._z[1] * se)
        self._z[1] = max(self._z[1] + 1, over / se + _BRACKET_Z) if se > 0 else math.inf
        new = self._curve_bound(True, self._z[1]) if se > 0 else math.inf
        return new if new > hi else math.inf

    # -- narrowing -------------------------------------------------------------------
    def narrow(self, min_active=_ENUMERATE_SIZE):
        """Shrink the bracket until at most ``min_active`` users are active.

        While many users are active, two pivots (evaluated in one scan) bound
        the multiplier where an estimate of the spend meets the budget: the
        spend falls by ``c_lo - c_hi`` at each active user's crossing point,
        and the crossing points and drops of a strided sample of the active
        users, sorted, place the budget among them. Then (or when the
        estimate missed) the pivot is the median crossing point. Every user
        whose choice no longer changes inside the bracket is settled.
        """
        ops = self.ops
        interpolate = True
        for _ in range(200):
            n_act = self.act.shape[0]
            if n_act <= min_active:
                return
            den = self.c_lo - self.c_hi
            ok = den > 0
            cross = (self.r_lo - self.r_hi)[ok] / den[ok]
            if cross.shape[0] == 0:
                return
            estimate = interpolate and n_act > 8 * min_active
            if estimate:
                pivots = self._interpolated_pivots(cross, den[ok])
            else:
                pivots = [ops.median(cross)]
            pivots = [p for p in pivots if self.lo < p < self.hi]
            if not pivots:
                if not estimate:
                    return
                interpolate = False
                continue
            moved = False
            for p, (arm, rv, cv) in zip(pivots, _scan_many(ops, self.ra, self.ca, pivots)):
                if not self.lo < p < self.hi:
                    continue
                moved = True
                if self.settled_spend + ops.to_float(ops.sum64(cv)) <= self.budget:
                    self.hi, self.arm_hi, self.r_hi, self.c_hi = p, arm, rv, cv
                else:
                    self.lo, self.arm_lo, self.r_lo, self.c_lo = p, arm, rv, cv
            if not moved:  # pragma: no cover - pivots are inside the bracket
                return
            keep = self.arm_lo != self.arm_hi
            n_keep = int(keep.sum())
            # an estimate that kept over a quarter of the users missed: bisect from now on
            interpolate = interpolate and 4 * n_keep < n_act
            if n_keep < n_act:
                same = ~keep
                self.assignment[self.act[same]] = self.arm_hi[same]
                self.settled_spend += ops.to_float(ops.sum64(self.c_hi[same]))
                self.settled_value += ops.to_float(ops.sum64(self.r_hi[same]))
                (self.act, self.arm_lo, self.arm_hi, self.r_lo, self.c_lo, self.r_hi, self.c_hi,
                 self.ra, self.ca) = (x[keep] for x in (
                    self.act, self.arm_lo, self.arm_hi, self.r_lo, self.c_lo, self.r_hi,
                    self.c_hi, self.ra, self.ca))
                self.near.append((self.lo, self.act, self.ra, self.ca))

    def _interpolated_pivots(self, cross, drop):
        """Two multipliers that likely bracket the budget (see :meth:`narrow`)."""
        ops = self.ops
        step = max(1, cross.shape[0] // _NARROW_SAMPLE)
        xs, ds = ops.to_numpy(cross[::step]).astype(np.float64), ops.to_numpy(drop[::step])
        spend_lo = self.settled_spend + ops.to_float(ops.sum64(self.c_lo))
        need = (spend_lo - self.budget) * float(ds.sum(dtype=np.float64)) / max(
            ops.to_float(ops.sum64(drop)), 1e-300)
        order = np.argsort(xs, kind="stable")
        xs = xs[order]
        j = int(np.searchsorted(np.cumsum(ds[order], dtype=np.float64), need))
        w = 3 * int(math.sqrt(xs.shape[0])) + 2
        below = [float(xs[j - w])] if j - w >= 0 else []
        return below + ([float(xs[j + w])] if j + w < xs.shape[0] else [])

    def finish(self):
        """Enumerate the active users' breakpoints and pick the exact ``lam*``."""
        ops = self.ops
        r, c, m = self.ra, self.ca, self.act.shape[0]
        lam_star = self.hi
        self.active_dual = 0.0
        if m:
            xp = array_api_compat.array_namespace(r)
            zcol = xp.zeros((m, 1), dtype=r.dtype, device=array_api_compat.device(r))
            R, C = xp.concat([zcol, r], axis=1), xp.concat([zcol, c], axis=1)
            cands = []
            for j in range(self.k + 1):
                den = C[:, j:j + 1] - C[:, j + 1:]
                num = R[:, j:j + 1] - R[:, j + 1:]
                ok = den != 0
                lam = num[ok] / den[ok]
                cands.append(lam[(lam > self.lo) & (lam < self.hi)])
            grid = np.unique(ops.to_numpy(xp.concat(cands))).tolist()
            if not math.isinf(self.hi):
                grid.append(self.hi)
            elif grid:
                grid.append(2 * grid[-1] + 1)
            else:
                grid.append(math.inf)
            # smallest grid point whose spend fits (the last one always does)
            lo_i, hi_i = -1, len(grid) - 1
            choice = {hi_i: None}
            while hi_i - lo_i > 1:
                mid = (lo_i + hi_i) // 2
                got = _scan(ops, r, c, grid[mid])
                if self.settled_spend + ops.to_float(ops.sum64(got[2])) <= self.budget:
                    hi_i, choice[mid] = mid, got
                else:
                    lo_i = mid
            lam_star = grid[hi_i]
            got = choice[hi_i]
            if got is None:
                got = _scan(ops, r, c, lam_star)
            arm, rr, cc = got
            self.assignment[self.act] = arm
            if not math.isinf(lam_star):
                s = r - lam_star * c
                self.active_dual = ops.to_float(ops.sum64(xp.clip(xp.max(s, axis=1), 0, None)))
            self.value = self.settled_value + ops.to_float(ops.sum64(rr))
            self.spend = self.settled_spend + ops.to_float(ops.sum64(cc))
        else:
            self.value, self.spend = self.settled_value, self.settled_spend
        return lam_star

    # -- completion ------------------------------------------------------------------
    def greedy(self, lam_star):
        """Spend the leftover budget on upgrades, best revenue per cost first.

        Candidates are the (user, level) upgrades that gain revenue, cost at
        most the leftover and earn at least ``lam_ref`` per unit of extra cost:
        ``lam_ref = 0`` (every upgrade) up to ``_FULL_GREEDY_SIZE`` users,
        else ``lam* (1 - _GREEDY_BAND)``, the users near the threshold; the
        candidates do not depend on the random subsample. An upgrade's revenue per cost is
        the multiplier where it overtakes the user's choice, so users settled
        in a bracket ``(lo, hi]`` have none above ``lo``: the candidates are
        read from the active users of the narrowest bracket (of the full pass
        and the narrowing steps) with ``lo <= lam_ref``, else found by one
        blocked pass over all users (no copies). They are taken best first in batches (partial
        selection, not a full sort), and the search stops as soon as the
        leftover is below the smallest extra cost of every candidate not tried.
        """
        ops = self.ops
        left = self.budget - self.spend
        if left <= 0:
            return
        lam_ref = 0.0 if self.n <= _FULL_GREEDY_SIZE else lam_star * (1 - _GREEDY_BAND)
        # the narrowest bracket whose active users include every candidate's
        near = [x for x in self.near if x[0] <= lam_ref]
        parts = []
        if near:
            _, rows, ra, ca = near[-1]
            for a, b in ops.blocks(rows.shape[0]):
                rt, ct = ops.load(ra, ca, a, b)
                parts.append(self._upgrades(rt, ct, self.assignment[rows[a:b]], left, lam_ref,
                                            rows[a:b]))
        else:
            for a, b in ops.blocks(self.n):
                rt, ct = ops.load(self.r, self.c, a, b)
                parts.append(self._upgrades(rt, ct, self.assignment[a:b], left, lam_ref, a))
        parts = [p for p in parts if p is not None]
        if not parts:
            return
        user, level, gain, extra = (np.concatenate([p[i] for p in parts]) for i in range(4))
        free = extra <= 0
        ratio = np.where(free, np.inf, gain / np.where(free, 1.0, extra))
        done = set()
        up_rows, up_arms = [], []
        while ratio.shape[0] and left >= extra.min():
            # next batch: the best candidates, all ties of the last one included
            t = min(ratio.shape[0], _GREEDY_BATCH)
            cut = np.partition(ratio, ratio.shape[0] - t)[ratio.shape[0] - t]
            batch = ratio >= cut
            rest = ~batch
            rest_min = float(extra[rest].min()) if rest.any() else math.inf
            u_b, l_b, g_b, e_b, q_b = (x[batch] for x in (user, level, gain, extra, ratio))
            order = np.lexsort((l_b, u_b, -q_b))  # ties: by user, then level
            u_b, l_b, g_b, e_b = u_b[order], l_b[order], g_b[order], e_b[order]
            tail_min = np.minimum(np.minimum.accumulate(e_b[::-1])[::-1], rest_min)
            for i in range(e_b.shape[0]):
                if left < tail_min[i]:
                    break
                u = int(u_b[i])
                if e_b[i] > left or u in done:
                    continue
                done.add(u)
                left -= float(e_b[i])
                self.spend += float(e_b[i])
                self.value += float(g_b[i])
                up_rows.append(u)
                up_arms.append(int(l_b[i]) + 1)
            user, level, gain, extra, ratio = (x[rest] for x in (user, level, gain, extra, ratio))
        if up_rows:
            arms = ops.asarray(up_arms, dtype=self.assignment.dtype)
            self.assignment[ops.asarray(up_rows)] = arms

    def _upgrades(self, rt, ct, arm, left, lam_ref, rows):
        """Candidate upgrades of one block (``rows``: the users' ids, or the first id)."""
        got = self.ops.upgrades(rt, ct, arm, left, lam_ref)
        if got is None:
            return None
        row, level, gain, extra = got
        user = row + rows if isinstance(rows, int) else self.ops.to_numpy(rows)[row]
        return user, level, gain, extra

    def dual_bound(self, lam):
        """Lagrangian dual at ``lam``: settled users' choices are optimal there."""
        if math.isinf(lam):
            return math.inf
        return (lam * self.budget + self.settled_value - lam * self.settled_spend
                + self.active_dual)

    # -- driver ----------------------------------------------------------------------
    def solve(self, greedy=True):
        n, budget = self.n, self.budget
        if n == 0:
            return BudgetAllocation(self.assignment, 0.0, 0.0, 0.0, 0.0, budget)
        lo, hi = self.initial_bracket()
        exact_lo = False
        for _ in range(8):
            spend_lo, spend_hi = self.full_pass(lo, hi, exact_lo)
            if spend_lo <= budget and lo > 0:  # lam* is below the bracket
                if not exact_lo:  # unless ties at lo misled the fast pass: check exactly
                    exact_lo = True
                    continue
                lo, hi = self.widen_below(lo, spend_lo), lo
            elif spend_hi > budget and not math.isinf(hi):  # lam* is above the bracket
                lo, hi = hi, self.widen_above(hi, spend_hi)
            else:
                break
        # users near the threshold: those whose decision changes in the bracket
        # (and in each narrower bracket below, see greedy)
        self.bracket = (self.lo, self.hi)
        self.near = [(self.lo, self.act, self.ra, self.ca)]
        if spend_lo <= budget:  # lam* = 0: everything profitable fits
            # the choices at lo = 0: settled users already hold them, the active take arm_lo
            lam_star = 0.0
            self.assignment[self.act] = self.arm_lo
            self.settled_spend += self.ops.to_float(self.ops.sum64(self.c_lo))
            self.settled_value += self.ops.to_float(self.ops.sum64(self.r_lo))
            self.act = self.act[:0]
            self.active_dual = 0.0
            self.value, self.spend = self.settled_value, self.settled_spend
        else:
            self.narrow()
            lam_star = self.finish()
            # at lam* = 0 no upgrade gains revenue: every user holds their best level
            if greedy and lam_star > 0:
                self.greedy(lam_star)
        return BudgetAllocation(self.assignment, float(lam_star), float(self.spend),
                                float(self.value), float(self.dual_bound(lam_star)), budget)


def solve_budget_allocation(revenue_uplift, cost_uplift, budget=None, *, budget_per_user=None,
                            random_state=0):
    """Assign one arm per user to maximise revenue uplift under a cost budget.

    Solves the multiple-choice knapsack ``max sum_i r[i, a_i]`` s.t.
    ``sum_i c[i, a_i] <= budget`` exactly in the Lagrangian sense, then spends
    what is left greedily; see the module docstring for the method.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like or torch.Tensor of shape (n_users, n_levels)
        Uplift against control of every incentive level, control excluded (the
        layout of a causalml meta-learner's ``predict``). float32 or float64;
        torch tensors (CPU or CUDA) are processed in torch on their device.
    budget : float, default=None
        Total budget in cost units. Give this or ``budget_per_user``.
    budget_per_user : float, default=None
        Average budget per user; the total is ``budget_per_user * n_users``.
    random_state : int, default=0
        Seed of the subsample that brackets the multiplier for large inputs
        (affects speed only, not the result).

    Returns
    -------
    BudgetAllocation
        ``assignment`` (0 = control, ``k`` = column ``k - 1``), ``multiplier``,
        ``spend`` (<= budget), ``value`` and ``dual_bound``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget import solve_budget_allocation
    >>> r = np.array([[3.0, 4.0], [2.0, 2.5], [1.0, 1.2]])
    >>> c = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    >>> sol = solve_budget_allocation(r, c, budget=3.0)
    >>> sol.assignment, sol.spend, sol.value
    (array([2, 1, 0]), 3.0, 6.0)
    """
    if (budget is None) == (budget_per_user is None):
        raise ValueError("Give exactly one of `budget` (total) and `budget_per_user`.")
    r, c = _check_inputs(revenue_uplift, cost_uplift)
    if budget is None:
        budget = check_budget(budget_per_user, name="budget_per_user") * r.shape[0]
    else:
        budget = check_budget(budget)
    return _Solver(r, c, budget, random_state).solve()
