"""
=================================================================
Tuning the goal's weight with GridSearchCV and a Pipeline
=================================================================

:class:`~sklearn_budget.EndToEndBudgetAllocator` minimises
``L_pred - reg_weight * goal``: ``reg_weight = 0`` is a plain neural uplift
model, larger values push the network towards the allocation that earns the
most at the budget. How much weight to give the goal is a hyper-parameter,
and the right criterion to choose it is the marketing goal itself, estimated
on held-out RCT users, not a prediction error.

The allocators are ordinary scikit-learn estimators whose :meth:`score` is
that goal (the EOM incremental revenue per user at ``budget``), so
``GridSearchCV`` selects by it without a custom scorer. The RCT outcomes reach
each fold in one of two ways:

1. a packed target ``y = rct_target(treatment, revenue, cost)`` that
   cross-validation slices together with ``X`` (no configuration needed);
2. scikit-learn's metadata routing: ``y`` is the revenue, and ``treatment``
   and ``cost`` are keyword arguments of ``fit`` routed to the estimator's
   ``fit`` and ``score``.

Set ``SKLEARN_BUDGET_EXAMPLES_FAST=1`` to run a tiny version (for tests).
"""

# %%
# Settings and data
# -----------------
import os

import matplotlib.pyplot as plt
import numpy as np
import sklearn
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_budget import EndToEndBudgetAllocator, rct_target
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import oracle_allocation, true_value

FAST = os.environ.get("SKLEARN_BUDGET_EXAMPLES_FAST", "") not in ("", "0")
N_SAMPLES = 2_000 if FAST else 12_000
MAX_EPOCHS = 3 if FAST else 15
WARMUP_EPOCHS = 1 if FAST else 5
REG_WEIGHTS = [0.0, 1.0] if FAST else [0.0, 1.0, 3.0, 10.0]

data = make_marketing_rct(n_samples=N_SAMPLES, random_state=1)
y = rct_target(data.treatment, data.revenue, data.cost)
idx_train, idx_test = train_test_split(
    np.arange(N_SAMPLES), test_size=0.25, stratify=data.treatment, random_state=0)
X_train, X_test, y_train, y_test = data.X[idx_train], data.X[idx_test], y[idx_train], y[idx_test]
budget = 2.5  # average coupon spend per user

# %%
# Grid search with a packed target
# --------------------------------
# The pipeline standardises the features and then fits the allocator. The
# grid runs over the ``alloc__reg_weight`` parameter; ``GridSearchCV`` keeps
# the value with the best mean ``Pipeline.score``, i.e. the best EOM
# incremental revenue per user at the budget on the validation folds. The
# budget is per user, so it means the same on folds of any size.
pipe = Pipeline([
    ("scale", StandardScaler()),
    ("alloc", EndToEndBudgetAllocator(budget=budget, max_epochs=MAX_EPOCHS,
                                      warmup_epochs=WARMUP_EPOCHS, random_state=0)),
])
cv = KFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(pipe, {"alloc__reg_weight": REG_WEIGHTS}, cv=cv)
search.fit(X_train, y_train)

results = search.cv_results_
for w, mean, std in zip(REG_WEIGHTS, results["mean_test_score"], results["std_test_score"]):
    print(f"reg_weight={w:<5g} cv EOM revenue/user at the budget: {mean:.3f} +- {std:.3f}")
print("selected:", search.best_params_)

# %%
# The refitted best pipeline is a deployable allocator. On the held-out test
# users we report its EOM score and, since the data are synthetic, the true
# incremental revenue of its allocation as a fraction of the oracle's.
true_r, true_c = data.true_revenue[idx_test], data.true_cost[idx_test]
oracle_value = true_value(oracle_allocation(true_r, true_c, budget), true_r, true_c)
best = search.best_estimator_

# %%
# ``Pipeline`` forwards ``predict`` and ``score`` but not ``allocate``; call it
# on the last step after applying the scaler, which ``best[:-1].transform``
# does.
assignment = best[-1].allocate(best[:-1].transform(X_test))
deployed = true_value(assignment, true_r, true_c)
print(f"test EOM revenue/user at the budget: {best.score(X_test, y_test):.3f}")
print(f"true revenue/user {deployed.incremental_revenue:.3f} "
      f"({deployed.incremental_revenue / oracle_value.incremental_revenue:.1%} of the oracle), "
      f"true spend/user {deployed.incremental_cost:.3f} for a budget of {budget}")

# %%
# Plot the validation goal against the goal's weight
# --------------------------------------------------
fig, ax = plt.subplots(figsize=(6, 4))
x = np.arange(len(REG_WEIGHTS))
ax.errorbar(x, results["mean_test_score"], yerr=results["std_test_score"], marker="o",
            capsize=4)
ax.set_xticks(x, [f"{w:g}" for w in REG_WEIGHTS])
ax.set_xlabel("reg_weight (weight of the marketing goal)")
ax.set_ylabel("cv EOM incremental revenue / user")
ax.set_title(f"3-fold CV at a budget of {budget} per user (mean +- std)")
ax.axvline(REG_WEIGHTS.index(search.best_params_["alloc__reg_weight"]), color="gray",
           linestyle=":", label="selected")
ax.legend()
fig.tight_layout()

# %%
# The error bars are wide: the EOM of one fold rests on the few hundred
# validation users whose random arm matches the policy, so differences
# between weights smaller than about one standard deviation are not
# meaningful, and the selected weight can change with the seed. More RCT
# users, more folds or repeated cross-validation
# (``RepeatedKFold``) narrow them.

# %%
# The same search with metadata routing
# -------------------------------------
# With ``enable_metadata_routing=True`` the RCT columns can stay separate:
# ``y`` is the revenue, and ``treatment`` and ``cost`` are passed to
# ``search.fit`` as keywords. Each consumer declares what it needs:
# ``set_fit_request`` for the allocator's ``fit`` and ``set_score_request``
# for its ``score`` (which the pipeline's ``score`` calls). ``GridSearchCV``
# slices the routed arrays per fold like ``X``. The ``config_context`` block
# keeps the setting local to this example; ``sklearn.set_config`` would set
# it globally.
#
# A smaller grid keeps the example fast; with the same folds and seeds, the
# scores equal those of the packed-target search.
routed_weights = REG_WEIGHTS[:2]
with sklearn.config_context(enable_metadata_routing=True):
    alloc = EndToEndBudgetAllocator(budget=budget, max_epochs=MAX_EPOCHS,
                                    warmup_epochs=WARMUP_EPOCHS, random_state=0)
    alloc.set_fit_request(treatment=True, cost=True)
    alloc.set_score_request(treatment=True, cost=True)
    routed_pipe = Pipeline([("scale", StandardScaler()), ("alloc", alloc)])
    routed = GridSearchCV(routed_pipe, {"alloc__reg_weight": routed_weights}, cv=cv)
    routed.fit(data.X[idx_train], data.revenue[idx_train],
               treatment=data.treatment[idx_train], cost=data.cost[idx_train])
    test_score = routed.score(data.X[idx_test], data.revenue[idx_test],
                              treatment=data.treatment[idx_test], cost=data.cost[idx_test])

for w, routed_score, packed_score in zip(routed_weights, routed.cv_results_["mean_test_score"],
                                         results["mean_test_score"]):
    print(f"reg_weight={w:<5g} routed cv score {routed_score:.3f} "
          f"(packed target: {packed_score:.3f})")
print(f"routed search selected {routed.best_params_}, test score {test_score:.3f}")

# %%
# Other budgets: :func:`~sklearn_budget.metrics.make_budget_scorer` builds a
# scorer for any per-user budget (``scoring=make_budget_scorer(1.0)``, or
# several in a dict with ``refit=``), for instance to check that the selected
# weight also holds at a smaller budget than the one trained for.
plt.show()
