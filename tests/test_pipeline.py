"""BudgetPipeline: a Pipeline that also allocates and predicts costs."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_budget import EndToEndBudgetAllocator, rct_target
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import make_budget_scorer
from sklearn_budget.pipeline import BudgetPipeline, make_budget_pipeline


@pytest.fixture(scope="module")
def data():
    d = make_marketing_rct(n_samples=2000, random_state=0)
    return d, rct_target(d.treatment, d.revenue, d.cost)


def _allocator():
    return EndToEndBudgetAllocator(budget=1.0, max_epochs=3, warmup_epochs=1,
                                   hidden_layer_sizes=(16,), random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    d, y = data
    return make_budget_pipeline(StandardScaler(), _allocator()).fit(d.X, y)


def test_methods_are_the_last_steps_on_transformed_features(fitted, data):
    d, _ = data
    scaled = fitted[0].transform(d.X)
    last = fitted[-1]
    np.testing.assert_array_equal(fitted.allocate(d.X), last.allocate(scaled))
    np.testing.assert_array_equal(fitted.allocate(d.X, budget=0.5),
                                  last.allocate(scaled, budget=0.5))
    np.testing.assert_array_equal(fitted.allocate(d.X, total_budget=100.0),
                                  last.allocate(scaled, total_budget=100.0))
    np.testing.assert_allclose(fitted.predict_cost(d.X), last.predict_cost(scaled))
    np.testing.assert_allclose(fitted.predict(d.X), last.predict(scaled))


def test_plain_pipeline_lacks_them_budget_pipeline_has_them(fitted):
    plain = Pipeline(fitted.steps)
    assert not hasattr(plain, "allocate") and not hasattr(plain, "predict_cost")
    assert hasattr(fitted, "allocate") and hasattr(fitted, "predict_cost")


def test_methods_hidden_when_the_last_step_has_none():
    pipe = BudgetPipeline([("scale", StandardScaler()), ("reg", LinearRegression())])
    assert not hasattr(pipe, "allocate") and not hasattr(pipe, "predict_cost")


def test_single_step_pipeline(data):
    d, y = data
    pipe = BudgetPipeline([("alloc", _allocator())]).fit(d.X, y)
    np.testing.assert_array_equal(pipe.allocate(d.X), pipe[-1].allocate(d.X))


def test_budget_scorer_and_grid_search(fitted, data):
    d, y = data
    scorer = make_budget_scorer(budget=1.0)
    assert scorer(fitted, d.X, y) == pytest.approx(fitted[-1].score(fitted[0].transform(d.X), y))
    search = GridSearchCV(make_budget_pipeline(StandardScaler(), _allocator()),
                          {"endtoendbudgetallocator__reg_weight": [0.0, 1.0]}, cv=2,
                          scoring=make_budget_scorer(budget=0.5)).fit(d.X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.allocate(d.X[:5]).shape == (5,)


def test_clone_and_pickle(fitted, data):
    d, _ = data
    assert isinstance(clone(fitted), BudgetPipeline)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.allocate(d.X), fitted.allocate(d.X))


def test_make_budget_pipeline_names_steps():
    pipe = make_budget_pipeline(StandardScaler(), _allocator())
    assert [name for name, _ in pipe.steps] == ["standardscaler", "endtoendbudgetallocator"]
    # the same keywords as sklearn's make_pipeline
    pipe = make_budget_pipeline(StandardScaler(), _allocator(), memory=None,
                                transform_input=["treatment"], verbose=True)
    assert pipe.transform_input == ["treatment"] and pipe.verbose


def test_scorer_and_display_read_the_last_steps_labels(data):
    # control labelled "ctrl": the scorer and the plot must use the allocator's
    # control_name and levels_, not 0 and the levels in y
    pytest.importorskip("matplotlib")
    from sklearn_budget.plotting import CostCurveDisplay

    d, _ = data
    names = np.array(["ctrl", "a", "b", "c"])
    treatment = names[d.treatment]
    y = rct_target(treatment, d.revenue, d.cost)
    alloc = _allocator().set_params(control_name="ctrl")
    pipe = make_budget_pipeline(StandardScaler(), alloc).fit(d.X, y)
    assert pipe.control_name == "ctrl" and list(pipe.levels_) == ["a", "b", "c"]
    score = make_budget_scorer(budget=1.0)(pipe, d.X, y)
    assert score == pytest.approx(pipe.score(d.X, y))
    display = CostCurveDisplay.from_estimator(pipe, d.X, y)
    assert np.isfinite(display.incremental_cost).all() and display.incremental_cost.size > 1
    # a slice without level "c" is judged against the fitted levels ("c" has no users),
    # not against the two levels found in y (a column-count mismatch)
    keep = treatment != "c"
    y_part = rct_target(treatment[keep], d.revenue[keep], d.cost[keep])
    with pytest.raises(ValueError, match=r"no users in level\(s\) \['c'\]"):
        make_budget_scorer(budget=1.0)(pipe, d.X[keep], y_part)


def test_labels_unavailable_before_fit_or_without_an_allocator():
    pipe = make_budget_pipeline(StandardScaler(), _allocator())
    assert pipe.control_name == 0 and not hasattr(pipe, "levels_")
    plain = BudgetPipeline([("scale", StandardScaler()), ("reg", LinearRegression())])
    assert not hasattr(plain, "control_name")


def test_score_passes_the_rct_keywords_to_the_last_step(fitted, data):
    # Pipeline.score dropped them without metadata routing: a given propensity was
    # ignored (the score without it came back), treatment / cost gave "Missing RCT input"
    d, y = data
    last, scaled = fitted[-1], fitted[:-1].transform(d.X)
    p = np.where(d.treatment == 0, 0.4, 0.2)  # not the arm frequencies
    got = fitted.score(d.X, y, propensity=p)
    assert got == last.score(scaled, y, propensity=p) != fitted.score(d.X, y)
    assert fitted.score(d.X, d.revenue, treatment=d.treatment, cost=d.cost) == \
        fitted.score(d.X, y)
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['budget'\]"):
        fitted.score(d.X, y, budget=1.0)


def test_fit_takes_the_rct_keywords_like_the_allocator(fitted, data):
    # Pipeline.fit wanted them as endtoendbudgetallocator__treatment (score took them
    # bare): "Pipeline.fit does not accept the treatment parameter"
    d, y = data
    pipe = make_budget_pipeline(StandardScaler(), _allocator()).fit(
        d.X, d.revenue, treatment=d.treatment, cost=d.cost)
    np.testing.assert_array_equal(pipe.predict(d.X[:50]), fitted.predict(d.X[:50]))
    prefixed = make_budget_pipeline(StandardScaler(), _allocator()).fit(
        d.X, d.revenue, endtoendbudgetallocator__treatment=d.treatment,
        endtoendbudgetallocator__cost=d.cost)
    np.testing.assert_array_equal(prefixed.predict(d.X[:50]), fitted.predict(d.X[:50]))


class _Clip(TransformerMixin, BaseEstimator):
    """A stateless transformer (it learns nothing, so it has no fitted attributes)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), -3, 3)


def test_transformers_the_pipeline_checks_rows_of_still_work(data):
    # review of the row-count check: a stateless transformer made predict (and, before,
    # predict_cost / allocate) raise NotFittedError; a list output, a generator X and a dict
    # of columns X raised AttributeError / TypeError / a false "rows changed" error
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_budget import TwoStageBudgetAllocator

    d, y = data
    X = d.X[:300]

    def two_stage():
        return TwoStageBudgetAllocator(budget=1.0, random_state=0)

    reference = make_budget_pipeline(FunctionTransformer(), two_stage()).fit(d.X, y)
    expected = [reference.predict(X), reference.predict_cost(X), reference.allocate(X)]
    stateless = make_budget_pipeline(_Clip(), two_stage()).fit(d.X, y)
    as_list = make_budget_pipeline(FunctionTransformer(lambda A: np.asarray(A).tolist()),
                                   two_stage()).fit(d.X, y)
    columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    from_dict = make_budget_pipeline(
        FunctionTransformer(lambda A: np.column_stack(list(A.values()))
                            if isinstance(A, dict) else A), two_stage()).fit(d.X, y)
    from_rows = make_budget_pipeline(FunctionTransformer(lambda A: np.array(list(A))),
                                     two_stage()).fit(d.X, y)
    for pipe, inputs in ((stateless, lambda: np.clip(X, -3, 3)), (as_list, lambda: X),
                         (from_dict, lambda: columns),
                         (from_rows, lambda: (row for row in X))):
        got = [pipe.predict(inputs()), pipe.predict_cost(inputs()), pipe.allocate(inputs())]
        if pipe is not stateless:
            for a, b in zip(got, expected):
                np.testing.assert_array_equal(a, b)
        else:
            assert [g.shape for g in got] == [e.shape for e in expected]
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_cost", "allocate"):  # unfitted: named as the pipeline
        with pytest.raises(NotFittedError, match="This BudgetPipeline instance is not fitted"):
            getattr(make_budget_pipeline(StandardScaler(), two_stage()), method)(X)
    da = pytest.importorskip("dask.array")  # chunk by chunk too (it raised NotFittedError)
    np.testing.assert_array_equal(stateless.allocate(da.from_array(X, chunks=(100, -1))),
                                  stateless.allocate(X))
