"""End-to-end budget allocation (Yan et al. 2023): torch module, goal, skorch net, estimator."""

from ._estimator import EndToEndBudgetAllocator
from ._goal import GRADIENT_ESTIMATORS, marketing_goal
from ._module import UpliftNetwork
from ._net import BudgetNet

__all__ = ["BudgetNet", "EndToEndBudgetAllocator", "GRADIENT_ESTIMATORS", "UpliftNetwork",
           "marketing_goal"]
