"""Calibration of the deployment multiplier (a mixin of the budget allocators).

After the uplift models are fitted, the multiplier that :meth:`allocate`
uses is chosen so that the budget is met: on a held-out slice of the RCT
(its EOM or doubly robust cost curve, read at the budget) or on the
training users' predicted costs (``calibration="predicted"``).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from ._labels import _plain
from ._solver import allocate_at_multiplier, solve_budget_allocation
from ._validation import check_both_sides, check_budget
from ._warnings import warn
from .metrics import cost_curve
from .metrics._at_budget import read_multiplier

__all__ = ["CalibrationMixin"]


class CalibrationMixin:
    """Held-out or predicted calibration of ``multiplier_`` (needs ``calibration``,
    ``calibration_size``, ``random_state``, ``budget``, ``control_name``,
    ``levels_`` and ``_n_multipliers`` from the allocator)."""

    def _calibration_split(self, rct):
        """Train / calibration indices, stratified by arm."""
        try:
            train, cal = train_test_split(
                np.arange(rct.n_samples), test_size=self.calibration_size,
                stratify=rct.arm, random_state=self.random_state,
            )
            check_both_sides(rct, fitting=train, calibration=cal)
        except ValueError as exc:
            raise ValueError(
                f"Cannot hold out calibration_size={self.calibration_size} of "
                f"{rct.n_samples} RCT users with every arm on both sides ({exc}). Use more "
                "data, another calibration_size, or calibration='predicted'."
            ) from exc
        return np.sort(train), np.sort(cal)

    def _calibrate(self, r_cal, c_cal, rct_cal):
        """Set ``calibration_curve_`` and ``multiplier_`` from calibration predictions."""
        self._calibration_method = self.calibration
        self._calibration_uplift = (r_cal, c_cal)
        # re-read by allocate(budget=...); "predicted" needs only the predictions (not
        # every training user's outcomes in the fitted object)
        self._calibration_rct = None if self.calibration == "predicted" else rct_cal
        self.calibration_curve_ = cost_curve(
            r_cal, c_cal, rct_cal.treatment, rct_cal.revenue, rct_cal.cost,
            propensity=rct_cal.propensity, control_name=self.control_name,
            n_multipliers=self._n_multipliers, levels=self.levels_,
            estimate="dr" if self.calibration == "holdout-dr" else "eom",
        )
        self._calibrated_budget = check_budget(self.budget)
        self.multiplier_ = self._multiplier_for(self._calibrated_budget)
        if self._calibration_rct is not None:
            self._warn_if_few_matched(r_cal, c_cal, rct_cal)

    def _warn_if_few_matched(self, r, c, rct, few=30, share=0.05):
        """Warn when the calibrated policy gives a level to many users but the slice has
        only a handful of that arm's users (its spend is then estimated from those)."""
        policy = np.bincount(allocate_at_multiplier(r, c, self.multiplier_),
                             minlength=len(self.levels_) + 1) / r.shape[0]
        users = np.bincount(rct.arm, minlength=len(self.levels_) + 1)
        for k in np.flatnonzero((policy[1:] >= share) & (users[1:] < few)) + 1:
            warn(f"The calibrated policy gives level {_plain([self.levels_[k - 1]])[0]!r} to "
                 f"{policy[k]:.0%} of the calibration users, but only {users[k]} of them were "
                 "assigned that level in the RCT: the deployed spend rests on those few and "
                 "may be far from the budget. Collect more users of that level, hold out "
                 "more (calibration_size), or use calibration='predicted'.", UserWarning)

    def _deployed_multiplier(self, budget=None):
        """``multiplier_``, or the multiplier re-read for another ``budget`` per user
        (also for ``self.budget`` when ``set_params`` changed it after the fit)."""
        if budget is None:
            calibrated = getattr(self, "_calibrated_budget", None)  # (older pickles: None)
            if calibrated is None or self.budget == calibrated:
                return self.multiplier_
            budget = self.budget
        return self._multiplier_for(check_budget(budget))

    def _multiplier_for(self, budget):
        """Deployment multiplier for a per-user ``budget``, calibrated as in ``fit``."""
        if self._calibration_method != "predicted":
            # same reading as metrics.multiplier_at_budget, on the stored curve
            r, c = self._calibration_uplift
            estimate = "dr" if self._calibration_method == "holdout-dr" else "eom"
            self._warn_if_unreachable(budget, r, c)
            return read_multiplier(self.calibration_curve_, budget, r, c,
                                   self._calibration_rct, estimate)
        r, c = self._calibration_uplift
        if budget > max(float(np.max(c, initial=0.0)), 0.0):
            return 0.0  # above every user's largest cost any policy fits (and a huge
            # budget x n would overflow; at exactly that cost the sum's rounding decides)
        return float(solve_budget_allocation(r, c, budget_per_user=budget).multiplier)

    def _warn_if_unreachable(self, budget, r, c):
        """Warn when even the largest multiplier's policy overspends ``budget``."""
        least = float(self.calibration_curve_.incremental_cost[0])
        if least <= budget:
            return
        free = int(np.count_nonzero(((c <= 0) & (r > 0)).any(axis=1)))
        cause = (f"{free} of its {r.shape[0]} users have a predicted cost uplift <= 0 with "
                 "a positive revenue uplift for some level, and the policy treats them at "
                 f"any multiplier. {self._free_users_remedy()}" if free else
                 "Use a larger budget or more calibration data.")
        warn(
            f"Even at the largest multiplier the policy's incremental cost on the calibration "
            f"data ({least:.4g} per user) exceeds the budget ({budget:.4g}), so the deployed "
            f"spend will exceed it: {cause}", UserWarning)

    def _free_users_remedy(self):
        """Advice when predicted cost uplifts <= 0 make the budget unreachable."""
        return ("Clip the cost model's predictions at 0 (an incentive's cost cannot fall) "
                "or use a larger budget.")
