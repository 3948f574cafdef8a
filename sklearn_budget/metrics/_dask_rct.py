"""An RCT held in Dask arrays, checked chunk by chunk: the metrics' first pass.

Every chunk of the RCT's columns (treatment, revenue, cost, per-user
propensity) gets the checks that the in-memory path gives the whole sample
(a bad value is named with its chunk's rows) and is reduced to its labels and
their counts, which fix the levels and the arm frequencies (the default
propensity). For an automatic multiplier grid the same pass keeps each
chunk's largest decision breakpoint and a random sample of the others. The
chunks of all inputs are aligned to those of the first Dask input, the
predictions' when they are one (a model's, often). :mod:`._dask` sums the
policies over the chunks checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._blockwise import is_dask
from .._dask_frames import frame_to_array
from .._solver_dask import _check_finite
from .._validation import (
    _as_1d,
    _as_finite_float,
    _check_propensity,
    _check_treatment_labels,
    check_control_name,
    check_outcome_total,
    check_propensity_values,
    check_rct_columns,
    is_dask_frame,
    labels_to_arms,
    rct_levels,
)
from ._cost_curve import breakpoint_parts, grid_of_breakpoints

__all__ = ["any_dask", "check_rct_dask"]

# An automatic grid's quantiles come from about this many users' breakpoints (all of
# them in a smaller RCT, which then gets the in-memory grid exactly).
_GRID_SAMPLE = 200_000

def any_dask(*arrays):
    """True when any argument is a Dask array, DataFrame or Series."""
    return any(is_dask(a) or is_dask_frame(a) for a in arrays)


def _lazy_1d(values, name):
    """``values`` as a 1-D Dask array in its own chunks, or a checked 1-D numpy array
    (an (n, 1) column is flattened, as in memory)."""
    if is_dask_frame(values):
        values = frame_to_array(values)
    if not is_dask(values):
        return _as_1d(values, name)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional with one value per user; got "
                         f"shape {values.shape}.")
    if math.isnan(values.shape[0]):
        raise ValueError(f"`{name}` has chunks of unknown size; call `.compute_chunk_sizes()` "
                         "on it first (the metrics need the number of users per chunk).")
    return values


def _rows(values, chunks):
    """A :func:`_lazy_1d` array as an (n, 1) Dask array in the row ``chunks``."""
    import dask.array as da

    if isinstance(values, np.ndarray):
        return da.from_array(values[:, None], chunks=(chunks, (1,)))
    return values.rechunk((chunks,))[:, None]


@dataclass
class _DaskRCT:
    """A checked RCT on Dask arrays: (n, 1) columns with the same row chunks."""

    columns: list  # treatment, revenue, cost[, propensity per user]
    levels: np.ndarray
    control_name: object
    counts: np.ndarray  # users per arm, control first
    arm_propensity: np.ndarray | None  # per arm, or None when given per user

    @property
    def n_samples(self):
        return int(self.counts.sum())


def _one_result(func, *blocks_and_args):
    """``func(*blocks, *args)`` of one chunk, as a (1, 1) object array (see the solver).

    A ValueError or TypeError (bad input) is returned, not raised, so that the
    first chunk's in row order is the one reported, whatever the scheduler ran first.
    """
    out = np.empty((1, 1), dtype=object)
    try:
        out[0, 0] = func(*blocks_and_args)
    except (ValueError, TypeError) as exc:
        out[0, 0] = exc
    return out


def _over_chunks(func, arrays, *args):
    """``func(*chunk_blocks, start, *args)`` for every chunk of rows, computed, in order.

    ``arrays`` are 2-D Dask arrays with the same row chunks and one column block.
    """
    import dask.array as da

    bounds = np.cumsum((0,) + tuple(arrays[0].chunks[0]))
    starts = da.from_array(bounds[:-1, None], chunks=((1,) * (len(bounds) - 1), (1,)))
    pairs = [x for a in arrays for x in (a, "ij")]
    out = da.blockwise(
        _one_result, "ij", func, None, *pairs, starts, "ij",
        *[x for a in args for x in (a, None)], align_arrays=False,
        adjust_chunks={"i": 1, "j": 1}, dtype=object, meta=np.empty((0, 0), dtype=object))
    results = list(out.compute()[:, 0])
    for res in results:
        if isinstance(res, Exception):
            raise res
    return results


def _in_rows(func, start, n, *args):
    """``func(*args)``, its ValueError / TypeError naming the rows of the chunk."""
    try:
        return func(*args)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"In the chunk of RCT rows {start} to {start + n - 1} (an index or "
                        f"row below counts from its first row): {exc}") from None


# -- pass 1: check the chunks, count the labels ---------------------------------------------
def _check_chunk(*blocks):
    """Labels and counts, outcome totals, and (with uplifts) breakpoints of one chunk."""
    *blocks, start, has_p, sample_rate, seed = blocks
    t, revenue, cost = (b[:, 0] for b in blocks[:3])
    start, n = int(start[0, 0]), t.shape[0]
    t, revenue, cost = _in_rows(check_rct_columns, start, n, t, revenue, cost)
    if has_p:
        _in_rows(lambda p: check_propensity_values(_as_finite_float(p, "propensity")), start,
                 n, blocks[3][:, 0])
    labels, counts = np.unique(t, return_counts=True)
    totals = (float(np.abs(revenue).sum()), float(np.abs(cost).sum()))
    extremes = (float(np.abs(revenue).max(initial=0)), float(np.abs(cost).max(initial=0)))
    sample = top = None
    if sample_rate is not None:
        r, c = blocks[-2:]
        _check_finite(r, c, start)  # (named with the row in the whole input)
        rng, sample = np.random.default_rng([seed, start]), []
        for part in breakpoint_parts(r, c):  # part by part: a chunk's are many
            if len(part):
                top = max(top or 0.0, float(part.max()))
            sample.append(part if sample_rate >= 1.0 else
                          part[rng.random(len(part)) < sample_rate])
        sample = np.concatenate(sample) if sample else np.zeros(0)
    return labels, counts, totals, extremes, sample, top


def _merge_labels(parts):
    labels = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    _check_treatment_labels(labels)  # each chunk's are of one type; are all chunks'?
    merged, where = np.unique(labels, return_inverse=True)
    return merged, np.bincount(where.ravel(), weights=counts).astype(np.int64)


def check_rct_dask(treatment, revenue, cost, *, control_name=0, propensity=None, levels=None,
                   lead=None, uplift=None, n_multipliers=None):
    """The checked RCT (pass 1) in the row chunks it is read in, and the automatic
    multiplier grid when asked for.

    ``lead``: ``(predictions, "what has {} rows")``, whose rows are the RCT's
    users; its chunks lead when it is a Dask array (a model's, often), else
    those of the first RCT input that is one. ``uplift``: the checked Dask
    ``(r, c)`` for the grid, from ``n_multipliers`` (else None is returned).
    Returns ``(rct, chunks, grid)``.
    """
    check_control_name(control_name)
    per_user = propensity is not None and not isinstance(propensity, dict)
    given = {"treatment": treatment, "revenue": revenue, "cost": cost}
    if per_user:
        given["propensity"] = propensity
    cols = {name: _lazy_1d(v, name) for name, v in given.items()}
    n = int(cols["treatment"].shape[0])
    for name, v in cols.items():
        if v.shape[0] != n:
            raise ValueError(f"`{name}` has {v.shape[0]} values but `treatment` has {n}; "
                             "give one per RCT user.")
    if n == 0:
        raise ValueError("The RCT sample is empty; pass at least one user per arm.")
    if lead is not None and lead[0].shape[0] != n:
        raise ValueError(lead[1].format(lead[0].shape[0]) + f" but the RCT has {n} users; "
                         "predict on the same users as `treatment`.")
    leads = ([lead[0]] if lead is not None else []) + list(cols.values())
    chunks = next((tuple(v.chunks[0]) for v in leads if is_dask(v)), (n,))
    columns = [_rows(v, chunks) for v in cols.values()]
    grid = n_multipliers is not None
    rate = min(1.0, _GRID_SAMPLE / n) if grid else None
    parts = _over_chunks(_check_chunk, columns + ([u.rechunk({0: chunks}) for u in uplift]
                                                  if grid else []), per_user, rate, 0)
    for k, name in enumerate(("revenue", "cost")):
        with np.errstate(over="ignore"):
            total = np.sum([p[2][k] for p in parts])
        check_outcome_total(name, total, np.array([max(p[3][k] for p in parts)]))
    labels, label_counts = _merge_labels(parts)
    levels = rct_levels(labels, control_name, levels)
    arms = labels_to_arms(labels, levels, control_name)
    counts = np.bincount(arms, weights=label_counts, minlength=len(levels) + 1).astype(np.int64)
    if propensity is None:
        arm_p = counts / n
    elif isinstance(propensity, dict):  # each distinct label stands for its users
        p = _check_propensity(propensity, labels, arms, counts, control_name, levels,
                              users=label_counts)
        arm_p = np.ones(len(levels) + 1)
        arm_p[arms] = p
    else:
        arm_p = None
    rct = _DaskRCT(columns, levels, control_name, counts, arm_p)
    if not grid:
        return rct, chunks, None
    sample = np.concatenate([p[4] for p in parts])
    tops = [p[5] for p in parts if p[5] is not None]
    if tops and rate < 1.0:  # the sample may miss the largest breakpoint: it ends the grid
        sample = np.append(sample, max(tops))
    return rct, chunks, grid_of_breakpoints(sample, n_multipliers)
