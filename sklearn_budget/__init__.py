"""sklearn_budget: spend a marketing budget where it buys the most incremental revenue.

Data flow, one module per arrow:

RCT data (:mod:`sklearn_budget.datasets`, :func:`rct_target`)
-> uplift model (:class:`TwoStageBudgetAllocator`, :class:`EndToEndBudgetAllocator`)
-> budget solver (:func:`solve_budget_allocation`)
-> metrics (:mod:`sklearn_budget.metrics`) and plots (:mod:`sklearn_budget.plotting`).

The estimators are imported lazily: ``import sklearn_budget.metrics`` never
loads torch, and the package imports without causalml.
"""

from importlib import import_module

from ._solver import BudgetAllocation, allocate_at_multiplier, solve_budget_allocation
from ._validation import rct_target

__version__ = "0.1.0"

_LAZY = {
    "TwoStageBudgetAllocator": "._two_stage",
    "EndToEndBudgetAllocator": "._end_to_end",
    "datasets": ".datasets",
    "metrics": ".metrics",
    "plotting": ".plotting",
    "pipeline": ".pipeline",
}

__all__ = [
    "BudgetAllocation",
    "EndToEndBudgetAllocator",
    "TwoStageBudgetAllocator",
    "allocate_at_multiplier",
    "datasets",
    "metrics",
    "pipeline",
    "plotting",
    "rct_target",
    "solve_budget_allocation",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(_LAZY[name], __name__)
        value = module if _LAZY[name].endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sklearn_budget' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
