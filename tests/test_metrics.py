"""Tests of sklearn_budget.metrics: EOM, cost curves, AUCC, scorer, oracle helpers."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_budget import allocate_at_multiplier, rct_target
from sklearn_budget.metrics import (
    aucc,
    cost_curve,
    expected_outcome,
    make_budget_scorer,
    mt_aucc,
    multiplier_at_budget,
    oracle_allocation,
    regret,
    true_value,
    value_at_budget,
)


# --------------------------------------------------------------------------- fixtures
def _simulate(n, probs, seed, noise=1.0):
    """RCT with K = len(probs) - 1 levels and known expected outcomes (n, K + 1)."""
    rng = np.random.default_rng(seed)
    k = len(probs) - 1
    x = rng.uniform(0, 1, (n, 2))
    base_r = 1.0 + x[:, 0]
    levels = np.arange(1, k + 1)
    # revenue uplift concave in the level, heterogeneous; cost uplift grows with level
    tau_r = np.outer(x[:, 1], np.sqrt(levels)) * 2.0
    tau_c = np.outer(0.5 + x[:, 0], levels) * 0.5
    true_r = np.hstack([base_r[:, None], base_r[:, None] + tau_r])
    true_c = np.hstack([np.zeros((n, 1)), tau_c])
    t = rng.choice(k + 1, size=n, p=probs)
    rows = np.arange(n)
    revenue = true_r[rows, t] + noise * rng.normal(size=n)
    cost = true_c[rows, t] * rng.uniform(0.5, 1.5, n)  # mean-preserving, non-negative
    return dict(x=x, treatment=t, revenue=revenue, cost=cost, true_r=true_r, true_c=true_c,
                tau_r=tau_r, tau_c=tau_c, probs=np.asarray(probs))


@pytest.fixture(scope="module")
def rct():
    return _simulate(40_000, [0.5, 0.3, 0.2], seed=0)


@pytest.fixture(scope="module")
def binary():
    return _simulate(20_000, [0.5, 0.5], seed=1, noise=0.5)


# --------------------------------------------------------------------------- EOM
def test_expected_outcome_matches_hand_computation_with_propensities():
    treatment = np.array(["c", "c", "a", "a", "b", "b"])
    revenue = np.array([1.0, 2.0, 4.0, 6.0, 3.0, 9.0])
    cost = np.array([0.0, 0.0, 1.0, 2.0, 3.0, 1.0])
    probs = {"c": 0.5, "a": 0.25, "b": 0.25}
    assignment = np.array(["c", "a", "a", "b", "b", "c"])  # matches rows 0, 2, 4
    eom = expected_outcome(assignment, treatment, revenue, cost, propensity=probs,
                           control_name="c")
    w = np.array([1 / 0.5, 1 / 0.25, 1 / 0.25])
    exp_rev = (w @ revenue[[0, 2, 4]]) / w.sum()
    exp_cost = (w @ cost[[0, 2, 4]]) / w.sum()
    assert eom.n_matched == 3
    assert eom.revenue == pytest.approx(exp_rev)
    assert eom.cost == pytest.approx(exp_cost)
    assert eom.incremental_revenue == pytest.approx(exp_rev - 1.5)
    assert eom.incremental_cost == pytest.approx(exp_cost - 0.0)
    # per-user propensity array gives the same
    p_arr = np.array([probs[t] for t in treatment])
    eom2 = expected_outcome(assignment, treatment, revenue, cost, propensity=p_arr,
                            control_name="c")
    assert eom2 == eom


def test_unequal_propensities_change_the_weights():
    treatment = np.array([0, 0, 1, 1, 2])
    revenue = np.array([0.0, 0.0, 2.0, 2.0, 10.0])
    cost = np.zeros(5)
    assignment = np.array([0, 0, 1, 1, 2])  # everyone matches
    # frequencies: p = 0.4, 0.4, 0.2 -> weights 2.5, 2.5, 5
    eom = expected_outcome(assignment, treatment, revenue, cost)
    assert eom.revenue == pytest.approx((2.5 * 4 + 5 * 10) / (2.5 * 4 + 5))
    eom_eq = expected_outcome(assignment, treatment, revenue, cost,
                              propensity={0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    assert eom_eq.revenue == pytest.approx(14 / 5)
    # probabilities of one experiment's arms that sum to more than 1 are a mistake
    with pytest.raises(ValueError, match="probabilities that sum to 1.2 > 1"):
        expected_outcome(assignment, treatment, revenue, cost,
                         propensity={0: 0.4, 1: 0.4, 2: 0.4})


def test_everyone_control_is_exactly_zero(rct):
    eom = expected_outcome(np.zeros(len(rct["treatment"]), dtype=int), rct["treatment"],
                           rct["revenue"], rct["cost"])
    assert eom.incremental_revenue == 0.0
    assert eom.incremental_cost == 0.0
    assert eom.n_matched == np.sum(rct["treatment"] == 0)


def test_eom_converges_to_true_policy_value(rct):
    # a deterministic policy depending on features: level 2 when x1 > 0.6, 1 when x0 > 0.5
    x = rct["x"]
    policy = np.where(x[:, 1] > 0.6, 2, np.where(x[:, 0] > 0.5, 1, 0))
    eom = expected_outcome(policy, rct["treatment"], rct["revenue"], rct["cost"])
    truth = true_value(policy, rct["true_r"], rct["true_c"])
    assert eom.incremental_revenue == pytest.approx(truth.incremental_revenue, abs=0.06)
    assert eom.incremental_cost == pytest.approx(truth.incremental_cost, abs=0.02)
    # known propensities (the design) give a consistent estimate too
    eom_p = expected_outcome(policy, rct["treatment"], rct["revenue"], rct["cost"],
                             propensity=dict(enumerate(rct["probs"])))
    assert eom_p.incremental_revenue == pytest.approx(truth.incremental_revenue, abs=0.06)


def test_expected_outcome_errors():
    t = np.array([0, 0, 1, 1])
    r = np.array([1.0, 2.0, 3.0, 4.0])
    c = np.array([0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="No RCT user"):
        expected_outcome([1, 1, 0, 0], t, r, c)
    with pytest.raises(ValueError, match="one arm label per RCT user"):
        expected_outcome([1, 1, 0], t, r, c)
    with pytest.raises(ValueError, match="Unknown treatment label"):
        expected_outcome([5, 5, 5, 5], t, r, c)
    with pytest.raises(ValueError, match="No control users"):
        expected_outcome([1, 1, 1, 1], t, r, c, control_name="ctrl")
    with pytest.raises(TypeError, match="`propensity` dict values must be real numbers"):
        expected_outcome([1, 1, 0, 0], t, r, c, propensity={0: "half", 1: 0.5})


@pytest.mark.parametrize("bad, error, match", [
    (np.nan, ValueError, r"1 missing label\(s\).*first at index 2"),
    (None, ValueError, "missing label"),
    ("two", TypeError, r"mixes label types \(number, str\)"),
])
def test_missing_or_mixed_treatment_labels(bad, error, match):
    t = np.array([0, 0, 1, 1, 0, 1], dtype=float if bad is np.nan else object)
    t[2] = bad
    r, c = np.arange(6.0), np.array([0, 0, 1, 1, 0, 1.0])
    with pytest.raises(error, match=match):
        rct_target(t, r, c)
    with pytest.raises(error, match=match):
        expected_outcome(np.zeros(6, dtype=int), t, r, c)


def test_string_and_numpy_string_labels_are_one_type():
    t = np.array(["c", "a", np.str_("a"), "c"], dtype=object)
    eom = expected_outcome(["a"] * 4, t, [1.0, 2, 3, 4], [0.0, 1, 1, 0], control_name="c")
    assert eom.n_matched == 2


# --------------------------------------------------------------------------- cost curve
def test_cost_curve_endpoints_and_monotonicity(rct):
    curve = cost_curve(rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"],
                       rct["cost"])
    assert len(curve.multipliers) == 100
    assert np.all(np.diff(curve.multipliers) < 0) and curve.multipliers[-1] == 0.0
    # nobody treated at the top multiplier (all true costs are positive)
    assert curve.incremental_cost[0] == 0.0 and curve.incremental_revenue[0] == 0.0
    # lam = 0 treats everyone with their best level (level 2 here)
    top = expected_outcome(np.full(len(rct["treatment"]), 2), rct["treatment"], rct["revenue"],
                           rct["cost"])
    assert curve.incremental_cost[-1] == pytest.approx(top.incremental_cost)
    # monotone up to noise: EOM cost correlates almost perfectly with the sweep order
    steps = np.diff(curve.incremental_cost)
    assert np.mean(steps >= 0) > 0.8
    assert np.corrcoef(np.arange(len(steps) + 1), curve.incremental_cost)[0, 1] > 0.95


def test_cost_curve_matches_pointwise_expected_outcome(rct):
    lams = [2.0, 1.0, 0.3]
    curve = cost_curve(rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"],
                       rct["cost"], multipliers=[0.3, 2.0, 1.0])
    np.testing.assert_array_equal(curve.multipliers, lams)
    for j, lam in enumerate(lams):
        policy = allocate_at_multiplier(rct["tau_r"], rct["tau_c"], lam)
        eom = expected_outcome(policy, rct["treatment"], rct["revenue"], rct["cost"])
        assert curve.incremental_cost[j] == pytest.approx(eom.incremental_cost)
        assert curve.incremental_revenue[j] == pytest.approx(eom.incremental_revenue)
        assert curve.n_matched[j] == eom.n_matched


def test_value_at_budget_tracks_oracle_truth(rct):
    args = (rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"], rct["cost"])
    budget = 0.3
    value = value_at_budget(*args, budget)
    lam = multiplier_at_budget(*args, budget)
    policy = allocate_at_multiplier(rct["tau_r"], rct["tau_c"], lam)
    truth = true_value(policy, rct["true_r"], rct["true_c"])
    assert truth.incremental_cost == pytest.approx(budget, abs=0.03)
    assert value == pytest.approx(truth.incremental_revenue, abs=0.08)
    oracle = true_value(oracle_allocation(rct["true_r"], rct["true_c"], budget),
                        rct["true_r"], rct["true_c"])
    assert value == pytest.approx(oracle.incremental_revenue, abs=0.08)
    # the EOM cost of the calibrated policy meets the budget
    eom = expected_outcome(policy, rct["treatment"], rct["revenue"], rct["cost"])
    assert eom.incremental_cost == pytest.approx(budget, abs=0.03)


def test_value_at_budget_edge_cases(rct):
    args = (rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"], rct["cost"])
    curve = cost_curve(*args)
    assert value_at_budget(*args, 0.0) == 0.0
    huge = 100.0
    j = int(np.argmax(curve.incremental_cost))
    assert value_at_budget(*args, huge) == pytest.approx(curve.incremental_revenue[j])
    assert multiplier_at_budget(*args, huge) == pytest.approx(curve.multipliers[j])
    # value increases with the budget over the useful range
    values = [curve.value_at(b) for b in (0.05, 0.15, 0.3, 0.5)]
    assert np.all(np.diff(values) > 0)
    lams = [curve.multiplier_at(b) for b in (0.05, 0.15, 0.3, 0.5)]
    assert np.all(np.diff(lams) < 0)
    with pytest.raises(ValueError, match="budget"):
        value_at_budget(*args, -1.0)


def test_free_incentive_reads_the_maximal_spend_point():
    # every observed cost 0: the curve is flat at 0, so any budget is above it and the
    # reading must be the maximal-spend point (lam = 0), not the first of the tied maxima
    rng = np.random.default_rng(0)
    n = 2000
    t = rng.integers(0, 2, n)
    gain = rng.uniform(0, 2, n)
    args = (gain[:, None], np.full((n, 1), 0.5), t, t * gain, np.zeros(n))
    curve = cost_curve(*args)
    assert multiplier_at_budget(*args, 1.0) == 0.0
    assert value_at_budget(*args, 1.0) == pytest.approx(curve.incremental_revenue[-1])
    assert value_at_budget(*args, 1.0) > 0.8  # everyone treated: mean gain 1


@pytest.mark.parametrize("budget, n_treated", [(0.3, 0), (0.75, 2000), (1.5, 4000)])
def test_tied_predictions_never_overspend_at_the_calibrated_multiplier(budget, n_treated):
    # two groups of identical users: the policy jumps from nobody to half to everyone,
    # and the multiplier interpolated across a jump would give the over-budget policy
    rng = np.random.default_rng(1)
    n = 4000
    t = rng.integers(0, 2, n)
    high = np.arange(n) < n // 2
    r_hat = np.where(high, 1.5, 0.5)[:, None]
    c_hat = np.ones((n, 1))
    revenue, cost = t * r_hat[:, 0] + rng.normal(0, 0.1, n), t * 1.0
    lam = multiplier_at_budget(r_hat, c_hat, t, revenue, cost, budget)
    policy = allocate_at_multiplier(r_hat, c_hat, lam)
    spend = expected_outcome(policy, t, revenue, cost).incremental_cost
    assert spend <= budget
    # the largest policy within the budget: nobody at 0.3 (the high half would spend
    # about 0.5), the high half at 0.75, everyone above the maximal spend
    assert (policy > 0).sum() == n_treated


def test_multiplier_without_ties_is_the_linear_interpolation(rct):
    args = (rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"], rct["cost"])
    curve = cost_curve(*args)
    for budget in (0.1, 0.3, 0.5):
        assert multiplier_at_budget(*args, budget) == curve.multiplier_at(budget)


def test_value_at_budget_interpolates():
    from sklearn_budget.metrics import CostCurve

    curve = CostCurve(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0, 3.0]),
                      np.array([0.0, 4.0, 6.0, 7.0]), np.ones(4, dtype=int))
    assert curve.value_at(1.5) == pytest.approx(5.0)
    assert curve.multiplier_at(1.5) == pytest.approx(1.5)
    assert curve.value_at(10) == pytest.approx(7.0)
    # first point already above the budget: interpolate from the origin
    curve2 = CostCurve(np.array([1.0, 0.0]), np.array([2.0, 4.0]), np.array([2.0, 3.0]),
                       np.ones(2, dtype=int))
    assert curve2.value_at(1.0) == pytest.approx(1.0)
    assert curve2.multiplier_at(1.0) == 1.0


def test_dr_cost_curve_without_cost_model_is_the_eom(rct):
    # Predicted cost uplift 0: the direct term vanishes and the matched users'
    # residuals are their observed costs, so the DR cost is exactly the EOM cost.
    zeros = np.zeros_like(rct["tau_c"])
    args = (rct["tau_r"], zeros, rct["treatment"], rct["revenue"], rct["cost"])
    eom = cost_curve(*args, multipliers=[0.0])
    dr = cost_curve(*args, multipliers=[0.0], estimate="dr")
    np.testing.assert_allclose(dr.incremental_cost, eom.incremental_cost, atol=1e-12)
    assert eom.incremental_cost[0] > 0.5


def test_dr_cost_curve_is_unbiased_and_less_noisy_with_a_good_model():
    # 40 small RCTs; predictions = the true uplift (a good outcome model).
    lams = [1.5, 0.8, 0.3]
    err = {"eom": [], "dr": []}
    for seed in range(40):
        d = _simulate(1500, [0.5, 0.3, 0.2], seed=100 + seed)
        truth = [true_value(allocate_at_multiplier(d["tau_r"], d["tau_c"], lam), d["true_r"],
                            d["true_c"]).incremental_cost for lam in lams]
        for est in err:
            curve = cost_curve(d["tau_r"], d["tau_c"], d["treatment"], d["revenue"],
                               d["cost"], multipliers=lams, estimate=est)
            err[est].append(curve.incremental_cost - truth)
    eom, dr = np.array(err["eom"]), np.array(err["dr"])
    # both unbiased (mean error within ~3 standard errors of 0) ...
    for e in (eom, dr):
        assert np.all(np.abs(e.mean(axis=0)) < 3 * e.std(axis=0) / np.sqrt(len(e)) + 1e-3)
    # ... and the DR estimate is less noisy (here by 20-45%: the cost noise
    # of the matched users remains, the luck of who is matched goes)
    assert np.all(dr.std(axis=0) < 0.9 * eom.std(axis=0))


def test_cost_curve_rejects_unknown_estimate(rct):
    with pytest.raises(ValueError, match="estimate"):
        cost_curve(rct["tau_r"], rct["tau_c"], rct["treatment"], rct["revenue"], rct["cost"],
                   estimate="ipw")


def test_cost_curve_levels_and_input_errors(rct):
    t, r, c = rct["treatment"], rct["revenue"], rct["cost"]
    keep = t != 2  # level 2 absent from this slice
    # (the message said "pass `levels=`", which only leads to the error below)
    with pytest.raises(ValueError, match="`levels=`.*score on a sample with every arm"):
        cost_curve(rct["tau_r"][keep], rct["tau_c"][keep], t[keep], r[keep], c[keep])
    # with the fitted levels, the absent level's users could not be matched: an error,
    # not an estimate that silently leaves them out
    with pytest.raises(ValueError, match=r"no users in level\(s\) \[2\]"):
        cost_curve(rct["tau_r"][keep], rct["tau_c"][keep], t[keep], r[keep], c[keep],
                   levels=[1, 2])
    with pytest.raises(ValueError, match="no users in level"):
        value_at_budget(rct["tau_r"][keep], rct["tau_c"][keep], t[keep], r[keep], c[keep],
                        0.5, levels=[1, 2])
    with pytest.raises(ValueError, match="rows"):
        cost_curve(rct["tau_r"][:10], rct["tau_c"][:10], t, r, c)
    with pytest.raises(ValueError, match="same shape"):
        cost_curve(rct["tau_r"], rct["tau_c"][:, :1], t, r, c)
    with pytest.raises(ValueError, match="multipliers"):
        cost_curve(rct["tau_r"], rct["tau_c"], t, r, c, multipliers=[1.0, -1.0])
    with pytest.raises(ValueError, match="n_multipliers"):
        cost_curve(rct["tau_r"], rct["tau_c"], t, r, c, n_multipliers=2)
    with pytest.raises(TypeError, match="`n_multipliers` must be an integer"):
        cost_curve(rct["tau_r"], rct["tau_c"], t, r, c, n_multipliers="many")


def test_cost_curve_string_labels():
    d = _simulate(3000, [0.5, 0.25, 0.25], seed=3)
    names = np.array(["none", "low", "high"])  # sorted levels: high, low
    labels = names[d["treatment"]]
    # columns in sorted label order: "high" is arm 2, "low" arm 1
    r_hat = d["tau_r"][:, ::-1]
    c_hat = d["tau_c"][:, ::-1]
    curve = cost_curve(r_hat, c_hat, labels, d["revenue"], d["cost"], control_name="none")
    ref = cost_curve(d["tau_r"], d["tau_c"], d["treatment"], d["revenue"], d["cost"],
                     multipliers=curve.multipliers)
    np.testing.assert_allclose(curve.incremental_revenue, ref.incremental_revenue)


# --------------------------------------------------------------------------- AUCC
def _aucc_literal(revenue, cost, treatment, score, bins):
    """Loop-based transcription of the Du et al. (2019) definition."""
    n = len(score)
    order = sorted(range(n), key=lambda i: -score[i])  # stable: ties keep input order
    xs, ys = [], []
    for j in range(bins + 1):
        top = order[: (j * n) // bins]
        tr = [i for i in top if treatment[i] == 1]
        co = [i for i in top if treatment[i] == 0]
        if tr and co:
            d_rev = (sum(revenue[i] for i in tr) / len(tr)
                     - sum(revenue[i] for i in co) / len(co)) * len(top)
            d_cost = (sum(cost[i] for i in tr) / len(tr)
                      - sum(cost[i] for i in co) / len(co)) * len(top)
        else:
            d_rev = d_cost = 0.0
        xs.append(d_cost)
        ys.append(d_rev)
    xs = [v / xs[-1] for v in xs]
    ys = [v / ys[-1] for v in ys]
    area = 0.0
    for j in range(bins):
        area += 0.5 * (ys[j] + ys[j + 1]) * (xs[j + 1] - xs[j])
    return area


@pytest.mark.parametrize("bins", [5, 20, 37])
def test_aucc_matches_literal_definition(binary, bins):
    n = 2000
    t = binary["treatment"][:n]
    r, c = binary["revenue"][:n], binary["cost"][:n]
    rng = np.random.default_rng(bins)
    score = binary["tau_r"][:n, 0] / binary["tau_c"][:n, 0] + rng.normal(size=n)
    score[:50] = 0.5  # ties
    assert aucc(r, c, t, score, bins=bins) == pytest.approx(
        _aucc_literal(r.tolist(), c.tolist(), t.tolist(), score.tolist(), bins), rel=1e-10)


def test_aucc_ordering_and_random_baseline(binary):
    t, r, c = binary["treatment"], binary["revenue"], binary["cost"]
    roi = binary["tau_r"][:, 0] / binary["tau_c"][:, 0]
    perfect = aucc(r, c, t, roi)
    rng = np.random.default_rng(0)
    noisy = aucc(r, c, t, roi + rng.normal(scale=2 * roi.std(), size=len(roi)))
    randoms = [aucc(r, c, t, rng.random(len(roi))) for _ in range(5)]
    assert perfect > noisy > np.mean(randoms)
    assert np.mean(randoms) == pytest.approx(0.5, abs=0.05)
    assert aucc(r, c, t, -roi) < 0.5


def test_aucc_errors(rct, binary):
    with pytest.raises(ValueError, match="binary treatment"):
        aucc(rct["revenue"], rct["cost"], rct["treatment"], rct["x"][:, 0])
    t, r, c = binary["treatment"], binary["revenue"], binary["cost"]
    with pytest.raises(ValueError, match="score"):
        aucc(r, c, t, np.ones(3))
    with pytest.raises(ValueError, match="bins"):
        aucc(r, c, t, np.ones(len(t)), bins=0)
    with pytest.raises(ValueError, match="positive"):
        aucc(r, np.zeros(len(t)), t, np.ones(len(t)))
    with pytest.raises(TypeError, match="`score` must be numeric"):
        aucc(r, c, t, np.array(["high"] * len(t)))


def test_mt_aucc(rct, binary):
    args = (rct["treatment"], rct["revenue"], rct["cost"])
    good = mt_aucc(rct["tau_r"], rct["tau_c"], *args)
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=3.0, size=rct["tau_r"].shape)
    noisy = mt_aucc(rct["tau_r"] + noise, rct["tau_c"], *args)
    assert 0.5 < noisy < good <= 1.0
    # random revenue and cost predictions: close to the diagonal (true costs alone would
    # already rank by ROI here, since revenue and cost uplift are independent)
    shape = rct["tau_r"].shape
    rnd = [mt_aucc(rng.random(shape), rng.random(shape) + 0.1, *args) for _ in range(3)]
    assert np.mean(rnd) == pytest.approx(0.5, abs=0.04)
    # one level: agrees with the binary AUCC of the ROI ranking
    b = binary
    one = mt_aucc(b["tau_r"], b["tau_c"], b["treatment"], b["revenue"], b["cost"])
    ref = aucc(b["revenue"], b["cost"], b["treatment"], b["tau_r"][:, 0] / b["tau_c"][:, 0])
    assert one == pytest.approx(ref, abs=0.03)
    with pytest.raises(ValueError, match="maximal-spend"):
        mt_aucc(-np.ones_like(rct["tau_r"]), rct["tau_c"], *args)


# --------------------------------------------------------------------------- scorer
class _NoisyOracle(BaseEstimator):
    """Predicts the true uplift (features 2:) plus `noise` times fixed noise columns."""

    def __init__(self, noise=0.0, control_name=0):
        self.noise = noise
        self.control_name = control_name

    def fit(self, X, y=None, treatment=None, cost=None):
        self.levels_ = np.array([1, 2])
        return self

    def predict(self, X):
        return X[:, 2:4] + self.noise * X[:, 6:8]

    def predict_cost(self, X):
        return X[:, 4:6]


@pytest.fixture(scope="module")
def scorer_data(rct):
    n = 12_000
    rng = np.random.default_rng(5)
    X = np.hstack([rct["x"][:n], rct["tau_r"][:n], rct["tau_c"][:n], rng.normal(size=(n, 2))])
    return X, rct["treatment"][:n], rct["revenue"][:n], rct["cost"][:n]


def test_budget_scorer_packed_y(scorer_data):
    X, t, r, c = scorer_data
    scorer = make_budget_scorer(0.3)
    est = _NoisyOracle().fit(X)
    expected = value_at_budget(X[:, 2:4], X[:, 4:6], t, r, c, 0.3)
    assert scorer(est, X, rct_target(t, r, c)) == pytest.approx(expected)
    assert scorer(est, X, r, treatment=t, cost=c) == pytest.approx(expected)
    assert "0.3" in repr(scorer)
    with pytest.raises(TypeError, match="predict_cost"):
        scorer(object(), X, rct_target(t, r, c))
    with pytest.raises(ValueError, match="Missing RCT"):
        scorer(est, X, r)


def test_budget_scorer_in_grid_search(scorer_data):
    X, t, r, c = scorer_data
    cv = KFold(3)
    search = GridSearchCV(_NoisyOracle(), {"noise": [0.0, 3.0]},
                          scoring=make_budget_scorer(0.3), cv=cv)
    search.fit(X, rct_target(t, r, c))
    assert search.best_params_ == {"noise": 0.0}
    packed_scores = search.cv_results_["mean_test_score"]

    with config_context(enable_metadata_routing=True):
        scorer = make_budget_scorer(0.3).set_score_request(treatment=True, cost=True)
        est = _NoisyOracle().set_fit_request(treatment=True, cost=True)
        routed = GridSearchCV(est, {"noise": [0.0, 3.0]}, scoring=scorer, cv=cv)
        routed.fit(X, r, treatment=t, cost=c)
    assert routed.best_params_ == {"noise": 0.0}
    np.testing.assert_allclose(routed.cv_results_["mean_test_score"], packed_scores)


def test_set_score_request_needs_routing():
    with pytest.raises(RuntimeError, match="enable_metadata_routing"):
        make_budget_scorer(1.0).set_score_request(treatment=True)
    with config_context(enable_metadata_routing=True):
        with pytest.raises(TypeError, match="Unexpected metadata"):
            make_budget_scorer(1.0).set_score_request(weights=True)


# --------------------------------------------------------------------------- oracle
def test_oracle_allocation_and_regret(rct):
    tr, tc = rct["true_r"], rct["true_c"]
    budget = 0.25
    a = oracle_allocation(tr, tc, budget)
    assert a.dtype == np.int64 and a.min() >= 0 and a.max() <= 2
    v = true_value(a, tr, tc)
    assert v.incremental_cost <= budget + 1e-9
    assert v.incremental_cost == pytest.approx(budget, abs=1e-3)
    assert regret(a, tr, tc, budget) == pytest.approx(0.0, abs=1e-12)
    # any other feasible policy does no better
    rng = np.random.default_rng(0)
    noisy = allocate_at_multiplier(rct["tau_r"] + rng.normal(size=rct["tau_r"].shape),
                                   rct["tau_c"], 3.0)
    nv = true_value(noisy, tr, tc)
    assert nv.incremental_cost < budget
    assert regret(noisy, tr, tc, budget) > 0
    # all-control: zero value
    assert true_value(np.zeros(len(a), dtype=int), tr, tc).incremental_revenue == 0.0


def test_true_value_hand_example_and_errors():
    tr = np.array([[1.0, 2.0, 5.0], [0.0, 1.0, 1.5]])
    tc = np.array([[0.0, 1.0, 3.0], [0.0, 1.0, 2.0]])
    v = true_value([2, 1], tr, tc)
    assert v.incremental_revenue == pytest.approx((4.0 + 1.0) / 2)
    assert v.incremental_cost == pytest.approx((3.0 + 1.0) / 2)
    with pytest.raises(ValueError, match="0..2"):
        true_value([3, 0], tr, tc)
    with pytest.raises(TypeError, match="integer arm codes"):
        true_value(["a", "b"], tr, tc)
    with pytest.raises(ValueError, match="one arm code per user"):
        true_value([0], tr, tc)
    with pytest.raises(ValueError, match="control in column 0"):
        true_value([0, 0], tr[:, 0], tc[:, 0])
    # no users: an error, not a NaN
    empty = np.zeros((0, 3))
    with pytest.raises(ValueError, match="at least one user"):
        true_value(np.zeros(0, dtype=int), empty, empty)
    with pytest.raises(ValueError, match="at least one user"):
        regret(np.zeros(0, dtype=int), empty, empty, budget=1.0)
    with pytest.raises(TypeError, match="`true_revenue` must be numeric"):
        oracle_allocation(np.full((3, 2), "x"), np.zeros((3, 2)), 1.0)


def test_metrics_do_not_import_torch():
    code = ("import sys, sklearn_budget.metrics, sklearn_budget.plotting; "
            "sys.exit(int('torch' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- inputs found by the metrics audit ------------------------------------------------------
def _binary_rct(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    gain = rng.uniform(0, 2, n)
    return t, t * gain + rng.normal(scale=0.1, size=n), t * 1.0, gain


def test_propensity_dict_with_nan_is_rejected():
    # NaN slipped through the (0, 1] check of a dict: every metric returned NaN and
    # multiplier_at_budget returned 0 (treat everyone)
    t, revenue, cost, gain = _binary_rct()
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\].*nan"):
        expected_outcome(np.ones(len(t), int), t, revenue, cost, propensity={0: 0.5, 1: np.nan})
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\]"):
        multiplier_at_budget(gain[:, None], np.ones((len(t), 1)), t, revenue, cost, 0.5,
                             propensity={0: 0.5, 1: np.nan})


def test_assignment_labels_of_another_type_name_the_labels():
    # integer arm codes against text labels raised numpy's "'<' not supported
    # between instances of 'str' and 'int'"
    t, revenue, cost, _ = _binary_rct()
    labels = pd.Series(np.where(t == 1, "mail", "none"), dtype=object)
    with pytest.raises(ValueError,
                       match=r"Unknown treatment label\(s\) \[1, 0\].*levels\[code - 1\]"):
        expected_outcome(t, labels, revenue, cost, control_name="none")
    with pytest.raises(ValueError, match=r"Unknown treatment label\(s\) \[None\]"):
        expected_outcome(np.where(t == 1, "mail", None), labels, revenue, cost,
                         control_name="none")


@pytest.mark.parametrize("levels", [["low", "high"], ["high", "high", "low"],
                                    ["high", "low", "none"], "high", [["high", "low"]]])
def test_given_levels_must_be_the_sorted_distinct_non_control_labels(levels):
    # unsorted levels were reported as unknown labels, a duplicate or the control as
    # "no users in level(s)", a scalar or 2-D list with raw numpy errors
    rng = np.random.default_rng(0)
    labels = np.array(["none", "low", "high"])[rng.integers(0, 3, 300)]
    r, c = rng.uniform(0, 2, (300, 2)), np.tile([1.0, 2.0], (300, 1))
    revenue, cost = rng.normal(size=300), (labels != "none") * 1.0
    with pytest.raises(ValueError, match="`levels` must be the distinct non-control"):
        cost_curve(r, c, labels, revenue, cost, control_name="none", levels=levels)
    curve = cost_curve(r, c, labels, revenue, cost, control_name="none", levels=["high", "low"])
    assert np.isfinite(curve.incremental_revenue).all()


@pytest.mark.parametrize("bins", [2.9, True, None, 0])
def test_aucc_bins_must_be_a_positive_integer(bins):
    # 2.9 was truncated to 2, True counted as 1 bin, None raised a bare int() TypeError
    t, revenue, cost, gain = _binary_rct()
    with pytest.raises(ValueError, match="`bins` must be an integer"):
        aucc(revenue, cost, t, gain, bins=bins)
    assert aucc(revenue, cost, t, gain, bins=np.int64(3)) == aucc(revenue, cost, t, gain, bins=3)


def test_aucc_infinite_score_is_named():
    # a score with one inf was reported as "got 400 value(s)", the expected count
    t, revenue, cost, gain = _binary_rct()
    gain[3] = np.inf
    with pytest.raises(ValueError, match="1 NaN or infinite value"):
        aucc(revenue, cost, t, gain)


def test_cost_curve_with_a_near_zero_cost_does_not_warn():
    r = np.array([[1.0], [1.0], [2.0], [0.5]])
    c = np.array([[1e-309], [1.0], [1.0], [1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curve = cost_curve(r, c, [0, 1, 0, 1], [0.0, 1.0, 0.0, 2.0], [0.0, 1.0, 0.0, 1.0])
    assert np.isfinite(curve.multipliers).all()


def test_budget_scorer_checks_n_multipliers_when_made():
    # a bad n_multipliers surfaced only inside cross-validation, as NaN scores
    with pytest.raises(ValueError, match="`n_multipliers` must be between 3 and 100,000"):
        make_budget_scorer(1.0, n_multipliers=2)
    assert repr(make_budget_scorer(1.0, control_name="none", n_multipliers=50)) == (
        "make_budget_scorer(budget=1.0, control_name='none', n_multipliers=50)")
    assert repr(make_budget_scorer(1.0)) == "make_budget_scorer(budget=1.0)"


def test_value_at_a_zero_budget_reads_the_free_policy():
    # budget 0 was special-cased to 0 while the policy multiplier_at_budget(0) picks
    # earns revenue at no cost (half the incentives cost nothing) and a budget of 1e-9
    # read 0.75
    rng = np.random.default_rng(0)
    t, g = rng.integers(0, 2, 1000), rng.uniform(0, 2, 1000)
    c_hat = np.where(g > 1, 0.0, 1.0)[:, None]
    args = (g[:, None], c_hat, t, t * g, t * c_hat[:, 0])
    policy = allocate_at_multiplier(args[0], c_hat, multiplier_at_budget(*args, 0.0))
    eom = expected_outcome(policy, *args[2:])
    assert eom.incremental_cost == 0 and eom.incremental_revenue > 0.5
    assert value_at_budget(*args, 0.0) == pytest.approx(eom.incremental_revenue)
    assert value_at_budget(*args, 0.0) == pytest.approx(value_at_budget(*args, 1e-9))


@pytest.mark.parametrize("revenue", [np.array(["1", "3", "4", "6"]),
                                     np.array([1, 3, 4, 6]).astype("datetime64[D]"),
                                     np.array([1, 3, 4, 6]) + 5j])
def test_outcomes_must_be_numbers(revenue):
    # text, dates and complex numbers were converted silently (the imaginary part
    # dropped with only numpy's warning), while uplift and score inputs refused text
    with pytest.raises(TypeError, match="`revenue` must be numeric"):
        expected_outcome([1, 1, 1, 1], [0, 0, 1, 1], revenue, [0.0, 0.0, 1.0, 1.0])
