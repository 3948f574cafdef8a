"""Two-stage baseline: any uplift learner (stage 1) + the budget solver (stage 2)."""

from __future__ import annotations

import inspect
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods

from ._base import BaseBudgetAllocator
from ._labels import _plain

__all__ = ["TwoStageBudgetAllocator"]

# an arm this small is named when a learner fails (cross-fitting folds without its users:
# a DR-learner's 3 unstratified folds miss an arm of 10 users about 5% of the time)
_FEW_USERS = 30


def _names(method, name):
    """Whether ``method`` has a parameter called ``name``."""
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _accepts(method, name):
    """Whether ``method`` takes the keyword ``name`` (explicitly or via ``**kwargs``)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signature
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _sklearn_model(learner):
    """Whether ``learner`` is a scikit-learn regressor or classifier (a Pipeline or search
    around one too): its ``fit(**params)`` takes no ``treatment``, unlike a wrapper that
    forwards causalml's keywords."""
    from sklearn.base import is_classifier, is_regressor

    try:
        return is_regressor(learner) or is_classifier(learner)
    except Exception:  # (objects without scikit-learn's tags)
        return False


def _check_classifier_outcome(learner, outcome, name, cloned):
    """A classifier learner (causalml's ``Base*Classifier``) models a 0/1 outcome: else a
    ValueError naming the learner (the cost learner clones the revenue one by default)."""
    kind = type(learner).__name__
    values = np.unique(outcome)
    if not kind.endswith("Classifier") or np.isin(values, (0, 1)).all():
        return
    what = ("cost_learner (None: a clone of revenue_learner)"
            if name == "cost_learner" and cloned else name)
    raise ValueError(
        f"`{what}` is a classifier ({kind}), but its outcome takes values other than 0 and "
        f"1 ({', '.join(f'{v:g}' for v in values[:4])}{', ...' if len(values) > 4 else ''}): "
        f"it would treat them as class labels. Give a regression learner for it, e.g. "
        f"{name}=make_meta_learner('{kind[4:-10] or 'T'}') from sklearn_budget.baselines.")


class TwoStageBudgetAllocator(BaseBudgetAllocator):
    """Two-stage budget allocation: uplift learner, then the budget solver.

    Today's practice, as a drop-in alternative to
    :class:`~sklearn_budget.EndToEndBudgetAllocator`: stage 1 fits a revenue
    and a cost uplift model with any uplift learner (causalml meta-learners
    such as ``BaseTRegressor``, ``BaseXRegressor``, ``BaseRRegressor``,
    ``BaseDRRegressor``, ``BaseSRegressor``, their classifier twins for a
    0/1 outcome, or any object with the same contract); stage 2 assigns each user the level
    maximising ``r_hat - multiplier * c_hat``
    (:func:`~sklearn_budget.allocate_at_multiplier`), with the multiplier
    calibrated so that the budget is met.

    Parameters
    ----------
    revenue_learner : object, default=None
        Unfitted uplift learner for the revenue outcome, with
        ``fit(X=, treatment=, y=[, p=])`` and ``predict(X=[, p=, verbose=])``
        returning the (n, K) uplift of the non-control arms in sorted order
        (causalml's contract). It is cloned in ``fit``, never fitted in
        place; the clone sees integer arms ``0..K`` (0 = control, ``k`` =
        ``levels_[k - 1]``) and, when it has a ``control_name`` parameter,
        gets ``control_name=0``. The known RCT assignment probabilities are
        passed as ``p`` (a dict ``{arm: P(arm | arm or control)}``), so X, R
        and DR learners fit no propensity model; in ``fit`` on a one-level RCT
        whose given propensities vary by user, each user's own. None builds a causalml
        ``BaseTRegressor(learner=HistGradientBoostingRegressor())`` (see
        :func:`sklearn_budget.baselines.make_meta_learner` for others).
    cost_learner : object, default=None
        Same for the cost outcome; None uses a clone of ``revenue_learner``.
    budget : float, default=1.0
        Average incremental cost per user (cost units per user).
    control_name : hashable, default=0
        Treatment label of the control arm.
    calibration : {"holdout", "holdout-dr", "predicted"}, default="holdout"
        ``"holdout"``: fit on ``1 - calibration_size`` of the RCT and choose
        the multiplier whose EOM incremental cost on the held-out slice meets
        ``budget``. ``"holdout-dr"``: the same with the doubly robust cost
        estimate (less noisy; see :class:`~sklearn_budget._base.BaseBudgetAllocator`).
        ``"predicted"``: fit on everything and take the Lagrange
        multiplier of the budget problem on the training users' predicted
        uplifts.
    calibration_size : float or int, default=0.3
        Fraction or number of RCT users held out (stratified by arm) for
        ``calibration="holdout"`` or ``"holdout-dr"``; ignored with
        ``"predicted"``.
    random_state : int, RandomState instance or None, default=None
        Seed of the calibration split, of the default learner, and of a
        causalml learner's cross-fitting folds when the learner has no seed of
        its own (the R-learner's ``random_state``, the DR-learner's
        ``fit(seed=...)``). A learner's base models (e.g. the gradient boosting
        inside :func:`~sklearn_budget.baselines.make_meta_learner`) are seeded
        where they are built.

    Attributes
    ----------
    revenue_learner_, cost_learner_ : object
        Fitted clones of the learners.
    levels_ : ndarray of shape (n_levels,)
        Sorted non-control treatment labels (the columns of ``predict``).
    n_levels_ : int
        Number of incentive levels.
    treatment_probabilities_ : ndarray of shape (n_levels + 1,)
        Assignment probability of each arm, control first, averaged over
        users (with per-user propensities and several levels: the arms'
        shares of the users).
    multiplier_ : float
        Calibrated multiplier used by :meth:`allocate`.
    calibration_curve_ : :class:`~sklearn_budget.metrics.CostCurve`
        Cost curve of the fitted model on the calibration data (EOM; doubly
        robust with ``calibration="holdout-dr"``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    sklearn_budget.solve_budget_allocation : Stage 2 on given predictions.
    sklearn_budget.metrics.value_at_budget : What :meth:`score` returns.

    Examples
    --------
    >>> from causalml.inference.meta import BaseTRegressor
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn_budget import rct_target
    >>> from sklearn_budget import TwoStageBudgetAllocator
    >>> from sklearn_budget.datasets import make_marketing_rct
    >>> data = make_marketing_rct(n_samples=3000, random_state=0)
    >>> y = rct_target(data.treatment, data.revenue, data.cost)
    >>> est = TwoStageBudgetAllocator(BaseTRegressor(learner=Ridge()), budget=1.0,
    ...                               random_state=0).fit(data.X, y)
    >>> est.predict(data.X[:5]).shape
    (5, 3)
    >>> est.allocate(data.X[:5]).shape
    (5,)
    >>> bool(est.score(data.X, y) > 0)
    True
    """

    _parameter_constraints: dict = {
        **BaseBudgetAllocator._parameter_constraints,
        "revenue_learner": [HasMethods(["fit", "predict"]), None],
        "cost_learner": [HasMethods(["fit", "predict"]), None],
    }

    def __init__(self, revenue_learner=None, cost_learner=None, *, budget=1.0, control_name=0,
                 calibration="holdout", calibration_size=0.3, random_state=None):
        self.revenue_learner = revenue_learner
        self.cost_learner = cost_learner
        self.budget = budget
        self.control_name = control_name
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state

    # -- stage 1 -------------------------------------------------------------------
    def _check_fit_params(self):
        """The learners must follow causalml's contract (``fit(X, treatment, y)``)."""
        super()._check_fit_params()
        for name in ("revenue_learner", "cost_learner"):
            learner = getattr(self, name)
            if learner is None:
                continue
            if isinstance(learner, type):
                raise TypeError(
                    f"`{name}` must be a learner instance, not the class "
                    f"{learner.__name__}; pass {learner.__name__}(...)."
                )
            for key, value in (learner.get_params(deep=False).items()
                               if hasattr(learner, "get_params") else ()):
                if isinstance(value, type) and hasattr(value, "fit"):
                    raise TypeError(
                        f"`{name}` holds the class {value.__name__} as its `{key}`; pass an "
                        f"instance, {value.__name__}(...).")
            if not (_names(learner.fit, "treatment") or (
                    _accepts(learner.fit, "treatment") and not _sklearn_model(learner))):
                kind = type(learner).__name__
                raise TypeError(
                    f"`{name}` must be an uplift learner whose fit takes X, treatment and y "
                    f"(causalml's contract); {kind}.fit takes no `treatment`. To use a "
                    f"plain regressor, wrap it in a meta-learner: "
                    f"make_meta_learner('T', {kind}(...)) from sklearn_budget.baselines."
                )

    def _learner_seed(self):
        """Integer seed of the learners' own randomness for this fit, or None.

        An int is used as is; a ``RandomState`` instance gives one draw per
        fit (scikit-learn's convention: successive fits differ, and a fresh
        instance with the same seed repeats them).
        """
        if self.random_state is None or isinstance(self.random_state, Integral):
            return self.random_state
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _make_learner(self, template, seed):
        if template is None:
            from .baselines import _default_learner

            learner = _default_learner(random_state=self.random_state)
        else:
            learner = clone(template, safe=False)
        params = learner.get_params(deep=False) if hasattr(learner, "get_params") else {}
        if "control_name" in params:
            learner.set_params(control_name=0)  # the learner sees arms 0..K
        if seed is not None and params.get("random_state", 0) is None:
            # e.g. the R-learner's cross-fitting folds (the DR-learner's: fit(seed=...))
            learner.set_params(random_state=seed)
        return learner

    def _propensity_dict(self, n, rct=None):
        """causalml's ``p``: ``P(arm k | arm k or control)`` per user, for k = 1..K.

        From the arm probabilities, the same for every user; in ``fit`` on a
        one-level RCT with per-user propensities, each training user's own.
        """
        if rct is not None and rct.n_levels == 1 and rct.propensity_varies:
            return {1: rct.treated_probability()}
        probs = self.treatment_probabilities_
        return {k: np.full(n, probs[k] / (probs[k] + probs[0]))
                for k in range(1, self.n_levels_ + 1)}

    def _fit_uplift(self, X, rct):
        seed = self._learner_seed()
        revenue_learner = self._make_learner(self.revenue_learner, seed)
        cost_template = self.revenue_learner if self.cost_learner is None else self.cost_learner
        cost_learner = self._make_learner(cost_template, seed)
        p = self._propensity_dict(X.shape[0], rct)
        fits = ((revenue_learner, rct.revenue, "revenue_learner"),
                (cost_learner, rct.cost, "cost_learner"))
        for learner, outcome, name in fits:  # (both before either is fitted)
            _check_classifier_outcome(learner, outcome, name, self.cost_learner is None)
        for learner, outcome, _ in fits:
            kwargs = {"X": X, "treatment": rct.arm, "y": outcome}
            if _accepts(learner.fit, "p"):
                kwargs["p"] = p
            if seed is not None and _names(learner.fit, "seed"):
                kwargs["seed"] = seed  # DR-learner's cross-fitting folds
            try:
                learner.fit(**kwargs)
            except ValueError as exc:  # e.g. a cross-fitting fold without an arm's users
                counts = np.bincount(rct.arm, minlength=self.n_levels_ + 1)
                fewest = int(np.argmin(counts))
                if counts[fewest] >= _FEW_USERS:
                    raise
                label = self.control_name if fewest == 0 else self.levels_[fewest - 1]
                cross_fits = type(learner).__name__.startswith(("BaseR", "BaseDR"))
                raise ValueError(
                    f"{type(learner).__name__}.fit failed on {X.shape[0]} fitting users "
                    f"(fewest in arm {_plain([label])[0]!r}: {int(counts[fewest])}): {exc} "
                    "Collect more users of that arm, or merge or drop it"
                    + (", or use a learner without cross-fitting (S, T, X)." if cross_fits
                       else ".")) from exc
        self.revenue_learner_ = revenue_learner
        self.cost_learner_ = cost_learner

    def _predict_learner(self, learner, X, name):
        kwargs = {"X": X}
        if _accepts(learner.predict, "p"):
            kwargs["p"] = self._propensity_dict(X.shape[0])
        if _accepts(learner.predict, "verbose"):
            kwargs["verbose"] = False
        uplift = learner.predict(**kwargs)
        uplift = np.asarray(uplift, dtype=np.float64)
        if uplift.ndim == 1:
            uplift = uplift[:, None]
        if uplift.shape != (X.shape[0], self.n_levels_):
            raise ValueError(
                f"{name}.predict returned shape {uplift.shape}; expected ({X.shape[0]}, "
                f"{self.n_levels_}): one uplift column per non-control level "
                f"{self.levels_.tolist()}, in sorted order (causalml's layout)."
            )
        return uplift

    def _predict_uplift(self, X):
        return (self._predict_learner(self.revenue_learner_, X, "revenue_learner"),
                self._predict_learner(self.cost_learner_, X, "cost_learner"))
