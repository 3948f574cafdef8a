"""
================================================================
The budget solver on the predictions of any uplift model
================================================================

The second stage of every budget allocation is the same optimisation, a
multiple-choice knapsack: given each user's predicted revenue uplift
``r[i, k]`` and cost uplift ``c[i, k]`` for the incentive levels
``k = 1..K`` (control is level 0, with zero uplift and zero cost), pick one
arm per user to maximise ``sum_i r[i, a_i]`` subject to
``sum_i c[i, a_i] <= budget``.

:func:`~sklearn_budget.solve_budget_allocation` solves it exactly in the
Lagrangian sense (each user takes ``argmax_k r[i, k] - lam * c[i, k]`` at the
smallest price ``lam`` whose spend fits) and spends what is left greedily.
It takes plain (n, K) arrays, the layout of causalml's ``predict``, so it
works with *any* uplift model. Here the uplift model is built by hand from
scikit-learn regressors, one per arm.

Set ``SKLEARN_BUDGET_EXAMPLES_FAST=1`` to run a tiny version (for tests).
"""

# %%
# An uplift model from plain scikit-learn regressors
# --------------------------------------------------
# One regressor per arm and outcome, fitted on the RCT users of that arm (a
# "T-learner" by hand); the uplift of level ``k`` is the prediction of arm
# ``k`` minus the prediction of the control arm.
import importlib.util
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from sklearn_budget import allocate_at_multiplier, solve_budget_allocation
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import oracle_allocation, true_value

FAST = os.environ.get("SKLEARN_BUDGET_EXAMPLES_FAST", "") not in ("", "0")
N_SAMPLES = 3_000 if FAST else 20_000
N_TREES = 10 if FAST else 100
N_BUDGETS = 6 if FAST else 25

data = make_marketing_rct(n_samples=N_SAMPLES, random_state=0)
idx_train, idx_test = train_test_split(np.arange(N_SAMPLES), test_size=0.5,
                                       stratify=data.treatment, random_state=0)
X_train, X_test = data.X[idx_train], data.X[idx_test]
t_train = data.treatment[idx_train]
n_levels = data.true_revenue.shape[1] - 1


def fit_predict_per_arm(outcome):
    """(n_test, K) uplift predictions of ``outcome`` from one regressor per arm."""
    predictions = []
    for arm in range(n_levels + 1):
        mask = t_train == arm
        model = HistGradientBoostingRegressor(max_iter=N_TREES, random_state=0)
        model.fit(X_train[mask], outcome[idx_train][mask])
        predictions.append(model.predict(X_test))
    predictions = np.column_stack(predictions)
    return predictions[:, 1:] - predictions[:, :1]


r_hat = fit_predict_per_arm(data.revenue)
c_hat = fit_predict_per_arm(data.cost)
print("uplift predictions:", r_hat.shape, c_hat.shape)

# %%
# Solve the budget problem
# ------------------------
# The budget is total (cost units for these users); ``budget_per_user=`` is
# the per-user alternative. The result holds the assignment (0 = control,
# ``k`` = column ``k - 1``), the multiplier ``lam*`` (the price of one cost
# unit at the budget), the spend and value *as predicted*, and the Lagrangian
# dual bound: no assignment can earn more than ``dual_bound`` on these
# predictions, so ``optimality_gap`` certifies how close the solution is to
# the optimum of the integer problem.
n_test = len(idx_test)
budget_per_user = 2.5
tic = time.perf_counter()
sol = solve_budget_allocation(r_hat, c_hat, budget=budget_per_user * n_test)
print(f"solved {n_test} users x {n_levels} levels in {time.perf_counter() - tic:.4f} s")
print(f"multiplier {sol.multiplier:.4f}")
print(f"predicted spend {sol.spend:.1f} of budget {sol.budget:.1f}")
print(f"predicted value {sol.value:.1f}, dual bound {sol.dual_bound:.1f}, "
      f"optimality gap {sol.optimality_gap:.2e}")
counts = np.bincount(sol.assignment, minlength=n_levels + 1)
print("users per arm (control, levels 1..K):", counts)

# %%
# At a fixed price: :func:`~sklearn_budget.allocate_at_multiplier` is the
# per-user rule alone. At ``lam*`` it agrees with the solver except for the
# few users the greedy completion upgraded with the budget left over.
at_lam = allocate_at_multiplier(r_hat, c_hat, sol.multiplier)
print(f"users that differ from the rule at lam*: {np.count_nonzero(at_lam != sol.assignment)}")

# %%
# Torch tensors (CPU or CUDA) are solved in torch, without a copy to numpy,
# e.g. straight from a network's output:
sol_torch = solve_budget_allocation(torch.as_tensor(r_hat), torch.as_tensor(c_hat),
                                    budget_per_user=budget_per_user)
print(f"torch: {type(sol_torch.assignment).__name__}, same assignment: "
      f"{bool((sol_torch.assignment.numpy() == sol.assignment).all())}")

# %%
# Any causalml meta-learner gives the same (n, K) layout, when causalml is
# installed: ``BaseXRegressor(learner=...).fit(X=X, treatment=t, y=y).predict(X=X)``.
if importlib.util.find_spec("causalml") is not None:
    from causalml.inference.meta import BaseXRegressor

    def causalml_uplift(outcome):
        learner = BaseXRegressor(
            learner=HistGradientBoostingRegressor(max_iter=N_TREES, random_state=0),
            control_name=0)
        # known propensities P(arm k | arm k or control): 1/2 with 4 equally likely arms
        p = {k: np.full(len(X_train), 0.5) for k in range(1, n_levels + 1)}
        learner.fit(X=X_train, treatment=t_train, y=outcome[idx_train], p=p)
        return learner.predict(X=X_test, p={k: np.full(n_test, 0.5) for k in p})

    r_x, c_x = causalml_uplift(data.revenue), causalml_uplift(data.cost)
    sol_x = solve_budget_allocation(r_x, c_x, budget_per_user=budget_per_user)
    print(f"causalml X-learner: predicted value {sol_x.value:.1f}, multiplier "
          f"{sol_x.multiplier:.4f}")

# %%
# Truth: what the predicted numbers are worth
# -------------------------------------------
# The solver is exact *on the predictions*; the real outcome depends on how
# good they are. On synthetic data we can compare with the truth: the true
# revenue and spend of the assignment, and the oracle (the same solver on the
# true uplifts).
true_r, true_c = data.true_revenue[idx_test], data.true_cost[idx_test]
learned = true_value(sol.assignment, true_r, true_c)
oracle = true_value(oracle_allocation(true_r, true_c, budget_per_user), true_r, true_c)
print(f"predicted value/user {sol.value / n_test:.3f}, true {learned.incremental_revenue:.3f} "
      f"(oracle {oracle.incremental_revenue:.3f}); predicted spend/user "
      f"{sol.spend / n_test:.3f}, true {learned.incremental_cost:.3f}")

# %%
# The predicted value is far above the true one: the solver picks the users
# whose predicted uplift is largest, and these are, in part, the users whose
# prediction errors are largest (the "optimizer's curse"). Its
# ``value`` and ``dual_bound`` describe the predictions, not the world.
#
# Value against budget
# --------------------
# Solving at many budgets traces the value the model promises (predicted),
# the value it delivers (true), and the oracle's. The right panel shows the
# true spend: the solver keeps the *predicted* spend within the budget, but
# errors in the predicted costs move the real one. This is why the
# estimators of this package calibrate their multiplier on held-out RCT data
# instead of trusting the predicted costs.
budgets = np.linspace(0.0, 6.0, N_BUDGETS)
curves = {"predicted": [], "true": [], "oracle": [], "true spend": [], "dual bound": []}
for b in budgets:
    s = solve_budget_allocation(r_hat, c_hat, budget_per_user=b)
    tv = true_value(s.assignment, true_r, true_c)
    curves["predicted"].append(s.value / n_test)
    curves["dual bound"].append(s.dual_bound / n_test)
    curves["true"].append(tv.incremental_revenue)
    curves["true spend"].append(tv.incremental_cost)
    curves["oracle"].append(true_value(oracle_allocation(true_r, true_c, b), true_r,
                                       true_c).incremental_revenue)

# causalml switches matplotlib to its "fivethirtyeight" style when it is
# imported (above); go back to matplotlib's default look for the plots.
plt.style.use("default")
fig, (ax_value, ax_spend) = plt.subplots(1, 2, figsize=(11, 4.5))
ax_value.plot(budgets, curves["oracle"], color="black", linestyle=":", label="oracle (true)")
ax_value.plot(budgets, curves["true"], marker=".", label="model's allocation (true)")
ax_value.plot(budgets, curves["predicted"], marker=".", label="model's allocation (predicted)")
ax_value.plot(budgets, curves["dual bound"], linestyle="--", color="gray",
              label="dual bound (predicted)")
ax_value.set_xlabel("budget per user")
ax_value.set_ylabel("incremental revenue per user")
ax_value.legend(loc="lower right", fontsize="small")
ax_spend.plot(budgets, curves["true spend"], marker=".", label="true spend")
ax_spend.plot(budgets, budgets, color="black", linestyle=":", label="budget")
ax_spend.set_xlabel("budget per user")
ax_spend.set_ylabel("true incremental cost per user")
ax_spend.legend()
fig.tight_layout()
plt.show()
