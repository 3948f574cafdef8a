"""Budget solver on Dask arrays: out of core, a few passes over the chunks.

The in-memory solve (:mod:`sklearn_budget._solver_search`) reads the whole
(n, K) input only in a few full passes: the subsample that brackets ``lam*``,
the full pass that settles every user whose decision does not change inside
the bracket, and, rarely, a pass collecting upgrades for the leftover budget.
Everything else (narrowing, the exact ``lam*``, the greedy completion) works
on the few percent of *active* users near the threshold. Here each of those
passes is one ``dask.compute`` over the chunks, each chunk handled by the
same numpy kernels (:func:`~sklearn_budget._solver_search.pass_rows`) and
reduced to a few totals plus its active users' rows; the rest of the solve is
the in-memory solver's own code on those rows. The chunks are never
gathered: memory holds the active users' rows, the subsample and the choices
the in-memory steps made (by user id). The assignment is returned lazily, as
a Dask array: each chunk's choice at the bracket's upper end (which is every
settled user's decision) with those choices laid over it.

The result has the guarantees of the in-memory solve (never over the budget;
the Lagrangian dual bound) and the same decisions, except where the spend
sits within rounding of the budget: the totals are summed per chunk, so
they can differ from the in-memory totals in the last bits.
"""

from __future__ import annotations

import math

import numpy as np

from ._solver_backends import _NumpyOps
from ._solver_search import _Solver, pass_rows

__all__ = ["allocate_at_multiplier_dask", "check_dask_uplift", "solve_dask"]


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask arrays imply dask
        raise ImportError(
            "Solving on Dask arrays needs dask: pip install 'sklearn-budget[dask]'."
        ) from exc
    return dask, da


def check_dask_uplift(revenue_uplift, cost_uplift):
    """Validated Dask ``(r, c)``: 2-D float, one chunk across the levels, aligned rows.

    Shapes and dtypes are checked here; the values (NaN, infinity) are
    checked chunk by chunk as the solver reads them.
    """
    _, da = _dask()
    out = []
    for name, m in (("revenue_uplift", revenue_uplift), ("cost_uplift", cost_uplift)):
        m = da.asarray(m)
        if m.ndim == 1:
            m = m[:, None]
        if m.ndim != 2 or m.shape[1] == 0:
            raise ValueError(
                f"`{name}` must be 2-D with one row per user and one column per incentive "
                f"level (control excluded), at least one level; got shape {m.shape}.")
        if any(math.isnan(s) for s in m.shape):
            raise ValueError(
                f"`{name}` has chunks of unknown size; call "
                "`.compute_chunk_sizes()` on it first (the solver needs the number of users).")
        if not isinstance(m._meta, np.ndarray):
            raise TypeError(
                f"`{name}` must be a Dask array of numpy chunks; got chunks of "
                f"{type(m._meta).__name__}. Convert them with `.map_blocks(np.asarray)`.")
        if m.dtype.kind not in "fiub":
            raise TypeError(f"`{name}` must be numeric; got dtype {m.dtype}.")
        out.append(m if m.dtype.kind == "f" else m.astype(np.float64))
    r, c = out
    if r.shape != c.shape:
        raise ValueError(
            f"revenue_uplift {r.shape} and cost_uplift {c.shape} must have the same shape "
            "(n_users, n_levels).")
    if r.dtype != c.dtype:
        dt = np.result_type(r.dtype, c.dtype)
        r, c = r.astype(dt), c.astype(dt)
    r = r.rechunk({1: -1})
    return r, c.rechunk(r.chunks)


# -- what one chunk does (pure functions of the chunk's rows) -----------------------------
def _check_finite(r, c, offset):
    for name, m in (("revenue_uplift", r), ("cost_uplift", c)):
        if not (np.isfinite(m.sum()) or np.isfinite(m).all()):
            row = offset + int(np.flatnonzero(~np.isfinite(m).all(axis=1))[0])
            raise ValueError(
                f"`{name}` contains NaN or infinite values (first at row {row}); fix or drop "
                "those users first.")


def _chunk_pass(r, c, lo, hi, exact_lo, offset):
    _check_finite(r, c, offset)
    tot_c, tot_r, parts = pass_rows(_NumpyOps(r.dtype, r.shape[1]), r, c, lo, hi, exact_lo,
                                    offset=offset)
    return float(tot_c), float(tot_r), parts


def _chunk_choices(r, c, lam, rows=None, arms=None, offset=0):
    """Each row's choice at ``lam``, with ``arms`` laid over ``rows`` (ids in the chunk)."""
    _check_finite(r, c, offset)
    ops = _NumpyOps(r.dtype, r.shape[1])
    out = np.zeros(r.shape[0], dtype=np.int64)
    for a, b in ops.blocks(r.shape[0]):
        out[a:b] = ops.choose(*ops.load(r, c, a, b), lam, values=False)[0]
    if rows is not None:
        out[rows] = arms
    return out


def _chunk_upgrades(r, c, lam, left, lam_ref, rows, arms, offset):
    """Candidate upgrades of a chunk's users (ids plus ``offset``), or None."""
    arm = _chunk_choices(r, c, lam, rows, arms, offset)
    ops = _NumpyOps(r.dtype, r.shape[1])
    parts = []
    for a, b in ops.blocks(r.shape[0]):
        got = ops.upgrades(*ops.load(r, c, a, b), arm[a:b], left, lam_ref)
        if got is not None:
            parts.append((got[0] + (a + offset),) + tuple(got[1:]))
    if not parts:
        return None
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


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

    def in_chunk(self, a, b):
        """The ids in ``[a, b)`` (relative to ``a``) and their arms."""
        i, j = np.searchsorted(self.ids, [a, b])
        return self.ids[i:j] - a, self.arms[i:j]


class _DaskSolver(_Solver):
    """:class:`~sklearn_budget._solver_search._Solver` whose full passes are Dask computations."""

    def __init__(self, r, c, budget, random_state):
        self.r, self.c, self.budget = r, c, budget
        self.n, self.k = (int(s) for s in r.shape)
        self.ops = _NumpyOps(r.dtype, self.k)
        self.random_state = random_state
        self.assignment = _Choices([], [])
        self._settle_at = math.inf
        self._chunks = list(zip(r.to_delayed().ravel(), c.to_delayed().ravel()))
        self._bounds = np.cumsum((0,) + tuple(r.chunks[0])).tolist()

    def _over_chunks(self, func, *args, choices=False):
        """``func(r_chunk, c_chunk, *args, [ids, arms,] offset)`` on every chunk, computed."""
        dask, _ = _dask()
        tasks = []
        for (rb, cb), a, b in zip(self._chunks, self._bounds, self._bounds[1:]):
            extra = self.assignment.in_chunk(a, b) if choices else ()
            tasks.append(dask.delayed(func)(rb, cb, *args, *extra, a))
        return dask.compute(*tasks)

    def _no_rows(self):
        z = np.zeros((0, self.k), dtype=self.ops.dtype)
        return z, z.copy()

    def _take_rows(self, rows):
        dask, _ = _dask()
        rs, cs = dask.compute(self.r[rows], self.c[rows])
        if not (np.isfinite(rs).all() and np.isfinite(cs).all()):
            _check_finite(rs, cs, 0)  # names the matrix; the row is the subsample's
        return rs, cs

    def _sub_solver(self, rs, cs, budget):
        return _Solver(rs, cs, budget, self.random_state, ops=self.ops)

    def full_pass(self, lo, hi, exact_lo=False):
        self.lo, self.hi = lo, hi
        tot_c = tot_r = 0.0
        parts = []
        for tc, tr, p in self._over_chunks(_chunk_pass, lo, hi, exact_lo):
            tot_c, tot_r = tot_c + tc, tot_r + tr
            parts.extend(p)
        spends = self._absorb(tot_c, tot_r, parts)
        # every other user's decision is their choice at hi; the active users'
        # choices at hi are written, as the in-memory pass writes everyone's
        self._settle_at = hi
        self.assignment = _Choices(self.act, self.arm_hi)
        return spends

    def _all_upgrades(self, left, lam_ref):
        return list(self._over_chunks(_chunk_upgrades, self._settle_at, left, lam_ref,
                                      choices=True))

    def lazy_assignment(self):
        """The assignment as a Dask array (each chunk computed when asked for)."""
        dask, da = _dask()
        pieces = []
        for (rb, cb), a, b in zip(self._chunks, self._bounds, self._bounds[1:]):
            ids, arms = self.assignment.in_chunk(a, b)
            task = dask.delayed(_chunk_choices)(rb, cb, self._settle_at, ids, arms, a)
            pieces.append(da.from_delayed(task, shape=(b - a,), dtype=np.int64))
        return da.concatenate(pieces) if pieces else da.zeros((0,), dtype=np.int64)


def solve_dask(revenue_uplift, cost_uplift, budget, random_state):
    """``(multiplier, spend, value, dual_bound, assignment)`` of Dask inputs (checked)."""
    solver = _DaskSolver(revenue_uplift, cost_uplift, budget, random_state)
    multiplier, spend, value, dual_bound = solver.solve()
    return multiplier, spend, value, dual_bound, solver.lazy_assignment()


def allocate_at_multiplier_dask(revenue_uplift, cost_uplift, multiplier):
    """Each user's best arm at ``multiplier``, as a lazy Dask array (inputs checked)."""
    _, da = _dask()
    return da.map_blocks(_map_choices, revenue_uplift, cost_uplift, multiplier,
                         drop_axis=1, dtype=np.int64)


def _map_choices(r, c, lam, block_info=None):
    offset = block_info[0]["array-location"][0][0] if block_info else 0
    return _chunk_choices(r, c, lam, offset=offset)
