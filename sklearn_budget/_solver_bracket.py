"""Budget solver, first bracket: ``lam*`` bracketed from a random subsample's solve.

For large inputs the search of :mod:`sklearn_budget._solver_search` starts
from a bracket around ``lam*`` found by the same solve on a random subsample
(step 3 of the method in :mod:`sklearn_budget._solver`); a bracket that
misses ``lam*`` is widened from the subsample's spend curve.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

# Problems up to this many users are solved directly (no subsample bracket).
_DIRECT_SIZE = 20_000
# Size of the subsample that brackets the multiplier of larger problems (at
# most 1/8 of the users; a subsample above _DIRECT_SIZE is bracketed in turn).
_SUBSAMPLE_SIZE = 50_000
# Half-width of the bracket in standard errors of the subsample's spend (a
# bracket that misses costs one more pass, with the margin widened by the miss).
_BRACKET_Z = 3.5


class _SubsampleBracket:
    """The first bracket of a :class:`~sklearn_budget._solver_search._Solver`, and its widening.

    A mixin of the solver: it reads the solver's ``r``, ``c``, ``n``,
    ``budget``, ``ops`` and ``random_state``, and solves the subsample with
    a solver of the same class.
    """

    _curve = None  # the subsample's spend curve (see initial_bracket)

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
        rs, cs = self._take_rows(np.sort(rng.integers(0, self.n, size=m)))
        scale = self._scale = m / self.n
        sub = self._sub_solver(rs, cs, self.budget * scale)
        lam_s = sub.solve(greedy=False)[0]
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

    def _take_rows(self, rows):
        """Rows ``rows`` (sorted numpy ids) of ``r`` and ``c``, as the solver's ``ops`` hold them."""
        idx = self.ops.asarray(rows)
        return self.ops.take_rows(self.r, idx), self.ops.take_rows(self.c, idx)

    def _sub_solver(self, rs, cs, budget):
        """A solver of the subsample (the same class, sharing ``ops``)."""
        return type(self)(rs, cs, budget, self.random_state, ops=self.ops)

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
