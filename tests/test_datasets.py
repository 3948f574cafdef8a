"""Tests for sklearn_budget.datasets (synthetic generator and public loaders)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sklearn_budget.datasets import load_criteo_uplift, load_hillstrom, make_marketing_rct

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
HILLSTROM = SHARED_DATA / "hillstrom.csv"
CRITEO_SAMPLE = SHARED_DATA / "criteo_uplift_sample.csv"


@pytest.fixture(scope="module")
def default_data():
    return make_marketing_rct(n_samples=20000, random_state=0)


@pytest.fixture(scope="module")
def hard_data():
    return make_marketing_rct(n_samples=20000, setting="hard", random_state=0)


@pytest.fixture(scope="module")
def hillstrom():
    if not HILLSTROM.is_file():
        pytest.skip(f"Hillstrom CSV not found at {HILLSTROM} (shared data folder beside the repo)")
    return load_hillstrom(HILLSTROM)


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("setting", ["default", "hard"])
@pytest.mark.parametrize("n_treatments, n_features", [(1, 4), (3, 8), (5, 10)])
def test_shapes_and_dtypes(setting, n_treatments, n_features):
    n = 300
    d = make_marketing_rct(
        n_samples=n, n_treatments=n_treatments, n_features=n_features, setting=setting,
        random_state=1,
    )
    assert d.X.shape == (n, n_features) and d.X.dtype == np.float64
    assert d.treatment.shape == (n,) and d.treatment.dtype == np.int64
    assert set(np.unique(d.treatment)) <= set(range(n_treatments + 1))
    for name in ("revenue", "cost"):
        assert d[name].shape == (n,) and d[name].dtype == np.float64
        assert np.all(np.isfinite(d[name]))
    for name in ("true_revenue", "true_cost"):
        assert d[name].shape == (n, n_treatments + 1)
    assert d.feature_names == [f"x{j}" for j in range(n_features)]
    assert d.treatment_probabilities.shape == (n_treatments + 1,)
    assert d.setting == setting
    assert "Generating process" in d.DESCR and setting in d.DESCR


def test_deterministic_for_fixed_random_state():
    a = make_marketing_rct(n_samples=500, setting="hard", random_state=42)
    b = make_marketing_rct(n_samples=500, setting="hard", random_state=42)
    c = make_marketing_rct(n_samples=500, setting="hard", random_state=43)
    for key in ("X", "treatment", "revenue", "cost", "true_revenue", "true_cost"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.revenue, c.revenue)
    rng = np.random.RandomState(0)
    d = make_marketing_rct(n_samples=50, random_state=rng)
    assert d.X.shape == (50, 8)


@pytest.mark.parametrize("fixture", ["default_data", "hard_data"])
def test_costs(fixture, request):
    d = request.getfixturevalue(fixture)
    assert np.all(d.cost >= 0)
    assert np.all(d.cost[d.treatment == 0] == 0)
    assert np.all(d.true_cost[:, 0] == 0)
    # expected cost strictly increases with the incentive level
    assert np.all(np.diff(d.true_cost, axis=1) > 0)
    # cost is paid only on conversion, and then equals the coupon value
    paid = d.cost > 0
    np.testing.assert_allclose(d.cost[paid], d.coupon_values[d.treatment[paid]])
    assert np.all(d.revenue[~paid & (d.treatment > 0)] == 0)


@pytest.mark.parametrize("fixture", ["default_data", "hard_data"])
def test_true_outcomes_match_observed_means(fixture, request):
    d = request.getfixturevalue(fixture)
    for k in range(d.true_revenue.shape[1]):
        arm = d.treatment == k
        for obs, true in ((d.revenue, d.true_revenue), (d.cost, d.true_cost)):
            se = obs[arm].std() / np.sqrt(arm.sum())
            assert abs(obs[arm].mean() - true[arm, k].mean()) < 4 * se + 1e-12


def test_default_responses_monotone_with_diminishing_returns(default_data):
    d = default_data
    uplift = d.true_revenue[:, 1:] - d.true_revenue[:, :1]
    assert np.all(np.diff(d.true_revenue, axis=1) >= 0)  # more incentive, more revenue
    steps = np.diff(d.true_revenue, axis=1).mean(axis=0)
    assert np.all(np.diff(steps) < 0)  # diminishing returns on average
    # heterogeneous: the uplift varies a lot across users
    assert uplift[:, -1].std() > 0.5 * uplift[:, -1].mean()


def test_hard_setting(default_data, hard_data):
    # heavy-tailed revenue among converters
    conv_hard = hard_data.revenue[hard_data.revenue > 0]
    conv_default = default_data.revenue[default_data.revenue > 0]
    assert stats.kurtosis(conv_hard) > 10 > stats.kurtosis(conv_default)
    # a segment that does not respond at all (revenue uplift exactly 0)
    uplift = hard_data.true_revenue[:, 1:] - hard_data.true_revenue[:, :1]
    flat = np.all(np.abs(uplift) < 1e-9, axis=1)
    assert 0.2 < flat.mean() < 0.4
    assert np.all(hard_data.true_cost[flat, 1:] > 0)  # ... but they still cost money
    # small uplift next to a large baseline
    assert uplift[:, -1].mean() < 0.25 * hard_data.true_revenue[:, 0].mean()


def test_treatment_probabilities():
    d = make_marketing_rct(
        n_samples=20000, n_treatments=2, treatment_probabilities=[0.5, 0.25, 0.25],
        random_state=0,
    )
    np.testing.assert_allclose(np.bincount(d.treatment) / 20000, [0.5, 0.25, 0.25], atol=0.02)
    np.testing.assert_allclose(d.treatment_probabilities, [0.5, 0.25, 0.25])


def test_noise_zero_gives_deterministic_baskets():
    d = make_marketing_rct(n_samples=2000, noise=0.0, random_state=0)
    converted = d.revenue > 0
    # m(x) = true_revenue[:, K] / p_K(x) with p_K(x) = true_cost[:, K] / v_K
    basket = d.true_revenue[:, -1] * d.coupon_values[-1] / d.true_cost[:, -1]
    np.testing.assert_allclose(d.revenue[converted], basket[converted])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_treatments": 0}, "n_treatments"),
        ({"n_features": 3}, "n_features"),
        ({"noise": -1.0}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"noise": 1e-300}, "or between 1e-6 and 10"),  # was a ZeroDivisionError
        ({"noise": 1e200}, "or between 1e-6 and 10"),  # was an OverflowError
        ({"noise": 100.0}, "or between 1e-6 and 10"),  # revenue was ~1e-13 for everyone
        ({"setting": "easy"}, "setting"),
        ({"treatment_probabilities": [0.5, 0.5]}, "n_treatments \\+ 1"),
        ({"treatment_probabilities": [0.5, 0.5, 0.0, 0.0]}, "positive"),
        ({"treatment_probabilities": [0.4, 0.4, 0.4, 0.4]}, "sum to 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_marketing_rct(**kwargs)


def test_non_integer_size_raises_type_error():
    with pytest.raises(TypeError, match="n_samples"):
        make_marketing_rct(n_samples=10.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"noise": "1"}, "`noise` must be a number"),  # was a ValueError, unlike n_samples="1"
    # numpy's "could not convert string to float" / dict errors did not name the argument
    ({"treatment_probabilities": ["a", 0.5, 0.25, 0.25]}, "`treatment_probabilities` must"),
    ({"treatment_probabilities": {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}},
     "`treatment_probabilities` must"),
])
def test_arguments_of_the_wrong_type_raise_type_error(kwargs, match):
    with pytest.raises(TypeError, match=match):
        make_marketing_rct(**kwargs)


# --------------------------------------------------------------------------- Hillstrom


def test_hillstrom_arms_and_features(hillstrom):
    d = hillstrom
    assert d.treatment_names == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    counts = np.bincount(d.treatment)
    assert counts.tolist() == [21306, 21307, 21387]
    assert d.X.shape == (64000, 11)
    assert list(d.X.columns) == d.feature_names
    assert all(str(t) == "float64" for t in d.X.dtypes)
    np.testing.assert_array_equal(d.cost, (d.treatment > 0).astype(float))
    # published arm means of spend
    means = [d.revenue[d.treatment == k].mean() for k in range(3)]
    np.testing.assert_allclose(means, [0.6528, 1.4226, 1.0772], atol=1e-4)
    assert "MineThatData" in d.DESCR


def test_hillstrom_conventions(hillstrom):
    d = load_hillstrom(HILLSTROM.parent, revenue="conversion", cost="visit")
    assert set(np.unique(d.revenue)) == {0.0, 1.0}
    np.testing.assert_array_equal(d.cost, d.frame["visit"].to_numpy(dtype=float))
    np.testing.assert_array_equal(d.treatment, hillstrom.treatment)


def test_hillstrom_env_var(hillstrom, monkeypatch):
    monkeypatch.setenv("SKLEARN_BUDGET_DATA", str(HILLSTROM.parent))
    d = load_hillstrom(revenue="visit")
    assert d.X.shape == (64000, 11)


def test_hillstrom_missing_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SKLEARN_BUDGET_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="MineThatData"):
        load_hillstrom(tmp_path)
    with pytest.raises(FileNotFoundError, match="hillstrom.csv"):
        load_hillstrom(data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="SKLEARN_BUDGET_DATA"):
        load_hillstrom()
    with pytest.raises(FileNotFoundError, match="fetch_hillstrom"):
        load_hillstrom(tmp_path / "nope.csv")


def test_hillstrom_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="revenue"):
        load_hillstrom(tmp_path, revenue="profit")
    with pytest.raises(ValueError, match="cost"):
        load_hillstrom(tmp_path, cost="email")


def test_hillstrom_wrong_file(tmp_path):
    bad = tmp_path / "hillstrom.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks the column"):
        load_hillstrom(bad)


# --------------------------------------------------------------------------- Criteo


def test_criteo_sample():
    if not CRITEO_SAMPLE.is_file():
        pytest.skip(f"Criteo sample not found at {CRITEO_SAMPLE} (shared data beside the repo)")
    d = load_criteo_uplift(CRITEO_SAMPLE)
    assert d.X.shape == (1000, 12)
    assert d.feature_names == [f"f{j}" for j in range(12)]
    assert np.bincount(d.treatment).tolist() == [137, 863]
    assert d.revenue.sum() == 2 and d.cost.sum() == 35  # conversion, visit
    assert "DFCL" in d.DESCR
    d = load_criteo_uplift(CRITEO_SAMPLE, revenue="visit", cost="exposure", nrows=100)
    assert d.X.shape == (100, 12)
    np.testing.assert_array_equal(d.cost, d.frame["exposure"].to_numpy(dtype=float))


def test_criteo_missing_file_and_bad_arguments(tmp_path, monkeypatch):
    monkeypatch.delenv("SKLEARN_BUDGET_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="criteo-research-uplift-v2.1"):
        load_criteo_uplift(tmp_path)
    (tmp_path / "criteo_uplift_sample.csv").write_text("f0\n1\n")
    with pytest.raises(FileNotFoundError, match=r"Found \[.*criteo_uplift_sample.csv'\]: pass"):
        load_criteo_uplift(tmp_path)  # a folder holding only the sample: named, not guessed
    with pytest.raises(ValueError, match="different"):
        load_criteo_uplift(tmp_path, revenue="visit", cost="visit")
    with pytest.raises(ValueError, match="nrows"):
        load_criteo_uplift(tmp_path, nrows=0)
    with pytest.raises(ValueError, match="cost"):
        load_criteo_uplift(tmp_path, cost="spend")


# -- corrupt files (made here, no public data needed) ---------------------------------------
_HILLSTROM_HEADER = ("recency,history_segment,history,mens,womens,zip_code,newbie,channel,"
                     "segment,visit,conversion,spend")
_HILLSTROM_ROWS = [
    "10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0.0",
    "6,3) $200 - $350,329.08,1,1,Rural,1,Web,No E-Mail,1,0,0.0",
    "7,2) $100 - $200,180.65,0,1,Surburban,1,Web,Womens E-Mail,1,1,29.99",
    "2,1) $0 - $100,45.34,1,0,Urban,0,Web,Mens E-Mail,0,0,0.0",
]
_CRITEO_HEADER = "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,treatment,conversion,visit,exposure"
_CRITEO_ROWS = ["1,2,3,4,5,6,7,8,9,10,11,12,1,0,1,1", "1,2,3,4,5,6,7,8,9,10,11,12,0,0,0,0",
                "2,2,3,4,5,6,7,8,9,10,11,12,1,1,1,1"]


def _csv(tmp_path, name, header, rows):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_hillstrom_features_do_not_depend_on_the_values_present(tmp_path):
    # an extract without a "Phone" user had 10 feature columns, not the documented 11
    rows = [r for r in _HILLSTROM_ROWS if ",Phone," not in r]
    data = load_hillstrom(_csv(tmp_path, "hillstrom.csv", _HILLSTROM_HEADER, rows))
    assert data.X.shape == (3, 11) and data.X["channel=Phone"].sum() == 0
    bad = [_HILLSTROM_ROWS[0].replace("Phone", "Fax"), *_HILLSTROM_ROWS[1:]]
    with pytest.raises(ValueError, match=r"column 'channel' has value\(s\) \['Fax'\]"):
        load_hillstrom(_csv(tmp_path, "odd.csv", _HILLSTROM_HEADER, bad))


def test_hillstrom_truncated_or_empty_files_are_rejected(tmp_path):
    # a file cut mid-row loaded with NaN outcomes, a header-only file as 0 users
    cut = [*_HILLSTROM_ROWS[:3], _HILLSTROM_ROWS[3].rsplit(",", 2)[0]]
    with pytest.raises(ValueError, match=r"column 'spend' has 1 missing.*line 5"):
        load_hillstrom(_csv(tmp_path, "cut.csv", _HILLSTROM_HEADER, cut))
    with pytest.raises(ValueError, match="has a header but no rows"):
        load_hillstrom(_csv(tmp_path, "head.csv", _HILLSTROM_HEADER, []))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="Cannot read '.*empty.csv' as a CSV table"):
        load_hillstrom(empty)


@pytest.mark.parametrize("cell, match", [("", "column 'treatment' has 1 missing.*a blank cell"),
                                         ("control", "'control'"),
                                         ("2", r"must be 0 or 1; found \[2.0\]")])
def test_criteo_treatment_must_be_0_or_1(tmp_path, cell, match):
    # a blank treatment cell became the arm label -9223372036854775808
    row = _CRITEO_ROWS[0].split(",")
    row[12] = cell
    path = _csv(tmp_path, "criteo.csv", _CRITEO_HEADER, [",".join(row), *_CRITEO_ROWS[1:]])
    with pytest.raises(ValueError, match=match):
        load_criteo_uplift(path)
    good = load_criteo_uplift(_csv(tmp_path, "good.csv", _CRITEO_HEADER, _CRITEO_ROWS))
    assert good.treatment.dtype == np.int64 and good.treatment.tolist() == [1, 0, 1]


def test_hillstrom_revenue_and_cost_must_differ(tmp_path):
    with pytest.raises(ValueError, match="must be different outcomes"):
        load_hillstrom(tmp_path, revenue="visit", cost="visit")


def test_loader_arguments_and_blank_labels_are_named(tmp_path):
    # a blank segment next to an unknown one crashed sorting (float NaN vs str); nrows of
    # inf, NaN, text or a list gave raw OverflowError / int() errors
    rows = ["recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,"
            "visit,conversion,spend"] + [
        f"{i},1) $0 - $100,{10 + i},1,0,Urban,0,Web,{arm},{i % 2},0,0"
        for i, arm in enumerate(["No E-Mail", "Mens E-Mail", "Womens E-Mail", "",
                                 "Kids E-Mail"] * 2)]
    (tmp_path / "hillstrom.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="column 'segment' has 2 blank cell\\(s\\), the first "
                                         "on line 5"):
        load_hillstrom(tmp_path / "hillstrom.csv")
    (tmp_path / "hillstrom.csv").write_text("\n".join(r for r in rows if ",," not in r) + "\n")
    with pytest.raises(ValueError, match=r"unknown segment label\(s\) \['Kids E-Mail'\]"):
        load_hillstrom(tmp_path / "hillstrom.csv")
    for nrows in (float("inf"), float("nan"), "abc", [3], 2.5, True):
        with pytest.raises(ValueError, match="`nrows` must be a positive integer or None"):
            load_criteo_uplift(tmp_path, nrows=nrows)
    from sklearn_budget.datasets._public import _check_nrows

    # whole numbers of any type, as before the check (and beyond float64: the whole file)
    from decimal import Decimal

    assert [_check_nrows(v) for v in (10, np.int64(10), 1e1, np.array(10), Decimal(10), None,
                                      10**400)] == [10, 10, 10, 10, 10, None, 10**400]
