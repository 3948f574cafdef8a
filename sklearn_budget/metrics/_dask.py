"""EOM metrics of an RCT held in Dask arrays: two passes over the chunks.

The EOM of a policy and its cost curve are sums over the RCT users (matched
weights, weighted outcomes), so on Dask arrays each chunk of users is reduced
to a few totals and nothing is gathered. A first pass checks every chunk and
counts its labels (:mod:`._dask_rct`). A second pass sums, for every policy asked
about, the chunk's matched weights and weighted outcomes (and for the doubly
robust estimate its predicted uplifts and residuals). Reading a multiplier
off the curve where the policy jumps (tied predictions) takes a few more
passes, each evaluating 15 multipliers of the in-memory bisection at once.

The results equal the in-memory ones up to the order of summation, except
the automatic grid of an RCT larger than ``_dask_rct._GRID_SAMPLE`` users, whose
quantiles come from a sample of the breakpoints (the largest one is exact).
"""

from __future__ import annotations

import numpy as np

from .._dask_frames import frames_as_arrays
from .._solver import choices_along
from .._solver_dask import _check_finite
from .._validation import (_as_finite_float, check_dask_uplift, check_estimate, check_multipliers,
                           check_n_multipliers, labels_to_arms)
from ._cost_curve import check_uplift_fits_rct, curve_of_points
from ._dask_rct import (
    _in_rows,
    _lazy_1d,
    _over_chunks,
    _rows,
    any_dask,
    check_rct_dask,
)
from ._eom import ExpectedOutcome, _MatchedSums, check_weighted_total

__all__ = ["any_dask", "cost_curve_dask", "expected_outcome_dask", "spends_dask"]

# -- pass 2: sums of each policy --------------------------------------------------------------
def _weights(blocks, levels, control_name, arm_propensity):
    """The :class:`~._eom._MatchedSums` of one chunk (its arms, weights and outcomes)."""
    t, revenue, cost = (b[:, 0] for b in blocks[:3])
    arm = labels_to_arms(t, levels, control_name)
    p = (arm_propensity[arm] if arm_propensity is not None else
         _as_finite_float(blocks[3][:, 0], "propensity"))
    return _MatchedSums(arm, p, np.asarray(revenue, dtype=np.float64),
                        np.asarray(cost, dtype=np.float64))


def _assignment_chunk(*blocks):
    """Sums of the all-control policy and of the assigned arms (labels), one chunk."""
    *blocks, start, levels, control_name, arm_p = blocks
    users = _weights(blocks, levels, control_name, arm_p)
    policy = _in_rows(labels_to_arms, int(start[0, 0]), users.arm.shape[0], blocks[-1][:, 0],
                      levels, control_name)
    return np.array([users.sums(np.zeros_like(users.arm)), users.sums(policy)],
                    dtype=np.float64)


def _curve_chunk(*blocks):
    """Sums of the all-control policy and of the policy at each multiplier, one chunk.

    Columns: matched weight, weighted revenue and cost, matched users; with
    ``dr`` also the policy's summed predicted uplifts (revenue, cost) and the
    matched users' weighted outcomes less their predicted uplift.
    """
    *blocks, start, levels, control_name, arm_p, multipliers, dr = blocks
    users = _weights(blocks, levels, control_name, arm_p)
    arm = users.arm
    r, c = blocks[-2:]
    _check_finite(r, c, int(start[0, 0]))
    rows = np.arange(arm.shape[0])
    if dr:
        zero = np.zeros((arm.shape[0], 1))
        R, C = np.hstack([zero, r]), np.hstack([zero, c])
        with np.errstate(over="ignore", invalid="ignore"):  # named by curve_of_points
            res_rev = users.w_rev - users.weight * R[rows, arm]
            res_cost = users.w_cost - users.weight * C[rows, arm]
    out = []
    choices = choices_along(r, c)
    for lam in [None, *multipliers]:
        policy = np.zeros_like(arm) if lam is None else np.asarray(choices(lam))
        sums = list(users.sums(policy))
        if dr:
            match = policy == arm
            with np.errstate(over="ignore", invalid="ignore"):  # named by curve_of_points
                sums += [R[rows, policy].sum(), C[rows, policy].sum(), res_rev @ match,
                         res_cost @ match]
        out.append(sums)
    return np.array(out, dtype=np.float64)


def _reduce(parts):
    with np.errstate(over="ignore", invalid="ignore"):  # (DR sums: see curve_of_points)
        return np.sum(np.stack(parts), axis=0)


def expected_outcome_dask(assignment, treatment, revenue, cost, propensity, control_name):
    """:func:`~sklearn_budget.metrics.expected_outcome` of Dask inputs (two passes)."""
    assignment, treatment, revenue, cost, propensity = frames_as_arrays(
        assignment, treatment, revenue, cost, propensity)
    policy = _lazy_1d(assignment, "assignment")
    rct, chunks, _ = check_rct_dask(treatment, revenue, cost, control_name=control_name,
                                    propensity=propensity,
                                    lead=(policy, "`assignment` has {} labels"))
    policy = _rows(policy, chunks)
    control, sums = _reduce(_over_chunks(
        _assignment_chunk, rct.columns + [policy], rct.levels, control_name,
        rct.arm_propensity))
    for k, name in ((1, "revenue"), (2, "cost")):  # (each chunk's sums fit: see _MatchedSums)
        check_weighted_total(name, control[k])
        check_weighted_total(name, sums[k])
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
        with np.errstate(over="ignore", invalid="ignore"):  # named by curve_of_points
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
    revenue_uplift, cost_uplift, treatment, revenue, cost, propensity = frames_as_arrays(
        revenue_uplift, cost_uplift, treatment, revenue, cost, propensity)
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


def spends_dask(rct, r, c, multipliers):
    """EOM incremental cost of the policy at each multiplier (one pass; see
    :func:`~sklearn_budget.metrics._at_budget.settle_multiplier`)."""
    return _points(rct, r, c, list(multipliers), "eom")[:, 1]
