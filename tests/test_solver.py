"""Budget solver: feasibility, optimality against an exact integer program, inputs."""

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from sklearn_budget import allocate_at_multiplier, solve_budget_allocation
from sklearn_budget import _solver


def _milp_optimum(r, c, budget):
    """Exact MCKP optimum by HiGHS (control = column of zeros)."""
    n, k = r.shape
    R = np.hstack([np.zeros((n, 1)), r])
    C = np.hstack([np.zeros((n, 1)), c])
    one_arm = LinearConstraint(np.kron(np.eye(n), np.ones(k + 1)), 1, 1)
    spend = LinearConstraint(C.ravel()[None], -np.inf, budget)
    res = milp(-R.ravel(), constraints=[one_arm, spend], integrality=np.ones(n * (k + 1)),
               bounds=Bounds(0, 1))
    assert res.success
    return -res.fun


def _chosen(m, assignment):
    full = np.hstack([np.zeros((m.shape[0], 1)), m])
    return full[np.arange(m.shape[0]), assignment]


def _random_instance(rng, kind):
    n = int(rng.integers(1, 40))
    k = int(rng.integers(1, 5))
    r = rng.normal(size=(n, k))
    c = np.abs(rng.normal(size=(n, k)))
    if kind == "ties":  # coarse grid: many identical ratios and users
        r, c = np.round(r, 1), np.round(c, 1)
    elif kind == "zero_cost":
        c[:, 0] = 0.0
    elif kind == "negative":  # every level of some users loses revenue
        r[: n // 2] = -np.abs(r[: n // 2])
    elif kind == "increasing":  # incentive levels: cost increasing, concave revenue
        c = np.cumsum(np.abs(rng.normal(size=(n, k))), axis=1)
        r = np.sqrt(c) * rng.normal(1, 0.5, size=(n, 1))
    budget = float(rng.uniform(0, 0.8 * c.clip(0).max(axis=1).sum()))
    return r, c, budget


@pytest.mark.parametrize("kind", ["plain", "ties", "zero_cost", "negative", "increasing"])
def test_matches_exact_integer_program(kind):
    rng = np.random.default_rng(["plain", "ties", "zero_cost", "negative", "increasing"].index(kind))
    gaps = []
    for _ in range(40):
        r, c, budget = _random_instance(rng, kind)
        sol = solve_budget_allocation(r, c, budget)
        opt = _milp_optimum(r, c, budget)
        assert sol.spend <= budget + 1e-9
        assert sol.value == pytest.approx(_chosen(r, sol.assignment).sum(), abs=1e-9)
        assert sol.spend == pytest.approx(_chosen(c, sol.assignment).sum(), abs=1e-9)
        assert sol.value <= opt + 1e-9
        assert sol.dual_bound >= opt - 1e-9
        # the classical MCKP guarantee
        assert opt - sol.value <= max(r.max(), 0.0) + 1e-9
        gaps.append((opt - sol.value) / max(abs(opt), 1e-12))
    # in practice the greedy completion closes most of the gap
    assert np.mean(gaps) < 0.02


def test_large_instance_near_dual_bound_and_fills_budget():
    rng = np.random.default_rng(0)
    n, k = 120_000, 6  # above the direct size: exercises the subsample bracket
    c = np.cumsum(rng.random((n, k)), axis=1)
    r = np.sqrt(c) * rng.lognormal(0, 0.5, size=(n, 1))
    sol = solve_budget_allocation(r, c, budget_per_user=1.0)
    assert sol.spend <= n * 1.0
    assert sol.spend >= n * 1.0 - c.max()  # the leftover cannot buy another upgrade
    assert sol.optimality_gap < 1e-6
    # the result does not depend on the subsample used to bracket the multiplier
    other = solve_budget_allocation(r, c, budget_per_user=1.0, random_state=123)
    np.testing.assert_array_equal(sol.assignment, other.assignment)


def test_large_equals_direct_solution(monkeypatch):
    rng = np.random.default_rng(1)
    r = rng.normal(1, 1, size=(60_000, 4))
    c = rng.random((60_000, 4)) * np.arange(1, 5)
    fast = solve_budget_allocation(r, c, budget_per_user=0.7)
    monkeypatch.setattr(_solver, "_DIRECT_SIZE", 10**9)
    direct = solve_budget_allocation(r, c, budget_per_user=0.7)
    assert fast.multiplier == pytest.approx(direct.multiplier)
    assert fast.value == pytest.approx(direct.value)


def test_budget_above_full_spend_and_zero():
    r = np.array([[1.0, 2.0], [-1.0, -0.5], [0.5, 0.2]])
    c = np.array([[1.0, 3.0], [1.0, 1.0], [2.0, 2.0]])
    full = solve_budget_allocation(r, c, budget=100.0)
    np.testing.assert_array_equal(full.assignment, [2, 0, 1])
    assert full.multiplier == 0.0 and full.value == pytest.approx(2.5)
    none = solve_budget_allocation(r, c, budget=0.0)
    np.testing.assert_array_equal(none.assignment, [0, 0, 0])
    assert none.spend == 0.0


def test_zero_cost_level_always_taken():
    r = np.array([[1.0, 5.0], [2.0, 3.0]])
    c = np.array([[0.0, 4.0], [0.0, 4.0]])
    sol = solve_budget_allocation(r, c, budget=0.0)
    np.testing.assert_array_equal(sol.assignment, [1, 1])
    assert sol.value == 3.0


def test_float32_and_per_user_budget():
    rng = np.random.default_rng(2)
    r = rng.normal(1, 1, size=(5000, 3)).astype(np.float32)
    c = (rng.random((5000, 3)) * [1, 2, 3]).astype(np.float32)
    sol = solve_budget_allocation(r, c, budget_per_user=0.5)
    sol64 = solve_budget_allocation(r.astype(np.float64), c.astype(np.float64), budget=2500.0)
    assert sol.spend <= 2500.0
    assert sol.value == pytest.approx(sol64.value, rel=1e-5)


def test_torch_tensors_stay_in_torch():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    r = torch.randn(3000, 4, generator=g)
    c = torch.rand(3000, 4, generator=g) * torch.arange(1, 5)
    sol = solve_budget_allocation(r, c, budget=1000.0)
    assert isinstance(sol.assignment, torch.Tensor)
    ref = solve_budget_allocation(r.numpy(), c.numpy(), budget=1000.0)
    np.testing.assert_array_equal(sol.assignment.numpy(), ref.assignment)
    assert isinstance(allocate_at_multiplier(r, c, 0.5), torch.Tensor)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors():  # pragma: no cover - runs on GPU machines only
    import torch

    r = torch.randn(100_000, 8, device="cuda")
    c = torch.rand(100_000, 8, device="cuda")
    sol = solve_budget_allocation(r, c, budget_per_user=0.3)
    assert sol.assignment.device.type == "cuda"
    ref = solve_budget_allocation(r.cpu().numpy(), c.cpu().numpy(), budget_per_user=0.3)
    assert sol.value == pytest.approx(ref.value, rel=1e-5)


def test_allocate_at_multiplier_matches_definition():
    rng = np.random.default_rng(3)
    r, c = rng.normal(size=(500, 3)), rng.random((500, 3))
    for lam in (0.0, 0.3, 2.0):
        s = r - lam * c
        expected = np.where(s.max(axis=1) > 0, s.argmax(axis=1) + 1, 0)
        np.testing.assert_array_equal(allocate_at_multiplier(r, c, lam), expected)
    np.testing.assert_array_equal(allocate_at_multiplier(r, c, np.inf),
                                  np.zeros(500, dtype=int))


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (([[1.0, np.nan]], [[1.0, 1.0]], 1.0), {}, ValueError, "NaN"),
        (([[1.0, 2.0]], [[1.0]], 1.0), {}, ValueError, "same shape"),
        (([[1.0]], [[1.0]], -1.0), {}, ValueError, ">= 0"),
        (([[1.0]], [[1.0]], np.inf), {}, ValueError, "finite"),
        (([[1.0]], [[1.0]], "10"), {}, TypeError, "real number"),
        (([[1.0]], [[1.0]]), {}, ValueError, "exactly one"),
        (([[1.0]], [[1.0]], 1.0), {"budget_per_user": 1.0}, ValueError, "exactly one"),
        ((np.ones((2, 2, 2)), np.ones((2, 2, 2)), 1.0), {}, ValueError, "2-D"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        solve_budget_allocation(*args, **kwargs)


def test_empty_input():
    sol = solve_budget_allocation(np.zeros((0, 3)), np.zeros((0, 3)), budget=1.0)
    assert sol.assignment.shape == (0,) and sol.value == 0.0
