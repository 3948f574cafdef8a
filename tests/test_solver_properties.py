"""Budget solver, property-based: invariants on instances that hypothesis draws.

Small instances (up to 6 users x 3 levels) are checked against the exact
optimum by enumeration of every assignment; the values mix small integers
(ties, collinear levels, zero costs) with real numbers of either sign, in a
range of magnitudes where rounding is negligible (0 or 1e-3..100 in absolute
value). The examples are derandomised, so every run checks the same ones.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from sklearn_budget import allocate_at_multiplier, solve_budget_allocation  # noqa: E402

PROFILE = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


def _numbers(low, high):
    """Small integers (ties) or reals with 1e-3 <= |x|, in [-low, high]."""
    parts = [st.integers(-min(4, int(low)), 4).map(float), st.floats(1e-3, high)]
    if low > 0:
        parts.append(st.floats(-low, -1e-3))
    return st.one_of(*parts)


@st.composite
def instances(draw, max_users=6, max_levels=3, negative_costs=True):
    n = draw(st.integers(1, max_users))
    k = draw(st.integers(1, max_levels))
    r = draw(arrays(np.float64, (n, k), elements=_numbers(100, 100)))
    c = draw(arrays(np.float64, (n, k), elements=_numbers(10 if negative_costs else 0, 100)))
    full = float(np.clip(c, 0, None).max(axis=1).sum())
    budget = draw(st.floats(0, 1.2)) * full
    return r, c, budget


def _with_control(m):
    return np.hstack([np.zeros((m.shape[0], 1)), m])


def _chosen(m, assignment):
    return _with_control(m)[np.arange(m.shape[0]), np.asarray(assignment)]


def _optimum(r, c, budget):
    """Exact optimum by enumerating every assignment (control = arm 0)."""
    n, k = r.shape
    arms = np.indices((k + 1,) * n).reshape(n, -1).T  # ((k+1)^n, n)
    R, C = _with_control(r), _with_control(c)
    value = R[np.arange(n), arms].sum(axis=1)
    spend = C[np.arange(n), arms].sum(axis=1)
    return value[spend <= budget].max()


def _tol(r, c):
    return 1e-9 * (1.0 + np.abs(r).sum() + np.abs(c).sum())


@PROFILE
@given(instances())
# the counterexamples hypothesis found (which examples it draws also depends on the
# constants of the modules loaded in the session, so they are pinned): collinear ties,
# a negative-cost level held at a loss
@example(inst=(np.array([[1.0, 4.0, 1.0], [1.0, 4.0, 1.0], [1.0, 1.0, 1.0]]),
               np.array([[1.0, 4.0, 1.0], [1.0, 4.0, 1.0], [1.0, 1.0, 1.0]]), 8.4375))
@example(inst=(np.array([[-2.0, 1.5]]), np.array([[-2.0, 1.0]]), 0.0))
# a refund held at a loss to fund another user: worth less than treating nobody
@example(inst=(np.array([[-4.0], [3.0]]), np.array([[-3.0], [1.0]]), 0.0))
def test_feasible_and_within_one_revenue_step_of_the_optimum(inst):
    r, c, budget = inst
    sol = solve_budget_allocation(r, c, budget)
    tol = _tol(r, c)
    # the reported totals are those of the assignment, and it fits the budget
    assert sol.value == pytest.approx(_chosen(r, sol.assignment).sum(), abs=tol)
    assert sol.spend == pytest.approx(_chosen(c, sol.assignment).sum(), abs=tol)
    assert _chosen(c, sol.assignment).sum() <= budget + tol
    opt = _optimum(r, c, budget)
    assert sol.value >= 0.0  # never below treating nobody (feasible at any budget >= 0)
    assert sol.value <= _optimum(r, c, budget + tol) + tol
    assert sol.dual_bound >= opt - tol
    # the classical bound: one user's revenue step (max revenue without negative costs)
    R = _with_control(r)
    step = max(r.max(), 0.0) if (c >= 0).all() else (R.max(axis=1) - R.min(axis=1)).max()
    assert opt - sol.value <= step + tol


@PROFILE
@given(instances())
def test_at_least_the_lagrangian_policy_at_its_multiplier(inst):
    # the completion only adds upgrades to the policy at lam*, which fits the budget
    r, c, budget = inst
    sol = solve_budget_allocation(r, c, budget)
    policy = allocate_at_multiplier(r, c, sol.multiplier)
    tol = _tol(r, c)
    assert _chosen(c, policy).sum() <= budget + tol
    assert sol.value >= _chosen(r, policy).sum() - tol


@PROFILE
@given(instances(max_users=5, negative_costs=False), st.floats(0, 1), st.floats(0, 1))
def test_value_never_falls_as_the_budget_grows(inst, f1, f2):
    r, c, _ = inst
    full = float(c.max(axis=1).sum())
    low, high = sorted([f1 * full, f2 * full])
    v_low = solve_budget_allocation(r, c, low).value
    v_high = solve_budget_allocation(r, c, high).value
    assert v_high >= v_low - _tol(r, c)


@PROFILE
@given(instances(max_users=12, max_levels=4), st.integers(-3, 3), st.integers(-3, 3))
def test_allocation_is_unchanged_by_the_units_of_revenue_and_cost(inst, er, ec):
    # powers of two rescale exactly: revenue units, and cost units with the budget
    r, c, budget = inst
    ref = solve_budget_allocation(r, c, budget).assignment
    got = solve_budget_allocation(r * 2.0**er, c * 2.0**ec, budget * 2.0**ec).assignment
    np.testing.assert_array_equal(got, ref)


@PROFILE
@given(instances(max_users=12, max_levels=4))
def test_torch_and_numpy_give_the_same_allocation(inst):
    torch = pytest.importorskip("torch")
    r, c, budget = inst
    ref = solve_budget_allocation(r, c, budget)
    got = solve_budget_allocation(torch.from_numpy(r), torch.from_numpy(c), budget)
    np.testing.assert_array_equal(got.assignment.numpy(), ref.assignment)
    assert got.value == pytest.approx(ref.value, abs=_tol(r, c))


@PROFILE
@given(instances(max_users=12, max_levels=4, negative_costs=False),
       st.lists(st.floats(0, 50), min_size=2, max_size=6))
def test_lagrangian_spend_falls_as_the_multiplier_rises(inst, multipliers):
    r, c, _ = inst
    spends = [_chosen(c, allocate_at_multiplier(r, c, m)).sum() for m in sorted(multipliers)]
    assert all(b <= a + _tol(r, c) for a, b in zip(spends, spends[1:]))


@PROFILE
@given(instances(max_users=12, max_levels=4), st.floats(0, 50),
       st.sampled_from(["numpy64", "numpy32", "torch64", "torch32"]))
def test_allocate_at_multiplier_is_the_first_best_positive_score(inst, multiplier, kind):
    # ties go to the first level, and control unless some score is positive,
    # in every array library and precision (the score is r + (-lam) * c)
    r, c, _ = inst
    dtype = np.float32 if kind.endswith("32") else np.float64
    r, c = r.astype(dtype), c.astype(dtype)
    s = r + (-np.asarray(multiplier, dtype=dtype)) * c
    expected = np.where(s.max(axis=1) > 0, s.argmax(axis=1) + 1, 0)
    if kind.startswith("torch"):
        torch = pytest.importorskip("torch")
        got = allocate_at_multiplier(torch.from_numpy(r), torch.from_numpy(c), multiplier).numpy()
    else:
        got = allocate_at_multiplier(r, c, multiplier)
    np.testing.assert_array_equal(got, expected)
