"""Area under the cost curve (AUCC): ranking quality under a budget.

Binary treatment: Du, Lee and Ghaffarizadeh, "Improve User Retention with
Causal Learning" (KDD 2019 workshop, PMLR 104). Several incentive levels: the
normalised area under the EOM cost curve of the multiplier sweep.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._labels import _plain
from .._validation import as_float_array, check_rct
from ._cost_curve import cost_curve

__all__ = ["aucc", "mt_aucc"]


def _trapezoid(x, y):
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))


def _aucc_curve(revenue, cost, treatment, score, bins=20, control_name=0):
    """Return ``(x, y)``: normalised incremental cost and revenue of the top fractions."""
    from ._dask_rct import any_dask

    if any_dask(revenue, cost, treatment, score):
        raise TypeError(
            "aucc ranks all users at once, so it does not take Dask arrays; compute them "
            "(`.compute()`) when they fit in memory, or use mt_aucc, which reads them chunk "
            "by chunk.")
    rct = check_rct(treatment, revenue, cost, control_name=control_name)
    if rct.n_levels != 1:
        raise ValueError(
            f"`aucc` needs a binary treatment (control and one level); got levels "
            f"{_plain(rct.levels)}. Use `mt_aucc` for several incentive levels."
        )
    score = as_float_array(score, "score").ravel()
    if len(score) != rct.n_samples:
        raise ValueError(
            f"`score` must hold one predicted ROI per user ({rct.n_samples}); got "
            f"{len(score)} value(s)."
        )
    if not np.isfinite(score).all():
        raise ValueError(
            f"`score` has {int((~np.isfinite(score)).sum())} NaN or infinite value(s) "
            "(a revenue / cost ratio with a zero cost?); give finite scores, e.g. "
            "r_hat / np.maximum(c_hat, eps)."
        )
    if (isinstance(bins, (bool, np.bool_)) or not isinstance(bins, Integral)
            or not 1 <= bins <= rct.n_samples):
        raise ValueError(
            f"`bins` must be an integer in [1, n_samples={rct.n_samples}]; got {bins!r}.")
    bins = int(bins)
    order = np.argsort(-score, kind="stable")
    treated = (rct.arm[order] == 1).astype(np.float64)
    control = 1.0 - treated
    rev, cst = rct.revenue[order], rct.cost[order]

    def cum(v):
        return np.concatenate([[0.0], np.cumsum(v)])

    n_t, n_c = cum(treated), cum(control)
    r_t, r_c = cum(treated * rev), cum(control * rev)
    c_t, c_c = cum(treated * cst), cum(control * cst)
    size = (np.arange(bins + 1) * rct.n_samples) // bins
    nt, nc = n_t[size], n_c[size]
    both = (nt > 0) & (nc > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_rev = np.where(both, (r_t[size] / nt - r_c[size] / nc) * size, 0.0)
        d_cost = np.where(both, (c_t[size] / nt - c_c[size] / nc) * size, 0.0)
    if d_cost[-1] <= 0 or d_rev[-1] <= 0:
        raise ValueError(
            "AUCC normalises by the incremental revenue and cost of treating everyone, "
            f"which must be positive; got revenue {d_rev[-1]:.4g} and cost {d_cost[-1]:.4g}. "
            "Check the treatment labels (control_name) and the outcome columns."
        )
    return d_cost / d_cost[-1], d_rev / d_rev[-1]


def aucc(revenue, cost, treatment, score, bins=20, *, control_name=0):
    """Area under the cost curve for a binary treatment (Du et al., 2019).

    Users are ranked by decreasing predicted ROI ``score``. For each top
    fraction ``q = j / bins`` (``j = 0..bins``) with group ``G`` of the
    ``floor(q n)`` best-ranked users, the incremental revenue of treating
    ``G`` is ``|G| (mean revenue of treated in G - mean revenue of control in
    G)`` (0 while ``G`` lacks a treated or a control user), and likewise the
    incremental cost. Both are divided by their value at ``q = 1`` (everyone
    treated) and the area under incremental revenue vs incremental cost is
    computed by the trapezoidal rule (points kept in rank order, no
    monotonicity clipping).

    Random scores give about 0.5, a perfect ROI ranking the most.

    Parameters
    ----------
    revenue, cost : array-like of shape (n_samples,)
        Observed RCT outcomes.
    treatment : array-like of shape (n_samples,)
        Observed arm: ``control_name`` or the single treatment label.
    score : array-like of shape (n_samples,)
        Predicted ROI (e.g. revenue uplift / cost uplift); higher is treated
        first. Ties keep the input order.
    bins : int, default=20
        Number of top fractions.
    control_name : hashable, default=0
        Label of the control arm.

    Returns
    -------
    aucc : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget.metrics import aucc
    >>> rng = np.random.default_rng(0)
    >>> n = 20000
    >>> treatment = rng.integers(0, 2, n)
    >>> roi = rng.uniform(0, 2, n)             # revenue per unit of cost
    >>> cost = treatment * 1.0
    >>> revenue = treatment * roi + rng.normal(scale=0.1, size=n)
    >>> round(aucc(revenue, cost, treatment, roi), 2)       # perfect ranking
    0.67
    >>> round(aucc(revenue, cost, treatment, rng.random(n)), 1)   # random
    0.5
    """
    x, y = _aucc_curve(revenue, cost, treatment, score, bins, control_name)
    return _trapezoid(x, y)


def mt_aucc(revenue_uplift, cost_uplift, treatment, revenue, cost, *, propensity=None,
            control_name=0, n_multipliers=100, levels=None):
    """Multi-treatment AUCC: normalised area under the EOM cost curve.

    Definition used here (one of several in the literature): sweep the
    multiplier ``lam`` of the budget policy
    ``a_i(lam) = argmax_k r_hat[i, k] - lam c_hat[i, k]`` from "nobody treated"
    to ``lam = 0`` (:func:`cost_curve`), divide the EOM incremental cost and
    revenue by their values at ``lam = 0`` (the maximal-spend policy), start
    the curve at the origin and take the trapezoidal area. The straight line
    from the origin to the maximal-spend point (randomly treating a fraction of
    users with their maximal-spend arm) scores 0.5. With one level the policy
    ranks users by ``r_hat / c_hat`` as :func:`aucc` does, measured with the
    EOM instead of group differences.

    The normalisation divides by the maximal-spend policy's EOM revenue, an
    RCT estimate: when that is close to zero (weak effects, small samples)
    the normalised curve can rise far above 1 and the area exceed 1, and
    when it is not positive the metric is undefined (``ValueError``).
    Compare models by :func:`cost_curve` or by the EOM at the budget then.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like of shape (n_samples, n_levels)
        Predicted uplifts of the RCT users.
    treatment, revenue, cost : array-like of shape (n_samples,)
        Observed RCT arm and outcomes.
    propensity, control_name, n_multipliers, levels
        See :func:`cost_curve`.

    Returns
    -------
    mt_aucc : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget.metrics import mt_aucc
    >>> rng = np.random.default_rng(0)
    >>> n = 20000
    >>> treatment = rng.integers(0, 3, n)             # control, level 1, level 2
    >>> gain = rng.uniform(0, 1, (n, 1)) * [1.0, 1.5]  # true revenue uplift
    >>> cost_up = np.tile([1.0, 2.0], (n, 1))
    >>> idx = np.clip(treatment - 1, 0, 1)
    >>> revenue = np.where(treatment > 0, gain[np.arange(n), idx], 0.0)
    >>> cost = np.where(treatment > 0, cost_up[np.arange(n), idx], 0.0)
    >>> bool(mt_aucc(gain, cost_up, treatment, revenue, cost) > 0.6)
    True
    """
    curve = cost_curve(revenue_uplift, cost_uplift, treatment, revenue, cost,
                       propensity=propensity, control_name=control_name,
                       n_multipliers=n_multipliers, levels=levels)
    c_end, r_end = curve.incremental_cost[-1], curve.incremental_revenue[-1]
    if c_end <= 0 or r_end <= 0:
        raise ValueError(
            "MT-AUCC normalises by the EOM incremental revenue and cost of the maximal-spend "
            f"policy (lam = 0), which must be positive; got revenue {r_end:.4g} and cost "
            f"{c_end:.4g}. The model predicts no profitable treatment, or the data has none."
        )
    x = np.concatenate([[0.0], curve.incremental_cost / c_end])
    y = np.concatenate([[0.0], curve.incremental_revenue / r_end])
    return _trapezoid(x, y)
