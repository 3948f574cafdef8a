"""The Dask paths on a cluster: two worker processes of a ``distributed.LocalCluster``.

Each pass of the solver, each chunk of a fitted model's ``predict`` /
``allocate`` and each pass of the metrics runs as tasks in other processes,
so the chunk functions, the fitted model and the solver's overrides travel
pickled, and only the small per-chunk results come back. The results must be
the in-memory ones.
"""

import logging
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install '.[dask]'")
distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed: pip install '.[distributed]'")

from sklearn_budget import (  # noqa: E402
    EndToEndBudgetAllocator,
    rct_target,
    solve_budget_allocation,
)
from sklearn_budget._rows_on_disk import RowsOnDisk  # noqa: E402
from sklearn_budget.datasets import make_marketing_rct  # noqa: E402
from sklearn_budget.metrics import cost_curve, expected_outcome  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client


def _on_workers(client, fn):
    """``fn()``, and the number of tasks the workers ran for it."""
    with distributed.get_task_stream(client) as stream:
        out = fn()
    return out, len(stream.data)


def test_solver_on_workers_in_memory_and_out_of_core(client, tmp_path):
    rng = np.random.default_rng(0)
    r, c = rng.normal(size=(120_000, 4)), rng.random((120_000, 4))
    expected = solve_budget_allocation(r, c, budget_per_user=0.3)

    def solve(rd, cd):
        sol = solve_budget_allocation(rd, cd, budget_per_user=0.3)
        return sol, sol.assignment.compute()

    np.save(tmp_path / "r.npy", r)
    np.save(tmp_path / "c.npy", c)
    for rd, cd in [(da.from_array(r, chunks=(20_000, 4)), da.from_array(c, chunks=(20_000, 4))),
                   (da.from_array(RowsOnDisk.npy(tmp_path / "r.npy"), chunks=(20_000, 4)),
                    da.from_array(RowsOnDisk.npy(tmp_path / "c.npy"), chunks=(20_000, 4)))]:
        (sol, arms), tasks = _on_workers(client, lambda: solve(rd, cd))
        assert tasks >= 6 * 2  # each of the 6 chunks in the passes and the assignment
        np.testing.assert_array_equal(arms, expected.assignment)
        assert sol.multiplier == expected.multiplier
        assert sol.spend == pytest.approx(expected.spend, rel=1e-12)


@pytest.fixture(scope="module")
def fitted():
    d = make_marketing_rct(n_samples=3_000, random_state=0)
    y = rct_target(d.treatment, d.revenue, d.cost)
    est = EndToEndBudgetAllocator(budget=1.0, max_epochs=3, warmup_epochs=1,
                                  hidden_layer_sizes=(16,), random_state=0).fit(d.X, y)
    return est, d, y


def test_fitted_model_on_workers(client, fitted):
    est, d, _ = fitted
    X = np.tile(d.X, (4, 1))
    lazy = da.from_array(X, chunks=(2_000, -1))
    pid = os.getpid()
    pids = client.run(os.getpid)
    assert pid not in pids.values()  # the workers are other processes
    got, tasks = _on_workers(client, lambda: (est.predict(lazy).compute(),
                                              est.allocate(lazy).compute(),
                                              est.allocate(lazy, total_budget=5_000.0).compute()))
    assert tasks > 0
    np.testing.assert_array_equal(got[0], est.predict(X))
    np.testing.assert_array_equal(got[1], est.allocate(X))
    np.testing.assert_array_equal(got[2], est.allocate(X, total_budget=5_000.0))


def test_metrics_and_score_on_workers(client, fitted):
    est, d, y = fitted
    X = da.from_array(d.X, chunks=(500, -1))
    r, c = est.predict(d.X), est.predict_cost(d.X)
    (score, curve, eom), tasks = _on_workers(client, lambda: (
        est.score(X, y),
        cost_curve(da.from_array(r, chunks=(700, -1)), c, d.treatment, d.revenue, d.cost,
                   estimate="dr"),
        expected_outcome(est.allocate(X), d.treatment, d.revenue, d.cost)))
    assert tasks > 0
    assert score == pytest.approx(est.score(d.X, y), rel=1e-12)
    expected = cost_curve(r, c, d.treatment, d.revenue, d.cost, estimate="dr")
    np.testing.assert_array_equal(curve.multipliers, expected.multipliers)
    np.testing.assert_allclose(curve.incremental_revenue, expected.incremental_revenue,
                               rtol=1e-12, atol=1e-12)
    in_memory = expected_outcome(est.allocate(d.X), d.treatment, d.revenue, d.cost)
    assert eom.incremental_revenue == pytest.approx(in_memory.incremental_revenue, rel=1e-12)
    assert eom.n_matched == in_memory.n_matched
