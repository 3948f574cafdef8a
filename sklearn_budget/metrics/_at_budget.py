"""Reading a policy's cost curve at a budget: its value and its multiplier.

:func:`value_at_budget` and :func:`multiplier_at_budget` sweep the policy's
cost curve (:mod:`._cost_curve`) and read it where the EOM incremental cost
first reaches the budget; :func:`settle_multiplier` keeps a deployed
multiplier within the budget where the policy jumps between two sweep
points (tied predictions). The estimators' held-out calibration uses
:func:`read_multiplier` on the curve they store.
"""

from __future__ import annotations

import functools

import numpy as np

from .._solver import choices_along
from .._validation import check_budget
from ._cost_curve import _point_function, _prepare, _sweep, cost_curve
from ._dask import any_dask, cost_curve_dask, spends_dask
from ._eom import _EOMEvaluator

__all__ = ["multiplier_at_budget", "read_multiplier", "settle_multiplier", "value_at_budget"]


def settle_multiplier(curve, budget, spends, n_steps=50, rtol=0.01, depth=1):
    """``curve.multiplier_at(budget)``, kept within the budget where the curve jumps.

    Linear interpolation between the two sweep points around the budget
    assumes the policy changes gradually between them. Where predictions tie
    (identical users, coarse models) it jumps: the interpolated multiplier
    then gives (nearly) the over-budget neighbour's policy. When the policy
    at the interpolated multiplier overspends the budget by more than
    ``rtol`` (a share of the budget), the multiplier is found by bisection
    between the two points instead: the smallest multiplier found whose
    estimated spend stays under the budget.

    ``spends(lams)`` gives the estimated spend of the policy at each
    multiplier of a list. Each call asks for every midpoint of the next
    ``depth`` bisection steps (one in memory; 15 at ``depth=4`` for an RCT
    on Dask arrays, where each call is a pass over the chunks), then the
    steps are walked: the same multiplier whatever ``depth``.
    """
    lam = curve.multiplier_at(budget)
    j, t = curve._locate(budget)
    if t is None:
        return lam
    if not spends([lam])[0] > budget * (1.0 + rtol):
        return lam
    under, over = float(curve.multipliers[j - 1]), float(curve.multipliers[j])
    left = n_steps
    while left > 0:
        steps = min(depth, left)
        mids = _midpoints(under, over, steps)
        spend = dict(zip(mids, spends(mids)))
        for _ in range(steps):
            mid = 0.5 * (under + over)
            if spend[mid] < budget:  # (NaN: no user matched, counts as over)
                under = mid
            else:
                over = mid
        left -= steps
    return under


def _midpoints(under, over, depth):
    """Every midpoint the next ``depth`` bisection steps from ``(under, over)`` may take."""
    if depth == 0:
        return []
    mid = 0.5 * (under + over)
    return list(dict.fromkeys([mid, *_midpoints(under, mid, depth - 1),
                               *_midpoints(mid, over, depth - 1)]))


def read_multiplier(curve, budget, r, c, rct, estimate="eom"):
    """:func:`settle_multiplier` on the RCT sample (``RCTData``) the curve was measured on."""
    point = _point_function(_EOMEvaluator(rct), r, c, estimate)
    choices = functools.cache(lambda: choices_along(r, c))  # only if the policy is evaluated
    return settle_multiplier(curve, budget,
                             lambda lams: [point(np.asarray(choices()(lam)))[1] for lam in lams])


def value_at_budget(revenue_uplift, cost_uplift, treatment, revenue, cost, budget, *,
                    propensity=None, control_name=0, n_multipliers=100, levels=None):
    """EOM incremental revenue per user of the policy at a per-user budget.

    Sweeps the multiplier (:func:`cost_curve`) and reads the EOM incremental
    revenue where the EOM incremental cost first reaches ``budget``, linearly
    interpolating between the neighbouring points. A budget above the
    maximal spend gives the value at maximal spend; budget 0 gives 0 unless
    some policy costs nothing (zero-cost levels), whose revenue it reads.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like of shape (n_samples, n_levels)
        Predicted uplifts of the RCT users.
    treatment, revenue, cost : array-like of shape (n_samples,)
        Observed RCT arm and outcomes.
    budget : float
        Average incremental cost per user (>= 0).
    propensity, control_name, n_multipliers, levels
        See :func:`cost_curve`.

    Returns
    -------
    value : float
        EOM incremental revenue per user.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget.metrics import value_at_budget
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> treatment = rng.integers(0, 2, n)
    >>> gain = rng.uniform(0, 2, n)
    >>> revenue = treatment * gain + rng.normal(scale=0.1, size=n)
    >>> cost = treatment * 1.0
    >>> # best half of the users (gain in [1, 2]) are worth 0.75 per user
    >>> value = value_at_budget(gain[:, None], np.ones((n, 1)), treatment, revenue, cost, 0.5)
    >>> bool(abs(value - 0.75) < 0.05)
    True
    """
    budget = check_budget(budget)
    curve = cost_curve(revenue_uplift, cost_uplift, treatment, revenue, cost,
                       propensity=propensity, control_name=control_name,
                       n_multipliers=n_multipliers, levels=levels)
    return curve.value_at(budget)


def multiplier_at_budget(revenue_uplift, cost_uplift, treatment, revenue, cost, budget, *,
                         propensity=None, control_name=0, n_multipliers=100, levels=None):
    """Multiplier at which the policy's EOM incremental cost meets a per-user budget.

    Used to calibrate a deployment multiplier on held-out RCT data. The
    multiplier is linearly interpolated between the two sweep points around
    the first crossing of ``budget`` (see :func:`cost_curve`), unless the
    policy jumps there (tied predictions) and the interpolated multiplier
    would overspend: then the crossing is found by bisection and the
    multiplier returned stays under the budget on this sample. When the
    budget exceeds the maximal spend it is the multiplier of the
    maximal-spend point; when even the largest multiplier overspends it is
    that multiplier.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like of shape (n_samples, n_levels)
        Predicted uplifts of the RCT users.
    treatment, revenue, cost : array-like of shape (n_samples,)
        Observed RCT arm and outcomes.
    budget : float
        Average incremental cost per user (>= 0).
    propensity, control_name, n_multipliers, levels
        See :func:`cost_curve`.

    Returns
    -------
    multiplier : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget.metrics import multiplier_at_budget
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> treatment = rng.integers(0, 2, n)
    >>> gain = rng.uniform(0, 2, n)
    >>> revenue = treatment * gain
    >>> cost = treatment * 1.0
    >>> # treating half of the users: those with gain above ~1
    >>> lam = multiplier_at_budget(gain[:, None], np.ones((n, 1)), treatment, revenue, cost, 0.5)
    >>> round(lam, 1)
    1.0
    """
    budget = check_budget(budget)
    if any_dask(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity):
        (rct, r, c), curve = cost_curve_dask(
            revenue_uplift, cost_uplift, treatment, revenue, cost, propensity=propensity,
            control_name=control_name, multipliers=None, n_multipliers=n_multipliers,
            levels=levels, estimate="eom")
        return settle_multiplier(curve, budget, lambda lams: spends_dask(rct, r, c, lams),
                                 depth=4)
    rct, r, c = _prepare(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity,
                         control_name, levels)
    curve = _sweep(rct, r, c, n_multipliers=n_multipliers)
    return read_multiplier(curve, budget, r, c, rct)
