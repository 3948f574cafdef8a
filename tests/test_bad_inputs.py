"""Bad inputs that once ended in an internal error, a silent NaN or a wrong result.

Found by a systematic audit of the public API (every function, odd types, shapes
and magnitudes); each case names what happened before it was mended.
"""

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
        with pytest.raises(ValueError, match="so large that their sums overflow float64"):
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
