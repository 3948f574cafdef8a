"""Shared pytest configuration of the sklearn_budget test suite."""

import os

# Native thread pools read these when they start, so set them before numpy,
# torch or LightGBM are imported by any test module (setdefault: an explicit
# choice of the caller wins).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """One thread for BLAS / OpenMP pools and torch, for the whole session.

    The test machines have few, shared cores: oversubscribed OpenMP learners
    (HistGradientBoosting, LightGBM) and torch's intra-op pool are much slower
    than one thread, and one thread makes torch's CPU results reproducible.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    if torch is not None:
        torch.set_num_threads(previous)


def saved_t_learner(folder, random_state):
    """A T-learner allocator (causalml, 20-tree boosting) fitted with feature names on
    ``make_marketing_rct(3000, random_state)``, saved as ``folder / "model.joblib"`` for the
    command line's tests. Returns it and its training features (a DataFrame)."""
    pytest.importorskip("causalml")
    import joblib
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from sklearn_budget import TwoStageBudgetAllocator, rct_target
    from sklearn_budget.baselines import make_meta_learner
    from sklearn_budget.datasets import make_marketing_rct

    d = make_marketing_rct(n_samples=3000, random_state=random_state)
    X = pd.DataFrame(d.X, columns=d.feature_names)
    est = TwoStageBudgetAllocator(
        make_meta_learner("T", HistGradientBoostingRegressor(max_iter=20)), budget=1.0,
        random_state=0).fit(X, rct_target(d.treatment, d.revenue, d.cost))
    joblib.dump(est, folder / "model.joblib")
    return est, X


def few_distinct_users(copies=6000, distinct=20, k=4, seed=3):
    """Tied predictions (a tree model, coarse features): few distinct users, many copies."""
    rng = np.random.default_rng(seed)
    base = np.abs(rng.normal(size=(distinct, 1))) + 0.1
    C = base * np.arange(1, k + 1) * 0.5 + rng.uniform(0, 0.1, (distinct, k))
    R = (np.sqrt(np.arange(1, k + 1)) * (1 + rng.normal(size=(distinct, 1))) * base
         + rng.normal(0, 0.2, (distinct, k)))
    return np.repeat(R, copies, axis=0), np.repeat(C, copies, axis=0)
