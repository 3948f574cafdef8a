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
2. The smallest ``lam*`` with ``S(lam*) <= B`` is found by a bisection that
   narrows onto breakpoints: it keeps a bracket ``S(lo) > B >= S(hi)`` and the
   set of *active* users whose decision changes inside it, pivots on the median
   of their crossing points, and settles every user whose decision no longer
   changes. When few users remain active their breakpoints are enumerated and
   searched exactly. For large ``n`` the first bracket comes from the same
   solve on a random subsample, so the full data is read only once or twice.
3. The budget left at ``lam*`` is spent greedily, best revenue per cost first,
   on upgrades of the users near the threshold (of all users for small
   problems). This is the classical LP rounding: the result is feasible and
   within ``max_i max_k r[i, k]`` of the integer optimum.

Works on numpy arrays and on torch tensors (CPU or CUDA) without copying them
to numpy, through the array API standard (``array_api_compat``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import array_api_compat
import numpy as np

from ._validation import check_budget, check_uplift

__all__ = ["BudgetAllocation", "allocate_at_multiplier", "solve_budget_allocation"]

# Problems up to this many users are solved directly (no subsample bracket).
_DIRECT_SIZE = 50_000
# Active users at or below which breakpoints are enumerated exactly.
_ENUMERATE_SIZE = 1_024
# Elements per chunk of the full passes (keeps the temporaries in cache).
_CHUNK_ELEMENTS = 1 << 17
# Users upgraded greedily: all of them up to this size, else the threshold set.
_FULL_GREEDY_SIZE = 1_000_000


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


def _sum64(xp, x):
    return float(xp.sum(x, dtype=xp.float64)) if x.shape[0] else 0.0


def _choose(xp, r, c, lam):
    """Return ``(arm, chosen r, chosen c)`` of every row at multiplier ``lam``.

    Ties between a level and control go to control; ``lam = inf`` takes the
    cheapest option (highest revenue among equally cheap ones).
    """
    zero = xp.zeros((), dtype=r.dtype)
    if math.isinf(lam):
        cmin = xp.min(c, axis=1)
        s = xp.where(c == cmin[:, None], r, xp.asarray(-xp.inf, dtype=r.dtype))
        idx = xp.argmax(s, axis=1)
        best_r = xp.take_along_axis(r, idx[:, None], axis=1)[:, 0]
        take = (cmin < zero) | ((cmin == zero) & (best_r > zero))
    else:
        s = r - lam * c
        idx = xp.argmax(s, axis=1)
        take = xp.take_along_axis(s, idx[:, None], axis=1)[:, 0] > zero
    arm = xp.where(take, idx + 1, xp.zeros_like(idx))
    rc = xp.where(take, xp.take_along_axis(r, idx[:, None], axis=1)[:, 0], zero)
    cc = xp.where(take, xp.take_along_axis(c, idx[:, None], axis=1)[:, 0], zero)
    return arm, rc, cc


def _choose_block(xp, r, c, lams):
    """:func:`_choose` at several multipliers over one block of rows."""
    return [_choose(xp, r, c, lam) for lam in lams]


def _choose_block_numpy(xp, r, c, lams):
    """Fast numpy path of :func:`_choose_block` (finite multipliers).

    The block is transposed once to (K, rows) so that the argmax runs across
    contiguous rows, which numpy vectorises; this is what keeps a full pass
    within a small multiple of one ``np.argmax`` over the score matrix.
    """
    rt, ct = np.ascontiguousarray(r.T), np.ascontiguousarray(c.T)
    k, m = rt.shape
    cols = np.arange(m)
    weights = np.arange(k, 0, -1, dtype=np.min_scalar_type(k))[:, None]  # first max wins
    out = []
    for i, lam in enumerate(lams):
        s = ct * -lam
        s += rt
        # argmax over levels via max + first match: numpy's max reduction is
        # SIMD-vectorised, its argmax along a short axis is not (about 20x slower)
        best = s.max(axis=0)
        idx = k - (np.equal(s, best) * weights).max(axis=0).astype(np.int64)
        take = best > 0
        arm = np.where(take, idx + 1, 0)
        # revenue is needed for the last multiplier only (the settled choice)
        flat = idx * m + cols
        rr = np.where(take, rt.reshape(-1)[flat], 0) if i == len(lams) - 1 else None
        out.append((arm, rr, np.where(take, ct.reshape(-1)[flat], 0)))
    return out


def _pick(xp, r, c, arm):
    """Revenue and cost uplift of option ``arm`` (0 = control) of every row."""
    col = xp.clip(arm - 1, 0, None)[:, None]
    on = arm > 0
    z = xp.zeros((), dtype=r.dtype)
    rr = xp.where(on, xp.take_along_axis(r, col, axis=1)[:, 0], z)
    cc = xp.where(on, xp.take_along_axis(c, col, axis=1)[:, 0], z)
    return rr, cc


def _median(xp, x, is_numpy):
    """Upper median (an element of ``x``), by selection rather than sorting."""
    h = x.shape[0] // 2
    return float(np.partition(x, h)[h]) if is_numpy else float(xp.sort(x)[h])


def _chunks(n, k, is_numpy):
    step = max(1, _CHUNK_ELEMENTS // max(k, 1)) if is_numpy else max(n, 1)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


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
    r, c = check_uplift(revenue_uplift, cost_uplift, allow_torch=True)
    lam = float(multiplier)
    if math.isnan(lam) or lam < 0:
        raise ValueError(f"`multiplier` must be >= 0; got {multiplier}.")
    xp = array_api_compat.array_namespace(r, c)
    is_np = array_api_compat.is_numpy_namespace(xp)
    parts = [_choose(xp, r[a:b], c[a:b], lam)[0] for a, b in _chunks(r.shape[0], r.shape[1], is_np)]
    if not parts:
        return xp.zeros((0,), dtype=xp.int64)
    return parts[0] if len(parts) == 1 else xp.concat(parts)


class _Solver:
    """State of one solve: the bracket, the settled users and the active ones."""

    def __init__(self, xp, r, c, budget, random_state):
        self.xp, self.r, self.c, self.budget = xp, r, c, budget
        self.n, self.k = r.shape
        self.is_np = array_api_compat.is_numpy_namespace(xp)
        self.dev = array_api_compat.device(r)
        self.random_state = random_state
        self.assignment = xp.zeros((self.n,), dtype=xp.int64, device=self.dev)
        self.history = []  # (multiplier, spend) pairs evaluated

    # -- full passes -----------------------------------------------------------------
    def full_pass(self, lo, hi):
        """Choices at ``lo`` and ``hi`` for every user; settle those that agree."""
        xp = self.xp
        self.lo, self.hi = lo, hi
        spend_lo = spend_hi = 0.0
        self.settled_spend = self.settled_value = 0.0
        act, alo, ahi = [], [], []
        choose = _choose_block_numpy if (self.is_np and not math.isinf(hi)) else _choose_block
        for a, b in _chunks(self.n, self.k, self.is_np):
            (arm_lo, _, c_lo), (arm_hi, r_hi, c_hi) = choose(xp, self.r[a:b], self.c[a:b], (lo, hi))
            spend_lo += _sum64(xp, c_lo)
            spend_hi += _sum64(xp, c_hi)
            self.settled_spend += _sum64(xp, c_hi)
            self.settled_value += _sum64(xp, r_hi)
            self.assignment[a:b] = arm_hi
            idx = xp.nonzero(arm_lo != arm_hi)[0]
            if idx.shape[0]:  # active users: their hi choice is not settled yet
                self.settled_spend -= _sum64(xp, c_hi[idx])
                self.settled_value -= _sum64(xp, r_hi[idx])
                act.append(idx + a)
                alo.append(arm_lo[idx])
                ahi.append(arm_hi[idx])
        self.history += [(lo, spend_lo), (hi, spend_hi)]
        cat = (lambda parts: xp.concat(parts) if parts else
               xp.zeros((0,), dtype=xp.int64, device=self.dev))
        self.act, self.arm_lo, self.arm_hi = cat(act), cat(alo), cat(ahi)
        return spend_lo, spend_hi

    # -- bracket ---------------------------------------------------------------------
    def initial_bracket(self):
        """A bracket around ``lam*`` from the same solve on a random subsample.

        The subsample's bisection history gives the spend at several
        multipliers; the bracket keeps those whose scaled-up spend is a few
        standard errors above and below the budget.
        """
        if self.n <= _DIRECT_SIZE:
            return 0.0, math.inf
        xp = self.xp
        m = min(_DIRECT_SIZE, self.n // 8)
        rng = np.random.default_rng(self.random_state)
        idx = xp.asarray(rng.integers(0, self.n, size=m), device=self.dev)
        scale = m / self.n
        sub = _Solver(xp, self.r[idx], self.c[idx], self.budget * scale, self.random_state)
        sub.full_pass(0.0, math.inf)
        sub.narrow(min_active=64)
        arm_c = sub._option(xp.arange(m, device=self.dev), sub.assignment)[1]
        # standard error of the subsample's spend, in subsample units
        se = float(xp.std(xp.astype(arm_c, xp.float64))) * math.sqrt(m) + 1e-12
        lo, hi = 0.0, math.inf
        for lam, spend in sub.history:
            if spend >= sub.budget + 4 * se:
                lo = max(lo, lam)
            elif spend <= sub.budget - 4 * se:
                hi = min(hi, lam)
        return lo, hi

    # -- narrowing -------------------------------------------------------------------
    def _option(self, rows, arm):
        """Revenue and cost uplift of option ``arm`` (0 = control) for rows ``rows``."""
        return _pick(self.xp, self.r[rows], self.c[rows], arm)

    def narrow(self, min_active=_ENUMERATE_SIZE):
        """Bisect on the median crossing point of the active users."""
        xp = self.xp
        r, c = self.r[self.act], self.c[self.act]  # compact copies, shrunk as users settle
        rows = xp.arange(r.shape[0], device=self.dev)
        for _ in range(200):
            if self.act.shape[0] <= min_active:
                return
            r_lo, c_lo = _pick(xp, r, c, self.arm_lo)
            r_hi, c_hi = _pick(xp, r, c, self.arm_hi)
            den = c_lo - c_hi
            ok = den > 0
            cross = (r_lo - r_hi)[ok] / den[ok]
            if cross.shape[0] == 0:
                return
            pivot = _median(xp, cross, self.is_np)
            if not (self.lo < pivot < self.hi):
                return
            arm, _, cc = _choose(xp, r, c, pivot)
            spend = self.settled_spend + _sum64(xp, cc)
            self.history.append((pivot, spend))
            if spend <= self.budget:
                self.hi, self.arm_hi = pivot, arm
            else:
                self.lo, self.arm_lo = pivot, arm
            keep = self.arm_lo != self.arm_hi
            if not bool(xp.all(keep)):
                same = ~keep
                rr, cc = _pick(xp, r[same], c[same], self.arm_hi[same])
                self.assignment[self.act[same]] = self.arm_hi[same]
                self.settled_spend += _sum64(xp, cc)
                self.settled_value += _sum64(xp, rr)
                self.act, self.arm_lo, self.arm_hi = self.act[keep], self.arm_lo[keep], self.arm_hi[keep]
                r, c = r[keep], c[keep]

    def finish_empty(self):
        self.active_dual = 0.0
        self.value, self.spend = self.settled_value, self.settled_spend
        self.threshold_rows = self.act

    def finish(self):
        """Enumerate the active users' breakpoints and pick the exact ``lam*``."""
        xp = self.xp
        rows = self.act
        m = rows.shape[0]
        r, c = self.r[rows], self.c[rows]
        lam_star = self.hi
        if m:
            zcol = xp.zeros((m, 1), dtype=r.dtype, device=self.dev)
            R, C = xp.concat([zcol, r], axis=1), xp.concat([zcol, c], axis=1)
            cands = []
            for j in range(self.k + 1):
                den = C[:, j:j + 1] - C[:, j + 1:]
                num = R[:, j:j + 1] - R[:, j + 1:]
                ok = den != 0
                lam = num[ok] / den[ok]
                cands.append(lam[(lam > self.lo) & (lam < self.hi)])
            cands = xp.sort(xp.unique_values(xp.concat(cands)))
            grid = np.asarray(cands).tolist() if self.is_np else cands.cpu().tolist()
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
                a, _, cc = _choose(xp, r, c, grid[mid])
                if self.settled_spend + _sum64(xp, cc) <= self.budget:
                    hi_i, choice[mid] = mid, a
                else:
                    lo_i = mid
            lam_star = grid[hi_i]
            arm = choice[hi_i] if choice.get(hi_i) is not None else _choose(xp, r, c, lam_star)[0]
            self.assignment[rows] = arm
            rr, cc = self._option(rows, arm)
            s = r - lam_star * c if not math.isinf(lam_star) else None
            self.active_dual = (0.0 if s is None else
                                _sum64(xp, xp.clip(xp.max(s, axis=1), 0, None)))
            self.value = self.settled_value + _sum64(xp, rr)
            self.spend = self.settled_spend + _sum64(xp, cc)
        else:
            self.active_dual = 0.0
            self.value, self.spend = self.settled_value, self.settled_spend
        self.threshold_rows = rows
        return lam_star

    # -- completion ------------------------------------------------------------------
    def greedy(self, rows):
        """Spend the leftover budget on upgrades, best revenue per cost first."""
        xp = self.xp
        if rows.shape[0] == 0:
            return
        cur = self.assignment[rows]
        r_cur, c_cur = self._option(rows, cur)
        left = self.budget - self.spend
        if left <= 0:
            return
        dr = self.r[rows] - r_cur[:, None]
        dc = self.c[rows] - c_cur[:, None]
        ok = (dr > 0) & (dc <= left)
        if not bool(xp.any(ok)):
            return
        ui, ki = xp.nonzero(ok)
        gain, extra = dr[ui, ki], dc[ui, ki]
        free = extra <= 0
        ratio = xp.where(free, xp.full_like(gain, xp.inf), gain / xp.where(free, xp.ones_like(extra), extra))
        order = xp.argsort(-ratio, stable=True)
        to_np = (lambda a: np.asarray(a)) if self.is_np else (lambda a: a.cpu().numpy())
        ui, ki = to_np(ui[order]), to_np(ki[order])
        gain = to_np(gain[order]).astype(np.float64)
        extra = to_np(extra[order]).astype(np.float64)
        rows_np = to_np(rows)
        done = np.zeros(rows_np.shape[0], dtype=bool)
        upgrades = {}
        for u, k, g, e in zip(ui, ki, gain, extra):
            if done[u] or e > left:
                continue
            done[u] = True
            left -= e
            self.spend += e
            self.value += g
            upgrades[int(rows_np[u])] = int(k) + 1
        if upgrades:
            keys = xp.asarray(list(upgrades), device=self.dev)
            self.assignment[keys] = xp.asarray(list(upgrades.values()), dtype=xp.int64,
                                               device=self.dev)

    def dual_bound(self, lam):
        """Lagrangian dual at ``lam``: settled users' choices are optimal there."""
        if math.isinf(lam):
            return math.inf
        return (lam * self.budget + self.settled_value - lam * self.settled_spend
                + self.active_dual)


def _solve(xp, r, c, budget, random_state, greedy=True):
    n = r.shape[0]
    solver = _Solver(xp, r, c, budget, random_state)
    if n == 0:
        return BudgetAllocation(solver.assignment, 0.0, 0.0, 0.0, 0.0, budget)
    lo, hi = solver.initial_bracket()
    for _ in range(8):
        spend_lo, spend_hi = solver.full_pass(lo, hi)
        if spend_lo <= budget and lo > 0:  # lam* is below the bracket
            lo, hi = 0.0, lo
        elif spend_hi > budget and not math.isinf(hi):  # lam* is above the bracket
            lo, hi = hi, math.inf
        else:
            break
    if spend_lo <= budget:  # lam* = 0: everything profitable fits
        lam_star = 0.0
        solver.act, solver.arm_lo, solver.arm_hi = solver.act[:0], solver.arm_lo[:0], solver.arm_hi[:0]
        solver.settled_value = solver.settled_spend = 0.0
        for a, b in _chunks(n, solver.k, solver.is_np):
            arm, rr, cc = _choose(xp, r[a:b], c[a:b], 0.0)
            solver.assignment[a:b] = arm
            solver.settled_value += _sum64(xp, rr)
            solver.settled_spend += _sum64(xp, cc)
        solver.finish_empty()
    else:
        solver.narrow()
        lam_star = solver.finish()
    if greedy:
        rows = (xp.arange(n, device=solver.dev) if n <= _FULL_GREEDY_SIZE
                else solver.threshold_rows)
        solver.greedy(rows)
    return BudgetAllocation(solver.assignment, float(lam_star), float(solver.spend),
                            float(solver.value), float(solver.dual_bound(lam_star)), budget)


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
        torch tensors (CPU or CUDA) are processed in torch.
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
    r, c = check_uplift(revenue_uplift, cost_uplift, allow_torch=True)
    if budget is None:
        budget = check_budget(budget_per_user, name="budget_per_user") * r.shape[0]
    else:
        budget = check_budget(budget)
    xp = array_api_compat.array_namespace(r, c)
    return _solve(xp, r, c, budget, random_state)
