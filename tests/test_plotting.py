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


def test_missing_matplotlib_names_the_extra(monkeypatch):
    from sklearn_budget import plotting

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    disp = plotting.CostCurveDisplay(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ImportError, match=r'pip install "sklearn-budget\[plot\]"'):
        disp.plot()
