"""Metrics, property-based: EOM and cost-curve invariants on RCT samples hypothesis draws.

Small samples (every arm present, up to 40 users, 1-3 levels) with outcomes and
predictions rounded to 3 decimals (ties). Derandomised: every run checks the
same examples.
"""

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from sklearn_budget import allocate_at_multiplier  # noqa: E402
from sklearn_budget.metrics import cost_curve, expected_outcome, multiplier_at_budget  # noqa: E402

PROFILE = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


def _rounded(low, high):
    return st.floats(low, high).map(lambda x: round(x, 3))


@st.composite
def samples(draw):
    k = draw(st.integers(1, 3))
    n = draw(st.integers(2 * (k + 1), 40))
    rest = draw(st.lists(st.integers(0, k), min_size=n - k - 1, max_size=n - k - 1))
    t = np.array(draw(st.permutations([*range(k + 1), *rest])))
    revenue = draw(arrays(np.float64, n, elements=_rounded(-100, 100)))
    cost = draw(arrays(np.float64, n, elements=_rounded(0, 10)))
    r = draw(arrays(np.float64, (n, k), elements=_rounded(-5, 5)))
    c = draw(arrays(np.float64, (n, k), elements=_rounded(0, 5)))
    return k, t, revenue, cost, r, c


def _eom(policy, t, revenue, cost, **kwargs):
    """The EOM, or None where the policy's arms match no RCT user (a clear error)."""
    try:
        return expected_outcome(policy, t, revenue, cost, **kwargs)
    except ValueError as exc:
        assert "No RCT user" in str(exc)
        return None


@PROFILE
@given(samples(), st.data())
def test_eom_invariances(sample, data):
    k, t, revenue, cost, _, _ = sample
    n = len(t)
    policy = data.draw(arrays(np.int64, n, elements=st.integers(0, k)))
    ref = _eom(policy, t, revenue, cost)
    if ref is None:
        return
    values = [ref.incremental_revenue, ref.incremental_cost]
    # treating nobody is worth exactly nothing
    none = expected_outcome(np.zeros(n, int), t, revenue, cost)
    assert none.incremental_revenue == 0 and none.incremental_cost == 0
    # the order of the users does not matter
    perm = np.random.default_rng(n).permutation(n)
    got = expected_outcome(policy[perm], t[perm], revenue[perm], cost[perm])
    np.testing.assert_allclose([got.incremental_revenue, got.incremental_cost], values,
                               atol=1e-9)
    # nor the names of the arms
    names = np.array(["ctrl", *(f"L{j}" for j in range(k))], dtype=object)
    got = expected_outcome(names[policy], names[t], revenue, cost, control_name="ctrl")
    np.testing.assert_allclose([got.incremental_revenue, got.incremental_cost], values,
                               atol=1e-9)
    # incremental revenue is linear in the revenue and blind to a constant
    got = expected_outcome(policy, t, 3 * revenue + 7, cost)
    assert got.incremental_revenue == pytest.approx(3 * ref.incremental_revenue, abs=1e-7)
    # the arm frequencies as None, a dict or per-user probabilities
    freq = {j: float(np.mean(t == j)) for j in range(k + 1)}
    for propensity in (freq, np.array([freq[a] for a in t])):
        got = expected_outcome(policy, t, revenue, cost, propensity=propensity)
        assert got.incremental_revenue == pytest.approx(ref.incremental_revenue, abs=1e-9)


@PROFILE
@given(samples())
def test_cost_curves_are_well_formed(sample):
    _, t, revenue, cost, r, c = sample
    for estimate in ("eom", "dr"):
        try:
            curve = cost_curve(r, c, t, revenue, cost, estimate=estimate, n_multipliers=20)
        except ValueError as exc:
            assert "No RCT user" in str(exc)
            return
        assert (np.diff(curve.multipliers) < 0).all() and (curve.n_matched > 0).all()
        assert np.isfinite(curve.incremental_cost).all()
        assert np.isfinite(curve.incremental_revenue).all()
        for budget in (0.0, 0.1, 1.0, 100.0):
            assert np.isfinite(curve.value_at(budget)) and curve.multiplier_at(budget) >= 0


@PROFILE
@given(samples(), st.floats(0.01, 5))
def test_multiplier_at_budget_keeps_the_sample_within_the_budget(sample, budget):
    # up to the 1% the settling tolerates, where even the largest multiplier fits
    _, t, revenue, cost, r, c = sample
    try:
        curve = cost_curve(r, c, t, revenue, cost)
    except ValueError as exc:
        assert "No RCT user" in str(exc)
        return
    multiplier = multiplier_at_budget(r, c, t, revenue, cost, budget)
    assert multiplier >= 0
    if curve.incremental_cost[0] < budget:
        spent = _eom(allocate_at_multiplier(r, c, multiplier), t, revenue, cost)
        assert spent is None or spent.incremental_cost <= budget * 1.01 + 1e-9


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(samples(), st.data())
def test_dask_chunks_give_the_in_memory_curve_and_multiplier(sample, data):
    """Any chunking of any input: the in-memory cost curve (ties, a missing level's users
    in no chunk, 1-row chunks), its multiplier at a budget, and the same errors."""
    da = pytest.importorskip("dask.array")
    k, t, revenue, cost, r, c = sample
    n = len(t)

    def lazy(a):
        size = data.draw(st.integers(1, n))
        return da.from_array(a, chunks=(size,) + a.shape[1:])

    budget = data.draw(_rounded(0, 5))
    estimate = data.draw(st.sampled_from(["eom", "dr"]))
    try:
        expected = cost_curve(r, c, t, revenue, cost, estimate=estimate)
        lam = multiplier_at_budget(r, c, t, revenue, cost, budget)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:40].replace("(", r"\(")):
            cost_curve(lazy(r), lazy(c), lazy(t), lazy(revenue), lazy(cost), estimate=estimate)
        return
    got = cost_curve(lazy(r), lazy(c), lazy(t), lazy(revenue), lazy(cost), estimate=estimate)
    np.testing.assert_array_equal(got.multipliers, expected.multipliers)
    np.testing.assert_array_equal(got.n_matched, expected.n_matched)
    np.testing.assert_allclose(got.incremental_revenue, expected.incremental_revenue,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.incremental_cost, expected.incremental_cost, rtol=1e-9,
                               atol=1e-9)
    assert multiplier_at_budget(lazy(r), lazy(c), lazy(t), revenue, cost, budget) == \
        pytest.approx(lam, rel=1e-9, abs=1e-12)
