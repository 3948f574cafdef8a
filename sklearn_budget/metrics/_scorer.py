"""Scorer for model selection: EOM incremental revenue at a per-user budget."""

from __future__ import annotations

from sklearn.utils.metadata_routing import MetadataRequest

from .._validation import check_budget, check_n_multipliers, target_propensity, unpack_target
from ._at_budget import value_at_budget

__all__ = ["BudgetScorer", "make_budget_scorer"]

_ROUTABLE = ("treatment", "cost", "propensity")


class BudgetScorer:
    """Callable ``scorer(estimator, X, y)`` returning the EOM value at a budget.

    Build it with :func:`make_budget_scorer`.
    """

    def __init__(self, budget, *, control_name=None, n_multipliers=100):
        self.budget = check_budget(budget)
        self.control_name = control_name
        self.n_multipliers = check_n_multipliers(n_multipliers)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v, default in (
            ("control_name", self.control_name, None),
            ("n_multipliers", self.n_multipliers, 100)) if v != default)
        return f"make_budget_scorer(budget={self.budget!r}{extra})"

    def __call__(self, estimator, X, y, *, treatment=None, cost=None, propensity=None):
        """Score ``estimator`` on RCT data.

        Parameters
        ----------
        estimator : object
            Fitted allocator with ``predict(X)`` (revenue uplift, (n, K)) and
            ``predict_cost(X)`` (cost uplift, (n, K)).
        X : array-like of shape (n_samples, n_features)
            Features of the RCT users.
        y : structured ndarray, DataFrame or array-like of shape (n_samples,)
            Packed :func:`~sklearn_budget.rct_target` (or a DataFrame with its
            columns), or the observed revenue with ``treatment`` and ``cost``
            given as keywords (routed metadata).
        treatment, cost : array-like of shape (n_samples,), default=None
            Observed arm and cost when ``y`` is the plain revenue.
        propensity : None, dict or array-like, default=None
            Assignment probabilities (see :func:`expected_outcome`).

        Returns
        -------
        score : float
            EOM incremental revenue per user at ``self.budget`` (higher is better).
        """
        propensity = target_propensity(y, propensity)
        treatment, revenue, cost = unpack_target(y, treatment=treatment, cost=cost)
        if not hasattr(estimator, "predict_cost"):
            fix = (" A scikit-learn Pipeline does not expose it: build the pipeline with "
                   "sklearn_budget.pipeline.make_budget_pipeline (or BudgetPipeline)."
                   if hasattr(estimator, "steps") else "")
            raise TypeError(
                f"{type(estimator).__name__} has no `predict_cost`; the budget scorer needs "
                "an allocator predicting revenue uplift (`predict`) and cost uplift "
                f"(`predict_cost`).{fix}"
            )
        r_hat = estimator.predict(X)
        c_hat = estimator.predict_cost(X)
        control_name = self.control_name
        if control_name is None:
            control_name = getattr(estimator, "control_name", 0)
        levels = getattr(estimator, "levels_", None)
        return value_at_budget(r_hat, c_hat, treatment, revenue, cost, self.budget,
                               propensity=propensity, control_name=control_name,
                               n_multipliers=self.n_multipliers, levels=levels)

    # -- metadata routing (scikit-learn >= 1.3, public API only) -----------------------
    def set_score_request(self, **kwargs):
        """Request metadata (``treatment``, ``cost``, ``propensity``) for scoring.

        Only available with ``sklearn.set_config(enable_metadata_routing=True)``.
        ``True`` requests the parameter under its own name, a string under
        that alias, ``False`` declines it.

        Returns
        -------
        self : BudgetScorer
        """
        from sklearn import get_config

        if not get_config().get("enable_metadata_routing", False):
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled: "
                "sklearn.set_config(enable_metadata_routing=True). Without routing, pass a "
                "packed y = rct_target(treatment, revenue, cost) instead."
            )
        unknown = set(kwargs) - set(_ROUTABLE)
        if unknown:
            raise TypeError(
                f"Unexpected metadata {sorted(unknown)}; the budget scorer accepts "
                f"{list(_ROUTABLE)}."
            )
        requests = dict(getattr(self, "_score_requests", {}))
        requests.update(kwargs)
        self._score_requests = requests
        return self

    def get_metadata_routing(self):
        """Metadata this scorer requests (see :meth:`set_score_request`).

        ``treatment`` and ``cost`` not set there are left unrequested (``None``),
        as in scikit-learn's scorers: passing them to a search is then an
        ``UnsetMetadataPassedError`` instead of NaN scores (the scorer cannot work
        without them). ``propensity`` not set there is declined (``False``): a
        search may route it to ``fit`` alone, and the scorer then uses the arm
        frequencies.
        """
        request = MetadataRequest(owner=self)
        requests = getattr(self, "_score_requests", {})
        for param in _ROUTABLE:
            default = False if param == "propensity" else None
            request.score.add_request(param=param, alias=requests.get(param, default))
        return request


def make_budget_scorer(budget, *, control_name=None, n_multipliers=100):
    """Make a scorer of the EOM incremental revenue at a per-user budget.

    For ``GridSearchCV``, ``cross_val_score`` and friends. The scorer calls
    ``estimator.predict(X)`` (revenue uplift, (n, K)) and
    ``estimator.predict_cost(X)`` (cost uplift) and returns
    :func:`value_at_budget` on the RCT users of the fold (higher is better).
    Uplift columns follow ``estimator.levels_`` when the estimator has it (a
    :class:`~sklearn_budget.pipeline.BudgetPipeline` has its last step's).

    The RCT outcomes reach it in one of two ways:

    - ``y`` is a packed :func:`~sklearn_budget.rct_target` (works everywhere,
      no configuration);
    - with ``sklearn.set_config(enable_metadata_routing=True)``, ``y`` is the
      revenue and ``treatment`` / ``cost`` are routed metadata: call
      ``scorer.set_score_request(treatment=True, cost=True)`` and the
      estimator's ``set_fit_request(treatment=True, cost=True)``, then
      ``search.fit(X, revenue, treatment=..., cost=...)``.

    Parameters
    ----------
    budget : float
        Average incremental cost per user.
    control_name : hashable, default=None
        Control label; None uses ``estimator.control_name`` (or 0).
    n_multipliers : int, default=100
        Size of the multiplier sweep (see :func:`cost_curve`).

    Returns
    -------
    scorer : BudgetScorer
        Callable ``scorer(estimator, X, y, **metadata)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget import rct_target
    >>> from sklearn_budget.metrics import make_budget_scorer
    >>> class Oracle:                      # a toy allocator that knows the uplift
    ...     def predict(self, X):
    ...         return X[:, :1]
    ...     def predict_cost(self, X):
    ...         return np.ones((len(X), 1))
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 2, (4000, 1))
    >>> treatment = rng.integers(0, 2, 4000)
    >>> y = rct_target(treatment, treatment * X[:, 0], treatment * 1.0)
    >>> scorer = make_budget_scorer(budget=0.5)
    >>> round(scorer(Oracle(), X, y), 1)
    0.7
    """
    return BudgetScorer(budget, control_name=control_name, n_multipliers=n_multipliers)
