"""
==================================================
Quickstart: allocate a coupon budget end to end
==================================================

A platform can give each user nothing (control) or one of three coupon levels.
Higher coupons cost more and lift revenue differently for each user; the
marketing team has one budget per user on average and wants the assignment
that earns the most incremental revenue without overspending.

This example learns that assignment from a randomized controlled trial (RCT)
with :class:`~sklearn_budget.EndToEndBudgetAllocator`, the end-to-end method
of Yan et al. (2023): a neural uplift model trained on a prediction loss plus
the marketing goal itself (the revenue that the budget-constrained allocation
of its own predictions earns on the RCT). Because the data are synthetic, we
also know every user's true expected outcome under every arm and can compare
the learned allocation with the oracle, the best allocation knowing the true
effects.

Set ``SKLEARN_BUDGET_EXAMPLES_FAST=1`` to run a tiny version (for tests).
"""

# %%
# Settings
# --------
# The environment variable only shrinks the data and the training; the code
# is the same.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_budget import EndToEndBudgetAllocator, rct_target
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import oracle_allocation, regret, true_value
from sklearn_budget.plotting import CostCurveDisplay, TrainingHistoryDisplay

FAST = os.environ.get("SKLEARN_BUDGET_EXAMPLES_FAST", "") not in ("", "0")
N_SAMPLES = 3_000 if FAST else 20_000
MAX_EPOCHS = 4 if FAST else 30

# %%
# A synthetic coupon RCT
# ----------------------
# :func:`~sklearn_budget.datasets.make_marketing_rct` draws users with 8
# features, assigns each one at random to control (arm 0) or to a coupon of
# value 5, 10 or 15 (arms 1, 2, 3), and records the revenue and the cost
# (the coupon value, paid only when the user converts). ``true_revenue`` and
# ``true_cost`` hold every user's *expected* outcome under every arm: the
# ground truth, never seen by the models.
data = make_marketing_rct(n_samples=N_SAMPLES, random_state=0)
print(f"{data.X.shape[0]} users, {data.X.shape[1]} features, arms {np.unique(data.treatment)}")
for arm in range(4):
    mask = data.treatment == arm
    print(f"arm {arm}: {mask.sum():5d} users, mean revenue {data.revenue[mask].mean():6.2f}, "
          f"mean cost {data.cost[mask].mean():5.2f}")

# %%
# The three RCT columns travel together in one packed target built by
# :func:`~sklearn_budget.rct_target`, so that ``train_test_split``,
# cross-validation and pipelines slice them with ``X``.
y = rct_target(data.treatment, data.revenue, data.cost)
idx_train, idx_test = train_test_split(
    np.arange(N_SAMPLES), test_size=0.5, stratify=data.treatment, random_state=0)
X_train, X_test = data.X[idx_train], data.X[idx_test]
y_train, y_test = y[idx_train], y[idx_test]
true_revenue_test = data.true_revenue[idx_test]
true_cost_test = data.true_cost[idx_test]

# %%
# Fit the end-to-end allocator
# ----------------------------
# ``budget`` is the average incremental cost per user the allocation may
# spend: here 2.5 coupon units per user, about 40% of what giving everyone the
# largest coupon would cost. ``reg_weight`` is the weight of the marketing
# goal in the loss (0 gives a plain two-stage neural uplift model). After
# training, the allocator calibrates its Lagrange multiplier on a held-out
# slice of the training RCT so that the estimated spend meets the budget.
#
# Training runs in two phases (``warmup_epochs="auto"``): phase 1 fits the
# prediction loss alone until the validation loss stops improving; phase 2
# fine-tunes that network with the goal switched on, and is kept only if it
# beats phase 1 on the validation goal (``goal_phase_kept_``).
budget = 2.5
est = EndToEndBudgetAllocator(budget=budget, reg_weight=1.0, max_epochs=MAX_EPOCHS,
                              random_state=0)
est.fit(X_train, y_train)
print(f"trained {len(est.net_.history)} epochs ({est.warmup_epochs_} in phase 1), goal phase "
      f"kept: {est.goal_phase_kept_}, calibrated multiplier {est.multiplier_:.3f}")

# %%
# Predict the uplift of every level
# ---------------------------------
# Like a causalml meta-learner, :meth:`predict` returns the revenue uplift of
# each incentive level against control, one column per level
# (``est.levels_``); :meth:`predict_cost` returns the cost uplift.
revenue_uplift = est.predict(X_test)
cost_uplift = est.predict_cost(X_test)
print("levels:", est.levels_)
print("revenue uplift of the first 3 test users:\n", revenue_uplift[:3].round(2))
print("cost uplift of the first 3 test users:\n", cost_uplift[:3].round(2))

# %%
# The ground truth of the same users, for comparison. The goal term trains the
# network to *rank* users and levels well around the budget's price, not to
# estimate effects: its uplifts need not be calibrated (that is why the
# deployment multiplier is calibrated on RCT data rather than read off the
# predicted costs).
true_revenue_uplift = true_revenue_test[:, 1:] - true_revenue_test[:, :1]
true_cost_uplift = true_cost_test[:, 1:] - true_cost_test[:, :1]
print("true revenue uplift:\n", true_revenue_uplift[:3].round(2))
print("true cost uplift:\n", true_cost_uplift[:3].round(2))

# %%
# Allocate
# --------
# :meth:`allocate` gives each user the control label or one level: the arm
# maximising ``revenue_uplift - multiplier * cost_uplift`` (control when no
# level is worth its price).
assignment = est.allocate(X_test)
arms, counts = np.unique(assignment, return_counts=True)
for arm, count in zip(arms, counts):
    print(f"arm {arm}: {count / len(assignment):6.1%} of the test users")

# %%
# Score on the test RCT
# ---------------------
# :meth:`score` is what a marketer can measure without ground truth: the
# Expected Outcome Metric (EOM) of the allocation policy on RCT data (only
# users whose random arm equals the policy's arm count, weighted by the
# inverse assignment probability), read where the EOM incremental cost meets
# the budget. It is the incremental revenue per user at the budget.
print(f"EOM incremental revenue per user at budget {budget}: {est.score(X_test, y_test):.3f}")

# %%
# Compare with the oracle
# -----------------------
# On synthetic data we can do better than estimate: ``true_value`` averages
# every user's true incremental revenue and cost under the assignment, and
# ``oracle_allocation`` solves the budget problem on the true uplifts. The
# labels of :func:`make_marketing_rct` are already the integer arm codes
# 0..K that these functions expect.
learned = true_value(assignment, true_revenue_test, true_cost_test)
oracle = true_value(oracle_allocation(true_revenue_test, true_cost_test, budget),
                    true_revenue_test, true_cost_test)
everyone = true_value(np.full(len(idx_test), est.n_levels_), true_revenue_test, true_cost_test)

print(f"{'policy':<28}{'true revenue/user':>18}{'true spend/user':>17}{'spend/budget':>14}")
for name, tv in [("end-to-end (reg_weight=1)", learned), ("oracle", oracle),
                 ("everyone the top coupon", everyone)]:
    print(f"{name:<28}{tv.incremental_revenue:18.3f}{tv.incremental_cost:17.3f}"
          f"{tv.incremental_cost / budget:14.2f}")
print(f"fraction of the oracle's revenue: "
      f"{learned.incremental_revenue / oracle.incremental_revenue:.1%}")
print(f"regret (revenue per user left on the table): "
      f"{regret(assignment, true_revenue_test, true_cost_test, budget):.3f}")

# %%
# The deployed spend is close to, but not exactly, the budget: the multiplier
# was calibrated on a finite held-out RCT slice, so its EOM estimate of the
# spend carries sampling noise (larger calibration slices shrink it).
print(f"deployed true spend {learned.incremental_cost:.3f} per user for a budget of {budget} "
      f"({learned.incremental_cost / budget - 1:+.1%})")

# %%
# Plots: training and cost curve
# ------------------------------
# Left two panels: :class:`~sklearn_budget.plotting.TrainingHistoryDisplay`
# draws the history kept by skorch. The dashed line is where the goal was
# switched on; the circles are the epochs the schedule restores (phase 1's
# best validation loss, the goal phase's best validation goal, the EOM
# incremental revenue at the budget on held-out RCT users); the title says
# whether the goal phase was kept.
# Right: the EOM cost curve of the allocation policy on the test RCT when its
# multiplier is swept from "nobody treated" to "everyone's best level", with
# the oracle's curve (same EOM, true uplifts) and the random-allocation line.
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
TrainingHistoryDisplay.from_estimator(est, axes=axes[:2])
CostCurveDisplay.from_estimator(
    est, X_test, y_test, oracle=(true_revenue_uplift, true_cost_uplift), budget=budget,
    name="end-to-end", ax=axes[2])
axes[2].set_title("EOM cost curve on the test RCT")
fig.tight_layout()
plt.show()
