"""scikit-learn's common estimator checks, and their RCT versions.

Part 1 runs ``parametrize_with_checks`` on both allocators. Most of sklearn's
checks fit on a plain ``y`` vector without a treatment column or costs, which
an RCT estimator must reject (``ValueError: Missing RCT input(s)``); those are
listed in :func:`expected_failed_checks` with the reason, and run in strict
xfail mode so that a check which starts passing is noticed.

Part 2 re-runs what those checks verify (fit returns self, parameters are not
touched, ``n_features_in_``, idempotent fit, subset and order invariance,
dtypes, read-only and Fortran inputs, NaN/inf, pickling, ...) on packed RCT
targets, so that the contract is still tested.
"""

import copy
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from sklearn_budget import EndToEndBudgetAllocator, rct_target
from sklearn_budget._two_stage import TwoStageBudgetAllocator
from sklearn_budget.datasets import make_marketing_rct


def _estimators():
    """Fresh, fast instances of the allocators (TwoStage only with causalml and LightGBM)."""
    estimators = []
    try:
        import lightgbm
        from causalml.inference.meta import BaseTRegressor
    except ImportError:  # pragma: no cover - the test extra installs both
        pass
    else:
        learner = BaseTRegressor(
            learner=lightgbm.LGBMRegressor(n_estimators=5, num_leaves=7, n_jobs=1, verbose=-1))
        estimators.append(TwoStageBudgetAllocator(learner, budget=1.0, random_state=0))
    estimators.append(EndToEndBudgetAllocator(
        budget=1.0, max_epochs=2, warmup_epochs=1, hidden_layer_sizes=(8,), batch_size=256,
        random_state=0))
    return estimators


# -- part 1: scikit-learn's checks -----------------------------------------------------

_PLAIN_Y = ("the check fits on a plain y vector with no treatment column and no cost; an "
            "RCT allocator rejects that with 'ValueError: Missing RCT input(s): treatment, "
            "cost' (tested on packed RCT targets in this file instead)")

_RCT_REASONS = {
    "check_fit_score_takes_y": _PLAIN_Y,
    "check_estimators_overwrite_params": _PLAIN_Y + ": test_fit_keeps_params_and_returns_self",
    "check_dont_overwrite_parameters": _PLAIN_Y + ": test_fit_keeps_params_and_returns_self",
    "check_estimators_fit_returns_self": _PLAIN_Y + ": test_fit_keeps_params_and_returns_self",
    "check_readonly_memmap_input": _PLAIN_Y + ": test_readonly_memmap_input",
    "check_n_features_in_after_fitting": _PLAIN_Y + ": test_n_features_in",
    "check_n_features_in": _PLAIN_Y + ": test_n_features_in",
    "check_positive_only_tag_during_fit": _PLAIN_Y + " (negative X is fine: the synthetic "
                                          "RCT features are mostly negative or positive "
                                          "normals)",
    "check_estimators_dtypes": _PLAIN_Y + ": test_dtypes",
    "check_dtype_object": _PLAIN_Y + ": test_dtype_object",
    "check_pipeline_consistency": _PLAIN_Y + ": test_pipeline_consistency",
    "check_estimators_nan_inf": _PLAIN_Y + ": test_nan_inf",
    "check_estimators_pickle": _PLAIN_Y + ": test_pickle",
    "check_f_contiguous_array_estimator": _PLAIN_Y + ": test_fortran_input",
    "check_methods_sample_order_invariance": _PLAIN_Y + ": test_subset_and_order_invariance",
    "check_methods_subset_invariance": _PLAIN_Y + ": test_subset_and_order_invariance",
    "check_fit2d_1sample": "the check accepts only sklearn's wording for a one-sample fit "
                           "('1 sample', ...); with a plain y the RCT allocator first "
                           "reports the missing treatment and cost: test_tiny_inputs",
    "check_fit2d_1feature": _PLAIN_Y + ": test_tiny_inputs",
    "check_dict_unchanged": _PLAIN_Y + ": test_dict_unchanged",
    "check_fit_idempotent": _PLAIN_Y + ": test_fit_idempotent",
    "check_fit_check_is_fitted": _PLAIN_Y + ": test_fit_check_is_fitted",
    "check_fit2d_predict1d": _PLAIN_Y + ": test_predict_1d",
    "check_requires_y_none": "y=None raises 'ValueError: Missing RCT input(s): y, treatment, "
                             "cost' (a clear message naming y, but not the literal "
                             "sentence the check looks for): test_requires_y",
}


def expected_failed_checks(estimator):
    return dict(_RCT_REASONS)


@parametrize_with_checks(_estimators(), expected_failed_checks=expected_failed_checks,
                         xfail_strict=True)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# -- part 2: the same contracts on RCT data --------------------------------------------


@pytest.fixture(scope="module")
def data():
    return make_marketing_rct(n_samples=800, random_state=0)


@pytest.fixture(scope="module")
def y(data):
    return rct_target(data.treatment, data.revenue, data.cost)


@pytest.fixture(params=range(len(_estimators())),
                ids=[type(e).__name__ for e in _estimators()])
def estimator(request):
    return clone(_estimators()[request.param])


def _outputs(est, X):
    return est.predict(X), est.predict_cost(X), est.allocate(X)


def _assert_same_outputs(a, b, **tol):
    np.testing.assert_allclose(a[0], b[0], **tol)
    np.testing.assert_allclose(a[1], b[1], **tol)
    np.testing.assert_array_equal(a[2], b[2])


def test_fit_keeps_params_and_returns_self(estimator, data, y):
    params = estimator.get_params(deep=True)
    before = joblib.hash(params)
    attrs = set(vars(estimator))
    assert estimator.fit(data.X, y) is estimator
    assert joblib.hash(estimator.get_params(deep=True)) == before
    new_public = [a for a in set(vars(estimator)) - attrs
                  if not a.endswith("_") and not a.startswith("_")]
    assert new_public == []
    # the learner templates are not fitted in place (TwoStage clones them)
    for value in params.values():
        if hasattr(value, "fit"):
            assert not hasattr(value, "t_groups")


def test_n_features_in(estimator, data, y):
    assert not hasattr(estimator, "n_features_in_")
    estimator.fit(data.X, y)
    assert estimator.n_features_in_ == data.X.shape[1]
    for method in (estimator.predict, estimator.predict_cost, estimator.allocate):
        with pytest.raises(ValueError, match="features"):
            method(data.X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        estimator.score(data.X[:, :-1], y)
    # refitting on other data resets it
    estimator.fit(data.X[:, :5], y)
    assert estimator.n_features_in_ == 5
    assert estimator.predict(data.X[:3, :5]).shape == (3, 3)


def test_feature_names(estimator, data, y):
    pd = pytest.importorskip("pandas")
    columns = [f"f{j}" for j in range(data.X.shape[1])]
    df = pd.DataFrame(data.X, columns=columns)
    estimator.fit(df, y)
    assert estimator.feature_names_in_.tolist() == columns
    with pytest.warns(UserWarning, match="feature names"):
        estimator.predict(data.X[:5])
    with pytest.raises(ValueError, match="feature names"):
        estimator.predict(df.rename(columns={"f0": "other"}))
    assert not hasattr(clone(estimator).fit(data.X, y), "feature_names_in_")


def test_fit_idempotent(estimator, data, y):
    first = _outputs(estimator.fit(data.X, y), data.X)
    second = _outputs(estimator.fit(data.X, y), data.X)
    _assert_same_outputs(first, second, rtol=0, atol=0)
    assert clone(estimator).fit(data.X, y).multiplier_ == estimator.multiplier_


def test_fit_check_is_fitted(estimator, data, y):
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    for method in (estimator.predict, estimator.predict_cost, estimator.allocate):
        with pytest.raises(NotFittedError):
            method(data.X)
    with pytest.raises(NotFittedError):
        estimator.score(data.X, y)
    check_is_fitted(estimator.fit(data.X, y))


def test_subset_and_order_invariance(estimator, data, y):
    X = data.X
    estimator.fit(X, y)
    full = _outputs(estimator, X)
    batches = [_outputs(estimator, X[s:s + 7]) for s in range(0, len(X), 7)]
    stacked = tuple(np.concatenate([b[i] for b in batches]) for i in range(3))
    _assert_same_outputs(stacked, full, rtol=1e-7, atol=1e-9)
    perm = np.random.RandomState(0).permutation(len(X))
    permuted = _outputs(estimator, X[perm])
    _assert_same_outputs(permuted, tuple(o[perm] for o in full), rtol=1e-7, atol=1e-9)


def test_dict_unchanged(estimator, data, y):
    estimator.fit(data.X, y)
    before = {k: joblib.hash(v) if isinstance(v, np.ndarray) else v
              for k, v in vars(estimator).items()}
    estimator.predict(data.X)
    estimator.predict_cost(data.X)
    estimator.allocate(data.X)
    estimator.allocate(data.X, budget=2.0)
    estimator.allocate(data.X, total_budget=100.0)
    estimator.score(data.X, y)
    after = {k: joblib.hash(v) if isinstance(v, np.ndarray) else v
             for k, v in vars(estimator).items()}
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] is before[key] or after[key] == before[key], key


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_dtypes(estimator, data, y, dtype):
    X = (data.X * 10).astype(dtype)
    estimator.fit(X, y)
    r, c, labels = _outputs(estimator, X)
    assert r.dtype == c.dtype == np.float64
    assert r.shape == c.shape == (len(X), 3) and labels.shape == (len(X),)
    assert np.isfinite(estimator.score(X, y))


def test_dtype_object(estimator, data, y):
    X = data.X.astype(object)
    estimator.fit(X, y)
    assert estimator.predict(X).shape == (len(X), 3)
    X[0, 0] = "a string"
    with pytest.raises((TypeError, ValueError)):
        clone(estimator).fit(X, y)


def test_readonly_memmap_input(estimator, data, y, tmp_path):
    X_path, y_path = tmp_path / "X.pkl", tmp_path / "y.npy"
    joblib.dump(data.X, X_path)
    np.save(y_path, y)
    X = joblib.load(X_path, mmap_mode="r")
    y_ro = np.load(y_path, mmap_mode="r", allow_pickle=False)
    assert not X.flags.writeable and not y_ro.flags.writeable
    estimator.fit(X, y_ro)
    ref = clone(estimator).fit(data.X, y)
    _assert_same_outputs(_outputs(estimator, X), _outputs(ref, data.X), rtol=0, atol=0)
    assert np.isfinite(estimator.score(X, y_ro))


def test_fortran_input(estimator, data, y):
    X = np.asfortranarray(data.X)
    estimator.fit(X, y)
    # the same model predicts the same for C- and Fortran-ordered rows, up to float32
    # rounding for the torch network (its matmul takes another path for strided input)
    fortran = estimator.predict(X), estimator.predict_cost(X)
    contiguous = estimator.predict(data.X), estimator.predict_cost(data.X)
    for f, c in zip(fortran, contiguous):
        np.testing.assert_allclose(f, c, rtol=1e-5, atol=1e-5 * np.abs(c).max())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(estimator, data, y, bad):
    X = data.X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        clone(estimator).fit(X, y)
    estimator.fit(data.X, y)
    for method in (estimator.predict, estimator.predict_cost, estimator.allocate):
        with pytest.raises(ValueError, match="NaN|infinity"):
            method(X)


def _pickle_param(est):
    marks = []
    return pytest.param(est, marks=marks, id=type(est).__name__)


@pytest.mark.parametrize("unfitted", [_pickle_param(e) for e in _estimators()])
def test_pickle(unfitted, data, y):
    assert pickle.loads(pickle.dumps(unfitted)).get_params().keys() == \
        unfitted.get_params().keys()
    est = clone(unfitted).fit(data.X, y)
    restored = pickle.loads(pickle.dumps(est))
    _assert_same_outputs(_outputs(restored, data.X), _outputs(est, data.X), rtol=0, atol=0)
    assert restored.score(data.X, y) == est.score(data.X, y)


def test_deepcopy(estimator, data, y):
    estimator.fit(data.X, y)
    _assert_same_outputs(_outputs(copy.deepcopy(estimator), data.X),
                         _outputs(estimator, data.X), rtol=0, atol=0)


def test_pipeline_consistency(estimator, data, y):
    pipe = make_pipeline(clone(estimator)).fit(data.X, y)
    estimator.fit(data.X, y)
    _assert_same_outputs(_outputs(pipe[-1], data.X), _outputs(estimator, data.X),
                         rtol=0, atol=0)
    assert pipe.score(data.X, y) == estimator.score(data.X, y)


def test_tiny_inputs(estimator, data, y):
    # one feature is enough
    estimator.fit(data.X[:, :1], y)
    assert estimator.predict(data.X[:4, :1]).shape == (4, 3)
    # one sample is not an RCT (and neither is an empty one)
    with pytest.raises(ValueError):
        clone(estimator).fit(data.X[:1], y[:1])
    with pytest.raises(ValueError):
        clone(estimator).fit(data.X[:0], y[:0])


def test_predict_1d(estimator, data, y):
    estimator.fit(data.X, y)
    for method in (estimator.predict, estimator.predict_cost, estimator.allocate):
        with pytest.raises(ValueError, match="2D"):
            method(data.X[0])


def test_requires_y(estimator, data):
    with pytest.raises(ValueError, match=r"Missing RCT input\(s\): y"):
        estimator.fit(data.X, None)
    with pytest.raises(ValueError, match="Missing RCT input"):
        estimator.fit(data.X, data.revenue)


def test_negative_features(estimator, data, y):
    # sklearn's positive_only tag stays False: negative features are fine
    assert not estimator.__sklearn_tags__().input_tags.positive_only
    X = -np.abs(data.X)
    assert np.isfinite(estimator.fit(X, y).predict(X)).all()
