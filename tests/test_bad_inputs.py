"""Bad inputs that once ended in an internal error, a silent NaN or a wrong result.

Found by a systematic audit of the public API (every function, odd types, shapes
and magnitudes); each case names what happened before it was mended.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_budget import solve_budget_allocation
from sklearn_budget.metrics import cost_curve, expected_outcome, value_at_budget

R = np.array([[1.0, 2.0], [0.5, 0.1], [0.3, 0.9]])
C = np.array([[1.0, 2.0], [1.0, 1.0], [0.5, 1.0]])


def test_torch_uplifts_get_the_numpy_checks():
    # 0 levels: torch's IndexError from amax; complex: the imaginary part dropped with a
    # torch warning; bfloat16: "Got unsupported ScalarType BFloat16"
    with pytest.raises(ValueError, match="at least one level; got \\(3, 0\\)"):
        solve_budget_allocation(torch.tensor(R[:, :0]), torch.tensor(C[:, :0]), budget=1.0)
    with pytest.raises(TypeError, match="must be real; got the complex dtype"):
        solve_budget_allocation(torch.tensor(R + 1j), torch.tensor(C + 0j), budget=1.0)
    half = solve_budget_allocation(torch.tensor(R).bfloat16(), torch.tensor(C).bfloat16(),
                                   budget=2.0)
    full = solve_budget_allocation(R, C, budget=2.0)
    np.testing.assert_array_equal(half.assignment.numpy(), full.assignment)


def test_nullable_pandas_uplifts_and_ragged_lists():
    # Float64 frames: "`revenue_uplift` must be numeric; got dtype object"; a ragged list:
    # numpy's "setting an array element with a sequence" without the argument's name
    r, c = pd.DataFrame(R).astype("Float64"), pd.DataFrame(C).astype("Float64")
    np.testing.assert_array_equal(solve_budget_allocation(r, c, budget=2.0).assignment,
                                  solve_budget_allocation(R, C, budget=2.0).assignment)
    with pytest.raises(ValueError, match="`revenue_uplift` contains NaN"):
        solve_budget_allocation(r.mask(r > 1.5), c, budget=2.0)  # pd.NA is missing
    with pytest.raises(ValueError, match="`revenue_uplift` is not a rectangular"):
        solve_budget_allocation([[1.0, 2.0], [1.0]], [[1.0, 2.0], [1.0, 1.0]], budget=1.0)


def test_sums_that_overflow_float64_are_named():
    # the solver raised OverflowError from math.fsum (1.7e308) or returned value=inf and an
    # optimality gap of NaN (1e307); the EOM returned revenue=inf, incremental revenue NaN
    rng = np.random.default_rng(0)
    c = rng.uniform(0.5, 2, (50, 2))
    for r in (np.full((50, 2), 1.7e308), rng.uniform(0.5, 1, (50, 2)) * 1e307):
        with pytest.raises(ValueError, match="so large that their sums overflow float64"), \
                warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # the error alone, no numpy warning
            solve_budget_allocation(r, c, budget=1000.0)
    t = np.arange(40) % 2
    revenue = np.where(t == 1, 1e308, 5e307)
    with pytest.raises(ValueError, match="`revenue` values are so large that their sum "
                                         "overflows float64 \\(largest 1e\\+308\\)"):
        expected_outcome(t, t, revenue, t * 1.0)
    with pytest.raises(ValueError, match="`revenue` values are so large"):
        value_at_budget(R[:2].repeat(20, axis=0)[:, :1], C[:2].repeat(20, axis=0)[:, :1], t,
                        revenue, t * 1.0, 0.5)
    assert np.isfinite(cost_curve(R[:2].repeat(20, axis=0)[:, :1],
                                  C[:2].repeat(20, axis=0)[:, :1], t, revenue / 1e300,
                                  t * 1.0).incremental_revenue).all()


def test_a_doubly_robust_curve_that_overflows_is_named_not_nan():
    # the DR estimate sums predicted uplifts over all users: uplifts of 1e307 gave a curve of
    # NaN revenue, with numpy warnings, instead of an error (in memory and on Dask)
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    n = 2000
    r, c = rng.normal(0, 1, (n, 3)), np.abs(rng.normal(1, 0.3, (n, 3))).cumsum(axis=1)
    t, revenue, cost = rng.integers(0, 4, n), rng.normal(0, 1, n), rng.uniform(0, 1, n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        # the EOM curve does not sum uplifts: it is finite (and without warnings)
        assert np.isfinite(cost_curve(r * 1e307, c, t, revenue, cost).incremental_revenue).all()
        for lazy in (False, True):
            args = [da.from_array(a, chunks=500) if lazy else a
                    for a in (r * 1e307, c, t, revenue, cost)]
            with pytest.raises(ValueError, match="The cost curve's estimates overflow float64"):
                cost_curve(*args, estimate="dr")
    assert np.isfinite(cost_curve(r * 1e300, c, t, revenue, cost,
                                  estimate="dr").incremental_revenue).all()


def test_messages_name_the_argument():
    # each was a raw numpy / pandas / pathlib error, an IndexError or a KeyError
    from sklearn.linear_model import Ridge

    from sklearn_budget import EndToEndBudgetAllocator, allocate_at_multiplier, rct_target
    from sklearn_budget.datasets import load_hillstrom, make_marketing_rct
    from sklearn_budget.plotting import CostCurveDisplay, TrainingHistoryDisplay

    d = make_marketing_rct(n_samples=300, random_state=0)
    t, rev, cost = d.treatment, d.revenue, d.cost
    r = np.c_[d.true_revenue[:, 1:] - d.true_revenue[:, :1]]
    c = np.c_[d.true_cost[:, 1:] - d.true_cost[:, :1]]
    cases = [
        (lambda: cost_curve(r, c, t, rev, cost, multipliers=["a"]), TypeError,
         "`multipliers` must be real numbers"),
        (lambda: cost_curve(r, c, t, rev, cost, multipliers=[1 + 1j]), TypeError,
         "`multipliers` must be real numbers"),
        (lambda: cost_curve(r, c, t, rev, cost, n_multipliers=10**7), ValueError,
         "between 3 and 100,000"),  # never finished
        (lambda: load_hillstrom(revenue=["spend"]), TypeError, "`revenue` must be one of"),
        (lambda: load_hillstrom(5), TypeError, "`path` must be a file or folder path"),
        (lambda: EndToEndBudgetAllocator().fit(d.X, pd.DataFrame(
            {"Treatment": t, "Revenue": rev, "Cost": cost})), ValueError,
         "`y` has columns \\['Treatment', 'Revenue', 'Cost'\\], but a packed RCT target"),
        (lambda: EndToEndBudgetAllocator().fit(d.X, np.c_[t, rev, cost]), ValueError,
         "`y` has shape \\(300, 3\\)"),
        (lambda: CostCurveDisplay.from_estimator(Ridge().fit(d.X, rev), d.X,
                                                 rct_target(t, rev, cost)), TypeError,
         "must be a fitted budget allocator"),
        (lambda: CostCurveDisplay([0, np.nan, 2], [0, 1, 2], budget=1.0), ValueError,
         "`incremental_cost` has NaN"),
        (lambda: TrainingHistoryDisplay([1, 2], [1, 2], [1, 2], [1, 2], goal_on=1.5),
         ValueError, "`goal_on` must be None or the index"),
        (lambda: TrainingHistoryDisplay([1, 2], [1, 2], [1, 2], [1, 2],
                                        goal_phase_kept="yes"), TypeError, "`goal_phase_kept`"),
        (lambda: solve_budget_allocation(R, C, budget=1.0, random_state=-1), ValueError,
         "`random_state` must be None, an int >= 0"),
        (lambda: solve_budget_allocation(R, C, budget_per_user=1e308), ValueError,
         "overflows float64"),
        (lambda: allocate_at_multiplier(R, C, True), TypeError, "`multiplier` must be one real"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_second_audit_round():
    # each was silent (wrong labels, NaN, inf, lambda = 1 from True) or a torch error
    from sklearn_budget import EndToEndBudgetAllocator, allocate_at_multiplier, rct_target
    from sklearn_budget.datasets import make_marketing_rct
    from sklearn_budget.metrics import true_value

    d = make_marketing_rct(n_samples=600, random_state=0)
    y = rct_target(d.treatment, d.revenue, d.cost)
    est = EndToEndBudgetAllocator(budget=1.0, max_epochs=2, warmup_epochs=1,
                                  hidden_layer_sizes=(8,), random_state=0).fit(d.X, y)
    labels = est.allocate(d.X)
    est.set_params(control_name=1)  # allocate labelled 599 of 600 users 1
    for call in (lambda: est.allocate(d.X), lambda: est.predict(d.X), lambda: est.score(d.X, y)):
        with pytest.raises(ValueError, match="control_name is 1 but was 0 when"):
            call()
    est.set_params(control_name=np.int64(0))  # the same label from a numpy array: fine
    np.testing.assert_array_equal(est.allocate(d.X), labels)
    est.set_params(control_name=0)
    np.testing.assert_array_equal(est.allocate(d.X), labels)

    p = np.full(600, 0.25)
    p[::7] = 1e-320  # passed (0, 1]; 1 / p overflowed and every metric was NaN
    with pytest.raises(ValueError, match="below 1e-12"):
        expected_outcome(d.treatment, d.treatment, d.revenue, d.cost, propensity=p)
    shares = {0: 0.28, 1: 0.23, 2: 0.25, 3: 0.26}  # typed-in shares, rounded up: 1.02
    assert np.isfinite(expected_outcome(d.treatment, d.treatment, d.revenue, d.cost,
                                        propensity=shares).incremental_revenue)
    with pytest.raises(TypeError, match="dict values must be real numbers"):
        expected_outcome(d.treatment, d.treatment, d.revenue, d.cost,
                         propensity={k: "0.25" for k in range(4)})
    truth_r = np.c_[np.full(600, -1e308), np.full((600, 3), 1e308)]  # inf uplift
    with pytest.raises(ValueError, match="`true_revenue`'s uplifts over control are so large"):
        true_value(np.ones(600, int), truth_r, d.true_cost)
    for flag in (np.array(True), torch.tensor(True)):  # was lambda = 1
        with pytest.raises(TypeError, match="`multiplier` must be one real number"):
            allocate_at_multiplier(R, C, flag)
    with pytest.raises(ValueError, match="`random_state` must be"):
        solve_budget_allocation(R, C, budget=1.0, random_state=True)
    # float16 / bfloat16 on the numpy paths: converted up, not torch's "unsupported
    # ScalarType BFloat16" or an overflow of r - lam * c in float16
    r16, c16 = R.astype(np.float16) * 100, C.astype(np.float16)
    np.testing.assert_array_equal(allocate_at_multiplier(r16, c16, 150.0),
                                  allocate_at_multiplier(R * 100, C, 150.0))
    t = torch.tensor(d.treatment)
    eom = expected_outcome(t, t, torch.tensor(d.revenue).bfloat16(),
                           torch.tensor(d.cost).bfloat16())
    assert np.isfinite(eom.incremental_revenue)
    # nullable boolean frames are numbers, like numpy bool arrays
    flags = pd.DataFrame(R > 0.5).astype("boolean")
    np.testing.assert_array_equal(
        solve_budget_allocation(flags, C, budget=2.0).assignment,
        solve_budget_allocation((R > 0.5).astype(float), C, budget=2.0).assignment)


def test_a_dask_dataframe_needs_the_fitted_columns_in_order():
    dd = pytest.importorskip("dask.dataframe")
    from sklearn_budget import EndToEndBudgetAllocator, rct_target
    from sklearn_budget.datasets import make_marketing_rct

    d = make_marketing_rct(n_samples=600, random_state=0)
    X = pd.DataFrame(d.X, columns=d.feature_names)
    est = EndToEndBudgetAllocator(budget=1.0, max_epochs=2, warmup_epochs=1,
                                  hidden_layer_sizes=(8,), random_state=0).fit(
        X, rct_target(d.treatment, d.revenue, d.cost))
    lazy = dd.from_pandas(X, npartitions=3)
    np.testing.assert_array_equal(np.asarray(est.allocate(lazy)), est.allocate(X))
    np.testing.assert_allclose(np.asarray(est.predict(lazy)), est.predict(X), rtol=1e-6)
    with pytest.raises(ValueError, match="select those, in that order"):  # 27% relabelled
        est.allocate(lazy[list(X.columns[::-1])])


def test_a_grid_whose_top_would_overflow_stays_finite():
    # uplifts near the float64 maximum: the automatic grid's point above the largest
    # breakpoint (1.01 x it) was inf, so the multiplier read between it and the next point
    # was NaN (then refused by the sweep). The point is now capped at the largest float: the
    # multiplier is finite, the same on Dask, and no numpy warning is shown
    da = pytest.importorskip("dask.array")
    from sklearn_budget.datasets import make_marketing_rct
    from sklearn_budget.metrics import multiplier_at_budget

    d = make_marketing_rct(n_samples=300, random_state=0)
    r = d.true_revenue[:, 1:] - d.true_revenue[:, :1]
    c = d.true_cost[:, 1:] - d.true_cost[:, :1]
    r[:, 0], c[:, 0] = 1.7923081675260192e308, 1.0046904647774797
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        curve = cost_curve(r, c, d.treatment, d.revenue, d.cost, n_multipliers=10)
        assert curve.multipliers[0] == np.finfo(np.float64).max
        assert curve.incremental_cost[0] == 0 < curve.incremental_cost[1]
        budget = curve.incremental_cost[1] / 2
        lam = multiplier_at_budget(r, c, d.treatment, d.revenue, d.cost, budget,
                                   n_multipliers=10)
        assert curve.multipliers[1] < lam < curve.multipliers[0]
        rct = [da.from_array(a, chunks=100) for a in (r, c, d.treatment, d.revenue, d.cost)]
        assert multiplier_at_budget(*rct, budget, n_multipliers=10) == lam


def test_weighted_outcomes_that_overflow_are_named():
    # sum |revenue| fits, but revenue / propensity did not: the EOM was inf / NaN with numpy
    # warnings (in memory and on Dask); on Dask each chunk's sums may fit and their total not
    da = pytest.importorskip("dask.array")
    t, cost = np.array([0, 0, 0, 0, 1]), np.array([0.0, 0, 0, 0, 1])
    rev = np.array([1.0, 1, 1, 1, 5e307])  # weight 5 on the treated user
    t2, rev2 = np.array([1, 1, 0, 0, 0, 0]), np.array([1e308, 1e308, 1, 1, 1, 1]) / 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for run in (lambda: expected_outcome([1] * 5, t, rev, cost),
                    lambda: expected_outcome(da.from_array(np.ones(5, int), chunks=2), t, rev,
                                             cost),
                    lambda: value_at_budget(np.ones((5, 1)), np.ones((5, 1)), t, rev, cost, 1.0),
                    # weight 3 on users 0 and 1, one chunk each: 1e308 per chunk, 2e308 in all
                    lambda: expected_outcome(da.from_array(t2, chunks=1), t2, rev2, t2 * 1.0)):
            with pytest.raises(ValueError, match="`revenue` values weighted by 1 / propensity "
                                                 ".* overflows float64; rescale them"):
                run()


@pytest.mark.parametrize("value", [np.complex128(1 + 5j), np.complex64(0.5), np.timedelta64(1, "D"),
                                   np.datetime64("2026-01-01"), np.array(1 + 1j),
                                   torch.tensor(0.5 + 1j), torch.tensor(True)])
def test_budgets_and_multipliers_must_be_real_numbers(value):
    # numpy complex values passed (their imaginary part dropped with a ComplexWarning), a
    # timedelta64 raised a bare "float() argument must be ..."
    from sklearn_budget import allocate_at_multiplier
    from sklearn_budget.metrics import make_budget_scorer

    with pytest.raises(TypeError, match="`budget` must be a real number"):
        solve_budget_allocation(R, C, budget=value)
    with pytest.raises(TypeError, match="`budget` must be a real number"):
        make_budget_scorer(value)
    with pytest.raises(TypeError, match="`multiplier` must be one real number"):
        allocate_at_multiplier(R, C, value)
    with pytest.raises(TypeError, match="`propensity` dict values must be real numbers"):
        expected_outcome([1, 1, 1, 1], [0, 0, 1, 1], [1.0, 2, 3, 4], [0, 0, 1, 1.0],
                         propensity={0: 0.5, 1: value})


def test_zero_d_budgets_and_decimals_are_numbers():
    # a budget computed from tensors or arrays (0-d) was refused, although the multiplier
    # took them; Decimal amounts (from a database) count as numbers too
    from decimal import Decimal

    expected = solve_budget_allocation(R, C, budget=1.5).assignment
    for budget in (torch.tensor(1.5), np.array(1.5), np.float32(1.5), Decimal("1.5")):
        np.testing.assert_array_equal(solve_budget_allocation(R, C, budget=budget).assignment,
                                      expected)
    p = expected_outcome([1, 1, 1, 1], [0, 0, 1, 1], [1.0, 2, 3, 4], [0, 0, 1, 1.0],
                         propensity={0: Decimal("0.5"), 1: torch.tensor(0.5)})
    assert p == expected_outcome([1, 1, 1, 1], [0, 0, 1, 1], [1.0, 2, 3, 4], [0, 0, 1, 1.0],
                                 propensity={0: 0.5, 1: 0.5})


def test_torch_uplifts_of_mixed_precision_are_promoted_like_numpy():
    # float32 revenue with float64 cost: torch cast the cost down to float32 (numpy and Dask
    # promote both to float64), so 1e300 became inf and 0.1 vs 0.1 * 1.0 rounded differently
    from sklearn_budget import allocate_at_multiplier

    r, c = np.array([[0.1]], np.float32), np.array([[1.0]])
    for lam in (0.1, np.float32(0.1)):
        np.testing.assert_array_equal(
            allocate_at_multiplier(torch.from_numpy(r), torch.from_numpy(c), lam).numpy(),
            allocate_at_multiplier(r, c, lam))
    r, c = np.array([[1.0], [2.0]], np.float32), np.array([[1e300], [1.0]])
    sol = solve_budget_allocation(torch.from_numpy(r), torch.from_numpy(c), budget=1.0)
    assert sol.assignment.dtype == torch.int64 or sol.assignment.dtype == torch.long
    np.testing.assert_array_equal(sol.assignment.numpy(),
                                  solve_budget_allocation(r, c, budget=1.0).assignment)


def test_a_multiplier_beyond_float32_scores_float32_uplifts_in_float64():
    # -lam became -inf in float32 and -inf * 0 NaN: every user with a free level went to
    # control at lam = 1e39, though lam = 1e38 and lam = inf kept the free level
    da = pytest.importorskip("dask.array")
    from sklearn_budget import allocate_at_multiplier

    r = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32)
    c = np.array([[0.0, 1e-30], [0.0, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for lam in (1e38, 1e39, 1e300, np.inf):
            np.testing.assert_array_equal(allocate_at_multiplier(r, c, lam), [1, 2])
            np.testing.assert_array_equal(
                allocate_at_multiplier(torch.from_numpy(r), torch.from_numpy(c), lam), [1, 2])
            np.testing.assert_array_equal(allocate_at_multiplier(
                da.from_array(r, chunks=1), da.from_array(c, chunks=1), lam).compute(), [1, 2])


def test_the_real_number_check_keeps_what_float_took():
    # review of the check above: a multiplier learned in torch as a (1,) Parameter, an object
    # array of one number, a propensity of None for an arm outside the sample were taken
    # before and refused by the first version; Decimal('sNaN') gave a raw error
    from decimal import Decimal

    from sklearn_budget import allocate_at_multiplier

    expected = allocate_at_multiplier(R, C, 0.5)
    for lam in (torch.nn.Parameter(torch.tensor([0.5])), np.array([[0.5]]),
                np.array(0.5, dtype=object), Decimal("0.5")):
        np.testing.assert_array_equal(allocate_at_multiplier(R, C, lam), expected)
    with pytest.raises(ValueError, match="`budget` must be finite and >= 0; got nan"):
        solve_budget_allocation(R, C, budget=Decimal("sNaN"))
    import scipy.sparse

    one_stored = scipy.sparse.csr_matrix(np.array([[0.5, 0.0, 0.0]]))
    for bad in (np.ma.masked, np.array([0.5, 0.5]), torch.tensor([0.5, 0.5]),
                pd.Series([None], dtype="Float64"), one_stored):  # (the last two: raw errors)
        with pytest.raises(TypeError, match="`budget` must be a real number"):
            solve_budget_allocation(R, C, budget=bad)
    t, rev, cost = np.array([0, 1, 0, 1] * 5), np.arange(20.0), np.array([0, 1.0] * 10)
    eom = expected_outcome(np.ones(20, int), t, rev, cost, propensity={0: 0.5, 1: 0.5})
    for design in ({0: 0.5, 1: 0.5, 2: None}, {0: torch.tensor([0.5]), 1: 0.5}):
        assert expected_outcome(np.ones(20, int), t, rev, cost, propensity=design) == eom


def test_an_eom_whose_policy_sums_fit_is_not_refused():
    # the first overflow check bounded the weighted outcomes summed over all users: an RCT
    # whose every policy's sums fit was refused in memory (not on Dask)
    da = pytest.importorskip("dask.array")
    t, rev, cost = np.array([0, 1, 2, 3] * 2), np.full(8, 1e307), np.zeros(8)
    eom = expected_outcome(np.ones(8, int), t, rev, cost)
    assert eom.revenue == 1e307 and eom.incremental_revenue == 0.0
    lazy = [da.from_array(a, chunks=2) for a in (np.ones(8, int), t, rev, cost)]
    assert expected_outcome(*lazy) == eom
