"""Plots of budget policies (the EOM cost curve) and of end-to-end training.

matplotlib is optional: ``pip install "sklearn-budget[plot]"``.
"""

from ._cost_curve import CostCurveDisplay
from ._history import TrainingHistoryDisplay

__all__ = ["CostCurveDisplay", "TrainingHistoryDisplay"]
