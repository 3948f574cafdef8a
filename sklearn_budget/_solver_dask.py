"""Budget solver on Dask arrays: out of core, a few passes over the chunks.

The in-memory solve (:mod:`sklearn_budget._solver_search`) reads the whole
(n, K) input only in a few full passes: the subsample that brackets ``lam*``,
the full pass that settles every user whose decision does not change inside
the bracket, and, rarely, a pass collecting upgrades for the leftover budget.
Everything else (narrowing, the exact ``lam*``, the greedy completion) works
on the few percent of *active* users near the threshold. Here each of those
passes is one Dask computation over the chunks (``blockwise`` over ``r`` and
``c`` together), each chunk handled by the same numpy kernels
(:func:`~sklearn_budget._solver_passes.pass_rows`) and reduced to a few totals
plus its active users' rows; the rest of the solve is the in-memory solver's
own code on those rows. The chunks are never gathered: memory holds the
active users' rows, the subsample and the choices the in-memory steps made
(by user id). The assignment is returned lazily, as a Dask array: each chunk's
choice at the bracket's upper end (which is every settled user's decision)
with those choices laid over it.

Where the in-memory solve would make most users active (a first bracket that
missed ``lam*`` is widened to 0 or infinity, e.g. when a tiny budget leaves
the subsample with nothing to say), a chunk with more active users than an
eighth of its rows returns its totals only, and the bracket is first narrowed
by passes that compute just the exact spend at a grid of multipliers.

The result has the guarantees of the in-memory solve (within the budget as
summed in float64; the Lagrangian dual bound) and the same decisions, except
where the spend sits within rounding of the budget: the totals are summed per
chunk, so they can differ from the in-memory totals in the last bits.
"""

from __future__ import annotations

import math

import numpy as np

from ._solver_backends import _NumpyOps
from ._solver_bracket import _DIRECT_SIZE
from ._solver_passes import choices_at, pass_rows, upgrades_of_rows
from ._solver_search import _Solver

__all__ = ["allocate_at_multiplier_dask", "solve_dask"]


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask arrays imply dask
        raise ImportError(
            "Solving on Dask arrays needs dask: pip install 'sklearn-budget[dask]'."
        ) from exc
    return dask, da


# Active users a chunk may return: beyond max(_CAP_ROWS, rows * _CAP_SHARE) the bracket is
# too wide (it missed lam*, or the subsample said little), and the chunk returns totals only.
_CAP_SHARE = 1 / 8
_CAP_ROWS = 1_024
# Rounds of totals-only narrowing before the cap is lifted (the in-memory behaviour).
_GRID_ROUNDS = 6
# Multipliers per totals-only pass, spaced by factors of _GRID_STEP outside the bracket.
_GRID_POINTS, _GRID_STEP = 16, 4.0


# -- what one chunk does (pure functions of the chunk's rows) -----------------------------
# Each takes (r, c, ids, arms, start, *args): the chunk's rows, the choices laid over some
# of them (ids relative to the chunk) and the chunk's first row in the whole input.
def _check_finite(r, c, start, ids=None):
    """NaN or infinity named with the user's row: ``start`` plus the row, or ``ids[row]``."""
    for name, m in (("revenue_uplift", r), ("cost_uplift", c)):
        with np.errstate(over="ignore", invalid="ignore"):  # a finite sum: all finite
            fast = np.isfinite(m.sum())
        if not (fast or np.isfinite(m).all()):
            row = int(np.flatnonzero(~np.isfinite(m).all(axis=1))[0])
            row = start + row if ids is None else int(ids[row])
            raise ValueError(
                f"`{name}` contains NaN or infinite values (first at row {row}); fix or drop "
                "those users first.")


def _chunk_pass(r, c, ids, arms, start, lo, hi, exact_lo, cap):
    """Totals at ``hi`` and the active users' parts (None beyond ``cap`` of them)."""
    _check_finite(r, c, start)
    tot_c, tot_r, parts = pass_rows(_NumpyOps(r.dtype, r.shape[1]), r, c, lo, hi, exact_lo,
                                    offset=start)
    n_active = sum(p[0].shape[0] for p in parts)
    # the spend at lo less the spend at hi (both with the settled users' choice at hi)
    lo_minus_hi = sum(float(p[4].sum(dtype=np.float64) - p[6].sum(dtype=np.float64))
                      for p in parts)
    if cap is not None and n_active > max(_CAP_ROWS, r.shape[0] * cap):
        parts = None
    return float(tot_c), float(tot_r), parts, lo_minus_hi


def _chunk_spends(r, c, ids, arms, start, lams):
    """Exact spend of the chunk at each multiplier of ``lams`` (each block read once)."""
    _check_finite(r, c, start)
    ops = _NumpyOps(r.dtype, r.shape[1])
    out = np.zeros(len(lams))
    for a, b in ops.blocks(r.shape[0]):
        rt, ct = ops.load(r, c, a, b)
        for i, lam in enumerate(lams):
            out[i] += float(ops.sum64(ops.choose(rt, ct, lam)[2]))
    return out


def _chunk_choices(r, c, ids, arms, start, lam):
    """Each row's choice at ``lam``, with ``arms`` laid over the rows ``ids``."""
    _check_finite(r, c, start)
    out = choices_at(_NumpyOps(r.dtype, r.shape[1]), r, c, lam)
    out[ids] = arms
    return out


def _chunk_upgrades(r, c, ids, arms, start, lam, left, lam_ref):
    """Candidate upgrades of a chunk's users, one part per block (see ``upgrades_of_rows``)."""
    arm = _chunk_choices(r, c, ids, arms, start, lam)
    return upgrades_of_rows(_NumpyOps(r.dtype, r.shape[1]), r, c, arm, left, lam_ref, start)


# The blockwise wrappers keep the column index in their output (one block across
# the columns, like every input): contracting it would make dask concatenate, i.e.
# copy, each chunk.
def _one_result(func, r, c, ids, arms, start, *args):
    """``func``'s result for one chunk, as a (1, 1) object array; a ValueError (a bad value)
    is returned, not raised, so that the first chunk's in row order is the one reported,
    whatever the scheduler ran first."""
    out = np.empty((1, 1), dtype=object)
    try:
        out[0, 0] = func(r, c, ids[:, 0], arms[:, 0], int(start[0, 0]), *args)
    except ValueError as exc:
        out[0, 0] = exc
    return out


def _choices_of_chunk(r, c, ids, arms, start, lam):
    return _chunk_choices(r, c, ids[:, 0], arms[:, 0], int(start[0, 0]), lam)[:, None]


class _Choices:
    """The choices the in-memory steps made, by user id, over the chunks' default.

    Stands for the solver's ``assignment``: ids sorted, with their arms;
    reading an id that was never written is an error (the solver only reads
    users it wrote).
    """

    dtype = np.int64

    def __init__(self, ids, arms):
        self.ids, self.arms = np.asarray(ids, dtype=np.int64), np.asarray(arms, dtype=np.int64)

    def _find(self, ids):
        pos = np.searchsorted(self.ids, ids)
        hit = pos < self.ids.shape[0]
        hit[hit] = self.ids[pos[hit]] == ids[hit]
        return pos, hit

    def __getitem__(self, ids):
        pos, hit = self._find(np.asarray(ids))
        if not hit.all():  # pragma: no cover - the solver reads the users it wrote
            raise KeyError("choice of a settled user read from the overrides")
        return self.arms[pos]

    def __setitem__(self, ids, arms):
        ids = np.asarray(ids, dtype=np.int64)
        arms = np.broadcast_to(np.asarray(arms, dtype=np.int64), ids.shape)
        pos, hit = self._find(ids)
        self.arms[pos[hit]] = arms[hit]
        if not hit.all():
            ids = np.concatenate([self.ids, ids[~hit]])
            order = np.argsort(ids, kind="stable")
            self.ids, self.arms = ids[order], np.concatenate([self.arms, arms[~hit]])[order]

    def by_chunk(self, bounds):
        """``(ids, arms)`` as (n, 1) Dask arrays with one block per chunk, ids relative to it."""
        _, da = _dask()
        pos = np.searchsorted(self.ids, bounds)
        counts = tuple(int(x) for x in np.diff(pos))
        chunk = np.repeat(np.arange(len(counts)), counts)
        rel = self.ids - np.asarray(bounds[:-1], dtype=np.int64)[chunk]
        return (da.from_array(rel[:, None], chunks=(counts, (1,))),
                da.from_array(self.arms[:, None], chunks=(counts, (1,))))


class _DaskSolver(_Solver):
    """:class:`~sklearn_budget._solver_search._Solver` whose full passes are Dask computations.

    Each pass is one ``blockwise`` computation over the chunks of ``r`` and
    ``c`` together (chunks of an upstream both come from are computed once
    per pass), with each chunk's own overrides and first row as aligned
    blocks (so a distributed scheduler ships each task only its own).
    """

    def __init__(self, r, c, budget, random_state):
        _, da = _dask()
        self.r, self.c, self.budget = r, c, budget
        self.n, self.k = (int(s) for s in r.shape)
        self.ops = _NumpyOps(r.dtype, self.k)
        self.random_state = random_state
        self.assignment = _Choices([], [])
        self.below_dual = None
        self._settle_at = math.inf
        self._bounds = np.cumsum((0,) + tuple(r.chunks[0])).tolist()
        starts = np.asarray(self._bounds[:-1], dtype=np.int64)[:, None]
        self._starts = da.from_array(starts, chunks=((1,) * starts.shape[0], (1,)))
        # a chunk returns its active users' rows only while they are few (see _CAP_SHARE)
        self._cap = None if self.n <= _DIRECT_SIZE else _CAP_SHARE

    def _over_chunks(self, func, *args):
        """``func(r, c, ids, arms, start, *args)`` on every chunk, computed, in chunk order."""
        _, da = _dask()
        ids, arms = self.assignment.by_chunk(self._bounds)
        scalars = [x for a in (func,) + args for x in (a, None)]
        out = da.blockwise(
            _one_result, "ij", *scalars[:2], self.r, "ij", self.c, "ij", ids, "ij", arms, "ij",
            self._starts, "ij", *scalars[2:], align_arrays=False, adjust_chunks={"i": 1, "j": 1},
            dtype=object, meta=np.empty((0, 0), dtype=object))
        results = list(out.compute()[:, 0])
        for result in results:
            if isinstance(result, ValueError):
                raise result
        return results

    def _no_rows(self):
        z = np.zeros((0, self.k), dtype=self.ops.dtype)
        return z, z.copy()

    def _take_rows(self, rows):
        dask, _ = _dask()
        rs, cs = dask.compute(self.r[rows], self.c[rows])
        _check_finite(rs, cs, 0, ids=rows)  # named with the user's row, not the subsample's
        return rs, cs

    def _sub_solver(self, rs, cs, budget):
        return _Solver(rs, cs, budget, self.random_state, ops=self.ops)

    def full_pass(self, lo, hi, exact_lo=False):
        cap = self._cap
        for round_ in range(_GRID_ROUNDS + 1):
            results = self._over_chunks(_chunk_pass, lo, hi, exact_lo,
                                        cap if round_ < _GRID_ROUNDS else None)
            if all(res[2] is not None for res in results):
                break
            # too many users change inside the bracket: narrow it on totals alone
            spend_hi = sum(res[0] for res in results)
            lo, hi = self._grid_bracket(lo, hi, spend_hi + sum(res[3] for res in results),
                                        spend_hi)
        self.lo, self.hi = lo, hi
        tot_c = tot_r = 0.0
        parts = []
        for tc, tr, p, _ in results:
            tot_c, tot_r = tot_c + tc, tot_r + tr
            parts.extend(p)
        spends = self._absorb(tot_c, tot_r, parts)
        # every other user's decision is their choice at hi; the active users'
        # choices at hi are written, as the in-memory pass writes everyone's
        self._settle_at = hi
        self.assignment = _Choices(self.act, self.arm_hi)
        return spends

    def _grid_bracket(self, lo, hi, spend_lo, spend_hi):
        """A narrower bracket around ``lam*`` from exact spends at a grid of multipliers.

        The grid spans the side of the bracket ``lam*`` lies on (below ``lo``
        or above ``hi`` when the bracket missed it, else inside it), spaced by
        factors of ``_GRID_STEP`` outside it and geometrically inside; one
        pass computes only the spend at each point (no rows are kept).
        """
        steps = [_GRID_STEP ** j for j in range(1, _GRID_POINTS + 1)]
        if spend_lo <= self.budget and lo > 0:  # lam* <= lo (ties aside: lo is measured too)
            grid = [0.0, lo] + [lo / s for s in steps]
        elif spend_hi > self.budget and not math.isinf(hi):  # lam* > hi
            grid = [hi, math.inf] + [hi * s for s in steps]
        elif lo > 0 and not math.isinf(hi):
            grid = np.geomspace(lo, hi, _GRID_POINTS + 2).tolist()
        elif lo > 0:
            grid = [lo, hi] + [lo * s for s in steps]
        else:
            grid = [lo, hi] + [hi / s for s in steps]
        grid = sorted(set(grid))
        spend = np.sum(self._over_chunks(_chunk_spends, grid), axis=0)
        fits = np.flatnonzero(spend <= self.budget)
        if fits.shape[0] == 0:  # nothing fits: lam* is the last point (inf)
            return grid[-2], grid[-1]
        j = int(fits[0])
        return (grid[j - 1], grid[j]) if j > 0 else (0.0, grid[1] if len(grid) > 1 else hi)

    def _all_upgrades(self, left, lam_ref):
        chunks = self._over_chunks(_chunk_upgrades, self._settle_at, left, lam_ref)
        return [part for parts in chunks for part in parts]

    def lazy_assignment(self):
        """The assignment as a Dask array (each chunk computed when asked for)."""
        _, da = _dask()
        ids, arms = self.assignment.by_chunk(self._bounds)
        return da.blockwise(
            _choices_of_chunk, "ij", self.r, "ij", self.c, "ij", ids, "ij", arms, "ij",
            self._starts, "ij", self._settle_at, None, align_arrays=False,
            adjust_chunks={"j": 1}, dtype=np.int64, meta=np.empty((0, 0), dtype=np.int64))[:, 0]


def solve_dask(revenue_uplift, cost_uplift, budget, random_state):
    """``(multiplier, spend, value, dual_bound, assignment)`` of Dask inputs (checked)."""
    solver = _DaskSolver(revenue_uplift, cost_uplift, budget, random_state)
    multiplier, spend, value, dual_bound = solver.solve()
    return multiplier, spend, value, dual_bound, solver.lazy_assignment()


def allocate_at_multiplier_dask(revenue_uplift, cost_uplift, multiplier):
    """Each user's best arm at ``multiplier``, as a lazy Dask array (inputs checked)."""
    _, da = _dask()
    return da.map_blocks(_map_choices, revenue_uplift, cost_uplift, multiplier,
                         drop_axis=1, dtype=np.int64, meta=np.empty((0,), dtype=np.int64))


def _map_choices(r, c, lam, block_info=None):
    start = block_info[0]["array-location"][0][0] if block_info else 0
    try:
        return _chunk_choices(r, c, slice(0, 0), 0, start, lam)
    except ValueError as exc:  # lazily, chunk by chunk: the first of this chunk
        raise ValueError(str(exc).replace("(first at row", "(at row")) from None
