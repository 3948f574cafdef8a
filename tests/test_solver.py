"""Budget solver: feasibility, optimality against an exact integer program, inputs."""

import numpy as np
import pytest
import torch
from scipy.optimize import Bounds, LinearConstraint, milp

from conftest import few_distinct_users
from sklearn_budget import allocate_at_multiplier, solve_budget_allocation
from sklearn_budget import _solver_bracket, _solver_greedy, _solver_search


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
    kinds = ["plain", "ties", "zero_cost", "negative", "increasing"]
    rng = np.random.default_rng(kinds.index(kind))
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
    monkeypatch.setattr(_solver_bracket, "_DIRECT_SIZE", 10**9)
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
        ((np.zeros((5, 0)), np.zeros((5, 0)), 1.0), {}, ValueError, "at least one level"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        solve_budget_allocation(*args, **kwargs)


@pytest.mark.parametrize("multiplier", [None, "abc", "0.5", np.array([0.1, 0.2]), [1.0]])
def test_allocate_at_multiplier_rejects_a_non_scalar_multiplier(multiplier):
    with pytest.raises(TypeError, match="`multiplier` must be one real number"):
        allocate_at_multiplier(np.ones((3, 1)), np.ones((3, 1)), multiplier)


def test_empty_input():
    sol = solve_budget_allocation(np.zeros((0, 3)), np.zeros((0, 3)), budget=1.0)
    assert sol.assignment.shape == (0,) and sol.value == 0.0


# -- fast paths: subsample bracket, narrowing, greedy completion, torch -------------------
def _coupon_instance(n, k, seed, dtype=np.float64):
    """Cost increasing with the level, revenue concave in cost, per-user scale."""
    rng = np.random.default_rng(seed)
    c = np.cumsum(rng.uniform(0.2, 1.0, size=(n, k)), axis=1)
    r = rng.lognormal(0, 0.75, size=(n, 1)) * np.log1p(c) + 0.05 * rng.normal(size=(n, k))
    return r.astype(dtype), c.astype(dtype)


def _check_solution(r, c, sol, budget):
    """Feasible, and the reported value and spend are those of the assignment."""
    a = np.asarray(sol.assignment)
    r64, c64 = r.astype(np.float64), c.astype(np.float64)
    spend, value = _chosen(c64, a).sum(), _chosen(r64, a).sum()
    assert spend <= budget * (1 + 1e-12) + 1e-9
    assert sol.spend == pytest.approx(spend, rel=1e-9, abs=1e-9)
    assert sol.value == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert sol.dual_bound >= sol.value - 1e-9 * abs(sol.value)


def test_missed_bracket_is_widened(monkeypatch):
    # a zero-width margin makes the subsample's bracket miss lam* on one side
    r, c = _coupon_instance(150_000, 5, seed=4)
    ref = solve_budget_allocation(r, c, budget_per_user=1.2)
    passes = []
    original = _solver_search._Solver.full_pass

    def counting(self, lo, hi, exact_lo=False):
        passes.append((self.n, lo, hi, exact_lo))
        return original(self, lo, hi, exact_lo)

    monkeypatch.setattr(_solver_search._Solver, "full_pass", counting)
    monkeypatch.setattr(_solver_bracket, "_BRACKET_Z", 0.01)
    repeated = 0
    for seed in range(4):
        passes.clear()
        sol = solve_budget_allocation(r, c, budget_per_user=1.2, random_state=seed)
        assert sol.multiplier == ref.multiplier
        np.testing.assert_array_equal(sol.assignment, ref.assignment)
        _check_solution(r, c, sol, 1.2 * r.shape[0])
        repeated += len([p for p in passes if p[0] == r.shape[0]]) > 1
    assert repeated  # some bracket missed and was widened


def _coarse_instance(n, seed, reverse=False):
    """Values on a 0.5 grid: many users share breakpoints and tie at them."""
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 8, size=(n, 4)) * 0.5
    c = np.cumsum(rng.integers(1, 3, size=(n, 4)), axis=1) * 0.5
    if reverse:  # levels by decreasing cost: ties go to the costlier level
        r, c = r[:, ::-1].copy(), c[:, ::-1].copy()
    return r, c


def test_coarse_values_match_direct_solution(monkeypatch):
    r, c = _coarse_instance(60_000, seed=5)
    for frac in (0.2, 0.4):
        sol = solve_budget_allocation(r, c, frac * len(r))
        _check_solution(r, c, sol, frac * len(r))
        with monkeypatch.context() as m:
            m.setattr(_solver_bracket, "_DIRECT_SIZE", 10**9)
            direct = solve_budget_allocation(r, c, frac * len(r))
        assert sol.multiplier == direct.multiplier
        assert sol.value == pytest.approx(direct.value, rel=1e-12)


def test_ties_at_lower_end_are_checked_exactly(monkeypatch):
    # At lam = 2 many users tie between a level and a costlier, lower-numbered
    # one. The fast pass counts them at the cheaper level (their choice at
    # hi), so its spend at lo = 2 is below the exact one; with the budget in
    # between it must not conclude that lam* <= 2.
    r, c = _coarse_instance(60_000, seed=5, reverse=True)
    full_c = np.hstack([np.zeros((len(c), 1)), c])
    exact = full_c[np.arange(len(c)), allocate_at_multiplier(r, c, 2.0)].sum()
    fast = _solver_search._Solver(r, c, 0.0, 0).full_pass(2.0, 4.0)[0]
    assert fast < exact
    budget = 0.5 * (fast + exact)
    with monkeypatch.context() as m:
        m.setattr(_solver_bracket, "_DIRECT_SIZE", 10**9)
        direct = solve_budget_allocation(r, c, budget)
    assert direct.multiplier > 2.0
    passes = []
    original = _solver_search._Solver.full_pass

    def recording(self, lo, hi, exact_lo=False):
        passes.append(exact_lo)
        return original(self, lo, hi, exact_lo)

    monkeypatch.setattr(_solver_search._Solver, "full_pass", recording)
    monkeypatch.setattr(_solver_search._Solver, "initial_bracket", lambda self: (2.0, 4.0))
    sol = solve_budget_allocation(r, c, budget)
    assert passes == [False, True]
    assert sol.multiplier == direct.multiplier
    assert sol.value == pytest.approx(direct.value, rel=1e-12)
    _check_solution(r, c, sol, budget)


def test_narrowing_estimate_and_bisection_agree(monkeypatch):
    r, c = _coupon_instance(200_000, 8, seed=6)
    ref = solve_budget_allocation(r, c, budget_per_user=2.0)
    # only bisection on the median crossing point
    monkeypatch.setattr(_solver_search._Solver, "_interpolated_pivots", lambda self, x, d: [])
    bis = solve_budget_allocation(r, c, budget_per_user=2.0)
    assert bis.multiplier == ref.multiplier
    np.testing.assert_array_equal(bis.assignment, ref.assignment)


def test_float32_matches_float64_on_the_fast_path():
    r, c = _coupon_instance(100_000, 8, seed=7, dtype=np.float32)
    sol = solve_budget_allocation(r, c, budget_per_user=1.5)
    _check_solution(r, c, sol, 1.5 * r.shape[0])
    sol64 = solve_budget_allocation(r.astype(np.float64), c.astype(np.float64),
                                    budget_per_user=1.5)
    assert sol.value == pytest.approx(sol64.value, rel=1e-6)
    assert sol.assignment.dtype == np.int64


@pytest.mark.parametrize("n", [30, 5_000, 80_000])
def test_greedy_never_overspends_with_zero_and_negative_cost_levels(n):
    rng = np.random.default_rng(n)
    r = rng.normal(0.5, 1.0, size=(n, 4))
    c = rng.uniform(0.0, 2.0, size=(n, 4))
    c[:, 0] = 0.0  # a free level
    c[: n // 5, 1] = -0.3  # a level cheaper than control for some users
    for frac in (0.0, 0.05, 0.3, 0.9):
        budget = frac * n
        sol = solve_budget_allocation(r, c, budget)
        _check_solution(r, c, sol, budget)
        # free levels with positive revenue are always taken
        free_gain = (c[:, 0] <= 0) & (r[:, 0] > 0)
        assert np.all(np.asarray(sol.assignment)[free_gain] != 0)


def test_greedy_early_exit_when_no_upgrade_fits():
    # lam* = 2 spends 1; every upgrade costs at least 1 more, the leftover is 0.5
    r = np.array([[3.0, 5.0], [2.0, 3.5], [1.0, 1.8]])
    c = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    sol = solve_budget_allocation(r, c, budget=1.5)
    assert sol.multiplier == 2.0
    np.testing.assert_array_equal(sol.assignment, allocate_at_multiplier(r, c, 2.0))
    np.testing.assert_array_equal(sol.assignment, [1, 0, 0])
    assert sol.spend == 1.0 and sol.value == 3.0
    # with 1 more to spend the best upgrade per cost is taken (ties: first user)
    sol = solve_budget_allocation(r, c, budget=2.5)
    np.testing.assert_array_equal(sol.assignment, [2, 0, 0])
    assert sol.spend == 2.0 and sol.value == 5.0


def test_greedy_batches_match_one_batch(monkeypatch):
    rng = np.random.default_rng(8)
    n = 8_000  # all upgrades are candidates at this size
    r = rng.normal(1.0, 1.0, size=(n, 6))
    c = rng.uniform(0.05, 1.0, size=(n, 6))
    budget = 0.4 * n
    ref = solve_budget_allocation(r, c, budget)
    monkeypatch.setattr(_solver_greedy, "_GREEDY_BATCH", 3)
    small = solve_budget_allocation(r, c, budget)
    np.testing.assert_array_equal(small.assignment, ref.assignment)
    assert small.value == ref.value and small.spend == ref.spend


def test_greedy_band_falls_back_to_a_full_pass(monkeypatch):
    # a band wider than the full pass's bracket: candidates come from all users
    r, c = _coupon_instance(120_000, 4, seed=9)
    ref = solve_budget_allocation(r, c, budget_per_user=1.0)
    monkeypatch.setattr(_solver_search, "_GREEDY_BAND", 0.5)
    wide = solve_budget_allocation(r, c, budget_per_user=1.0)
    _check_solution(r, c, wide, 1.0 * r.shape[0])
    assert wide.value >= ref.value - 1e-9 * abs(ref.value)
    assert wide.multiplier == ref.multiplier


def test_large_budget_and_zero_budget_on_the_fast_path():
    r, c = _coupon_instance(100_000, 3, seed=10)
    r[:1000] = -np.abs(r[:1000])
    full = solve_budget_allocation(r, c, budget=1e12)
    assert full.multiplier == 0.0
    best = np.max(np.hstack([np.zeros((len(r), 1)), r]), axis=1).sum()
    assert full.value == pytest.approx(best)
    none = solve_budget_allocation(r, c, budget=0.0)
    assert none.spend == 0.0 and none.value == 0.0
    np.testing.assert_array_equal(none.assignment, 0)


def test_torch_float32_matches_numpy_on_the_fast_path():
    torch = pytest.importorskip("torch")
    r, c = _coupon_instance(100_000, 8, seed=11, dtype=np.float32)
    ref = solve_budget_allocation(r, c, budget_per_user=1.5)
    rt, ct = torch.from_numpy(r), torch.from_numpy(c)
    sol = solve_budget_allocation(rt, ct, budget_per_user=1.5)
    assert isinstance(sol.assignment, torch.Tensor) and sol.assignment.dtype == torch.int64
    np.testing.assert_array_equal(sol.assignment.numpy(), ref.assignment)
    assert sol.multiplier == ref.multiplier
    assert sol.value == pytest.approx(ref.value, rel=1e-12)
    assert sol.spend == pytest.approx(ref.spend, rel=1e-12)
    for lam in (0.0, 0.7, np.inf):
        np.testing.assert_array_equal(allocate_at_multiplier(rt, ct, lam).numpy(),
                                      allocate_at_multiplier(r, c, lam))


def test_torch_inputs_are_validated_and_detached():
    torch = pytest.importorskip("torch")
    r = torch.randn(500, 3, requires_grad=True)
    c = torch.rand(500, 3)
    sol = solve_budget_allocation(r, c, budget=50.0)  # no autograd error, no graph
    assert not sol.assignment.requires_grad
    bad = c.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        solve_budget_allocation(r, bad, budget=50.0)
    bad[7, 1] = float("inf")
    with pytest.raises(ValueError, match="infinite"):
        solve_budget_allocation(r, bad, budget=50.0)


def test_collinear_tied_levels_fill_the_budget():
    # every level earns exactly its cost: all tie at lam* = 1. The completion
    # moves a tied user to the farthest tied level that fits, not the first one
    # (it stopped at 3.0 of 8.0 before)
    r = np.array([[1.0, 4.0, 1.0], [1.0, 4.0, 1.0], [1.0, 1.0, 1.0]])
    for budget, best in [(8.0, 8.0), (5.0, 5.0), (7.0, 6.0), (8.4375, 8.0)]:
        sol = solve_budget_allocation(r, r, budget)
        _check_solution(r, r, sol, budget)
        assert sol.value == best == _milp_optimum(r, r, budget)


def test_a_user_can_leave_a_negative_cost_level_held_at_a_loss():
    # at lam* the user holds the level that refunds 2 and loses 2 of revenue;
    # going back to control is then an upgrade (value -2.0 before)
    sol = solve_budget_allocation(np.array([[-2.0, 1.5]]), np.array([[-2.0, 1.0]]), 0.0)
    np.testing.assert_array_equal(sol.assignment, [0])
    assert sol.value == 0.0 and sol.spend == 0.0


@pytest.mark.parametrize("dtype, r, c", [
    (np.float64, [[1.0, 0.00195312]], [[2.2e-311, 2.2e-311]]),  # r / c overflows float64
    (np.float32, [[1e30, 1.0]], [[1e-10, 1e-10]]),  # r / c overflows float32
])
def test_breakpoints_beyond_the_largest_float_do_not_overspend(dtype, r, c):
    # the last multiplier tried was 2 x the largest finite breakpoint + 1,
    # assumed to fit: it treated the user and overspent a budget of 0
    r, c = np.array(r, dtype=dtype), np.array(c, dtype=dtype)
    with np.errstate(over="ignore"):
        sol = solve_budget_allocation(r, c, 0.0)
    np.testing.assert_array_equal(sol.assignment, [0])
    assert sol.spend == 0.0 and sol.multiplier == np.inf


def test_never_worse_than_treating_nobody_with_refunds():
    # a refund (cost -3) held at a revenue loss of 4 funded a user worth 3 at cost 1 within
    # a budget of 0: value -1.0, where treating nobody (0.0) is feasible and optimal
    da = pytest.importorskip("dask.array")
    r, c = np.array([[-4.0], [3.0]]), np.array([[-3.0], [1.0]])
    for wrap in (np.asarray, torch.from_numpy, lambda a: da.from_array(a, chunks=1)):
        sol = solve_budget_allocation(wrap(r), wrap(c), budget=0.0)
        assert (sol.value, sol.spend) == (0.0, 0.0)
        assert type(sol.assignment) is type(wrap(r))
        np.testing.assert_array_equal(np.asarray(sol.assignment), [0, 0])
        assert sol.dual_bound >= 0.0


def test_tied_groups_with_no_breakpoint_between_them_fill_the_budget():
    # 20 distinct users x 6,000 copies: the bracket's top was itself a breakpoint, whose
    # choices are those above it, and the completion looked for upgrades only within
    # 2**-10 of it, so the next tied group's upgrades (3.31, against 3.58) were never
    # candidates: 2,930 of a 23,986 budget unspent, value 92,859 against a dual bound
    # of 103,349 (now 102,549.5 and 102,549.8)
    r, c = few_distinct_users()
    budget = 0.1 * float(c.max(axis=1).sum())
    sol = solve_budget_allocation(r, c, budget)
    _check_solution(r, c, sol, budget)
    assert budget - sol.spend < c.max()  # less than one user's upgrade left
    assert sol.dual_bound - sol.value <= r.max() - r.min()  # the MCKP bound
    assert sol.value > 102_500
    assert sol.dual_bound - sol.value < 1.0  # the dual read at the LP's multiplier too
