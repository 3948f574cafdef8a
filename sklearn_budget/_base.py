"""Shared fit / calibrate / allocate / score logic of the budget allocators.

Data flow of every allocator::

    fit(X, RCT)  ->  _fit_uplift (subclass: revenue and cost uplift models)
                 ->  calibrate the deployment multiplier (held-out RCT slice or
                     predicted costs; ``_calibration.py``)
    predict / predict_cost  ->  _predict_uplift (subclass)
    allocate  ->  solver (allocate_at_multiplier / solve_budget_allocation)
    score     ->  metrics.value_at_budget on RCT data

Subclasses implement two private hooks:

- ``_fit_uplift(self, X, rct)``: fit the uplift models on the validated
  training features ``X`` (ndarray) and :class:`~sklearn_budget._validation.RCTData`
  ``rct`` (``rct.arm`` holds integer arms 0..K, 0 = control). A subclass
  that sets ``_validates_on_holdout = True`` is called as
  ``_fit_uplift(X, rct, validation=(X_cal, rct_cal))`` instead, with the
  held-out calibration slice (None for ``calibration="predicted"``), e.g.
  for early stopping on held-out RCT data.
- ``_predict_uplift(self, X)``: return ``(revenue_uplift, cost_uplift)``,
  float64 arrays of shape (n, K) with columns in ``self.levels_`` order.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._blockwise import allocate_chunks, check_frame_columns, gathered, is_dask, uplift_chunks
from ._calibration import CalibrationMixin
from ._dask_frames import frames_as_arrays
from ._labels import _plain
from ._solver import allocate_at_multiplier, solve_budget_allocation
from ._validation import (arms_to_labels, check_budget, check_control_name, check_feature_frame,
                          check_number_params, check_predicted_uplift, check_rct,
                          target_propensity, unpack_target)
from .metrics import value_at_budget

__all__ = ["BaseBudgetAllocator"]


class BaseBudgetAllocator(CalibrationMixin, BaseEstimator):
    """Base class of the budget allocators (two-stage and end-to-end).

    Not meant to be used directly: subclasses implement ``_fit_uplift`` and
    ``_predict_uplift`` (see the module docstring) and inherit ``fit``,
    ``predict``, ``predict_cost``, ``allocate`` and ``score``.

    Parameters (shared by the subclasses)
    -------------------------------------
    budget : float
        Average incremental cost per user the allocation may spend (cost
        units per user; scale-free in the number of users, so it survives
        cross-validation folds).
    control_name : hashable
        Treatment label of the control arm.
    calibration : {"holdout", "holdout-dr", "predicted"}
        How the deployment multiplier is chosen after the uplift models are
        fitted. ``"holdout"``: a stratified slice of the RCT
        (``calibration_size``) is kept out of the fit, and the multiplier is
        the one whose policy's EOM incremental cost on that slice meets
        ``budget`` (robust to biased cost predictions). ``"holdout-dr"``: the
        same slice, with the doubly robust estimate of the policy's cost
        (``cost_curve(..., estimate="dr")``: the model's predicted cost over
        all held-out users, corrected by the matched users' residuals);
        unbiased like ``"holdout"`` and less noisy when the cost model is
        good (in ``benchmarks/bench_calibration.py`` it put the deployed
        spend within 5% of the budget more often). ``"predicted"``: all
        data fits the models and the multiplier is the Lagrange multiplier of
        :func:`~sklearn_budget.solve_budget_allocation` on the training
        users' predicted uplifts (trusts the predicted costs).
    calibration_size : float or int
        Fraction (float in (0, 1)) or number (int) of RCT users held out for
        ``calibration="holdout"`` or ``"holdout-dr"``; ignored with
        ``"predicted"``.
    random_state : int, RandomState instance or None
        Seed of the calibration split (and of the subclass's models).

    Attributes
    ----------
    levels_ : ndarray of shape (n_levels,)
        Sorted non-control treatment labels: the columns of ``predict``.
    n_levels_ : int
        Number of incentive levels K.
    treatment_probabilities_ : ndarray of shape (n_levels + 1,)
        Assignment probability of each arm, control first, averaged over
        users (with per-user propensities and several levels: the arms'
        shares of the users).
    multiplier_ : float
        Lagrange multiplier calibrated for the ``budget`` of the fit, used by
        :meth:`allocate` (after ``set_params(budget=...)`` on a fitted
        allocator, :meth:`allocate` re-reads it for the new budget).
    calibration_curve_ : :class:`~sklearn_budget.metrics.CostCurve`
        Cost curve of the fitted model on the calibration data (the held-out
        slice, or the training data for ``calibration="predicted"``): EOM, or
        doubly robust with ``calibration="holdout-dr"``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).
    """

    _parameter_constraints: dict = {
        "budget": [Interval(Real, 0, None, closed="left")],
        "control_name": "no_validation",
        "calibration": [StrOptions({"holdout", "holdout-dr", "predicted"})],
        "calibration_size": [
            Interval(RealNotInt, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    }

    # Points of the multiplier sweep used to calibrate on RCT data.
    _n_multipliers = 200

    # -- hooks ---------------------------------------------------------------------
    def _fit_uplift(self, X, rct):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_uplift(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, treatment=None, cost=None, propensity=None):
        """Fit the uplift models on RCT data and calibrate the multiplier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the RCT users. A Dask array or DataFrame is computed
            into memory (a pandas DataFrame: its column names are kept).
        y : structured ndarray, DataFrame or array-like of shape (n_samples,)
            Packed :func:`~sklearn_budget.rct_target` (treatment, revenue,
            cost) or a DataFrame with those columns, or the observed revenue
            with ``treatment`` and ``cost`` as keywords.
        treatment, cost : array-like of shape (n_samples,), default=None
            Observed arm labels and cost (>= 0), when ``y`` is the plain revenue.
        propensity : None, dict or array-like of shape (n_samples,), default=None
            Known assignment probabilities: a dict ``{label: probability}``
            or each user's probability of the observed arm (or packed in
            ``y``: ``rct_target(..., propensity=...)``). None uses the arm
            frequencies.

        Returns
        -------
        self : object
            Fitted allocator. If ``fit`` raises, the allocator is left
            unfitted (not half-refitted: the previous fit's models under the
            new data's labels); its parameters and metadata requests stay.
        """
        try:
            return self._fit_rct(X, y, treatment, cost, propensity)
        except BaseException:
            # drop what a fit sets (fitted attributes end with "_"; the calibration's private
            # state); keep the parameters and what others set: metadata requests
            # (set_fit_request), a meta-estimator's callback context (sklearn >= 1.9)
            params = set(self.get_params(deep=False))
            for name in [k for k in vars(self) if k not in params and (
                    (k.endswith("_") and not k.startswith("__"))
                    or k in self._private_fit_state)]:
                delattr(self, name)
            raise

    #: private attributes that ``fit`` sets (removed when a fit fails)
    _private_fit_state = ("_calibration_method", "_calibration_uplift", "_calibration_rct",
                          "_calibrated_budget", "_fit_control_name")

    def _fit_rct(self, X, y, treatment, cost, propensity):
        self._check_fit_params()  # before any data work (a subclass's own checks)
        X, y = gathered(X), gathered(y)  # Dask: a DataFrame keeps its column names
        check_feature_frame(X)
        X = validate_data(self, X, reset=True)
        propensity = target_propensity(y, propensity)
        treatment, revenue, cost = unpack_target(y, treatment=treatment, cost=cost)
        rct = check_rct(treatment, revenue, cost, control_name=self.control_name,
                        propensity=propensity, min_arm_samples=2)
        if rct.n_samples != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but the RCT outcomes have {rct.n_samples}; pass "
                "one row of features per RCT user."
            )
        self._fit_control_name = self.control_name  # the label levels_ were split from
        self.levels_ = rct.levels
        self.n_levels_ = rct.n_levels
        self.treatment_probabilities_ = rct.arm_probabilities

        if self.calibration != "predicted":
            train, cal = self._calibration_split(rct)
            X_train, rct_train = X[train], rct.subset(train)
            X_cal, rct_cal = X[cal], rct.subset(cal)
        else:
            X_train, rct_train = X, rct
            X_cal, rct_cal = X, rct

        if getattr(self, "_validates_on_holdout", False):
            validation = (X_cal, rct_cal) if self.calibration != "predicted" else None
            self._fit_uplift(X_train, rct_train, validation=validation)
        else:
            self._fit_uplift(X_train, rct_train)
        r_cal, c_cal = self._checked_uplift(X_cal)
        self._calibrate(r_cal, c_cal, rct_cal)
        return self

    def _check_fit_params(self):
        """Parameter checks that scikit-learn's constraints cannot express: a bool for a
        number (``calibration_size=True`` is 1 user)."""
        check_number_params(self.get_params(deep=False), self._parameter_constraints)

    # -- predict -------------------------------------------------------------------
    def _checked_uplift(self, X, chunk=None):
        """Predicted ``(r, c)``, checked; ``chunk`` = (first row, all rows) of ``X`` in a larger input."""
        r, c = self._predict_uplift(X)
        return check_predicted_uplift(r, c, X.shape[0], self.levels_, type(self).__name__,
                                      chunk)

    def _check_fitted(self):
        """``check_is_fitted``, and the fit's ``control_name`` still in place."""
        check_is_fitted(self)
        fitted = getattr(self, "_fit_control_name", self.control_name)
        check_control_name(self.control_name)
        if not (fitted == self.control_name  # (np.int64(0) for 0 is the same label)
                and isinstance(fitted, str) == isinstance(self.control_name, str)):
            raise ValueError(
                f"control_name is {self.control_name!r} but was {fitted!r} when "
                f"{type(self).__name__} was fitted (set_params after fit): levels_ "
                f"{_plain(self.levels_)} and the treatment labels of allocate come from the "
                "fit. Set it back, or fit again.")

    def __setstate__(self, state):
        # models saved before the fit recorded these: their values then were the parameters
        if "multiplier_" in state:
            state.setdefault("_calibrated_budget", state.get("budget"))
            state.setdefault("_fit_control_name", state.get("control_name"))
        super().__setstate__(state)

    def _validated_uplift(self, X, chunk=None):
        self._check_fitted()
        check_feature_frame(X)
        X = validate_data(self, X, reset=False)
        return self._checked_uplift(X, chunk)

    def predict(self, X):
        """Predict the revenue uplift of every incentive level against control.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Users' features.

        Returns
        -------
        revenue_uplift : ndarray of shape (n_samples, n_levels)
            Columns in ``levels_`` order.
        """
        if is_dask(X):
            self._check_fitted()  # now, not when the lazy result is computed
            # one lazy array of both uplifts: persisted with predict_cost(X), one model call
            return uplift_chunks(self, X)[0]
        return self._validated_uplift(X)[0]

    def predict_cost(self, X):
        """Predict the cost uplift of every incentive level against control.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Users' features.

        Returns
        -------
        cost_uplift : ndarray of shape (n_samples, n_levels)
            Columns in ``levels_`` order.
        """
        if is_dask(X):
            self._check_fitted()  # now, not when the lazy result is computed
            return uplift_chunks(self, X)[1]  # (see predict)
        return self._validated_uplift(X)[1]

    # -- allocate ------------------------------------------------------------------
    def allocate(self, X, budget=None, total_budget=None):
        """Assign each user the control or one incentive level.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Users to allocate.
        budget : float, default=None
            Average incremental cost per user. None uses ``self.budget``:
            the fitted ``multiplier_``, or, when ``set_params`` changed
            ``budget`` since the fit, the multiplier re-read for it; a value
            re-reads the multiplier for that budget from the calibration
            data, the same way as in ``fit``. With held-out calibration the
            multiplier is read off the calibration cost curve between two of
            its points: its estimated spend on the calibration data is within
            1% of the budget or below it (bisection takes over beyond 1%), and
            the spend on new users varies with the calibration sample (README,
            "Calibration of the deployed spend"); ``calibration="predicted"``
            solves the budget problem on the training users' predictions.
        total_budget : float, default=None
            Total budget in cost units for these users: solves the budget
            problem on the predicted uplifts of ``X``
            (:func:`~sklearn_budget.solve_budget_allocation`), so the
            *predicted* spend is at most ``total_budget``.

        Returns
        -------
        assignment : ndarray of shape (n_samples,)
            Treatment labels (``control_name`` or one of ``levels_``).
        """
        if budget is not None and total_budget is not None:
            raise ValueError(
                "Give at most one of `budget` (per user, calibrated multiplier) and "
                "`total_budget` (total, solved on the predictions)."
            )
        if is_dask(X):
            self._check_fitted()  # now, not when the lazy result is computed
            return allocate_chunks(self, X, budget, total_budget)
        r, c = self._validated_uplift(X)
        if total_budget is not None:
            total_budget = check_budget(total_budget, name="total_budget")
            arms = solve_budget_allocation(r, c, budget=total_budget).assignment
        else:
            arms = self._allocate(r, c, self._deployed_multiplier(budget))
        return arms_to_labels(np.asarray(arms), self.levels_, self.control_name)

    def _allocate(self, revenue_uplift, cost_uplift, multiplier):
        """Integer arms 0..K of the policy at ``multiplier``."""
        return allocate_at_multiplier(revenue_uplift, cost_uplift, multiplier)

    # -- score ---------------------------------------------------------------------
    def score(self, X, y, treatment=None, cost=None, propensity=None, sample_weight=None):
        """EOM incremental revenue per user at ``self.budget`` on RCT data.

        The policy family of the predictions is swept over multipliers and
        read where the EOM incremental cost on these RCT users meets
        ``budget`` (:func:`~sklearn_budget.metrics.value_at_budget`).
        Higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the RCT users.
        y : structured ndarray, DataFrame or array-like of shape (n_samples,)
            Packed :func:`~sklearn_budget.rct_target` (or a DataFrame with its
            columns), or the observed revenue with ``treatment`` and ``cost``
            as keywords.
        treatment, cost : array-like of shape (n_samples,), default=None
            Observed arm and cost when ``y`` is the plain revenue.
        propensity : None, dict or array-like of shape (n_samples,), default=None
            Assignment probabilities (see :meth:`fit`).
        sample_weight : None
            Not supported; must stay None (in the signature because
            ``Pipeline.score`` forwards it under metadata routing).

        Returns
        -------
        score : float
            EOM incremental revenue per user.

        Notes
        -----
        On a Dask array (or DataFrame) ``X``, with the RCT outcomes as Dask
        arrays, Dask DataFrame columns or numpy arrays, the score is computed
        chunk by chunk (:mod:`sklearn_budget.metrics` on Dask): the model runs
        on each chunk twice, once per pass over the RCT.
        """
        if sample_weight is not None:
            raise ValueError(
                "score() does not support sample_weight: the EOM weights users by their "
                "inverse assignment probability; pass `propensity=` to change those weights."
            )
        if is_dask(X):
            self._check_fitted()
            X = check_frame_columns(self, X)
        else:
            r, c = self._validated_uplift(X)
        propensity = target_propensity(y, propensity)
        treatment, revenue, cost = unpack_target(y, treatment=treatment, cost=cost)
        if is_dask(X):  # frames converted together; both uplifts from one call per chunk
            X, treatment, revenue, cost, propensity = frames_as_arrays(
                X, treatment, revenue, cost, propensity)
            r, c = uplift_chunks(self, X)
        return value_at_budget(
            r, c, treatment, revenue, cost, self.budget, propensity=propensity,
            control_name=self.control_name, levels=self.levels_,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        return tags
