"""Evaluation of budget policies on RCT data (no torch needed).

- :func:`expected_outcome`: Hajek IPW Expected Outcome Metric (EOM) of a policy.
- :func:`cost_curve`, :func:`value_at_budget`, :func:`multiplier_at_budget`: EOM along a
  multiplier sweep of the budget policy, and its reading at a per-user budget.
- :func:`aucc` (binary treatment, Du et al. 2019), :func:`mt_aucc` (several levels).
- :func:`make_budget_scorer`: scorer for ``GridSearchCV``.
- :func:`oracle_allocation`, :func:`true_value`, :func:`regret`: ground truth on
  synthetic data.

Budgets here are per user (average incremental cost per user).
:func:`expected_outcome`, :func:`cost_curve`, :func:`value_at_budget`,
:func:`multiplier_at_budget`, :func:`mt_aucc` and the scorer also take an RCT held
in Dask arrays, which they read chunk by chunk (:mod:`._dask_rct`, :mod:`._dask`).
"""

from ._aucc import aucc, mt_aucc
from ._at_budget import multiplier_at_budget, value_at_budget
from ._cost_curve import CostCurve, cost_curve
from ._eom import ExpectedOutcome, expected_outcome
from ._oracle import TrueValue, oracle_allocation, regret, true_value
from ._scorer import BudgetScorer, make_budget_scorer

__all__ = [
    "BudgetScorer",
    "CostCurve",
    "ExpectedOutcome",
    "TrueValue",
    "aucc",
    "cost_curve",
    "expected_outcome",
    "make_budget_scorer",
    "mt_aucc",
    "multiplier_at_budget",
    "oracle_allocation",
    "regret",
    "true_value",
    "value_at_budget",
]
