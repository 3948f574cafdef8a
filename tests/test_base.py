"""Tests of BaseBudgetAllocator through a small causalml-free subclass."""

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_budget import allocate_at_multiplier, rct_target, solve_budget_allocation
from sklearn_budget._base import BaseBudgetAllocator
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import (
    cost_curve,
    expected_outcome,
    make_budget_scorer,
    multiplier_at_budget,
    value_at_budget,
)


class RidgeTAllocator(BaseBudgetAllocator):
    """Ridge T-learner for revenue and cost: the smallest useful subclass."""

    _parameter_constraints = {**BaseBudgetAllocator._parameter_constraints, "alpha": [float]}

    def __init__(self, *, budget=1.0, control_name=0, calibration="holdout",
                 calibration_size=0.3, random_state=None, alpha=1.0):
        self.budget = budget
        self.control_name = control_name
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state
        self.alpha = alpha

    def _fit_uplift(self, X, rct):
        self.seen_n_, self.seen_arms_ = X.shape[0], np.bincount(rct.arm)
        self.models_ = [
            [Ridge(alpha=self.alpha).fit(X[rct.arm == k], y[rct.arm == k])
             for k in range(rct.n_levels + 1)]
            for y in (rct.revenue, rct.cost)
        ]

    def _predict_uplift(self, X):
        out = []
        for models in self.models_:
            pred = np.column_stack([m.predict(X) for m in models])
            out.append(pred[:, 1:] - pred[:, :1])
        return out[0], out[1]


@pytest.fixture(scope="module")
def data():
    return make_marketing_rct(n_samples=3000, random_state=0)


@pytest.fixture(scope="module")
def y(data):
    return rct_target(data.treatment, data.revenue, data.cost)


@pytest.fixture(scope="module")
def fitted(data, y):
    return RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, y)


@pytest.fixture
def routing():
    sklearn.set_config(enable_metadata_routing=True)
    try:
        yield
    finally:
        sklearn.set_config(enable_metadata_routing=False)


def _relabel(data, mapping):
    """Relabel the data's integer arms with `mapping` (control = mapping[0])."""
    return np.array([mapping[t] for t in data.treatment], dtype=object)


def test_fit_sets_attributes(fitted, data):
    assert fitted.levels_.tolist() == [1, 2, 3]
    assert fitted.n_levels_ == 3
    assert fitted.n_features_in_ == data.X.shape[1]
    np.testing.assert_allclose(fitted.treatment_probabilities_.sum(), 1.0)
    assert np.isfinite(fitted.multiplier_) and fitted.multiplier_ >= 0
    curve = fitted.calibration_curve_
    assert curve.multipliers[-1] == 0 and curve.incremental_cost.shape == curve.multipliers.shape


def test_init_only_stores_and_clone(fitted):
    est = RidgeTAllocator(budget=-5.0, calibration="nonsense")  # validated in fit, not here
    assert est.get_params()["budget"] == -5.0
    cloned = clone(fitted)
    assert not hasattr(cloned, "multiplier_")
    assert cloned.get_params() == fitted.get_params()


@pytest.mark.parametrize("params", [
    {"budget": -1.0}, {"calibration": "both"}, {"calibration_size": 1.5},
    {"calibration_size": 0}, {"random_state": "seed"},
])
def test_parameter_validation(data, y, params):
    with pytest.raises(InvalidParameterError):
        RidgeTAllocator(**params).fit(data.X, y)


def test_holdout_fits_on_stratified_part(fitted, data):
    n = len(data.X)
    assert fitted.seen_n_ == pytest.approx(0.7 * n, abs=2)
    full = np.bincount(data.treatment)
    np.testing.assert_allclose(fitted.seen_arms_ / full, 0.7, atol=0.01)  # stratified by arm


def test_holdout_multiplier_meets_budget_on_calibration_slice(fitted):
    # The multiplier is metrics.multiplier_at_budget on the held-out slice.
    r, c = fitted._calibration_uplift
    rct = fitted._calibration_rct
    lam = multiplier_at_budget(r, c, rct.treatment, rct.revenue, rct.cost, fitted.budget,
                               propensity=rct.propensity, n_multipliers=fitted._n_multipliers)
    assert fitted.multiplier_ == pytest.approx(lam)
    # the EOM incremental cost of the deployed policy on that slice is the budget
    arms = allocate_at_multiplier(r, c, fitted.multiplier_)
    eom = expected_outcome(arms, rct.arm, rct.revenue, rct.cost, propensity=rct.propensity)
    assert eom.incremental_cost == pytest.approx(fitted.budget, rel=0.1)


def test_predicted_calibration_uses_predicted_costs(data, y):
    est = RidgeTAllocator(budget=1.0, calibration="predicted").fit(data.X, y)
    assert est.seen_n_ == len(data.X)
    r, c = est.predict(data.X), est.predict_cost(data.X)
    sol = solve_budget_allocation(r, c, budget_per_user=1.0)
    assert est.multiplier_ == pytest.approx(sol.multiplier)
    # recalibrating for another budget uses the same rule
    sol2 = solve_budget_allocation(r, c, budget_per_user=2.0)
    assert est._multiplier_for(2.0) == pytest.approx(sol2.multiplier)
    np.testing.assert_array_equal(est.allocate(data.X, budget=2.0),
                                  allocate_at_multiplier(r, c, sol2.multiplier))
    # calibration curve is computed on the training data
    curve = cost_curve(r, c, data.treatment, data.revenue, data.cost, n_multipliers=200)
    np.testing.assert_allclose(est.calibration_curve_.incremental_cost, curve.incremental_cost)


def test_packed_and_keywords_agree(data, y, fitted):
    est = RidgeTAllocator(budget=1.0, random_state=0).fit(
        data.X, data.revenue, treatment=data.treatment, cost=data.cost)
    np.testing.assert_allclose(est.predict(data.X), fitted.predict(data.X))
    assert est.multiplier_ == fitted.multiplier_
    with pytest.raises(ValueError, match="already a packed"):
        RidgeTAllocator().fit(data.X, y, treatment=data.treatment)
    with pytest.raises(ValueError, match="Missing RCT input"):
        RidgeTAllocator().fit(data.X, data.revenue)


def test_predict_shapes_and_not_fitted(fitted, data):
    assert fitted.predict(data.X[:7]).shape == (7, 3)
    assert fitted.predict_cost(data.X[:7]).shape == (7, 3)
    with pytest.raises(NotFittedError):
        RidgeTAllocator().predict(data.X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(data.X[:, :3])


def test_allocate(fitted, data):
    X = data.X
    default = fitted.allocate(X)
    assert default.shape == (len(X),) and set(default.tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(fitted.allocate(X, budget=fitted.budget), default)
    # more budget, more predicted spend
    c = fitted.predict_cost(X)
    rows = np.arange(len(X))

    def spend(labels):
        arms = np.asarray(labels, dtype=int)
        return np.where(arms > 0, c[rows, np.maximum(arms - 1, 0)], 0.0).sum()

    assert spend(fitted.allocate(X, budget=3.0)) > spend(default)
    total = 0.5 * len(X)
    assert spend(fitted.allocate(X, total_budget=total)) <= total + 1e-9
    with pytest.raises(ValueError, match="at most one"):
        fitted.allocate(X, budget=1.0, total_budget=100.0)
    with pytest.raises(ValueError, match="budget"):
        fitted.allocate(X, budget=-1.0)


def test_string_labels_and_control_name(data):
    names = {0: "none", 1: "5off", 2: "10off", 3: "15off"}
    t = _relabel(data, names)
    est = RidgeTAllocator(budget=1.0, control_name="none", random_state=0)
    est.fit(data.X, data.revenue, treatment=t, cost=data.cost)
    assert est.levels_.tolist() == sorted(["5off", "10off", "15off"])
    assert set(est.allocate(data.X).tolist()) <= set(names.values())
    assert np.isfinite(est.score(data.X, data.revenue, treatment=t, cost=data.cost))
    with pytest.raises(ValueError, match="control"):
        RidgeTAllocator().fit(data.X, data.revenue, treatment=t, cost=data.cost)


def test_score_is_value_at_budget(fitted, data, y):
    expected = value_at_budget(fitted.predict(data.X), fitted.predict_cost(data.X),
                               data.treatment, data.revenue, data.cost, fitted.budget)
    assert fitted.score(data.X, y) == pytest.approx(expected)
    assert fitted.score(data.X, data.revenue, treatment=data.treatment, cost=data.cost) == \
        pytest.approx(expected)
    assert make_budget_scorer(fitted.budget)(fitted, data.X, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="sample_weight"):
        fitted.score(data.X, y, sample_weight=np.ones(len(y)))


def test_bad_inputs(data, y):
    with pytest.raises(ValueError, match="rows"):
        RidgeTAllocator().fit(data.X[:-1], y)
    few = data.treatment.copy()
    few[few == 3] = 2
    few[0] = 3  # a single user in arm 3
    with pytest.raises(ValueError, match="too few"):
        RidgeTAllocator().fit(data.X, rct_target(few, data.revenue, data.cost))


def test_known_propensity(data, y):
    p = {k: 0.25 for k in range(4)}
    est = RidgeTAllocator(random_state=0).fit(data.X, y, propensity=p)
    np.testing.assert_allclose(est.treatment_probabilities_, 0.25)


def test_propensity_dict_keys_of_another_type_are_named(data, y):
    # keys of another type than the labels: the message says so (and prints 1, not
    # np.int64(1))
    with pytest.raises(ValueError, match=r"arm\(s\) \[0, 1, 2, 3\].*keys are of type str"):
        RidgeTAllocator().fit(data.X, y, propensity={str(k): 0.25 for k in range(4)})
    with pytest.raises(ValueError, match=r"arm\(s\) \[3\]; give one per label.$"):
        RidgeTAllocator().fit(data.X, y, propensity={0: 0.25, 1: 0.25, 2: 0.25, 9: 0.25})


def test_per_user_propensities_give_unbiased_arm_probabilities():
    # a stratified RCT (P(arm 1) = 0.5 or 0.1 by stratum): the mean propensity of each
    # arm's users over-weighted the stratum favouring that arm (0.38 and 0.82, sum 1.2)
    rng = np.random.default_rng(0)
    n = 6000
    X = rng.normal(size=(n, 2))
    p1 = np.where(rng.uniform(size=n) < 0.5, 0.1, 0.5)
    t = (rng.uniform(size=n) < p1).astype(int)
    observed = np.where(t == 1, p1, 1 - p1)
    y1 = rct_target(t, X[:, 0] * t + rng.normal(size=n), 1.0 * t)
    est = RidgeTAllocator(random_state=0).fit(X, y1, propensity=observed)
    np.testing.assert_allclose(est.treatment_probabilities_, [0.7, 0.3], atol=0.01)
    np.testing.assert_allclose(est.treatment_probabilities_[1], p1.mean())  # exact, K = 1
    # several levels: only each user's observed arm is known, so the arms' shares
    t3 = np.where(t == 1, rng.integers(1, 3, n), 0)
    y3 = rct_target(t3, X[:, 0] * (t3 > 0) + rng.normal(size=n), 1.0 * t3)
    est = RidgeTAllocator(random_state=0).fit(X, y3, propensity=np.where(
        t3 > 0, p1 / 2, 1 - p1))
    np.testing.assert_allclose(est.treatment_probabilities_, np.bincount(t3) / n)


def test_tags():
    tags = RidgeTAllocator().__sklearn_tags__()
    assert tags.target_tags.required
    assert tags.estimator_type is None


def test_pipeline_and_search_packed_target(data, y):
    pipe = make_pipeline(StandardScaler(), RidgeTAllocator(random_state=0)).fit(data.X, y)
    assert np.isfinite(pipe.score(data.X, y))
    search = GridSearchCV(RidgeTAllocator(random_state=0), {"alpha": [0.1, 10.0]}, cv=3)
    search.fit(data.X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_metadata_routing_pipeline_and_search(data, y, routing):
    est = RidgeTAllocator(random_state=0).set_fit_request(treatment=True, cost=True)
    est.set_score_request(treatment=True, cost=True)
    kw = {"treatment": data.treatment, "cost": data.cost}
    pipe = make_pipeline(StandardScaler(), est).fit(data.X, data.revenue, **kw)
    packed = make_pipeline(StandardScaler(), RidgeTAllocator(random_state=0)).fit(data.X, y)
    assert pipe.score(data.X, data.revenue, **kw) == pytest.approx(packed.score(data.X, y))

    grid = {"ridgetallocator__alpha": [0.1, 10.0]}
    routed = GridSearchCV(pipe, grid, cv=3).fit(data.X, data.revenue, **kw)
    sklearn.set_config(enable_metadata_routing=False)
    plain = GridSearchCV(make_pipeline(StandardScaler(), RidgeTAllocator(random_state=0)),
                         grid, cv=3).fit(data.X, y)
    np.testing.assert_allclose(routed.cv_results_["mean_test_score"],
                               plain.cv_results_["mean_test_score"])


@pytest.mark.parametrize("calibration", ["holdout", "holdout-dr"])
def test_tied_predictions_do_not_overspend_the_calibration_slice(data, calibration):
    # constant features: every user gets the same prediction, so the policy is "nobody"
    # or "everyone at one level"; the calibrated multiplier must not pick an over-budget
    # jump (it did by interpolating across it: twice the budget)
    X = np.ones_like(data.X)
    y = rct_target(data.treatment, data.revenue, data.cost)
    est = RidgeTAllocator(budget=0.5, calibration=calibration, random_state=0).fit(X, y)
    assert len(np.unique(est.predict(X), axis=0)) == 1
    curve = est.calibration_curve_
    assert curve.incremental_cost.max() > 0.5  # everyone at any level overspends
    rct = est._calibration_rct
    for budget in (None, 0.2, 1.0):  # the fitted multiplier, and re-read for other budgets
        policy = est.allocate(X[:rct.n_samples], budget=budget)
        spend = expected_outcome(policy, rct.treatment, rct.revenue, rct.cost).incremental_cost
        assert spend <= (0.5 if budget is None else budget)
    assert (est.allocate(X[:5]) == 0).all()


def test_warns_when_even_the_largest_multiplier_overspends(data):
    # budget 0 with ridge cost models predicting negative cost uplifts for some users:
    # those users are treated at any multiplier, so the spend cannot be met; say so
    y = rct_target(data.treatment, data.revenue, data.cost)
    with pytest.warns(UserWarning,
                      match=r"exceeds the budget \(0\).*predicted cost uplift") as fit_w:
        est = RidgeTAllocator(budget=0.0, random_state=0).fit(data.X, y)
    assert est.calibration_curve_.incremental_cost[0] > 0
    with pytest.warns(UserWarning, match="exceeds the budget") as allocate_w:
        est.allocate(data.X[:5], budget=0.0)
    # both point at the caller's line, not into the package
    assert [w.filename for w in (*fit_w, *allocate_w)] == [__file__] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, y)


@pytest.mark.parametrize("dtype", [np.int8, np.uint64])
def test_integer_labels_keep_their_dtype(dtype):
    from sklearn_budget._validation import arms_to_labels

    labels = arms_to_labels(np.array([0, 1, 2]), np.array([1, 2], dtype=dtype), 0)
    assert labels.dtype == dtype and labels.tolist() == [0, 1, 2]
    big = np.array([2**63 + 1], dtype=np.uint64)
    assert arms_to_labels(np.array([1]), big, 0)[0] == big[0]  # no float rounding


def test_a_failed_refit_leaves_the_allocator_unfitted(data, y):
    # a refit that failed in the calibration split kept the previous fit's models
    # under the new data's labels: allocate answered "bronze" for what was level 1
    est = RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, y)
    rows = np.concatenate([np.flatnonzero(data.treatment == k)[:2] for k in range(4)])
    relabel = np.array([0, 11, 12, 13])[data.treatment[rows]]  # new arm labels
    with pytest.raises(ValueError, match="Cannot hold out"):  # 2 users per arm: no split
        est.fit(data.X[rows], data.revenue[rows], treatment=relabel, cost=data.cost[rows])
    assert not hasattr(est, "levels_") and not hasattr(est, "_calibration_rct")
    with pytest.raises(NotFittedError):
        est.allocate(data.X[:5])
    assert est.get_params()["budget"] == 1.0  # the parameters stay
    np.testing.assert_array_equal(est.fit(data.X, y).predict(data.X[:5]),
                                  RidgeTAllocator(budget=1.0, random_state=0).fit(
                                      data.X, y).predict(data.X[:5]))


def test_a_failed_fit_in_a_pipeline_or_search_raises_its_own_error(data, y):
    # sklearn >= 1.9 sets a callback context on the steps of a Pipeline / search and
    # deletes it after the fit: the clean-up of a failed fit removed it too, and the
    # user saw "no attribute '_parent_callback_ctx'" instead of the input error
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_budget.pipeline import make_budget_pipeline

    for make in (make_pipeline, make_budget_pipeline):
        pipe = make(StandardScaler(), RidgeTAllocator(control_name="c"))
        with pytest.raises(ValueError, match="No control users"):
            pipe.fit(data.X, y)
        with pytest.raises(ValueError, match="rows but the RCT outcomes have"):
            make(StandardScaler(), RidgeTAllocator()).fit(data.X[:-5], y)
    with pytest.raises(ValueError, match="(?s)All the 2 fits failed.*No control users"):
        cross_validate(make_pipeline(StandardScaler(), RidgeTAllocator(control_name="c")),
                       data.X, y, cv=2, error_score=np.nan)


def test_set_params_budget_after_fit_is_what_allocate_spends(data, y):
    # allocate() kept the multiplier of the fit's budget: the old budget's spend
    est = RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, y)
    at_one = est.allocate(data.X)
    est.set_params(budget=0.5)
    np.testing.assert_array_equal(est.allocate(data.X), est.allocate(data.X, budget=0.5))
    assert not np.array_equal(est.allocate(data.X), at_one)
    assert est._deployed_multiplier() == est._multiplier_for(0.5) > est.multiplier_
    est.set_params(budget=1.0)
    np.testing.assert_array_equal(est.allocate(data.X), at_one)


@pytest.mark.parametrize("control_name, match", [
    (True, "got the bool True, which equals the label 1"), ([0], "got list"),
    (np.nan, "must be one label"), (np.array([0, 1]), "got ndarray"),
])
def test_control_name_must_be_one_label(data, y, control_name, match):
    # True silently made label 1 the control; [0] fitted and failed in allocate
    from sklearn_budget.metrics import aucc, expected_outcome

    with pytest.raises(TypeError, match=match):
        RidgeTAllocator(control_name=control_name).fit(data.X, y)
    with pytest.raises(TypeError, match=match):
        expected_outcome(data.treatment, data.treatment, data.revenue, data.cost,
                         control_name=control_name)
    with pytest.raises(TypeError, match=match):
        aucc(data.revenue, data.cost, data.treatment, data.X[:, 0], control_name=control_name)


def test_feature_columns_that_are_not_numbers_are_named(data, y):
    # sklearn said "could not convert string to float: 'a'" (no column), numpy raised a
    # DTypePromotionError for dates
    import pandas as pd

    X = pd.DataFrame(data.X, columns=[f"f{i}" for i in range(data.X.shape[1])])
    cases = [X.assign(f2=pd.Categorical(np.where(X.f2 > 0, "a", "b"))),
             X.assign(f5=pd.Timestamp("2020-01-01")), X.assign(f1=pd.Timedelta("1D"))]
    for bad, name in zip(cases, ("'f2' (category)", "'f5' (datetime64", "'f1' (timedelta64")):
        with pytest.raises(ValueError, match="X has 1 column.s. that are not numbers: "
                                             + re.escape(name)):
            RidgeTAllocator().fit(bad, y)
    est = RidgeTAllocator().fit(X.astype(object), y)  # numbers held as objects are numbers
    with pytest.raises(ValueError, match=re.escape("not numbers: 'f2' (")):
        est.predict(X.assign(f2="x"))


def test_a_calibration_split_that_misses_a_rare_arm_is_named(data):
    # stratification can leave a 3-user arm out of the slice: the error was the cost
    # curve's "Score on a sample with every arm", after the models were fitted
    t = data.treatment.copy()
    t[np.flatnonzero(t == 2)[3:]] = 1
    with pytest.raises(ValueError, match=r"Cannot hold out calibration_size=0.05.*arm\(s\) \[2\]"):
        RidgeTAllocator(calibration_size=0.05, random_state=0).fit(
            data.X, rct_target(t, data.revenue, data.cost))


def test_a_failed_fit_keeps_the_metadata_requests(data, y):
    # the clean-up after a failed fit deleted the set_fit_request / set_score_request
    # choices, and a later routed GridSearchCV asked for requests already made
    with sklearn.config_context(enable_metadata_routing=True):
        est = RidgeTAllocator(budget=1.0, random_state=0)
        est.set_fit_request(treatment=True, cost=True).set_score_request(
            treatment=True, cost=True)
        with pytest.raises(ValueError, match="negative"):
            est.fit(data.X, data.revenue, treatment=data.treatment, cost=-data.cost - 1)
        assert not hasattr(est, "levels_")
        routing = est.get_metadata_routing()
        assert routing.fit.requests == {"treatment": True, "cost": True, "propensity": None}
        assert routing.score.requests["treatment"] is True
        search = GridSearchCV(est, {"alpha": [0.1, 10.0]}, cv=3).fit(
            data.X, data.revenue, treatment=data.treatment, cost=data.cost)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_a_dataframe_target_with_the_rct_columns(data, y):
    # a DataFrame y with treatment / revenue / cost columns was "Missing RCT input(s)"
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"treatment": data.treatment, "revenue": data.revenue,
                          "cost": data.cost}, index=np.arange(len(data.X)) + 100)
    ref = RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, y)
    est = RidgeTAllocator(budget=1.0, random_state=0).fit(data.X, frame)
    np.testing.assert_array_equal(est.predict(data.X[:50]), ref.predict(data.X[:50]))
    assert est.score(data.X, frame) == ref.score(data.X, y)
    search = GridSearchCV(RidgeTAllocator(budget=1.0, random_state=0),
                          {"alpha": [0.1, 10.0]}, cv=3).fit(data.X, frame)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    with pytest.raises(ValueError, match="already a packed rct_target"):
        RidgeTAllocator(budget=1.0).fit(data.X, frame, treatment=data.treatment)


def _stratified_rct(n=6000, seed=0):
    """A stratified RCT (P(arm 1) = 0.5 or 0.1 by stratum) and each user's propensity."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    p1 = np.where(X[:, 1] > 0, 0.1, 0.5)
    t = (rng.uniform(size=n) < p1).astype(int)
    revenue = (1.0 + X[:, 0] + 3.0 * (X[:, 1] > 0)) * t + rng.normal(size=n)
    return X, t, revenue, 1.0 * t, np.where(t == 1, p1, 1 - p1)


def test_propensity_packed_in_the_target_is_used_as_the_keyword():
    # a per-user propensity travels in y (sliced with it by CV); a 'propensity' column of
    # a DataFrame y is not read (it often holds P(treated | x)), and was ignored without a
    # word: it warns
    import pandas as pd

    X, t, revenue, cost, p = _stratified_rct()
    packed = rct_target(t, revenue, cost, propensity=p)
    assert packed.dtype.names == ("treatment", "revenue", "cost", "propensity")
    plain = rct_target(t, revenue, cost)
    by_keyword = RidgeTAllocator(random_state=0).fit(X, plain, propensity=p)
    est = RidgeTAllocator(random_state=0).fit(X, packed)
    np.testing.assert_array_equal(est.treatment_probabilities_,
                                  by_keyword.treatment_probabilities_)
    assert est.multiplier_ == by_keyword.multiplier_
    weighted = by_keyword.score(X, plain, propensity=p)
    assert weighted != pytest.approx(by_keyword.score(X, plain))  # the weights matter here
    frame = pd.DataFrame({"treatment": t, "revenue": revenue, "cost": cost, "propensity": p},
                         index=np.arange(len(t)) + 7)
    assert by_keyword.score(X, packed) == weighted
    assert make_budget_scorer(1.0)(by_keyword, X, packed) == weighted
    with pytest.warns(UserWarning, match="'propensity' column of the DataFrame `y` is not"):
        assert by_keyword.score(X, frame) == by_keyword.score(X, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given as the keyword: no warning
        assert by_keyword.score(X, frame, propensity=p) == weighted
    sliced = packed[::2]  # sliced like the rest of y
    assert by_keyword.score(X[::2], sliced) == by_keyword.score(X[::2], plain[::2],
                                                                propensity=p[::2])
    with pytest.raises(ValueError, match="carries a 'propensity' field; do not pass"):
        RidgeTAllocator().fit(X, packed, propensity=p)
    with pytest.raises(TypeError, match="pass it as `propensity=` to fit / score"):
        rct_target(t, revenue, cost, propensity={0: 0.5, 1: 0.5})
    with pytest.raises(ValueError, match="propensity=3"):
        rct_target(t, revenue, cost, propensity=p[:3])


def test_an_unrequested_routed_scorer_refuses_the_metadata(data, routing):
    # with routing on, metadata passed to a search whose budget scorer has no request was
    # NaN for every candidate (the search 'succeeded'), as scikit-learn's scorers refuse it
    from sklearn.exceptions import UnsetMetadataPassedError

    est = RidgeTAllocator(random_state=0).set_fit_request(treatment=True, cost=True)
    kw = {"treatment": data.treatment, "cost": data.cost}
    search = GridSearchCV(est, {"alpha": [0.1, 10.0]}, cv=2, scoring=make_budget_scorer(1.0))
    with pytest.raises(UnsetMetadataPassedError, match="treatment, cost"):
        search.fit(data.X, data.revenue, **kw)
    scorer = make_budget_scorer(1.0).set_score_request(treatment=True, cost=True)
    search = GridSearchCV(est, {"alpha": [0.1, 10.0]}, cv=2, scoring=scorer)
    assert np.isfinite(search.fit(data.X, data.revenue, **kw).cv_results_[
        "mean_test_score"]).all()
    # a propensity routed to fit alone still works with an unrequested scorer (declined)
    est_p = RidgeTAllocator(random_state=0).set_fit_request(treatment=True, cost=True,
                                                            propensity=True)
    search = GridSearchCV(est_p, {"alpha": [0.1, 10.0]}, cv=2, scoring=scorer)
    p = np.full(len(data.treatment), 0.25)
    assert np.isfinite(search.fit(data.X, data.revenue, propensity=p, **kw).cv_results_[
        "mean_test_score"]).all()
    # the message of a missing input names the request, not the routing already on
    with pytest.raises(ValueError, match=r"set_score_request\(treatment=True, cost=True\)"):
        search.best_estimator_.score(data.X, data.revenue)


def test_budget_scorer_on_a_plain_pipeline_names_the_budget_pipeline(fitted, data, y):
    pipe = make_pipeline(StandardScaler(), RidgeTAllocator(random_state=0)).fit(data.X, y)
    with pytest.raises(TypeError, match="make_budget_pipeline"):
        make_budget_scorer(1.0)(pipe, data.X, y)


def test_too_few_users_names_numpy_labels_plainly(data):
    t = np.array([0, 0, 0, 1, 1, 1, 2], dtype=np.int64)
    with pytest.raises(ValueError, match=r"too few users: \{2: 1\}"):
        RidgeTAllocator().fit(np.zeros((7, 2)), rct_target(t, np.ones(7), 1.0 * (t > 0)))
