"""A scikit-learn ``Pipeline`` that also exposes the allocator's own methods.

``sklearn.pipeline.Pipeline`` forwards ``predict`` and ``score`` but not
``predict_cost`` or ``allocate``, so a pipeline ending in a budget allocator
could not allocate, nor be scored by :func:`~sklearn_budget.metrics.make_budget_scorer`.
:class:`BudgetPipeline` adds both (available only when the last step has
them), and reads the last step's ``control_name`` and ``levels_`` (as
``Pipeline`` reads ``classes_``), so scorers, plots and the command line see
the allocator's labels; everything else is scikit-learn's ``Pipeline``.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline, _name_estimators
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._blockwise import check_same_rows, gathered, is_dask, map_rows

__all__ = ["BudgetPipeline", "make_budget_pipeline"]

# what fit(X, y, treatment=..., cost=..., propensity=...) takes besides y
_RCT_KEYWORDS = ("treatment", "cost", "propensity")


def _final_step_has(attr):
    def check(pipeline):
        return hasattr(pipeline._final_estimator, attr)

    return check


class BudgetPipeline(Pipeline):
    """``Pipeline`` with ``predict_cost`` and ``allocate`` of its last step.

    The features go through every step but the last (``transform``), as in
    ``Pipeline.predict``; the last step's method is then called on them. A
    Dask array of features goes through the steps chunk by chunk, lazily
    (``predict``, ``predict_cost`` and ``allocate``).

    Parameters
    ----------
    steps, transform_input, memory, verbose
        As for :class:`sklearn.pipeline.Pipeline`.

    Attributes
    ----------
    control_name : hashable
        The last step's control label (read-only; set it on the step).
    levels_ : ndarray of shape (n_levels,)
        The last step's fitted incentive levels, the columns of ``predict``.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_budget import EndToEndBudgetAllocator, rct_target
    >>> from sklearn_budget.datasets import make_marketing_rct
    >>> from sklearn_budget.metrics import make_budget_scorer
    >>> from sklearn_budget.pipeline import make_budget_pipeline
    >>> d = make_marketing_rct(n_samples=3000, random_state=0)
    >>> y = rct_target(d.treatment, d.revenue, d.cost)
    >>> pipe = make_budget_pipeline(StandardScaler(), EndToEndBudgetAllocator(
    ...     budget=1.0, max_epochs=3, warmup_epochs=1, random_state=0)).fit(d.X, y)
    >>> pipe.allocate(d.X[:4]).shape, pipe.predict_cost(d.X[:4]).shape
    ((4,), (4, 3))
    >>> score = make_budget_scorer(budget=1.0)(pipe, d.X, y)
    """

    @property
    def control_name(self):
        """The last step's ``control_name`` (the label of the control arm)."""
        return self._final_estimator.control_name

    @property
    def levels_(self):
        """The last step's ``levels_``: the incentive level of each output column."""
        return self._final_estimator.levels_

    def _transform_steps(self, X):
        """``X`` through the transformer steps (no fitted check of a sub-pipeline: scikit-learn
        would judge ``self[:-1]`` by a stateless last transformer and call it unfitted)."""
        for _, _, step in self._iter(with_final=False):
            X = step.transform(X)
        return X

    def _transformed(self, X):
        if len(self.steps) == 1:
            return X
        if is_dask(X):  # each chunk through the transformers, lazily
            check_is_fitted(self)
            return map_rows(self, X, "_transform_steps",
                            width=self._final_estimator.n_features_in_,
                            n_features=getattr(self, "n_features_in_", None))
        check_is_fitted(self)  # (named as the pipeline, as Pipeline.predict names it)
        # the rows, where X says (not a generator or a dict of columns), checked after
        shape = getattr(X, "shape", None)
        n = shape[0] if shape else len(X) if isinstance(X, (list, tuple)) else None
        return check_same_rows(self._transform_steps(X), n,
                               [name for name, _ in self.steps[:-1]])

    @available_if(_final_step_has("predict"))
    def predict(self, X, **params):
        """The last step's ``predict`` on the transformed ``X``.

        As :meth:`sklearn.pipeline.Pipeline.predict`; a Dask array ``X`` goes
        through the steps chunk by chunk and the result is a lazy Dask array.

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
            Features, as the first step takes them.
        **params
            Passed on as by :meth:`sklearn.pipeline.Pipeline.predict`.

        Returns
        -------
        uplift : ndarray (or Dask array) of shape (n_samples, n_levels)
            Revenue uplift of each level over control, columns ``levels_``.
        """
        if not params:  # (the rows checked after the transformers)
            return self._final_estimator.predict(self._transformed(X))
        return super().predict(X, **params)

    @available_if(_final_step_has("predict_cost"))
    def predict_cost(self, X):
        """Cost uplift of the last step on the transformed ``X``.

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
            Features, as the first step takes them.

        Returns
        -------
        cost_uplift : ndarray (or Dask array) of shape (n_samples, n_levels)
            Cost uplift of each level over control, columns ``levels_``.
        """
        return self._final_estimator.predict_cost(self._transformed(X))

    def fit(self, X, y=None, **params):
        """Fit every step, the last on the transformed ``X``.

        As :meth:`sklearn.pipeline.Pipeline.fit`, except that without
        metadata routing the RCT keywords (``treatment``, ``cost``,
        ``propensity``) may be given bare, as to the allocator itself: they
        go to the last step (``Pipeline`` wants them as
        ``<last step>__treatment``). A Dask ``X`` or ``y`` is computed into
        memory first (a DataFrame into pandas, keeping its column names).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the RCT users.
        y : structured ndarray, DataFrame or array-like of shape (n_samples,)
            Packed :func:`~sklearn_budget.rct_target`, or the observed revenue
            with ``treatment`` and ``cost`` in ``params``.
        **params
            Fit parameters, as for :meth:`sklearn.pipeline.Pipeline.fit`, plus
            the bare RCT keywords described above.

        Returns
        -------
        self : BudgetPipeline
        """
        if not _routing_enabled():
            name = self.steps[-1][0]
            for key in _RCT_KEYWORDS:
                if key in params:
                    params[f"{name}__{key}"] = params.pop(key)
        # Dask: computed, a DataFrame into pandas (its column names reach the steps)
        return super().fit(gathered(X), gathered(y), **params)

    def score(self, X, y=None, sample_weight=None, **params):
        """The last step's ``score`` on the transformed ``X``.

        As :meth:`sklearn.pipeline.Pipeline.score`, except that without
        metadata routing the RCT keywords (``treatment``, ``cost``,
        ``propensity``) are passed on to the last step's ``score``;
        ``Pipeline`` dropped them (a given ``propensity`` was ignored,
        ``treatment`` / ``cost`` ended in "Missing RCT input(s)"). A Dask
        ``X`` goes through the steps chunk by chunk, and the last step scores
        it chunk by chunk (metadata routing aside).

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
            Features of the RCT users.
        y : structured ndarray, DataFrame or array-like of shape (n_samples,)
            Packed :func:`~sklearn_budget.rct_target`, or the observed revenue
            with ``treatment`` and ``cost`` in ``params``.
        sample_weight : None
            As for the last step's ``score`` (allocators take only None).
        **params
            The RCT keywords, passed on to the last step's ``score``.

        Returns
        -------
        score : float
            The last step's score (EOM incremental revenue per user at its
            budget, for the allocators).
        """
        if _routing_enabled() or not (params or is_dask(X)):
            return super().score(X, y, sample_weight=sample_weight, **params)
        # the RCT keywords passed on; a Dask X goes through the steps chunk by chunk
        unknown = sorted(set(params) - set(_RCT_KEYWORDS))
        if unknown:
            raise TypeError(
                f"score got unexpected keyword(s) {unknown}; without metadata routing it "
                f"passes on only {list(_RCT_KEYWORDS)} (and sample_weight).")
        if sample_weight is not None:
            params["sample_weight"] = sample_weight
        check_is_fitted(self)
        return self._final_estimator.score(self._transformed(X), y, **params)

    @available_if(_final_step_has("allocate"))
    def allocate(self, X, **params):
        """Treatment label per user from the last step's ``allocate``.

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
            Features, as the first step takes them.
        **params
            Passed on to the last step's ``allocate`` (``budget``,
            ``total_budget``).

        Returns
        -------
        labels : ndarray (or Dask array) of shape (n_samples,)
            The treatment label of each user (``control_name`` or a level).
        """
        return self._final_estimator.allocate(self._transformed(X), **params)


def make_budget_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """:class:`BudgetPipeline` with step names generated from the types
    (like :func:`sklearn.pipeline.make_pipeline`).

    Parameters
    ----------
    *steps : estimators
        The transformers, then the budget allocator last.
    memory : str or object with the joblib.Memory interface, default=None
        Caches the fitted transformers, as for :class:`sklearn.pipeline.Pipeline`.
    transform_input : list of str, default=None
        Metadata transformed by the steps before reaching the last one, as for
        :class:`sklearn.pipeline.Pipeline` (needs metadata routing).
    verbose : bool, default=False
        Print the time each step takes to fit.

    Returns
    -------
    pipeline : BudgetPipeline

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_budget import EndToEndBudgetAllocator
    >>> make_budget_pipeline(StandardScaler(), EndToEndBudgetAllocator()).steps[1][0]
    'endtoendbudgetallocator'
    """
    return BudgetPipeline(_name_estimators(steps), memory=memory,
                          transform_input=transform_input, verbose=verbose)
