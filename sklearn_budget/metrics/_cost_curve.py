"""The EOM cost curve of a budget policy, and reading it at a budget.

For each multiplier ``lam`` of a sweep, the policy ``a_i(lam) = argmax_k
r_hat[i, k] - lam * c_hat[i, k]`` is evaluated on the RCT by its EOM
incremental cost and revenue (:mod:`._eom`), or by a doubly robust estimate
that uses the predictions as outcome model (for calibration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._solver import choices_along
from .._labels import _plain
from .._validation import (check_budget, check_estimate, check_multipliers, check_n_multipliers,
                           check_rct, check_uplift)
from ._eom import _EOMEvaluator

__all__ = ["CostCurve", "cost_curve"]


@dataclass(frozen=True, eq=False)
class CostCurve:
    """EOM cost curve of a policy family ``a_i(lam)`` (see :func:`cost_curve`).

    Points are ordered by decreasing multiplier, i.e. increasing predicted
    spend; the EOM cost is then non-decreasing up to sampling noise.

    Attributes
    ----------
    multipliers : ndarray of shape (n_points,)
        Multipliers ``lam`` of the sweep (last one 0: maximal spend).
    incremental_cost, incremental_revenue : ndarray of shape (n_points,)
        EOM incremental cost and revenue per user of ``a(lam)``.
    n_matched : ndarray of shape (n_points,)
        RCT users matching the policy at each point.
    """

    multipliers: np.ndarray
    incremental_cost: np.ndarray
    incremental_revenue: np.ndarray
    n_matched: np.ndarray

    def _locate(self, budget):
        """Return ``(j, t)``: the budget lies at ``(1 - t) * point[j-1] + t * point[j]``."""
        cost = self.incremental_cost
        hit = np.flatnonzero(cost >= budget)
        if len(hit) == 0:  # budget above the maximal spend: stay at the max-spend point
            # the last of tied maxima: the smallest multiplier, which treats the most
            # users (e.g. every observed cost 0: a flat curve, and lam = 0 is best)
            return len(cost) - 1 - int(np.argmax(cost[::-1])), None
        j = int(hit[0])
        if j == 0:
            return 0, None
        c0, c1 = cost[j - 1], cost[j]
        return j, float((budget - c0) / (c1 - c0))

    def value_at(self, budget):
        """EOM incremental revenue per user where the EOM cost first reaches ``budget``.

        Linear interpolation between the two neighbouring points; from the
        origin (treat nobody) when the first point already exceeds the
        budget; the value at maximal spend when the budget exceeds it. A
        budget of 0 follows the same rule: 0 unless some policy costs nothing
        (levels with zero cost uplift), whose revenue it then reads.

        Parameters
        ----------
        budget : float
            Incremental cost per user (>= 0).

        Returns
        -------
        value : float
            EOM incremental revenue per user at ``budget``.
        """
        budget = check_budget(budget)
        j, t = self._locate(budget)
        rev = self.incremental_revenue
        if t is None:
            if j == 0 and self.incremental_cost[0] > budget:
                return float(rev[0] * budget / self.incremental_cost[0])
            return float(rev[j])
        return float(rev[j - 1] + t * (rev[j] - rev[j - 1]))

    def multiplier_at(self, budget):
        """Multiplier where the EOM cost first reaches ``budget`` (linear interpolation).

        The first (largest) multiplier when even it exceeds the budget, the
        multiplier of the maximal-spend point when the budget exceeds it.
        The curve alone cannot see a jump of the policy between two points
        (tied predictions); :func:`multiplier_at_budget` and the estimators'
        calibration re-evaluate the policy there (:func:`settle_multiplier`).

        Parameters
        ----------
        budget : float
            Incremental cost per user (>= 0).

        Returns
        -------
        multiplier : float
            The multiplier (price of a unit of cost) read at ``budget``.
        """
        budget = check_budget(budget)
        j, t = self._locate(budget)
        lam = self.multipliers
        if t is None:
            return float(lam[j])
        return float(lam[j - 1] + t * (lam[j] - lam[j - 1]))


def _multiplier_grid(r, c, n_multipliers):
    """Multipliers from the quantiles of the users' decision breakpoints.

    Breakpoints are the ``lam`` where a user's best option may change: level
    ``k`` vs control (``r_k / c_k``) and level ``k`` vs level ``j``
    (``(r_k - r_j) / (c_k - c_j)``). Returned in decreasing order, starting
    above the largest breakpoint (nobody with a positive cost is treated) and
    ending at 0.
    """
    return grid_of_breakpoints(breakpoints(r, c), n_multipliers)


def breakpoints(r, c):
    """The users' positive finite decision breakpoints (see :func:`_multiplier_grid`), 1-D."""
    cands = list(breakpoint_parts(r, c))
    return np.concatenate(cands) if cands else np.zeros(0)


def breakpoint_parts(r, c):
    """:func:`breakpoints` in parts, one per lower option ``j`` (control first)."""
    zero = np.zeros((r.shape[0], 1), dtype=r.dtype)
    R, C = np.hstack([zero, r]), np.hstack([zero, c])
    for j in range(r.shape[1]):
        dr = R[:, j + 1:] - R[:, j:j + 1]
        dc = C[:, j + 1:] - C[:, j:j + 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lam = dr / dc
        yield lam[(dc != 0) & np.isfinite(lam) & (lam > 0)]


def grid_of_breakpoints(cands, n_multipliers):
    """Decreasing grid: 0, the quantiles of ``cands``, and one above their maximum."""
    if len(cands) == 0:
        return np.array([1.0, 0.0])
    top = float(cands.max())
    qs = np.quantile(cands, np.linspace(0.0, 1.0, max(n_multipliers - 2, 1)))
    # (capped: a grid point of inf could only be read as NaN; at the cap a tie goes to control)
    above = min(top * 1.01 + 1e-12, np.finfo(np.float64).max)
    grid = np.unique(np.concatenate([[0.0, above], qs]))
    return grid[::-1]


def _eom_point(evaluator, arms):
    """``(incremental revenue, incremental cost, n_matched)`` of one policy (Hajek IPW)."""
    w, wr, wc, n_matched = evaluator.sums(arms)
    if n_matched == 0:
        return np.nan, np.nan, 0
    return wr / w - evaluator.control_revenue, wc / w - evaluator.control_cost, n_matched


class _DRPoint:
    """Doubly robust incremental revenue and cost of policies, given the predicted uplifts.

    Outcome model ``m_i(k) = control mean + predicted uplift`` (0 uplift for
    control): the policy's mean predicted uplift over all users, plus the
    Hajek mean of the matched users' residuals ``y_i - m_i(t_i)``.
    """

    def __init__(self, evaluator, r, c):
        rct = evaluator.rct
        self.evaluator = evaluator
        self.rows = np.arange(r.shape[0])
        zero = np.zeros((r.shape[0], 1))
        self.R, self.C = np.hstack([zero, r]), np.hstack([zero, c])
        w = evaluator.weight
        with np.errstate(over="ignore", invalid="ignore"):  # (see __call__)
            self.w_res_rev = w * (rct.revenue - evaluator.control_revenue
                                  - self.R[self.rows, rct.arm])
            self.w_res_cost = w * (rct.cost - evaluator.control_cost - self.C[self.rows, rct.arm])

    def __call__(self, arms):
        match = arms == self.evaluator.rct.arm
        n_matched = int(np.count_nonzero(match))
        if n_matched == 0:
            return np.nan, np.nan, 0
        w = self.evaluator.weight @ match
        with np.errstate(over="ignore", invalid="ignore"):
            rev = self.R[self.rows, arms].mean() + (self.w_res_rev @ match) / w
            cost = self.C[self.rows, arms].mean() + (self.w_res_cost @ match) / w
        if not (np.isfinite(rev) and np.isfinite(cost)):  # sums over the users overflowed
            raise ValueError(_DR_OVERFLOW)
        return rev, cost, n_matched


_OVERFLOW = (
    "The cost curve's estimates overflow float64: {} so large that their sum over the "
    "users does not fit. Rescale revenue and cost (e.g. to thousands of currency units), "
    "and the uplifts and the budget with them.")
_DR_OVERFLOW = _OVERFLOW.format(
    "the predicted uplifts (the doubly robust estimate's outcome model), or the RCT "
    "outcomes less them weighted by 1 / propensity, are")


def _point_function(evaluator, r, c, estimate):
    """``point(arms) -> (incremental revenue, incremental cost, n_matched)``."""
    if estimate == "dr":
        return _DRPoint(evaluator, r, c)
    return lambda arms: _eom_point(evaluator, arms)


def _curve(evaluator, r, c, multipliers, estimate="eom"):
    point = _point_function(evaluator, r, c, estimate)
    choices = choices_along(r, c)
    points = np.array([point(np.asarray(choices(lam))) for lam in multipliers],
                      dtype=np.float64).reshape(-1, 3)
    return curve_of_points(multipliers, points)


def curve_of_points(multipliers, points):
    """The :class:`CostCurve` of ``(revenue, cost, n_matched)`` rows, unmatched points dropped."""
    ok = points[:, 2] > 0
    if not np.isfinite(points[ok, :2]).all():  # only sums over many users can overflow
        raise ValueError(_OVERFLOW.format(
            "the predicted uplifts or the RCT outcomes weighted by 1 / propensity are"))
    if not ok.any():
        raise ValueError(
            "No RCT user's observed arm matches the policy at any multiplier, so the "
            "cost curve cannot be estimated. Use a larger RCT sample."
        )
    return CostCurve(
        multipliers=np.asarray(multipliers, dtype=np.float64)[ok],
        incremental_cost=points[ok, 1],
        incremental_revenue=points[ok, 0],
        n_matched=points[ok, 2].astype(np.int64),
    )


def _prepare(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity, control_name,
             levels):
    rct = check_rct(treatment, revenue, cost, control_name=control_name, propensity=propensity,
                    levels=levels)
    r, c = check_uplift(revenue_uplift, cost_uplift)
    check_uplift_fits_rct(r.shape, rct.n_samples, rct.levels,
                          np.bincount(rct.arm, minlength=rct.n_levels + 1))
    return rct, r, c


def check_uplift_fits_rct(shape, n_samples, levels, counts):
    """Raise ValueError unless uplifts of ``shape`` describe this RCT's users and levels,
    each level with users (``counts``: users per arm, control first)."""
    if shape[0] != n_samples:
        raise ValueError(
            f"The uplift predictions have {shape[0]} rows but the RCT has {n_samples} "
            "users; predict on the same users as `treatment`."
        )
    if shape[1] != len(levels):
        raise ValueError(
            f"The uplift predictions have {shape[1]} column(s) but the RCT has "
            f"{len(levels)} incentive level(s) {_plain(levels)} (the uplifts need one column "
            "per level: the sorted non-control labels, or those given as `levels=`). When "
            "the model knows a level that has no users in this sample, no policy that gives "
            "it can be scored here: score on a sample with every arm, e.g. split with "
            "`stratify=treatment`."
        )
    absent = np.asarray(levels)[np.asarray(counts)[1:] == 0].tolist()
    if absent:
        raise ValueError(
            f"The RCT sample has no users in level(s) {absent}, so the EOM of a policy that "
            "gives them to anyone cannot be estimated (those users would silently drop out "
            "of the estimate). Score on a sample with every arm, e.g. split with "
            "`stratify=treatment`."
        )


def cost_curve(revenue_uplift, cost_uplift, treatment, revenue, cost, *, propensity=None,
               control_name=0, multipliers=None, n_multipliers=100, levels=None,
               estimate="eom"):
    """EOM incremental cost and revenue of the budget policy along a multiplier sweep.

    For each multiplier ``lam`` the policy is
    ``a_i(lam) = argmax_k r_hat[i, k] - lam * c_hat[i, k]`` (control when no
    score is positive, :func:`~sklearn_budget.allocate_at_multiplier`); its EOM
    incremental cost and revenue per user are measured on the RCT.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like of shape (n_samples, n_levels)
        Predicted uplifts of the RCT users, columns in sorted level order.
    treatment, revenue, cost : array-like of shape (n_samples,)
        Observed RCT arm and outcomes.
    propensity : None, dict or array-like of shape (n_samples,), default=None
        Assignment probabilities (see :func:`expected_outcome`).
    control_name : hashable, default=0
        Label of the control arm.
    multipliers : array-like, default=None
        Multipliers to evaluate (sorted decreasingly). None builds
        ``n_multipliers`` of them from the quantiles of the users' decision
        breakpoints ``r/c`` and ``(r_k - r_j)/(c_k - c_j)``, plus 0 and one
        above the largest breakpoint (nobody with positive cost treated).
    n_multipliers : int, default=100
        Size of the automatic grid.
    levels : array-like, default=None
        Non-control labels of the uplift columns (e.g. ``estimator.levels_``);
        None takes the sorted non-control labels of ``treatment``.
    estimate : {"eom", "dr"}, default="eom"
        ``"eom"``: the model-free Hajek IPW estimate (the evaluation metric;
        only users whose random arm matches the policy count). ``"dr"``:
        doubly robust, using the predictions themselves as the outcome model
        (control mean + predicted uplift): the mean predicted uplift of the
        policy over *all* users, corrected by the IPW-weighted residuals of
        the matched users. Unbiased whatever the predictions, and much less
        noisy when they are good, which makes it the better choice to
        *calibrate* a multiplier on a small held-out slice; do not use it to
        compare models (it is not model-free).

    Returns
    -------
    CostCurve
        ``multipliers``, ``incremental_cost``, ``incremental_revenue`` and
        ``n_matched``, from the largest multiplier (spend ~0) to 0 (maximal
        spend). Points where no user matches are dropped. Methods
        ``value_at(budget)`` and ``multiplier_at(budget)`` read it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget.metrics import cost_curve
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> treatment = rng.integers(0, 2, n)
    >>> gain = rng.uniform(0, 2, n)            # true revenue uplift
    >>> revenue = treatment * gain + rng.normal(size=n)
    >>> cost = treatment * 1.0                 # each treated user costs 1
    >>> curve = cost_curve(gain[:, None], np.ones((n, 1)), treatment, revenue, cost)
    >>> lam = curve.multipliers
    >>> len(lam), bool(lam[0] > gain.max()), float(lam[-1])
    (100, True, 0.0)
    >>> curve.incremental_cost[[0, -1]].round(3)        # nobody treated ... everyone treated
    array([0., 1.])
    >>> bool(curve.value_at(0.5) > 0.5 * curve.incremental_revenue[-1])
    True

    The same RCT in Dask arrays (here 4 chunks) is read chunk by chunk:

    >>> import dask.array as da
    >>> lazy = cost_curve(da.from_array(gain[:, None], chunks=(500, 1)), np.ones((n, 1)),
    ...                   da.from_array(treatment, chunks=500), revenue, cost)
    >>> bool(np.allclose(lazy.incremental_revenue, curve.incremental_revenue))
    True

    Notes
    -----
    On Dask arrays (any input; the others are wrapped, and take the row
    chunks of the predictions) the curve costs two passes over the chunks:
    one checks them and counts the treatment labels (and samples the
    breakpoints for the automatic grid), one sums each policy's matched
    weights and outcomes. The automatic grid of more than 200,000 users
    takes its quantiles from a sample of the breakpoints, so its points
    differ a little from the in-memory grid's; at given ``multipliers`` the
    curve is the in-memory one up to the order of summation.
    """
    from ._dask import any_dask, cost_curve_dask

    if any_dask(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity):
        return cost_curve_dask(
            revenue_uplift, cost_uplift, treatment, revenue, cost, propensity=propensity,
            control_name=control_name, multipliers=multipliers, n_multipliers=n_multipliers,
            levels=levels, estimate=estimate)[1]
    rct, r, c = _prepare(revenue_uplift, cost_uplift, treatment, revenue, cost, propensity,
                         control_name, levels)
    return _sweep(rct, r, c, multipliers, n_multipliers, estimate)


def _sweep(rct, r, c, multipliers=None, n_multipliers=100, estimate="eom"):
    """:func:`cost_curve` on inputs already checked by :func:`_prepare`."""
    if multipliers is None:
        multipliers = _multiplier_grid(r, c, check_n_multipliers(n_multipliers))
    else:
        multipliers = check_multipliers(multipliers)
    check_estimate(estimate)
    return _curve(_EOMEvaluator(rct), r, c, multipliers, estimate=estimate)
