"""
================================================================
Allocating over millions of users, chunk by chunk, with Dask
================================================================

The model learns from a randomized trial of a few thousand users; the
allocation is then deployed to the whole platform, which may not fit in
memory. A fitted allocator takes a Dask array of features: ``predict``,
``predict_cost`` and ``allocate`` run on each chunk of users on its own,
lazily, and ``allocate(X, total_budget=...)`` solves one budget problem over
every chunk with :func:`~sklearn_budget.solve_budget_allocation`, which reads
Dask arrays chunk by chunk (a random subsample, then one full pass) and keeps
in memory only the users near the threshold. A large trial held in Dask
arrays is evaluated the same way, chunk by chunk.

Needs dask (``pip install "sklearn-budget[dask]"``). Set
``SKLEARN_BUDGET_EXAMPLES_FAST=1`` to run a tiny version (for tests).
"""

# %%
# Fit on the trial
# ----------------
import os
import time

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np

from sklearn_budget import EndToEndBudgetAllocator, rct_target, solve_budget_allocation
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.plotting import CostCurveDisplay

FAST = os.environ.get("SKLEARN_BUDGET_EXAMPLES_FAST", "") not in ("", "0")
N_TRIAL = 3_000 if FAST else 20_000
N_USERS = 60_000 if FAST else 2_000_000
CHUNK = 20_000 if FAST else 250_000
N_HOLDOUT = 20_000 if FAST else 500_000

trial = make_marketing_rct(n_samples=N_TRIAL, random_state=0)
model = EndToEndBudgetAllocator(budget=1.0, max_epochs=4 if FAST else 30,
                                random_state=0, verbose=0)
model.fit(trial.X, rct_target(trial.treatment, trial.revenue, trial.cost))
print("levels:", model.levels_, "multiplier at the budget:", round(model.multiplier_, 3))

# %%
# The platform's users, as a lazy Dask array
# ------------------------------------------
# Here they are drawn chunk by chunk like the trial's users (in practice:
# ``da.from_zarr``, an HDF5 dataset, ...). Nothing is computed yet.


def users(block, block_info=None):
    """Features of one chunk of users (the trial's distribution), seeded by the chunk."""
    rng = np.random.default_rng(block_info[0]["chunk-location"][0])
    X = rng.standard_normal(block.shape)
    X[:, 1] = rng.uniform(-1.0, 1.0, block.shape[0])
    X[:, 3] = (rng.uniform(size=block.shape[0]) < 0.3).astype(float)
    return X


X = da.zeros((N_USERS, trial.X.shape[1]), chunks=(CHUNK, -1)).map_blocks(users, dtype=float)
print(X)

# %%
# Allocate at the calibrated budget, chunk by chunk
# -------------------------------------------------
# Each user's decision depends only on their own predictions and the
# calibrated multiplier, so every chunk is allocated independently.
labels = model.allocate(X)  # lazy
start = time.perf_counter()
at_multiplier = labels.compute()
print(f"{N_USERS:,} users allocated in {time.perf_counter() - start:.1f} s")

# %%
# One budget over all users
# -------------------------
# ``total_budget`` solves the budget problem on the predicted uplifts of every
# user: the solver reads the predictions chunk by chunk, so the model runs on
# each chunk three times (two passes and the labels). Persisting the
# predictions runs it once; then call the solver on them directly.
r = model.predict(X).persist()
c = model.predict_cost(X).persist()
total = 1.0 * N_USERS  # the same per-user budget, as one total
solution = solve_budget_allocation(r, c, budget=total)
print(f"multiplier {solution.multiplier:.3f} (calibrated: {model.multiplier_:.3f}), "
      f"predicted spend {solution.spend / N_USERS:.3f} per user for a budget of 1.0, "
      f"optimality gap {solution.optimality_gap:.1e}")
exact = solution.assignment.compute()

# %%
# Who gets what
# -------------
# The calibrated multiplier was read on held-out trial data, the exact solve
# on these users' own predictions; the two allocations are close when the
# model's costs are right.
arms = np.arange(len(model.levels_) + 1)
names = [str(model.control_name)] + [str(level) for level in model.levels_]
calibrated = np.array([(at_multiplier == label).mean()
                       for label in [model.control_name, *model.levels_]])
solved = np.bincount(exact, minlength=len(arms)) / N_USERS
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(arms - 0.2, calibrated, width=0.4, label="allocate(X): calibrated multiplier")
ax.bar(arms + 0.2, solved, width=0.4, label="solve_budget_allocation: exact budget")
ax.set_xticks(arms, names)
ax.set_xlabel("arm (incentive level)")
ax.set_ylabel("share of users")
ax.set_title(f"{N_USERS:,} users, budget 1.0 per user")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Evaluate on a large trial, chunk by chunk
# -----------------------------------------
# The metrics and ``score`` read an RCT held in Dask arrays in two passes over
# the chunks (one checks them and counts the arms, one sums every policy's
# matched outcomes); nothing is gathered. Here a second, larger trial stands
# in for an experiment log read with ``da.from_zarr`` or ``dask.dataframe``.
holdout = make_marketing_rct(n_samples=N_HOLDOUT, random_state=1)
Xh = da.from_array(holdout.X, chunks=(CHUNK, -1))
t, revenue, cost = (da.from_array(a, chunks=CHUNK)
                    for a in (holdout.treatment, holdout.revenue, holdout.cost))
start = time.perf_counter()
value = model.score(Xh, revenue, treatment=t, cost=cost)
print(f"EOM incremental revenue per user at the budget, {N_HOLDOUT:,} trial users: "
      f"{value:.3f} ({time.perf_counter() - start:.1f} s)")
display = CostCurveDisplay.from_estimator(model, Xh, revenue, treatment=t, cost=cost,
                                          budget=model.budget, name="end-to-end")
display.ax_.set_title(f"Cost curve on {N_HOLDOUT:,} held-out trial users (Dask)")
plt.show()
