"""Budget solver, search: the state of one solve and the search for ``lam*``.

:class:`_Solver` keeps the settled and the active users, reads the data in
full passes, narrows the bracket onto ``lam*``, picks it exactly among the
last active users' breakpoints and gathers the candidate upgrades for the
leftover budget (steps 1, 2 and 4 of the method in :mod:`sklearn_budget._solver`;
the first bracket, step 3, comes from :mod:`sklearn_budget._solver_bracket`, and
which upgrades to take is decided in :mod:`sklearn_budget._solver_greedy`).
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from ._solver_backends import _ops_for
from ._solver_bracket import _SubsampleBracket
from ._solver_greedy import complete_greedily
from ._solver_passes import _scan, _scan_many, pass_rows, upgrades_of_rows

# Active users at or below which breakpoints are enumerated exactly.
_ENUMERATE_SIZE = 1_024
# Crossing points sampled to place the budget among them (narrowing).
_NARROW_SAMPLE = 4_096
# Upgrades the greedy completion considers: all of them for problems up to
# this many users, else those whose revenue per extra cost is within
# _GREEDY_BAND (relative) below lam* (the users near the threshold).
_FULL_GREEDY_SIZE = 20_000
_GREEDY_BAND = 2.0**-10


class _Solver(_SubsampleBracket):
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
        self.below_dual = None  # the dual at the LP's multiplier below lam* (see finish)

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
        self.lo, self.hi = lo, hi
        tot_c, tot_r, parts = pass_rows(self.ops, self.r, self.c, lo, hi, exact_lo,
                                        arm_out=self.assignment)
        return self._absorb(tot_c, tot_r, parts)

    def _absorb(self, tot_c, tot_r, parts):
        """Keep a full pass's active users; returns the spend at ``lo`` and at ``hi``."""
        ops = self.ops
        if parts:
            cols = [ops.concat([p[i] for p in parts]) for i in range(9)]
        else:
            e = ops.zeros_int(0)
            r0, c0 = self._no_rows()
            z = r0[:, 0]
            cols = [e, e, e, z, z, z, z, r0, c0]
        (self.act, self.arm_lo, self.arm_hi, self.r_lo, self.c_lo, self.r_hi, self.c_hi,
         self.ra, self.ca) = cols
        spend_hi = ops.to_float(tot_c)
        act_c_hi, act_r_hi = ops.to_float(ops.sum64(self.c_hi)), ops.to_float(ops.sum64(self.r_hi))
        self.settled_spend = spend_hi - act_c_hi
        self.settled_value = ops.to_float(tot_r) - act_r_hi
        spend_lo = self.settled_spend + ops.to_float(ops.sum64(self.c_lo))
        return spend_lo, spend_hi

    def _no_rows(self):
        """Empty (0, K) rows of the input's kind (the active users' when none are)."""
        return self.r[:0], self.c[:0]

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
        self.lam_below = self.lo  # the LP's multiplier (no active users: the policy holds
        # on (lo, hi], so it is at most lo)
        self.below_dual = None
        if m:
            xp = array_api_compat.array_namespace(r)
            zcol = xp.zeros((m, 1), dtype=r.dtype, device=array_api_compat.device(r))
            R, C = xp.concat([zcol, r], axis=1), xp.concat([zcol, c], axis=1)
            cands, overflow = [], False
            for j in range(self.k + 1):
                den = C[:, j:j + 1] - C[:, j + 1:]
                num = R[:, j:j + 1] - R[:, j + 1:]
                ok = den != 0
                with np.errstate(over="ignore"):
                    lam = num[ok] / den[ok]
                cands.append(lam[(lam > self.lo) & (lam < self.hi)])
                # a breakpoint beyond the largest float (tiny cost steps) is at inf
                overflow = overflow or bool(xp.any(lam == math.inf))
            grid = np.unique(ops.to_numpy(xp.concat(cands))).tolist()
            if not math.isinf(self.hi):
                grid.append(self.hi)
            elif grid and not overflow and math.isfinite(2 * grid[-1] + 1):
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
            # lam* is the LP's multiplier unless the policy between it and the breakpoint
            # below (lo for the first) fits too: at a tie the first maximising level may be
            # the costlier side's, so that breakpoint did not fit, and the LP's multiplier
            # is it (tied groups with no breakpoint between them); the completion's
            # candidates must then reach down to it
            below = grid[hi_i - 1] if hi_i > 0 else self.lo
            gap = 0.5 * (below + lam_star)
            self.lam_below = lam_star
            if below < gap < lam_star and math.isfinite(gap):
                if self.settled_spend + ops.to_float(ops.sum64(_scan(ops, r, c, gap)[2])) \
                        <= self.budget:
                    self.lam_below = below
            if not math.isinf(lam_star):
                s = r - lam_star * c
                self.active_dual = ops.to_float(ops.sum64(xp.clip(xp.max(s, axis=1), 0, None)))
            if self.lam_below < lam_star:  # the dual there too (settled choices hold at lo)
                s = r - self.lam_below * c
                self.below_dual = ops.to_float(ops.sum64(xp.clip(xp.max(s, axis=1), 0, None)))
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
        blocked pass over all users (no copies). Which of them to take is
        decided by :func:`~sklearn_budget._solver_greedy.complete_greedily`
        (each user's chain of LP-efficient upgrades, best revenue per cost
        first).
        """
        ops = self.ops
        left = self.budget - self.spend
        if left <= 0:
            return
        lam_ref = 0.0 if self.n <= _FULL_GREEDY_SIZE else lam_star * (1 - _GREEDY_BAND)
        if self.lam_below < lam_ref:  # the LP's multiplier is below the band (a gap between
            lam_ref = self.lam_below * (1 - _GREEDY_BAND)  # tied groups): it starts there
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
            parts = self._all_upgrades(left, lam_ref)
        parts = [p for p in parts if p is not None]
        if not parts:
            return
        user, level, gain, extra = (np.concatenate([p[i] for p in parts]) for i in range(4))
        users, arms, spent, gained = complete_greedily(user, level, gain, extra, self.k, left)
        if users.shape[0]:
            self.spend += spent
            self.value += gained
            self.assignment[self.ops.asarray(users)] = self.ops.asarray(
                arms, dtype=self.assignment.dtype)

    def _all_upgrades(self, left, lam_ref):
        """Candidate upgrades of every user: one blocked pass (see :meth:`greedy`)."""
        return upgrades_of_rows(self.ops, self.r, self.c, self.assignment, left, lam_ref)

    def _upgrades(self, rt, ct, arm, left, lam_ref, rows):
        """Candidate upgrades of one block (``rows``: the users' ids, or the first id)."""
        got = self.ops.upgrades(rt, ct, arm, left, lam_ref)
        if got is None:
            return None
        row, level, gain, extra = got
        user = row + rows if isinstance(rows, int) else self.ops.to_numpy(rows)[row]
        return user, level, gain, extra

    def dual_bound(self, lam):
        """Lagrangian dual at ``lam`` (settled users' choices are optimal there), or at the
        LP's multiplier below it (``lam_below``, see :meth:`finish`) when that is lower."""
        bounds = [(lam, self.active_dual)]
        if self.below_dual is not None:
            bounds.append((self.lam_below, self.below_dual))
        return min(math.inf if math.isinf(x) else
                   x * self.budget + self.settled_value - x * self.settled_spend + active
                   for x, active in bounds)

    # -- driver ----------------------------------------------------------------------
    def solve(self, greedy=True):
        """Solve; returns ``(multiplier, spend, value, dual_bound)`` (choices in ``assignment``)."""
        n, budget = self.n, self.budget
        if n == 0:
            return 0.0, 0.0, 0.0, 0.0
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
        return (float(lam_star), float(self.spend), float(self.value),
                float(self.dual_bound(lam_star)))
