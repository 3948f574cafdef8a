"""
=====================================================
Cost curves, AUCC and MT-AUCC of budget allocators
=====================================================

A budget allocator defines a whole family of policies: for a price ``lam``
of one cost unit, each user gets the level maximising
``revenue_uplift - lam * cost_uplift``. Sweeping ``lam`` from "nobody
treated" to 0 traces the *cost curve*: incremental revenue against
incremental cost, both estimated on RCT data with the Expected Outcome Metric
(EOM). A curve above another is better at every budget; the area under the
normalised curve summarises the ranking quality over all budgets:

- :func:`~sklearn_budget.metrics.aucc` (Du et al., 2019) for a binary
  treatment, from a predicted ROI score;
- :func:`~sklearn_budget.metrics.mt_aucc` for several incentive levels, from
  the (n, K) uplift predictions.

Random targeting scores about 0.5. This example draws the curves of three
fitted allocators on one axis with :class:`~sklearn_budget.plotting.CostCurveDisplay`,
with the random and oracle references, and computes both areas. It needs
causalml for the two-stage baseline.

Set ``SKLEARN_BUDGET_EXAMPLES_FAST=1`` to run a tiny version (for tests).
"""

# %%
# Data and models
# ---------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from sklearn_budget import EndToEndBudgetAllocator, TwoStageBudgetAllocator, rct_target
from sklearn_budget.baselines import make_meta_learner
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import aucc, mt_aucc
from sklearn_budget.plotting import CostCurveDisplay

FAST = os.environ.get("SKLEARN_BUDGET_EXAMPLES_FAST", "") not in ("", "0")
N_SAMPLES = 3_000 if FAST else 20_000
MAX_EPOCHS = 3 if FAST else 30
WARMUP_EPOCHS = 1 if FAST else 5
N_TREES = 10 if FAST else 100


def split(data):
    y = rct_target(data.treatment, data.revenue, data.cost)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.5,
                                           stratify=data.treatment, random_state=0)
    return idx_train, idx_test, y


data = make_marketing_rct(n_samples=N_SAMPLES, random_state=2)
idx_train, idx_test, y = split(data)
X_train, X_test, y_train, y_test = data.X[idx_train], data.X[idx_test], y[idx_train], y[idx_test]
true_r, true_c = data.true_revenue[idx_test], data.true_cost[idx_test]
oracle_uplift = (true_r[:, 1:] - true_r[:, :1], true_c[:, 1:] - true_c[:, :1])

budget = 2.5
e2e_params = dict(budget=budget, max_epochs=MAX_EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                  random_state=0)
models = {
    "T-learner (two-stage)": TwoStageBudgetAllocator(
        make_meta_learner("T", HistGradientBoostingRegressor(max_iter=N_TREES,
                                                             random_state=0)),
        budget=budget, random_state=0),
    "end-to-end, reg_weight=0": EndToEndBudgetAllocator(reg_weight=0.0, **e2e_params),
    "end-to-end, reg_weight=1": EndToEndBudgetAllocator(reg_weight=1.0, **e2e_params),
}
for model in models.values():
    model.fit(X_train, y_train)

# %%
# Several cost curves on one axis
# -------------------------------
# Each call of :meth:`CostCurveDisplay.from_estimator` adds one curve to
# ``ax``. The first one also draws the oracle's curve (the same EOM sweep on
# the true uplifts, given as ``oracle=``) and the random-allocation line (from
# the origin to the curve's maximal-spend point); the others skip the
# references to keep the legend readable. ``budget`` marks the value at the
# budget on each curve.
fig, ax = plt.subplots(figsize=(10, 5.5))
displays = {}
for i, (name, model) in enumerate(models.items()):
    displays[name] = CostCurveDisplay.from_estimator(
        model, X_test, y_test, name=name, budget=budget, ax=ax,
        oracle=oracle_uplift if i == 0 else None, random_reference=(i == 0))
ax.axvline(budget, color="gray", linewidth=0.8, linestyle=":")
ax.set_title("EOM cost curves on the test RCT")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
fig.tight_layout()

# %%
# MT-AUCC (several levels)
# ------------------------
# :func:`mt_aucc` normalises a curve by its maximal-spend point and takes the
# area; the straight random line gives 0.5. The value at the budget (the
# marker above, the same as ``model.score``) is what matters for one budget;
# the area summarises all budgets at once. Note that each curve is normalised
# by its *own* end point: compare areas together with the values.
t_test, r_test, c_test = data.treatment[idx_test], data.revenue[idx_test], data.cost[idx_test]
print(f"{'policy':<26}{'MT-AUCC':>9}{'EOM revenue/user at budget':>29}")
for name, model in models.items():
    area = mt_aucc(model.predict(X_test), model.predict_cost(X_test), t_test, r_test, c_test,
                   levels=model.levels_)
    print(f"{name:<26}{area:9.3f}{displays[name].value_at_budget_:29.3f}")
oracle_area = mt_aucc(*oracle_uplift, t_test, r_test, c_test)
print(f"{'oracle (true uplifts)':<26}{oracle_area:9.3f}")
print(f"{'random allocation':<26}{0.5:9.3f}  (the dashed line, by construction)")

# %%
# AUCC (one treatment level)
# --------------------------
# With a single coupon level, the policy family is a ranking of users by
# predicted return on investment, ``revenue_uplift / cost_uplift``, and
# :func:`aucc` measures it with the group differences of Du et al. (2019):
# the top ``q`` fraction of the ranking is treated, for 20 values of ``q``.
binary = make_marketing_rct(n_samples=N_SAMPLES, n_treatments=1, random_state=3)
b_train, b_test, yb = split(binary)
t_learner = TwoStageBudgetAllocator(
    make_meta_learner("T", HistGradientBoostingRegressor(max_iter=N_TREES, random_state=0)),
    budget=1.0, random_state=0).fit(binary.X[b_train], yb[b_train])
roi_hat = (t_learner.predict(binary.X[b_test])[:, 0]
           / np.clip(t_learner.predict_cost(binary.X[b_test])[:, 0], 1e-6, None))
true_roi = ((binary.true_revenue[b_test, 1] - binary.true_revenue[b_test, 0])
            / (binary.true_cost[b_test, 1] - binary.true_cost[b_test, 0]))
args = (binary.revenue[b_test], binary.cost[b_test], binary.treatment[b_test])
rng = np.random.default_rng(0)
print(f"AUCC  T-learner ROI {aucc(*args, roi_hat):.3f}, true ROI {aucc(*args, true_roi):.3f}, "
      f"random {aucc(*args, rng.random(len(b_test))):.3f}")
plt.show()
