"""Metrics of an RCT held in Dask arrays: the in-memory results, chunk by chunk."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install '.[dask]'")

from sklearn_budget import TwoStageBudgetAllocator, rct_target  # noqa: E402
from sklearn_budget.baselines import make_meta_learner  # noqa: E402
from sklearn_budget.datasets import make_marketing_rct  # noqa: E402
from sklearn_budget.metrics import (  # noqa: E402
    cost_curve,
    expected_outcome,
    make_budget_scorer,
    multiplier_at_budget,
    value_at_budget,
)
from sklearn_budget.metrics import _dask as metrics_dask  # noqa: E402
from sklearn_budget.metrics import _dask_rct as metrics_dask_rct  # noqa: E402
from sklearn_budget.pipeline import make_budget_pipeline  # noqa: E402

SYNC = {"scheduler": "synchronous"}


@pytest.fixture(scope="module")
def rct():
    """An RCT of 4 arms with noisy uplift predictions (r, c)."""
    d = make_marketing_rct(n_samples=12_000, random_state=0)
    rng = np.random.default_rng(1)
    r = d.true_revenue[:, 1:] - d.true_revenue[:, :1] + rng.normal(size=(12_000, 3))
    c = np.abs(d.true_cost[:, 1:] - d.true_cost[:, :1] + rng.normal(scale=0.1, size=(12_000, 3)))
    return d, r, c


def _dask(a, rows):
    return da.from_array(a, chunks=(rows,) + a.shape[1:])


def _same_curve(got, expected):
    assert got.multipliers.shape == expected.multipliers.shape
    np.testing.assert_array_equal(got.multipliers, expected.multipliers)
    np.testing.assert_array_equal(got.n_matched, expected.n_matched)
    # sums per chunk: the last bits may differ from the in-memory dot products
    np.testing.assert_allclose(got.incremental_cost, expected.incremental_cost, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(got.incremental_revenue, expected.incremental_revenue,
                               rtol=1e-12, atol=1e-12)


PROPENSITIES = {
    "frequencies": lambda t: None,
    "dict": lambda t: {0: 0.4, 1: 0.2, 2: 0.2, 3: 0.2},
    "per user": lambda t: np.where(t == 0, 0.4, 0.2),
}


@pytest.mark.parametrize("estimate", ["eom", "dr"])
@pytest.mark.parametrize("propensity", list(PROPENSITIES))
def test_cost_curve_equals_the_in_memory_curve(rct, estimate, propensity):
    d, r, c = rct
    p = PROPENSITIES[propensity](d.treatment)
    expected = cost_curve(r, c, d.treatment, d.revenue, d.cost, propensity=p, estimate=estimate)
    # uplifts, outcomes and propensities in different chunks (the uplifts' lead), some numpy
    got = cost_curve(_dask(r, 2_500), _dask(c, 2_500), _dask(d.treatment, 5_000), d.revenue,
                     _dask(d.cost, 1_000), estimate=estimate,
                     propensity=_dask(p, 3_000) if isinstance(p, np.ndarray) else p)
    _same_curve(got, expected)


def test_given_multipliers_and_string_labels(rct):
    d, r, c = rct
    names = np.array(["none", "low", "mid", "high"])
    t = names[d.treatment]
    levels = np.sort(names[1:])  # the uplift columns in sorted label order
    order = [list(names[1:]).index(x) for x in levels]
    lams = [0.0, 0.5, 1.0, 2.0, 4.0]
    expected = cost_curve(r[:, order], c[:, order], t, d.revenue, d.cost, control_name="none",
                          multipliers=lams)
    got = cost_curve(_dask(r[:, order], 4_000), _dask(c[:, order], 4_000), _dask(t, 4_000),
                     d.revenue, d.cost, control_name="none", multipliers=lams)
    _same_curve(got, expected)
    assert got.multipliers.tolist() == lams[::-1]


@pytest.mark.parametrize("budget", [0.0, 0.3, 1.0, 50.0])
def test_value_and_multiplier_at_budget(rct, budget):
    d, r, c = rct
    args = (d.treatment, d.revenue, d.cost, budget)
    lazy = (_dask(r, 3_000), _dask(c, 3_000), _dask(d.treatment, 3_000), d.revenue, d.cost,
            budget)
    assert value_at_budget(*lazy) == pytest.approx(value_at_budget(r, c, *args), rel=1e-12,
                                                   abs=1e-12)
    assert multiplier_at_budget(*lazy) == pytest.approx(multiplier_at_budget(r, c, *args),
                                                        rel=1e-12, abs=1e-12)


def test_multiplier_where_the_policy_jumps_follows_the_in_memory_bisection(monkeypatch):
    # tied predictions: three kinds of user, so the policy jumps between sweep points and the
    # interpolated multiplier would overspend; the bisection runs, 4 steps per pass
    rng = np.random.default_rng(0)
    n = 6_000
    gain = rng.choice([0.5, 1.0, 1.5], n)
    t = rng.integers(0, 2, n)
    revenue, cost = t * gain + rng.normal(scale=0.1, size=n), t * 1.0
    passes = []
    points = metrics_dask._points
    monkeypatch.setattr(metrics_dask, "_points",
                        lambda *a: passes.append(len(a[3])) or points(*a))
    r, c = gain[:, None], np.ones((n, 1))
    for budget in (0.2, 0.5):
        passes.clear()
        expected = multiplier_at_budget(r, c, t, revenue, cost, budget)
        got = multiplier_at_budget(_dask(r, 1_000), _dask(c, 1_000), t, revenue, cost, budget)
        assert got == expected
        # the curve, the check at the interpolated multiplier, then 50 steps in 13 passes
        assert passes[1] == 1
        assert passes[2:] == [15] * 12 + [3]
        spend = expected_outcome(np.where(gain > got, 1, 0), t, revenue, cost).incremental_cost
        assert spend <= budget


def test_expected_outcome_equals_the_in_memory_estimate(rct):
    d, r, c = rct
    policy = np.random.default_rng(2).integers(0, 4, len(d.treatment))
    for p in (None, {0: 0.4, 1: 0.2, 2: 0.2, 3: 0.2}, np.where(d.treatment == 0, 0.4, 0.2)):
        expected = expected_outcome(policy, d.treatment, d.revenue, d.cost, propensity=p)
        got = expected_outcome(_dask(policy, 2_000), d.treatment, _dask(d.revenue, 5_000),
                               d.cost, propensity=p)
        assert got.n_matched == expected.n_matched
        for field in ("revenue", "cost", "incremental_revenue", "incremental_cost"):
            assert getattr(got, field) == pytest.approx(getattr(expected, field), rel=1e-12)


def test_automatic_grid_of_a_large_rct_comes_from_a_sample(rct, monkeypatch):
    d, r, c = rct
    monkeypatch.setattr(metrics_dask_rct, "_GRID_SAMPLE", 1_000)
    lazy = (_dask(r, 3_000), _dask(c, 3_000), d.treatment, d.revenue, d.cost)
    got = cost_curve(*lazy, n_multipliers=50)
    full = cost_curve(r, c, d.treatment, d.revenue, d.cost, n_multipliers=50)
    # the largest breakpoint is exact (the first point treats nobody), 0 ends the grid
    assert got.multipliers[0] == full.multipliers[0] and got.multipliers[-1] == 0.0
    assert 40 <= len(got.multipliers) <= 50
    assert not np.array_equal(got.multipliers, full.multipliers)  # quantiles of a sample
    # the points are those of the in-memory curve at the same multipliers, and repeatable
    _same_curve(got, cost_curve(r, c, d.treatment, d.revenue, d.cost,
                                multipliers=got.multipliers))
    _same_curve(cost_curve(*lazy, n_multipliers=50), got)


def test_each_pass_reads_each_chunk_once(rct):
    d, r, c = rct
    reads = []

    def block(i):
        reads.append(i)
        return np.hstack([r, c])[3_000 * i:3_000 * (i + 1)]

    import dask

    parts = [da.from_delayed(dask.delayed(block)(i), (3_000, 6), dtype=float) for i in range(4)]
    rc = da.concatenate(parts)
    cost_curve(rc[:, :3], rc[:, 3:], d.treatment, d.revenue, d.cost)
    assert sorted(reads) == [0, 0, 1, 1, 2, 2, 3, 3]  # pass 1 (checks, grid) and pass 2


def _nan_at(a, row):
    a = a.astype(float).copy()
    a[row] = np.nan
    return a


@pytest.mark.parametrize("change, error, match", [
    (lambda k: k.update(revenue=_nan_at(k["revenue"], 7_000)), ValueError,
     r"chunk of RCT rows 6000 to 8999 \(an index or row below counts from its first "
     r"row\): `revenue` contains 1 NaN or infinite value\(s\) \(first at index 1000\)"),
    (lambda k: k.update(cost=-k["cost"]), ValueError, r"rows 0 to 2999.*negative value"),
    (lambda k: k.update(treatment=k["treatment"] + 1), ValueError, "No control users"),
    (lambda k: k.update(treatment=np.minimum(k["treatment"], 2)), ValueError,
     r"2 incentive level\(s\)"),
    (lambda k: k.update(revenue=k["revenue"][:-1]), ValueError,
     "`revenue` has 11999 values but `treatment` has 12000"),
    (lambda k: k.update(r=k["r"][:-1], c=k["c"][:-1]), ValueError,
     "uplift predictions have 11999 rows but the RCT has 12000"),
    (lambda k: k.update(r=_nan_at(k["r"], 7_100)), ValueError,
     r"^`revenue_uplift` contains NaN or infinite values \(first at row 7100\)"),
    (lambda k: k.update(propensity=np.full(12_000, 1.5)), ValueError, r"lie in \(0, 1\]"),
    (lambda k: k.update(propensity={0: 0.5, 1: 0.5}), ValueError, "no probability for arm"),
    (lambda k: k.update(treatment=da.from_array(k["treatment"])[da.from_array(k["treatment"])
                                                                 >= 0]), ValueError,
     "chunks of unknown size"),
])
def test_bad_inputs_are_named(rct, change, error, match):
    d, r, c = rct
    kw = {"r": r, "c": c, "treatment": d.treatment, "revenue": d.revenue, "cost": d.cost,
          "propensity": None}
    change(kw)
    rr, cc = (_dask(kw[k], 3_000) for k in ("r", "c"))
    with pytest.raises(error, match=match):
        cost_curve(rr, cc, kw["treatment"], kw["revenue"], kw["cost"],
                   propensity=kw["propensity"])


def test_expected_outcome_names_unknown_assignment_labels(rct):
    d, _, _ = rct
    with pytest.raises(ValueError, match=r"rows 3000 to 5999.*Unknown treatment label\(s\) \[7\]"):
        expected_outcome(_dask(np.r_[np.zeros(3_000, int), np.full(9_000, 7)], 3_000),
                         d.treatment, d.revenue, d.cost)
    with pytest.raises(ValueError, match="No RCT user's observed arm equals the policy's"):
        expected_outcome(_dask(np.where(d.treatment == 1, 2, 1), 3_000), d.treatment,
                         d.revenue, d.cost)


def test_uplifts_as_dask_dataframes(rct):
    # predictions stored in Parquet come back as Dask DataFrames: the metrics refused them
    # with a fix that does not exist (`.compute_chunk_sizes()`), the solver gathered them
    # into memory; an (n, 1) assignment was taken on Dask but refused in memory
    dd = pytest.importorskip("dask.dataframe")
    from sklearn_budget import allocate_at_multiplier, solve_budget_allocation

    d, r, c = rct
    rdf, cdf = (dd.from_pandas(pd.DataFrame(m), npartitions=3) for m in (r, c))
    assert value_at_budget(rdf, cdf, d.treatment, d.revenue, d.cost, 0.5) == pytest.approx(
        value_at_budget(r, c, d.treatment, d.revenue, d.cost, 0.5), rel=1e-12)
    sol = solve_budget_allocation(rdf, cdf, budget=1000.0)
    assert isinstance(sol.assignment, da.Array)
    expected = solve_budget_allocation(r, c, budget=1000.0)
    np.testing.assert_array_equal(sol.assignment.compute(), expected.assignment)
    np.testing.assert_array_equal(allocate_at_multiplier(rdf, cdf, 1.0).compute(),
                                  allocate_at_multiplier(r, c, 1.0))
    column = expected.assignment[:, None]
    assert expected_outcome(column, d.treatment, d.revenue, d.cost) == expected_outcome(
        expected.assignment, d.treatment, d.revenue, d.cost)


@pytest.fixture(scope="module")
def fitted(rct):
    d, _, _ = rct
    y = rct_target(d.treatment, d.revenue, d.cost)
    est = TwoStageBudgetAllocator(make_meta_learner("T", Ridge()), budget=0.5)
    pipe = make_budget_pipeline(StandardScaler(), est)
    return est.fit(d.X, y), pipe.fit(d.X, y), y


def test_score_on_dask_features_and_outcomes(rct, fitted):
    d, _, _ = rct
    est, pipe, y = fitted
    X = _dask(d.X, 2_500)
    for model in (est, pipe):
        expected = model.score(d.X, y)
        for got in (model.score(X, d.revenue, treatment=d.treatment, cost=d.cost),
                    model.score(X, _dask(d.revenue, 4_000), treatment=_dask(d.treatment, 1_000),
                                cost=d.cost),
                    make_budget_scorer(0.5)(model, X, y)):
            assert got == pytest.approx(expected, rel=1e-12)


def test_score_with_a_dask_dataframe_target(rct, fitted):
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    d, _, _ = rct
    est, pipe, y = fitted
    frame = dd.from_pandas(pd.DataFrame(y), npartitions=3)
    features = dd.from_pandas(pd.DataFrame(d.X), npartitions=4)
    for model in (est, pipe):
        assert model.score(_dask(d.X, 2_500), frame) == pytest.approx(model.score(d.X, y),
                                                                      rel=1e-12)
        assert model.score(features, frame) == pytest.approx(model.score(d.X, y), rel=1e-12)


def test_score_on_dask_checks_the_features_before_the_target(rct, fitted):
    # converting X with the target's columns had moved y's checks first on Dask
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    d, _, _ = rct
    est, _, _ = fitted
    bad_y = pd.DataFrame({"revenue": d.revenue, "cost": d.cost})  # no treatment
    for X in (_dask(d.X[:, :5], 3_000), dd.from_pandas(pd.DataFrame(d.X[:, :5]), npartitions=3)):
        with pytest.raises(ValueError, match="X has 5 features, but TwoStageBudgetAllocator"):
            est.score(X, bad_y)


def test_mt_aucc_reads_chunks_and_aucc_says_it_cannot(rct):
    from sklearn_budget.metrics import aucc, mt_aucc

    d, r, c = rct
    expected = mt_aucc(r, c, d.treatment, d.revenue, d.cost)
    assert mt_aucc(_dask(r, 5_000), _dask(c, 5_000), d.treatment, d.revenue,
                   d.cost) == pytest.approx(expected, rel=1e-12)
    one = d.treatment <= 1
    with pytest.raises(TypeError, match="aucc ranks all users at once.*use mt_aucc"):
        aucc(d.revenue[one], d.cost[one], d.treatment[one], _dask(r[one, 0], 1_000))


def test_review_findings(rct, fitted, monkeypatch):
    """Edge cases a review found: each as in memory."""
    d, r, c = rct
    t8 = np.array([0, 1, 0, 1, "0", "1", "0", "1"], dtype=object)  # types differ by chunk
    with pytest.raises(TypeError, match=r"`treatment` mixes label types \(number, str\)"):
        expected_outcome(_dask(t8, 4), _dask(t8, 4), np.arange(8.0), np.ones(8))
    t4 = np.array([0, 1, 0, 1])  # each chunk's revenue sum is finite, not the total
    with pytest.raises(ValueError, match="`revenue` values are so large that their sum"):
        expected_outcome(_dask(t4, 1), t4, np.full(4, 1e308), np.ones(4))
    with pytest.raises(ValueError, match=r"Got 0.0 for 3 user\(s\)"):  # users, not labels
        expected_outcome(_dask(np.array([0, 0, 0, 1]), 2), np.array([0, 0, 0, 1]),
                         np.ones(4), np.zeros(4), propensity={0: 0.0, 1: 0.5})
    # per-user propensities as numeric text and (n, 1) columns are read as in memory
    p_text = np.full(len(d.treatment), "0.25", dtype=object)
    policy = np.random.default_rng(3).integers(0, 4, len(d.treatment))
    expected = expected_outcome(policy, d.treatment, d.revenue, d.cost, propensity=p_text)
    got = expected_outcome(_dask(policy[:, None], 3_000), d.treatment[:, None],
                           d.revenue[:, None], d.cost, propensity=p_text)
    assert got.incremental_revenue == pytest.approx(expected.incremental_revenue, rel=1e-12)
    # a sampled grid that misses the largest breakpoint still starts above it
    monkeypatch.setattr(metrics_dask_rct, "_GRID_SAMPLE", 100)
    gain = np.zeros(3_000)
    gain[:10] = 50.0
    t = np.arange(3_000) % 2
    curve = cost_curve(_dask(gain[:, None], 500), np.ones((3_000, 1)), t, t * gain, t * 1.0)
    assert curve.multipliers[0] > 50.0 and curve.incremental_cost[0] == 0.0
    # the first Dask input's chunks lead (a numpy assignment does not make one chunk)
    seen = []
    check = metrics_dask_rct._check_chunk
    monkeypatch.setattr(metrics_dask_rct, "_check_chunk",
                        lambda *a: seen.append(a[0].shape[0]) or check(*a))
    expected_outcome(policy, _dask(d.treatment, 4_000), d.revenue, d.cost)
    assert sorted(seen) == [4_000] * 3
    # checked before any pass over the data
    seen.clear()
    with pytest.raises(ValueError, match="non-empty array of finite values"):
        cost_curve(_dask(r, 3_000), c, d.treatment, d.revenue, d.cost, multipliers=[np.nan])
    assert seen == []
    _, pipe, y = fitted
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['foo'\]"):
        pipe.score(_dask(d.X, 3_000), y, foo=1)


def test_score_and_allocate_from_a_parquet_file_read_by_row_groups(rct, tmp_path):
    """A Dask DataFrame from ``dd.read_parquet``: features and RCT columns of one file,
    text labels, and partitions that the query optimiser plans otherwise than the array
    they become (``to_dask_array(lengths=True)`` failed: '3 != 6')."""
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install '.[parquet]'")
    d, _, _ = rct
    names = np.array(["none", "low", "mid", "high"])
    features = [f"f{i}" for i in range(d.X.shape[1])]
    frame = pd.DataFrame(d.X, columns=features).assign(
        treatment=names[d.treatment], revenue=d.revenue, cost=d.cost)
    est = TwoStageBudgetAllocator(make_meta_learner("T", Ridge()), budget=0.5,
                                  control_name="none")
    target = ["treatment", "revenue", "cost"]
    est.fit(frame[features], frame[target])
    frame.to_parquet(tmp_path / "rct.parquet", row_group_size=2_000)
    lazy = dd.read_parquet(tmp_path / "rct.parquet", split_row_groups=True)
    assert est.score(lazy[features], lazy[target]) == pytest.approx(
        est.score(frame[features], frame[target]), rel=1e-12)
    np.testing.assert_array_equal(est.allocate(lazy[features]).compute(),
                                  est.allocate(frame[features]))


def test_nullable_pandas_columns_in_dask_frames(rct, fitted):
    """pandas' nullable numbers reach the checks as float64 (NA as NaN, named as in memory),
    not as object arrays ("must be numeric")."""
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    d, r, c = rct
    frame = pd.DataFrame({"treatment": pd.array(d.treatment, dtype="Int64"),
                          "revenue": pd.array(d.revenue, dtype="Float64"), "cost": d.cost})
    lazy = dd.from_pandas(frame, npartitions=4)
    expected = cost_curve(r, c, d.treatment, d.revenue, d.cost)
    _same_curve(cost_curve(_dask(r, 3_000), c, lazy["treatment"], lazy["revenue"],
                           lazy["cost"]), expected)
    frame.loc[7_000, "revenue"] = pd.NA
    lazy = dd.from_pandas(frame, npartitions=4)
    with pytest.raises(ValueError, match=r"rows 6000 to 8999 .*`revenue` contains 1 NaN"):
        cost_curve(_dask(r, 3_000), c, lazy["treatment"], lazy["revenue"], lazy["cost"])
    est, _, y = fitted
    features = pd.DataFrame(d.X).astype({0: "Float64"})
    np.testing.assert_allclose(est.predict(dd.from_pandas(features, npartitions=3)).compute(),
                               est.predict(d.X), rtol=1e-9, atol=1e-12)


def test_columns_of_one_dask_dataframe_are_built_once_per_pass(rct, fitted):
    """A frame's columns given separately (uplifts, RCT columns, features beside the target)
    are converted together: its partitions are built once to count rows and once per pass,
    as a Dask array's chunks are (before: once per column and pass, e.g. 13 builds of each
    partition for a cost curve, 12 for ``score``)."""
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    from sklearn_budget import solve_budget_allocation

    d, r, c = rct
    est, _, y = fitted
    frame = pd.DataFrame(np.hstack([d.X, r, c]), columns=[f"x{j}" for j in range(d.X.shape[1])]
                         + ["r0", "r1", "r2", "c0", "c1", "c2"]).assign(
        treatment=d.treatment, revenue=d.revenue, cost=d.cost)
    builds = []

    def source():  # e.g. a CSV parsed or features computed, partition by partition
        base = dd.from_pandas(frame, npartitions=4)
        return base.map_partitions(lambda part: builds.append(1) or part, meta=base._meta)

    rc, cc, xc = ["r0", "r1", "r2"], ["c0", "c1", "c2"], list(frame.columns[:d.X.shape[1]])
    lazy = source()
    _same_curve(cost_curve(lazy[rc], lazy[cc], lazy["treatment"], lazy["revenue"],
                           lazy["cost"]),
                cost_curve(r, c, d.treatment, d.revenue, d.cost))
    assert len(builds) == 3 * 4  # rows counted, pass 1 (checks, grid sample), pass 2 (sums)
    builds.clear()
    got = expected_outcome(lazy["treatment"], lazy["treatment"], lazy["revenue"], lazy["cost"])
    assert got.incremental_revenue == pytest.approx(expected_outcome(
        d.treatment, d.treatment, d.revenue, d.cost).incremental_revenue, rel=1e-12)
    assert len(builds) == 3 * 4
    builds.clear()
    np.testing.assert_array_equal(
        solve_budget_allocation(lazy[rc], lazy[cc], budget=1000.0).assignment.compute(),
        solve_budget_allocation(r, c, budget=1000.0).assignment)
    assert len(builds) <= 4 * 4  # rows counted, sample, full pass(es), labels
    builds.clear()
    est.feature_names_in_ = np.array(xc, dtype=object)  # (fitted on an array)
    try:
        got = est.score(lazy[xc], lazy[["treatment", "revenue", "cost"]])
    finally:
        del est.feature_names_in_
    assert got == pytest.approx(est.score(d.X, y), rel=1e-12)
    assert len(builds) == 3 * 4


def test_dask_dataframes_converted_together_or_one_by_one(monkeypatch, tmp_path):
    """Frames of one source with numbers only and the same partitions go together; others
    (other sources, other partitions, text, partitions of other lengths) one by one. Either
    way rows pair by position and dtypes are kept."""
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    from sklearn_budget import _dask_frames, allocate_at_multiplier
    from sklearn_budget._dask_frames import frames_as_arrays

    n = 1_000
    a = pd.DataFrame({"t": np.arange(n) % 3, "big": 2 ** 60 + np.arange(n),
                      "f32": np.arange(n, dtype=np.float32) / 7, "flag": np.arange(n) % 2 == 0,
                      "text": np.array(["a", "b"] * (n // 2), dtype=object)})
    together = []
    convert = _dask_frames._converted_together
    monkeypatch.setattr(_dask_frames, "_converted_together",
                        lambda frames: together.append(convert(frames) is not None)
                        or convert(frames))
    four = dd.from_pandas(a, npartitions=4)
    other = dd.concat([dd.from_pandas(a.iloc[:100], npartitions=1),  # another source
                       dd.from_pandas(a.iloc[100:], npartitions=3)])
    cases = {  # name: (first, second, calls of the together path and their outcome):
        # the frames of each source together (first's three, second's two)
        "one source": (four, four, [True]),
        "one source, no divisions": (four.clear_divisions(), four.clear_divisions(), [True]),
        "other sources": (four.clear_divisions(), other.clear_divisions(), [True, True]),
        "other partitions": (four, dd.from_pandas(a, npartitions=3), [True, True]),
    }
    for name, (first, second, expected_together) in cases.items():
        together.clear()
        out = frames_as_arrays(first["t"], second["f32"], first["flag"], second[["t", "f32"]],
                               first["big"], np.arange(3))
        np.testing.assert_array_equal(out[-1], np.arange(3))
        for got, column in zip(out[:-1], ("t", "f32", "flag", ["t", "f32"], "big")):
            expected = a[column].to_numpy()
            assert got.dtype == expected.dtype, name
            np.testing.assert_array_equal(got.compute(), expected, err_msg=name)
        assert together == expected_together, name
    # one source, partitions of other lengths (filtered differently): found, one by one
    together.clear()
    t, f32 = frames_as_arrays(four["t"], four[four["f32"] > 10]["f32"])
    assert together == [False] and t.shape == (n,) and f32.shape == ((a.f32 > 10).sum(),)
    # a partition a filter emptied
    some = four[four["f32"] > 100]
    np.testing.assert_array_equal(
        allocate_at_multiplier(some[["f32"]], some[["t"]], 1.0).compute(),
        allocate_at_multiplier(a.loc[a.f32 > 100, ["f32"]], a.loc[a.f32 > 100, ["t"]], 1.0))
    # text: one by one, and the checks name it
    t, text = frames_as_arrays(four["t"], four["text"])
    assert text.dtype == object and list(text.compute()[:2]) == ["a", "b"]
    with pytest.raises(TypeError, match="`revenue` must be numeric"):
        expected_outcome(four["t"], four["t"], four["text"], four["t"])
    # a Parquet file read by row groups beside a frame of another source with as many
    # partitions (the optimiser plans the file's otherwise): "Missing dependency" before
    pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install '.[parquet]'")
    for i in range(3):
        a.iloc[300 * i:300 * (i + 1), :3].to_parquet(tmp_path / f"part{i}.parquet",
                                                     row_group_size=100)
    file = dd.read_parquet(tmp_path, split_row_groups=True)
    same = dd.from_pandas(a.iloc[:900], npartitions=file.npartitions).clear_divisions()
    np.testing.assert_array_equal(
        allocate_at_multiplier(file[["f32"]], same[["t"]], 1.0).compute(),
        allocate_at_multiplier(a[["f32"]].iloc[:900], a[["t"]].iloc[:900], 1.0))
