"""Fitted allocators and pipelines on Dask arrays: the in-memory results, chunk by chunk."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install '.[dask]'")

from sklearn_budget import EndToEndBudgetAllocator, rct_target  # noqa: E402
from sklearn_budget.datasets import make_marketing_rct  # noqa: E402
from sklearn_budget.pipeline import make_budget_pipeline  # noqa: E402


def _allocator(**params):
    return EndToEndBudgetAllocator(budget=1.0, max_epochs=3, warmup_epochs=1,
                                   hidden_layer_sizes=(16,), random_state=0, **params)


@pytest.fixture(scope="module")
def data():
    d = make_marketing_rct(n_samples=2000, random_state=0)
    return d, rct_target(d.treatment, d.revenue, d.cost)


@pytest.fixture(scope="module")
def fitted(data):
    d, y = data
    return _allocator().fit(d.X, y)


def _same_labels(lazy, expected):
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_allocator_methods_on_dask_match_numpy(fitted, data):
    d, _ = data
    X = da.from_array(d.X, chunks=(300, 3))  # rows and features both chunked
    for method in ("predict", "predict_cost"):
        lazy = getattr(fitted, method)(X)
        assert isinstance(lazy, da.Array) and lazy.shape == (2000, fitted.n_levels_)
        np.testing.assert_allclose(lazy.compute(), getattr(fitted, method)(d.X),
                                   rtol=1e-6, atol=1e-9)
    _same_labels(fitted.allocate(X), fitted.allocate(d.X))
    _same_labels(fitted.allocate(X, budget=0.5), fitted.allocate(d.X, budget=0.5))
    # one budget problem over every chunk: the solver's Dask path
    _same_labels(fitted.allocate(X, total_budget=300.0), fitted.allocate(d.X, total_budget=300.0))


def test_dataframe_fit_and_text_labels(data):
    """Chunks reach the model with the feature names it was fitted with (no warning)."""
    d, _ = data
    labels = np.array(["none", "5off", "10off", "20off"])[d.treatment]
    frame = pd.DataFrame(d.X, columns=[f"f{i}" for i in range(d.X.shape[1])])
    est = _allocator(control_name="none").fit(frame, d.revenue, treatment=labels, cost=d.cost)
    X = da.from_array(d.X, chunks=(500, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = est.allocate(X)
        _same_labels(lazy, est.allocate(frame))
    assert set(np.unique(lazy.compute())) <= {"none", "5off", "10off", "20off"}


def test_a_dask_dataframe_fit_keeps_the_column_names(data):
    # fit computed a Dask DataFrame into a bare array: no feature_names_in_, so reordered
    # columns were scored silently, and text / NA columns gave raw AttributeError / TypeError
    dd = pytest.importorskip("dask.dataframe")
    d, y = data
    frame = pd.DataFrame(d.X, columns=[f"f{i}" for i in range(d.X.shape[1])])
    est = _allocator().fit(dd.from_pandas(frame, npartitions=3), y)
    assert list(est.feature_names_in_) == list(frame.columns)
    with pytest.raises(ValueError, match="select those, in that order"):
        est.allocate(dd.from_pandas(frame[frame.columns[::-1]], npartitions=2))
    text = frame.assign(f3=np.where(d.X[:, 3] > 0, "a", "b"))
    with pytest.raises(ValueError, match="column\\(s\\) that are not numbers: 'f3'"):
        _allocator().fit(dd.from_pandas(text, npartitions=2), y)
    missing = frame.astype({"f1": "Float64"})
    missing.loc[5, "f1"] = pd.NA
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _allocator().fit(dd.from_pandas(missing, npartitions=2), y)


def test_a_pipeline_step_that_drops_rows_is_named(data):
    # allocate returned 299 labels for 300 users; on Dask the lazy shape said 300
    from sklearn.preprocessing import FunctionTransformer

    d, y = data
    pipe = make_budget_pipeline(FunctionTransformer(), _allocator()).fit(d.X, y)
    pipe.steps[0] = ("drop_first", FunctionTransformer(lambda X: X[1:]).fit(d.X))
    for method in (pipe.allocate, pipe.predict, pipe.predict_cost):
        with pytest.raises(ValueError, match=r"turned 300 rows into 299"):
            method(d.X[:300])
        with pytest.raises(ValueError, match=r"turned 300 rows into 299"):
            np.asarray(method(da.from_array(d.X[:600], chunks=(300, -1))))


def test_budget_pipeline_on_dask(data):
    d, y = data
    pipe = make_budget_pipeline(StandardScaler(), _allocator()).fit(d.X, y)
    X = da.from_array(d.X, chunks=(400, -1))
    np.testing.assert_allclose(pipe.predict(X).compute(), pipe.predict(d.X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pipe.predict_cost(X).compute(), pipe.predict_cost(d.X),
                               rtol=1e-6, atol=1e-9)
    _same_labels(pipe.allocate(X), pipe.allocate(d.X))
    _same_labels(pipe.allocate(X, total_budget=200.0), pipe.allocate(d.X, total_budget=200.0))


def test_errors_are_raised_when_called_not_when_computed(fitted, data):
    d, _ = data
    X = da.from_array(d.X, chunks=500)
    with pytest.raises(ValueError, match="X has 3 features, but EndToEndBudgetAllocator was "
                                         "fitted with 8 features"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="unknown size"):
        fitted.allocate(X[X[:, 0] > 0])
    with pytest.raises(ValueError, match="2-D"):
        fitted.predict_cost(X[:, 0])
    with pytest.raises(ValueError, match="at most one of `budget`"):
        fitted.allocate(X, budget=1.0, total_budget=10.0)
    with pytest.raises(ValueError, match="`budget` must be finite"):
        fitted.allocate(X, budget=-1.0)
    with pytest.raises(NotFittedError):
        _allocator().predict(X)
    bad = d.X.copy()
    bad[1234, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        # one thread: a chunk still running when another raised would call the model after
        # this test (a later test counts the model's calls)
        fitted.allocate(da.from_array(bad, chunks=500)).compute(scheduler="synchronous")


def test_chunks_a_filter_emptied(fitted, data):
    """0-row chunks (what boolean filtering gives) are empty parts of the result."""
    d, y = data
    keep = np.zeros(2000, dtype=bool)
    keep[:300] = keep[1600:1700] = True
    X = da.from_array(d.X, chunks=(500, -1))[da.from_array(keep, chunks=500)]
    X = X.compute_chunk_sizes()
    assert 0 in X.chunks[0]
    np.testing.assert_allclose(fitted.predict(X).compute(), fitted.predict(d.X[keep]),
                               rtol=1e-6, atol=1e-9)
    _same_labels(fitted.allocate(X), fitted.allocate(d.X[keep]))
    _same_labels(fitted.allocate(X, total_budget=20.0),
                 fitted.allocate(d.X[keep], total_budget=20.0))
    pipe = make_budget_pipeline(StandardScaler(), _allocator()).fit(d.X, y)
    _same_labels(pipe.allocate(X), pipe.allocate(d.X[keep]))


def test_nan_prediction_names_the_users_row(fitted, data):
    d, _ = data
    bad = d.X.copy()
    bad[1234, 2] = 1e300  # finite, but the network overflows on it
    with pytest.raises(ValueError, match=r"for 1 of 500 users in rows 1000\.\.1499 of 2000 "
                                         r"\(first at row 1234\)"):
        fitted.predict(da.from_array(bad, chunks=500)).compute(scheduler="synchronous")


def test_total_budget_predicts_each_chunk_three_times(fitted, data, monkeypatch):
    """The solver's two passes and the labels: revenue and cost come from one model call."""
    d, _ = data
    # 26,000 users: above the size solved without a subsample; no two alike (copies tie,
    # and tied candidates can take the solver's completion one more pass)
    X = np.tile(d.X, (13, 1)) + np.random.default_rng(0).normal(scale=1e-3, size=(26_000, 1))
    calls = []
    predict = type(fitted)._predict_uplift
    monkeypatch.setattr(type(fitted), "_predict_uplift",
                        lambda self, X: calls.append(X.shape[0]) or predict(self, X))
    labels = fitted.allocate(da.from_array(X, chunks=(5_200, -1)), total_budget=3000.0)
    labels = labels.compute()
    assert sorted(calls) == [5_200] * 15  # 5 chunks x (subsample, full pass, labels)
    np.testing.assert_array_equal(labels, fitted.allocate(X, total_budget=3000.0))


def test_zarr_store_in_and_out(fitted, data, tmp_path):
    """The README's scale-out snippet: features read from a zarr store, labels written to
    one, chunk by chunk; one budget over all users; a score on trial columns in zarr."""
    pytest.importorskip("zarr", reason="zarr is not installed: pip install '.[zarr]'")
    d, y = data
    X = np.tile(d.X, (5, 1))
    da.to_zarr(da.from_array(X, chunks=(3_000, -1)), str(tmp_path / "users.zarr"))
    users = da.from_zarr(str(tmp_path / "users.zarr"))
    da.to_zarr(fitted.allocate(users), str(tmp_path / "labels.zarr"))
    np.testing.assert_array_equal(da.from_zarr(str(tmp_path / "labels.zarr")).compute(),
                                  fitted.allocate(X))
    np.testing.assert_array_equal(fitted.allocate(users, total_budget=8_000.0).compute(),
                                  fitted.allocate(X, total_budget=8_000.0))
    for name in ("treatment", "revenue", "cost"):
        da.to_zarr(da.from_array(np.asarray(getattr(d, name)), chunks=700),
                   str(tmp_path / f"{name}.zarr"))
    t, revenue, cost = (da.from_zarr(str(tmp_path / f"{name}.zarr"))
                        for name in ("treatment", "revenue", "cost"))
    score = fitted.score(da.from_array(d.X, chunks=(500, -1)), revenue, treatment=t, cost=cost)
    assert score == pytest.approx(fitted.score(d.X, y), rel=1e-12)


def test_predict_and_predict_cost_computed_together_predict_each_chunk_once(fitted, data,
                                                                            monkeypatch):
    """As the README says: persist both, and the model runs once per chunk (an allocator,
    and a pipeline, whose transformers' chunks are shared too)."""
    import dask

    d, y = data
    pipe = make_budget_pipeline(StandardScaler(), _allocator()).fit(d.X, y)
    X = da.from_array(d.X, chunks=(500, -1))
    for model, est in ((fitted, fitted), (pipe, pipe[-1])):
        calls = []
        predict = type(est)._predict_uplift
        monkeypatch.setattr(type(est), "_predict_uplift",
                            lambda self, X: calls.append(X.shape[0]) or predict(self, X))
        r, c = dask.persist(model.predict(X), model.predict_cost(X), scheduler="synchronous")
        assert calls == [500] * 4
        np.testing.assert_allclose(r.compute(), model.predict(d.X), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(c.compute(), model.predict_cost(d.X), rtol=1e-6, atol=1e-9)
        monkeypatch.undo()
