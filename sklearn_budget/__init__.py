"""sklearn_budget: spend a marketing budget where it buys the most incremental revenue.

Data flow: RCT data (:mod:`sklearn_budget.datasets`, :func:`rct_target`) ->
uplift model (:class:`TwoStageBudgetAllocator`, :class:`EndToEndBudgetAllocator`) ->
budget solver (:func:`solve_budget_allocation`) -> metrics (:mod:`sklearn_budget.metrics`).
"""

from ._solver import BudgetAllocation, allocate_at_multiplier, solve_budget_allocation
from ._validation import rct_target

__version__ = "0.1.0"

__all__ = [
    "BudgetAllocation",
    "allocate_at_multiplier",
    "rct_target",
    "solve_budget_allocation",
    "__version__",
]
