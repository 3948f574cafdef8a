"""Stage-1 uplift learners for the two-stage baseline (optional causalml extra).

causalml is imported lazily, only when a learner is built, so
``import sklearn_budget`` works without it. Without the extra, building a
learner raises an ImportError that says what to install::

    pip install "sklearn-budget[baselines]"
"""

from __future__ import annotations

import importlib
import inspect

__all__ = ["make_meta_learner"]

_EXTRA = 'pip install "sklearn-budget[baselines]"'

# kind -> causalml class name stem (Base{stem}{Regressor,Classifier})
_KINDS = {"S": "S", "T": "T", "X": "X", "R": "R", "DR": "DR"}


def _import_keeping_matplotlib_style(name):
    """Import ``name`` without letting it change matplotlib's global style.

    causalml calls ``plt.style.use("fivethirtyeight")`` at import time, which
    would restyle every figure the user draws afterwards.
    """
    try:
        import matplotlib
    except ImportError:  # causalml needs matplotlib, so its import fails below
        return importlib.import_module(name)
    with matplotlib.rc_context():
        return importlib.import_module(name)


def _import_causalml_meta():
    """Return ``causalml.inference.meta`` or raise an ImportError naming the extra."""
    try:
        return _import_keeping_matplotlib_style("causalml.inference.meta")
    except ImportError as exc:
        raise ImportError(
            "The two-stage baselines use causalml's meta-learners, which are not installed "
            f"(or failed to import: {exc}). Install the optional extra: {_EXTRA}. "
            "Alternatively pass your own `revenue_learner` with the causalml "
            "fit(X=, treatment=, y=) / predict(X=) contract."
        ) from exc


def make_meta_learner(kind="T", learner=None, *, classifier=False, control_name=0,
                      random_state=None, **kwargs):
    """Build an unfitted causalml meta-learner (S, T, X, R or DR).

    A convenience for :class:`~sklearn_budget.TwoStageBudgetAllocator`'s
    ``revenue_learner`` / ``cost_learner``; any causalml learner built by hand
    works as well.

    Parameters
    ----------
    kind : {"S", "T", "X", "R", "DR"}, default="T"
        Meta-learner family (``BaseSRegressor``, ``BaseTRegressor``, ...).
    learner : estimator, default=None
        Base scikit-learn-compatible model of every nuisance / effect model
        (of the outcome models only for the X, R and DR classifiers, whose
        effect models are ``HistGradientBoostingRegressor()`` unless given in
        ``kwargs``). None uses ``HistGradientBoostingRegressor()``
        (``HistGradientBoostingClassifier()`` when ``classifier`` is True).
    classifier : bool, default=False
        Build the classifier twin (``BaseTClassifier``, ...) for a binary outcome.
    control_name : hashable, default=0
        Control label of the learner. :class:`TwoStageBudgetAllocator`
        overrides it with its own arm coding when it fits a clone.
    random_state : int or None, default=None
        Seed of the learner's own randomness, passed on where the causalml
        class takes one (the R-learner, which draws its cross-fitting folds
        at random: without a seed two fits differ), and to the default base
        learners (gradient boosting draws an early-stopping split above
        10,000 users). The DR-learner also draws random folds, but takes its
        seed in ``fit(seed=...)``, so this one does not reach them: set
        :class:`TwoStageBudgetAllocator`'s ``random_state``, which seeds the
        R- and DR-learners' folds when the learner has no seed of its own.
        Seed a ``learner`` you pass yourself.
    **kwargs
        Further keyword arguments of the causalml class (e.g. ``n_fold`` of
        the R-learner).

    Returns
    -------
    learner : causalml ``BaseLearner``
        Unfitted; fit it with keywords ``fit(X=..., treatment=..., y=..., p=...)``.

    Raises
    ------
    ImportError
        If causalml is not installed; the message names the extra to install.

    Examples
    --------
    >>> from sklearn_budget.baselines import make_meta_learner
    >>> type(make_meta_learner("X")).__name__
    'BaseXRegressor'
    """
    stem = _KINDS.get(str(kind).upper())
    if stem is None:
        raise ValueError(f"`kind` must be one of {sorted(_KINDS)}; got {kind!r}.")
    if learner is not None and (isinstance(learner, type) or not all(
            callable(getattr(learner, m, None)) for m in ("fit", "predict"))):
        what = f"the class {learner.__name__}" if isinstance(learner, type) else repr(learner)
        raise TypeError(
            f"`learner` must be a scikit-learn estimator instance with fit and predict "
            f"(e.g. Ridge() or HistGradientBoostingRegressor()); got {what:.100}."
        )
    meta = _import_causalml_meta()
    if learner is None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        learner = (HistGradientBoostingClassifier(random_state=random_state) if classifier
                   else _default_regressor(random_state))
    cls = getattr(meta, f"Base{stem}{'Classifier' if classifier else 'Regressor'}")
    if random_state is not None and "random_state" in inspect.signature(cls).parameters:
        kwargs.setdefault("random_state", random_state)
    if classifier and stem in ("X", "R"):
        # causalml's X and R classifiers take a classifier for the outcomes and a
        # regressor for the effects, no shared `learner`.
        kwargs.setdefault("outcome_learner", learner)
        kwargs.setdefault("effect_learner", _default_regressor(random_state))
        return cls(control_name=control_name, **kwargs)
    if classifier and stem == "DR":
        kwargs.setdefault("treatment_effect_learner", _default_regressor(random_state))
    return cls(learner=learner, control_name=control_name, **kwargs)


def _default_regressor(random_state=None):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=random_state)


def _default_learner(random_state=None):
    """T-learner with gradient-boosted trees: the default stage 1 of the baseline."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    meta = _import_causalml_meta()
    return meta.BaseTRegressor(
        learner=HistGradientBoostingRegressor(max_iter=100, random_state=random_state)
    )
