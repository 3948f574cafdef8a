"""Tests of sklearn_budget.plotting (Agg backend)."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_budget import rct_target  # noqa: E402
from sklearn_budget.metrics import cost_curve, value_at_budget  # noqa: E402
from sklearn_budget.plotting import CostCurveDisplay  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 4000
    t = rng.integers(0, 3, n)
    gain = rng.uniform(0, 1, (n, 1)) * [1.0, 1.6]
    cost_up = np.tile([1.0, 2.0], (n, 1))
    idx = np.clip(t - 1, 0, 1)
    rows = np.arange(n)
    revenue = np.where(t > 0, gain[rows, idx], 0.0) + rng.normal(scale=0.3, size=n)
    cost = np.where(t > 0, cost_up[rows, idx], 0.0)
    noisy = gain + rng.normal(scale=0.5, size=gain.shape)
    return dict(t=t, revenue=revenue, cost=cost, gain=gain, cost_up=cost_up, noisy=noisy)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _Model:
    control_name = 0
    levels_ = np.array([1, 2])

    def __init__(self, r, c):
        self.r, self.c = r, c

    def predict(self, X):
        return self.r[X[:, 0].astype(int)]

    def predict_cost(self, X):
        return self.c[X[:, 0].astype(int)]


def test_from_predictions_draws_curve_references_and_marker(data, tmp_path):
    d = data
    disp = CostCurveDisplay.from_predictions(
        d["noisy"], d["cost_up"], d["t"], d["revenue"], d["cost"], name="noisy model",
        oracle=(d["gain"], d["cost_up"]), budget=0.5)
    curve = cost_curve(d["noisy"], d["cost_up"], d["t"], d["revenue"], d["cost"])
    np.testing.assert_allclose(disp.incremental_cost, curve.incremental_cost)
    np.testing.assert_allclose(disp.line_.get_xdata(), curve.incremental_cost)
    np.testing.assert_allclose(disp.line_.get_ydata(), curve.incremental_revenue)
    labels = [line.get_label() for line in disp.ax_.get_lines()]
    assert labels == ["noisy model", "random allocation", "oracle", "budget 0.5"]
    # random reference: origin to the maximal-spend point
    np.testing.assert_allclose(disp.random_line_.get_xdata(), [0, curve.incremental_cost[-1]])
    np.testing.assert_allclose(disp.random_line_.get_ydata(),
                               [0, curve.incremental_revenue[-1]])
    # marker at the value at budget
    expected = value_at_budget(d["noisy"], d["cost_up"], d["t"], d["revenue"], d["cost"], 0.5)
    assert disp.value_at_budget_ == pytest.approx(expected)
    assert disp.budget_marker_.get_ydata()[0] == pytest.approx(expected)
    # the oracle's curve lies above the noisy model's at the budget
    oracle_disp = CostCurveDisplay(disp.oracle_cost, disp.oracle_revenue, budget=0.5).plot()
    assert oracle_disp.value_at_budget_ > disp.value_at_budget_
    assert "cost" in disp.ax_.get_xlabel().lower() and "revenue" in disp.ax_.get_ylabel().lower()
    assert disp.figure_ is disp.ax_.figure
    path = tmp_path / "curve.png"
    disp.figure_.savefig(path)
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_plot_on_given_axes_without_references(data):
    d = data
    fig, ax = plt.subplots()
    disp = CostCurveDisplay.from_predictions(d["gain"], d["cost_up"], d["t"], d["revenue"],
                                             d["cost"], ax=ax, random_reference=False,
                                             color="red")
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.random_line_ is None and disp.oracle_line_ is None
    assert disp.budget_marker_ is None
    assert disp.line_.get_label() == "policy"
    assert disp.line_.get_color() == "red"
    # replot with another name on the same axes
    disp.plot(ax=ax, name="again", random_reference=False)
    assert [line.get_label() for line in ax.get_lines()] == ["policy", "again"]


def test_from_estimator_packed_and_keywords(data):
    d = data
    X = np.arange(len(d["t"]))[:, None].astype(float)
    model = _Model(d["noisy"], d["cost_up"])
    packed = CostCurveDisplay.from_estimator(model, X, rct_target(d["t"], d["revenue"], d["cost"]))
    kw = CostCurveDisplay.from_estimator(model, X, d["revenue"], treatment=d["t"], cost=d["cost"],
                                         name="kw")
    assert packed.line_.get_label() == "_Model"
    assert kw.line_.get_label() == "kw"
    np.testing.assert_allclose(packed.incremental_revenue, kw.incremental_revenue)
    with pytest.raises(ValueError, match="Missing RCT"):
        CostCurveDisplay.from_estimator(model, X, d["revenue"])


def test_bad_oracle_raises(data):
    d = data
    with pytest.raises(ValueError, match="oracle"):
        CostCurveDisplay.from_predictions(d["gain"], d["cost_up"], d["t"], d["revenue"],
                                          d["cost"], oracle=(d["gain"],))
    for cost, revenue in (([], []), ([0.0, 1.0, 2.0], [0.0, 1.0])):
        with pytest.raises(ValueError, match="one common, non-zero length"):
            CostCurveDisplay(cost, revenue, budget=1.0)


def test_budget_of_a_cost_curve_display_is_checked(data, monkeypatch):
    # a one-element array (accepted by the metrics) failed on the legend label after the
    # sweep; a bad budget is refused before it
    d = data
    disp = CostCurveDisplay.from_predictions(d["gain"], d["cost_up"], d["t"], d["revenue"],
                                             d["cost"], budget=np.array([0.3]))
    assert disp.budget == 0.3 and disp.budget_marker_.get_label() == "budget 0.3"
    from sklearn_budget.plotting import _cost_curve

    monkeypatch.setattr(_cost_curve, "cost_curve", None)  # no sweep may run
    for bad, error in ((-1.0, ValueError), ("0.3", TypeError)):
        with pytest.raises(error, match="`budget`"):
            CostCurveDisplay.from_predictions(d["gain"], d["cost_up"], d["t"], d["revenue"],
                                              d["cost"], budget=bad)
        with pytest.raises(error, match="`budget`"):
            CostCurveDisplay([0.0, 1.0], [0.0, 1.0], budget=bad)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    from sklearn_budget import plotting

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    disp = plotting.CostCurveDisplay(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ImportError, match=r'pip install "sklearn-budget\[plot\]"'):
        disp.plot()


# -- TrainingHistoryDisplay ---------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e_data():
    from sklearn_budget.datasets import make_marketing_rct
    d = make_marketing_rct(n_samples=2000, random_state=0)
    return d.X, rct_target(d.treatment, d.revenue, d.cost)


def _e2e(e2e_data, **params):
    from sklearn_budget import EndToEndBudgetAllocator
    X, y = e2e_data
    kw = dict(budget=1.0, max_epochs=3, hidden_layer_sizes=(16,), random_state=0)
    return EndToEndBudgetAllocator(**{**kw, **params}).fit(X, y)


@pytest.mark.parametrize("acceptance", [0.0, 1.0])
def test_training_history_two_phases(e2e_data, acceptance):
    from sklearn_budget.plotting import TrainingHistoryDisplay
    est = _e2e(e2e_data, goal_phase_acceptance=acceptance)
    history = est.net_.history
    disp = TrainingHistoryDisplay.from_estimator(est)
    # cross-fitted gate (the default): the goal phase's goal on each half too
    assert set(disp.lines_) == {"train_loss", "valid_loss", "valid_goal", "valid_goal_half1",
                                "valid_goal_half2"}
    np.testing.assert_allclose(disp.lines_["valid_goal"].get_ydata(), history[:, "valid_goal"])
    n1 = est.warmup_epochs_
    half2 = disp.lines_["valid_goal_half2"].get_ydata()
    assert np.isnan(half2[:n1]).all()
    np.testing.assert_allclose(half2[n1:], history[n1:, "valid_goal_half2"])
    np.testing.assert_allclose(disp.lines_["train_loss"].get_xdata(), history[:, "epoch"])
    # the goal was switched on after phase 1: one dashed line per panel between the phases
    assert 0 < n1 < len(history)
    assert len(disp.goal_on_lines_) == 2
    assert disp.goal_on_lines_[0].get_xdata()[0] == pytest.approx(n1 + 0.5)
    # circles at the epochs early stopping restored in each phase
    (x1,), (x2,) = (m.get_xdata() for m in disp.restored_markers_)
    assert x1 == est.phase1_best_epoch_ <= n1 < x2 == est.goal_phase_best_epoch_
    title = disp.figure_._suptitle.get_text()
    assert ("kept" in title) == bool(est.goal_phase_kept_)
    assert ("rejected" in title) == (not est.goal_phase_kept_)


@pytest.mark.parametrize("kept, text", [(True, "x: goal phase kept"),
                                        (False, "x: goal phase rejected (phase 1 deployed)")])
def test_training_history_title_and_restored_epochs(kept, text):
    from sklearn_budget.plotting import TrainingHistoryDisplay
    nan = np.nan
    disp = TrainingHistoryDisplay(
        [1, 2, 3, 4, 5], [3, 2, 1, 0, -1], [2.0, 1.0, 1.5, 1.6, 1.7], [1, 2, 1, 4, 3],
        goal_on=3, goal_phase_kept=kept, split_validation=True, name="x").plot()
    assert disp.figure_._suptitle.get_text() == text
    # phase 1's best loss is epoch 2; phase 2's best goal is epoch 4 (not phase 1's)
    assert [m.get_xdata()[0] for m in disp.restored_markers_] == [2, 4]
    # given restored epochs win over the best values; None draws no circle
    curves = ([1, 2, 3, 4, 5], [3, 2, 1, 0, -1], [2.0, 1.0, 1.5, 1.6, 1.7], [1, 2, 1, 4, 3])
    given = TrainingHistoryDisplay(*curves, goal_on=3, restored_epochs=(1, None)).plot()
    assert [m.get_xdata()[0] for m in given.restored_markers_] == [1]
    given = TrainingHistoryDisplay(*curves, goal_on=3, restored_epochs=(None, 5)).plot()
    assert [(m.get_xdata()[0], m.get_ydata()[0]) for m in given.restored_markers_] == [(5, 3)]
    assert given.restored_markers_[0].axes is given.axes_[1]
    with pytest.raises(ValueError, match="restored epoch 7 is not among the plotted epochs"):
        TrainingHistoryDisplay(*curves, goal_on=3, restored_epochs=(7, None))
    # refused when given, not half-way through plot with a raw IndexError / TypeError
    for bad in ((1, 4, 5), 3, "12", (1.5, None), (True, None)):
        with pytest.raises(TypeError, match="`restored_epochs`"):
            TrainingHistoryDisplay(*curves, goal_on=3, restored_epochs=bad)
    given = TrainingHistoryDisplay(*curves, goal_on=3, restored_epochs=[np.int64(2), 5]).plot()
    assert [m.get_xdata()[0] for m in given.restored_markers_] == [2, 5]
    assert "picking half" in disp.axes_[1].texts[0].get_text()
    # no validation data: no validation curves and no circles
    bare = TrainingHistoryDisplay([1, 2], [1, 0.5], [nan, nan], [nan, nan]).plot()
    assert set(bare.lines_) == {"train_loss"} and bare.restored_markers_ == []


def test_training_history_without_goal_and_on_given_axes(e2e_data):
    from sklearn_budget.plotting import TrainingHistoryDisplay
    est = _e2e(e2e_data, reg_weight=0.0)
    fig, axes = plt.subplots(1, 2)
    disp = TrainingHistoryDisplay.from_estimator(est, axes=axes, name="ablation")
    assert disp.figure_ is fig and list(disp.axes_) == list(axes)
    assert disp.goal_on_lines_ == [] and len(disp.restored_markers_) == 1
    assert disp.restored_markers_[0].get_xdata()[0] == est.best_epoch_
    assert disp.figure_._suptitle.get_text() == "ablation"


def test_training_history_without_early_stopping_circles_nothing(e2e_data):
    # the last epoch is deployed: "epoch restored by early stopping" was in the legend,
    # its circle at a NaN point
    from sklearn_budget.plotting import TrainingHistoryDisplay

    est = _e2e(e2e_data, warmup_epochs=1, early_stopping=False)
    disp = TrainingHistoryDisplay.from_estimator(est)
    assert disp.restored_markers_ == []
    labels = [t.get_text() for ax in disp.axes_ for t in ax.get_legend().get_texts()]
    assert not any("restored" in label for label in labels)


def test_training_history_errors(e2e_data):
    from sklearn.exceptions import NotFittedError

    from sklearn_budget import EndToEndBudgetAllocator
    from sklearn_budget.plotting import TrainingHistoryDisplay
    with pytest.raises(NotFittedError):
        TrainingHistoryDisplay.from_estimator(EndToEndBudgetAllocator())
    from sklearn.linear_model import LinearRegression

    fitted_other = LinearRegression().fit(np.ones((3, 1)), np.arange(3.0))
    with pytest.raises(TypeError, match="LinearRegression has none"):
        TrainingHistoryDisplay.from_estimator(fitted_other)
    with pytest.raises(ValueError, match="one common, non-zero length"):
        TrainingHistoryDisplay([1, 2, 3], [1.0, 2.0], [1.0, 2.0, 3.0], [0.0] * 3)
    est = _e2e(e2e_data, max_epochs=1, warmup_epochs=0)
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="two matplotlib Axes"):
        TrainingHistoryDisplay.from_estimator(est, axes=[ax])


def test_training_history_half_goals_are_checked_when_given():
    # a 2 x n array raised numpy's "truth value of an array is ambiguous", a wrong
    # length a matplotlib shape error, both half-way through drawing
    from sklearn_budget.plotting import TrainingHistoryDisplay

    curves = ([1, 2, 3], [1.0, 0.8, 0.7], [1.1, 0.9, 0.8], [0.5, 0.6, 0.7])
    disp = TrainingHistoryDisplay(*curves, half_goals=np.array([[0.4, 0.5, 0.6],
                                                               [0.6, 0.7, 0.8]])).plot()
    assert {"valid_goal_half1", "valid_goal_half2"} <= set(disp.lines_)
    with pytest.raises(ValueError, match="one common, non-zero length"):
        TrainingHistoryDisplay(*curves, half_goals=([0.4, 0.5], [0.6, 0.7]))
    with pytest.raises(ValueError, match="must be two series"):
        TrainingHistoryDisplay(*curves, half_goals=([0.4, 0.5, 0.6],))
    plt.close("all")
