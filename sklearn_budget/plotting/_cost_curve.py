"""CostCurveDisplay: the EOM cost curve of a budget policy."""

from __future__ import annotations

import numpy as np

from .._validation import check_budget, target_propensity, unpack_target
from ..metrics._cost_curve import CostCurve, cost_curve
from ._common import _import_pyplot, _series

__all__ = ["CostCurveDisplay"]


class CostCurveDisplay:
    """EOM cost curve of a budget policy: incremental revenue vs incremental cost.

    Build it with :meth:`from_predictions` or :meth:`from_estimator`; then
    :meth:`plot` (called by both) draws it. The curve comes from
    :func:`~sklearn_budget.metrics.cost_curve`.

    Parameters
    ----------
    incremental_cost, incremental_revenue : ndarray of shape (n_points,)
        EOM incremental cost and revenue per user along the sweep, from the
        largest multiplier to 0 (maximal spend).
    multipliers : ndarray of shape (n_points,), default=None
        Multipliers of the points.
    name : str, default=None
        Legend label of the policy's curve.
    oracle_cost, oracle_revenue : ndarray, default=None
        Curve of the oracle policy (true uplifts), drawn when given.
    budget : float, default=None
        Per-user budget to mark on the curve.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The policy's curve.
    random_line_ : matplotlib Line2D or None
        Random-allocation reference: the straight line from the origin to the
        maximal-spend point (treating a random fraction of users with their
        maximal-spend arm).
    oracle_line_ : matplotlib Line2D or None
        The oracle's curve.
    budget_marker_ : matplotlib Line2D or None
        Marker at ``(budget, value at budget)``.
    value_at_budget_ : float or None
        EOM incremental revenue per user at ``budget``.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_budget.plotting import CostCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> treatment = rng.integers(0, 2, n)
    >>> gain = rng.uniform(0, 2, n)
    >>> revenue, cost = treatment * gain, treatment * 1.0
    >>> noisy = gain + rng.normal(size=n)
    >>> disp = CostCurveDisplay.from_predictions(
    ...     noisy[:, None], np.ones((n, 1)), treatment, revenue, cost, name="model",
    ...     oracle=(gain[:, None], np.ones((n, 1))), budget=0.3)
    >>> disp.line_.get_label(), disp.oracle_line_.get_label()
    ('model', 'oracle')
    """

    def __init__(self, incremental_cost, incremental_revenue, *, multipliers=None, name=None,
                 oracle_cost=None, oracle_revenue=None, budget=None):
        self.incremental_cost, self.incremental_revenue = _series(
            "CostCurveDisplay", incremental_cost=incremental_cost,
            incremental_revenue=incremental_revenue)
        for what, values in (("incremental_cost", self.incremental_cost),
                             ("incremental_revenue", self.incremental_revenue)):
            if not np.isfinite(values).all():
                raise ValueError(f"`{what}` has NaN or infinite points; a cost curve "
                                 "(metrics.cost_curve) has none: drop them first.")
        self.multipliers = None if multipliers is None else np.asarray(multipliers)
        self.name = name
        self.oracle_cost = oracle_cost
        self.oracle_revenue = oracle_revenue
        self.budget = check_budget(budget, allow_none=True)

    def plot(self, ax=None, *, name=None, random_reference=True, **kwargs):
        """Draw the curve (and references) on ``ax``.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        name : str, default=None
            Legend label; overrides the one given at construction.
        random_reference : bool, default=True
            Draw the random-allocation reference line.
        **kwargs : dict
            Passed to ``ax.plot`` for the policy's curve.

        Returns
        -------
        display : CostCurveDisplay
        """
        plt = _import_pyplot()
        if ax is None:
            _, ax = plt.subplots()
        name = self.name if name is None else name
        cost, rev = self.incremental_cost, self.incremental_revenue
        line_kwargs = {"label": name or "policy", "marker": ".", "markersize": 3}
        line_kwargs.update(kwargs)
        (self.line_,) = ax.plot(cost, rev, **line_kwargs)

        self.random_line_ = None
        if random_reference and len(cost):
            (self.random_line_,) = ax.plot([0.0, cost[-1]], [0.0, rev[-1]], linestyle="--",
                                           color="gray", label="random allocation")
        self.oracle_line_ = None
        if self.oracle_cost is not None and self.oracle_revenue is not None:
            (self.oracle_line_,) = ax.plot(self.oracle_cost, self.oracle_revenue,
                                           linestyle=":", color="black", label="oracle")
        self.budget_marker_ = None
        self.value_at_budget_ = None
        if self.budget is not None:
            curve = CostCurve(
                np.zeros(len(cost)) if self.multipliers is None else self.multipliers,
                cost, rev, np.zeros(len(cost), dtype=np.int64))
            self.value_at_budget_ = curve.value_at(self.budget)
            (self.budget_marker_,) = ax.plot(
                [self.budget], [self.value_at_budget_], marker="o", linestyle="none",
                color=self.line_.get_color(), label=f"budget {self.budget:g}")
        ax.set_xlabel("Incremental cost per user (EOM)")
        ax.set_ylabel("Incremental revenue per user (EOM)")
        ax.legend(loc="lower right")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_predictions(cls, revenue_uplift, cost_uplift, treatment, revenue, cost, *,
                         propensity=None, control_name=0, levels=None, n_multipliers=100,
                         oracle=None, budget=None, name=None, ax=None, random_reference=True,
                         **kwargs):
        """Plot the cost curve of uplift predictions on RCT data.

        Parameters
        ----------
        revenue_uplift, cost_uplift : array-like of shape (n_samples, n_levels)
            Predicted uplifts of the RCT users.
        treatment, revenue, cost : array-like of shape (n_samples,)
            Observed RCT arm and outcomes.
        propensity, control_name, levels, n_multipliers
            See :func:`~sklearn_budget.metrics.cost_curve`.
        oracle : tuple of two array-like of shape (n_samples, n_levels), default=None
            True ``(revenue_uplift, cost_uplift)`` of the same users (control
            excluded: column ``k`` minus column 0 of a simulator's expected
            outcomes). Its policy's curve is measured with the same EOM and drawn.
        budget : float, default=None
            Per-user budget to mark.
        name : str, default=None
            Legend label.
        ax : matplotlib Axes, default=None
            Axes to draw on.
        random_reference : bool, default=True
            Draw the random-allocation reference.
        **kwargs : dict
            Passed to ``ax.plot`` for the policy's curve.

        Returns
        -------
        display : CostCurveDisplay
        """
        check_budget(budget, allow_none=True)  # before the sweep
        common = dict(propensity=propensity, control_name=control_name, levels=levels,
                      n_multipliers=n_multipliers)
        curve = cost_curve(revenue_uplift, cost_uplift, treatment, revenue, cost, **common)
        oracle_cost = oracle_revenue = None
        if oracle is not None:
            if len(oracle) != 2:
                raise ValueError(
                    "`oracle` must be a pair (true_revenue_uplift, true_cost_uplift) of "
                    "(n_samples, n_levels) arrays."
                )
            oc = cost_curve(oracle[0], oracle[1], treatment, revenue, cost, **common)
            oracle_cost, oracle_revenue = oc.incremental_cost, oc.incremental_revenue
        disp = cls(curve.incremental_cost, curve.incremental_revenue,
                   multipliers=curve.multipliers, name=name, oracle_cost=oracle_cost,
                   oracle_revenue=oracle_revenue, budget=budget)
        return disp.plot(ax=ax, random_reference=random_reference, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, treatment=None, cost=None,
                       propensity=None, control_name=None, n_multipliers=100, oracle=None,
                       budget=None, name=None, ax=None, random_reference=True, **kwargs):
        """Plot the cost curve of a fitted allocator on RCT data.

        Parameters
        ----------
        estimator : object
            Fitted allocator with ``predict`` (revenue uplift) and
            ``predict_cost`` (cost uplift), both (n, K).
        X : array-like of shape (n_samples, n_features)
            Features of the RCT users.
        y : structured ndarray, DataFrame or array-like of shape (n_samples,), \
                default=None
            Packed :func:`~sklearn_budget.rct_target` (or a DataFrame with its
            columns), or the revenue with ``treatment`` and ``cost`` as keywords
            (required; None is refused with the fix).
        treatment, cost : array-like of shape (n_samples,), default=None
            Observed arm and cost when ``y`` is the plain revenue.
        propensity : None, dict or array-like, default=None
            See :meth:`from_predictions`.
        control_name : hashable, default=None
            None uses ``estimator.control_name`` (or 0).
        n_multipliers, oracle, budget
            See :meth:`from_predictions`.
        name : str, default=None
            Legend label; None uses the estimator's class name.
        ax, random_reference, **kwargs
            See :meth:`from_predictions`.

        Returns
        -------
        display : CostCurveDisplay
        """
        if not (hasattr(estimator, "predict") and hasattr(estimator, "predict_cost")):
            raise TypeError(
                f"`estimator` must be a fitted budget allocator with `predict` and "
                f"`predict_cost` (revenue and cost uplift per level); got "
                f"{type(estimator).__name__}. For other predictions use "
                "CostCurveDisplay.from_predictions.")
        propensity = target_propensity(y, propensity)
        treatment, revenue, cost = unpack_target(y, treatment=treatment, cost=cost)
        if control_name is None:
            control_name = getattr(estimator, "control_name", 0)
        if name is None:
            name = type(estimator).__name__
        return cls.from_predictions(
            estimator.predict(X), estimator.predict_cost(X), treatment, revenue, cost,
            propensity=propensity, control_name=control_name,
            levels=getattr(estimator, "levels_", None), n_multipliers=n_multipliers,
            oracle=oracle, budget=budget, name=name, ax=ax,
            random_reference=random_reference, **kwargs)
