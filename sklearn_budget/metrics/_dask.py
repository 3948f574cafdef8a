"""EOM metrics of an RCT held in Dask arrays: two passes over the chunks.

The EOM of a policy and its cost curve are sums over the RCT users (matched
weights, weighted outcomes), so on Dask arrays each chunk of users is reduced
to a few totals and nothing is gathered. A first pass checks every chunk (the
same checks as in memory) and counts its treatment labels, which fixes the
levels and the arm frequencies (the default propensity); for an automatic
multiplier grid it also keeps the chunk's largest decision breakpoint and a
random sample of the others. A second pass sums, for every policy asked
about, the chunk's matched weights and weighted outcomes (and for the doubly
robust estimate its predicted uplifts and residuals). Reading a multiplier
off the curve where the policy jumps (tied predictions) takes a few more
passes, each evaluating 15 multipliers of the in-memory bisection at once.

The results equal the in-memory ones up to the order of summation, except
the automatic grid of an RCT larger than ``_GRID_SAMPLE`` users, whose
quantiles come from a sample of the breakpoints (the largest one is exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._blockwise import frame_to_array, is_dask
from .._solver import choices_along
from .._validation import (
    _as_1d,
    _as_finite_float,
    _check_propensity,
    _check_treatment_labels,
    check_control_name,
    check_dask_uplift,
    check_outcome_total,
    check_propensity_values,
    check_rct_columns,
    labels_to_arms,
    rct_levels,
)
from ._cost_curve import (
    breakpoint_parts,
    check_estimate,
    check_multipliers,
    check_n_multipliers,
    check_uplift_fits_rct,
    curve_of_points,
    grid_of_breakpoints,
)
from ._eom import ExpectedOutcome

__all__ = ["any_dask", "cost_curve_dask", "expected_outcome_dask", "settle_multiplier_dask"]

# An automatic grid's quantiles come from about this many users' breakpoints (all of
# them in a smaller RCT, which then gets the in-memory grid exactly).
_GRID_SAMPLE = 200_000
# Bisection steps taken per pass when reading a multiplier where the policy jumps.
_BISECT_DEPTH = 4


def any_dask(*arrays):
    """True when any argument is a Dask array, DataFrame or Series."""
    return any(is_dask(a) or _is_dask_series(a) for a in arrays)


def _is_dask_series(a):
    return (type(a).__module__.startswith(("dask.dataframe", "dask_expr"))
            and hasattr(a, "to_dask_array"))


def _lazy_1d(values, name):
    """``values`` as a 1-D Dask array in its own chunks, or a checked 1-D numpy array
    (an (n, 1) column is flattened, as in memory)."""
    if _is_dask_series(values):
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
        _in_rows(_check_finite_uplift, start, n, r, c)
        rng, sample = np.random.default_rng([seed, start]), []
        for part in breakpoint_parts(r, c):  # part by part: a chunk's are many
            if len(part):
                top = max(top or 0.0, float(part.max()))
            sample.append(part if sample_rate >= 1.0 else
                          part[rng.random(len(part)) < sample_rate])
        sample = np.concatenate(sample) if sample else np.zeros(0)
    return labels, counts, totals, extremes, sample, top


def _check_finite_uplift(r, c):
    for name, m in (("revenue_uplift", r), ("cost_uplift", c)):
        if not np.isfinite(m).all():
            row = int(np.flatnonzero(~np.isfinite(m).all(axis=1))[0])
            raise ValueError(f"`{name}` contains NaN or infinite values (first at row "
                             f"{row}); fix or drop those users first.")


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


# -- pass 2: sums of each policy --------------------------------------------------------------
def _weights(blocks, levels, control_name, arm_propensity):
    """Each user's arm and inverse-propensity weight, and the outcomes, of one chunk."""
    t, revenue, cost = (b[:, 0] for b in blocks[:3])
    arm = labels_to_arms(t, levels, control_name)
    p = (arm_propensity[arm] if arm_propensity is not None else
         _as_finite_float(blocks[3][:, 0], "propensity"))
    return arm, 1.0 / p, np.asarray(revenue, dtype=np.float64), np.asarray(cost,
                                                                         dtype=np.float64)


def _policy_sums(arm, w, revenue, cost, policy):
    match = policy == arm
    return [w @ match, (w * revenue) @ match, (w * cost) @ match, float(np.count_nonzero(match))]


def _assignment_chunk(*blocks):
    """Sums of the all-control policy and of the assigned arms (labels), one chunk."""
    *blocks, start, levels, control_name, arm_p = blocks
    arm, w, revenue, cost = _weights(blocks, levels, control_name, arm_p)
    policy = _in_rows(labels_to_arms, int(start[0, 0]), arm.shape[0], blocks[-1][:, 0], levels,
                      control_name)
    return np.array([_policy_sums(arm, w, revenue, cost, np.zeros_like(arm)),
                     _policy_sums(arm, w, revenue, cost, policy)])


def _curve_chunk(*blocks):
    """Sums of the all-control policy and of the policy at each multiplier, one chunk.

    Columns: matched weight, weighted revenue and cost, matched users; with
    ``dr`` also the policy's summed predicted uplifts (revenue, cost) and the
    matched users' weighted outcomes less their predicted uplift.
    """
    *blocks, start, levels, control_name, arm_p, multipliers, dr = blocks
    arm, w, revenue, cost = _weights(blocks, levels, control_name, arm_p)
    r, c = blocks[-2:]
    _in_rows(_check_finite_uplift, int(start[0, 0]), arm.shape[0], r, c)
    rows = np.arange(arm.shape[0])
    if dr:
        zero = np.zeros((arm.shape[0], 1))
        R, C = np.hstack([zero, r]), np.hstack([zero, c])
        res_rev, res_cost = w * (revenue - R[rows, arm]), w * (cost - C[rows, arm])
    out = []
    choices = choices_along(r, c)
    for lam in [None, *multipliers]:
        policy = np.zeros_like(arm) if lam is None else np.asarray(choices(lam))
        sums = _policy_sums(arm, w, revenue, cost, policy)
        if dr:
            match = policy == arm
            sums += [R[rows, policy].sum(), C[rows, policy].sum(), res_rev @ match,
                     res_cost @ match]
        out.append(sums)
    return np.array(out, dtype=np.float64)


def _reduce(parts):
    return np.sum(np.stack(parts), axis=0)


def expected_outcome_dask(assignment, treatment, revenue, cost, propensity, control_name):
    """:func:`~sklearn_budget.metrics.expected_outcome` of Dask inputs (two passes)."""
    policy = _lazy_1d(assignment, "assignment")
    rct, chunks, _ = check_rct_dask(treatment, revenue, cost, control_name=control_name,
                                    propensity=propensity,
                                    lead=(policy, "`assignment` has {} labels"))
    policy = _rows(policy, chunks)
    control, sums = _reduce(_over_chunks(
        _assignment_chunk, rct.columns + [policy], rct.levels, control_name,
        rct.arm_propensity))
    if sums[3] == 0:
        raise ValueError(
            "No RCT user's observed arm equals the policy's arm, so the expected "
            "outcome cannot be estimated. Use a larger RCT sample or check that the "
            "assignment uses the same labels as `treatment`.")
    rev, cost_ = sums[1] / sums[0], sums[2] / sums[0]
    return ExpectedOutcome(float(rev), float(cost_), float(rev - control[1] / control[0]),
                           float(cost_ - control[2] / control[0]), int(sums[3]))


def _points(rct, r, c, multipliers, estimate):
    """``(revenue, cost, n_matched)`` of the policy at each multiplier (one pass)."""
    dr = estimate == "dr"
    sums = _reduce(_over_chunks(_curve_chunk, rct.columns + [r, c], rct.levels,
                                rct.control_name, rct.arm_propensity, list(multipliers), dr))
    control, sums = sums[0], sums[1:]
    ctrl_rev, ctrl_cost = control[1] / control[0], control[2] / control[0]
    points = np.full((len(multipliers), 3), np.nan)
    points[:, 2] = sums[:, 3]
    ok = sums[:, 3] > 0
    w = sums[ok, 0]
    if dr:
        n = rct.n_samples
        points[ok, 0] = sums[ok, 4] / n + (sums[ok, 6] - ctrl_rev * w) / w
        points[ok, 1] = sums[ok, 5] / n + (sums[ok, 7] - ctrl_cost * w) / w
    else:
        points[ok, 0] = sums[ok, 1] / w - ctrl_rev
        points[ok, 1] = sums[ok, 2] / w - ctrl_cost
    return points


def prepare_dask(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity,
                 control_name, levels, multipliers, n_multipliers):
    """Checked Dask ``(rct, r, c, multipliers)`` of a cost curve (pass 1)."""
    if multipliers is not None:  # checked before any pass
        multipliers = check_multipliers(multipliers)
    else:
        n_multipliers = check_n_multipliers(n_multipliers)
    native = any_dask(revenue_uplift, cost_uplift)
    r, c = check_dask_uplift(revenue_uplift, cost_uplift)
    rct, chunks, grid = check_rct_dask(
        treatment, revenue, cost, control_name=control_name, propensity=propensity,
        levels=levels, lead=(r if native else np.broadcast_to(0.0, r.shape[:1]),
                             "The uplift predictions have {} rows"),
        uplift=(r, c), n_multipliers=n_multipliers if multipliers is None else None)
    check_uplift_fits_rct(r.shape, rct.n_samples, rct.levels, rct.counts)
    r, c = r.rechunk({0: chunks}), c.rechunk({0: chunks})
    return rct, r, c, (grid if multipliers is None else multipliers)


def cost_curve_dask(revenue_uplift, cost_uplift, treatment, revenue, cost, *, propensity,
                    control_name, multipliers, n_multipliers, levels, estimate):
    """:func:`~sklearn_budget.metrics.cost_curve` of Dask inputs: the prepared inputs and the
    curve."""
    check_estimate(estimate)
    rct, r, c, grid = prepare_dask(revenue_uplift, cost_uplift, treatment, revenue, cost,
                                   propensity, control_name, levels, multipliers,
                                   n_multipliers)
    return (rct, r, c), curve_of_points(grid, _points(rct, r, c, grid, estimate))


def settle_multiplier_dask(curve, budget, rct, r, c, n_steps=50, rtol=0.01):
    """:func:`~sklearn_budget.metrics._at_budget.settle_multiplier` on Dask inputs.

    The same multiplier: where the bisection is needed, each pass evaluates
    every midpoint of the next ``_BISECT_DEPTH`` steps (15 multipliers) and
    then walks the steps.
    """
    lam = curve.multiplier_at(budget)
    j, t = curve._locate(budget)
    if t is None:
        return lam
    if not _points(rct, r, c, [lam], "eom")[0, 1] > budget * (1.0 + rtol):
        return lam
    under, over = float(curve.multipliers[j - 1]), float(curve.multipliers[j])
    left = n_steps
    while left > 0:
        depth = min(_BISECT_DEPTH, left)
        mids = _midpoints(under, over, depth)
        spend = dict(zip(mids, _points(rct, r, c, list(mids), "eom")[:, 1]))
        for _ in range(depth):
            mid = 0.5 * (under + over)
            if spend[mid] < budget:  # (NaN: no user matched, counts as over)
                under = mid
            else:
                over = mid
        left -= depth
    return under


def _midpoints(under, over, depth):
    """Every midpoint the next ``depth`` bisection steps from ``(under, over)`` may take."""
    if depth == 0:
        return []
    mid = 0.5 * (under + over)
    return list(dict.fromkeys([mid, *_midpoints(under, mid, depth - 1),
                               *_midpoints(mid, over, depth - 1)]))

