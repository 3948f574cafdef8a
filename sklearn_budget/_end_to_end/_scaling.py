"""The network's inputs and outputs in the users' units (a mixin of the estimator).

Features are standardised and revenue / cost divided by their standard
deviations before they reach the network; everything here converts between
those scaled units and the users' own: the training dict that skorch batches,
batched forward passes, the goal of a set of predictions, the training-time
multiplier and the uplift that ``predict`` returns.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.helper import SliceDict

from ..metrics import cost_curve, value_at_budget
from ..metrics._eom import _EOMEvaluator

__all__ = ["ScaledNetworkMixin"]

# Rows below which a prediction batch is padded with zeros: torch's CPU float32 kernels
# for a few rows round differently from its kernels for many (measured: batches of 1, 2, 3
# and 5 rows differ in the last bits, 8 or more agree), so a user's uplift would depend on
# the chunking (a Dask chunk or CLI chunk of one row, predict on a single user).
_MIN_ROWS = 16


def _finite(*arrays):
    return all(bool(np.isfinite(a).all()) for a in arrays)


class ScaledNetworkMixin:
    """Scaling and forward passes of ``EndToEndBudgetAllocator`` (needs ``net_``,
    ``n_levels_``, ``budget`` and ``_n_multipliers`` from the estimator)."""

    def _fit_scales(self, X, rct):
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = X.mean(axis=0), X.std(axis=0)
            r_std, c_std = float(np.std(rct.revenue)), float(np.std(rct.cost))
        bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
        if len(bad):
            raise ValueError(
                f"Feature column(s) {bad.tolist()[:10]} of X are too large to standardise "
                "(their mean or spread overflows float64); rescale them first, e.g. take "
                "a log or change their units.")
        for name, value in (("revenue", r_std), ("cost", c_std)):
            if not np.isfinite(value):
                raise ValueError(
                    f"The {name} values are too large to standardise (their spread "
                    f"overflows float64); express {name} in larger units first.")
        self.x_mean_ = mean
        self.x_scale_ = np.where(std > 0, std, 1.0)
        self.revenue_scale_ = r_std or 1.0
        self.cost_scale_ = c_std or 1.0

    def _scaled_dict(self, X, rct=None):
        with np.errstate(over="ignore"):  # overflowed rows are reported by predict
            x = ((X - self.x_mean_) / self.x_scale_).astype(np.float32)
        if rct is None:
            return SliceDict(x=x)
        return SliceDict(
            x=x,
            arm=rct.arm.astype(np.int64),
            revenue=(rct.revenue / self.revenue_scale_).astype(np.float32),
            cost=(rct.cost / self.cost_scale_).astype(np.float32),
            weight=(1.0 / rct.propensity).astype(np.float32),
        )

    def _forward_scaled(self, x, batch=65536):
        """Scaled (revenue, cost) uplift predictions, numpy float64."""
        module = self.net_.module_
        was_training = module.training
        module.eval()
        out_r, out_c = [], []
        with torch.no_grad():
            for s in range(0, len(x), batch):
                xb = torch.as_tensor(x[s:s + batch], device=self.net_.device)
                m = len(xb)
                if m < _MIN_ROWS:  # (torch's float32 kernels for a few rows round otherwise)
                    xb = torch.cat([xb, xb.new_zeros((_MIN_ROWS - m, xb.shape[1]))])
                rev, cost = (out[:m] for out in module(xb))
                out_r.append((rev[:, 1:] - rev[:, :1]).double().cpu().numpy())
                out_c.append((cost[:, 1:] - cost[:, :1]).double().cpu().numpy())
        module.train(was_training)
        k = self.n_levels_
        if not out_r:
            return np.zeros((0, k)), np.zeros((0, k))
        return np.concatenate(out_r), np.concatenate(out_c)

    def _goal_of(self, predictions, rct, budget):
        """EOM incremental revenue at ``budget`` of scaled (revenue, cost) predictions.

        ``-inf`` where the network's outputs are not finite (training
        diverged): such an epoch is never picked, and a goal phase that
        diverges is rejected rather than failing the fit.
        """
        r, c = predictions
        if not _finite(r, c):
            return -np.inf
        return value_at_budget(r * self.revenue_scale_, c * self.cost_scale_, rct.arm,
                               rct.revenue, rct.cost, budget, propensity=rct.propensity,
                               levels=np.arange(1, self.n_levels_ + 1),
                               n_multipliers=self._n_multipliers)

    def _make_calibrator(self, X, rct, rng, max_rows=20000):
        """Multiplier (scaled units) meeting the budget on the training RCT (EOM)."""
        rows = np.arange(len(X))
        if len(rows) > max_rows:
            rows = np.sort(rng.choice(rows, max_rows, replace=False))
        sub = rct.subset(rows)
        x_rows = self._scaled_dict(X[rows])["x"]  # scaled once, not every epoch

        def calibrate(net):
            r, c = self._forward_scaled(x_rows)
            if not _finite(r, c):  # diverged: no multiplier (the goal epoch is rejected)
                return float("nan")
            # the goal's Lagrange weight, not a deployed spend: the curve's linear reading
            # (no bisection at jumps, unlike metrics.multiplier_at_budget), and where the
            # budget exceeds every point, the LARGEST multiplier reaching the maximal spend,
            # not 0: with a cost-free goal the fine-tuning chased revenue alone, and on
            # Hillstrom the gate then kept 4 fine-tunes (of 36 fits) that lost on the test
            # half (e.g. 0.36 -> 0.09 $ per user; README, "Calibration")
            curve = cost_curve(r * self.revenue_scale_, c * self.cost_scale_, sub.arm,
                               sub.revenue, sub.cost, propensity=sub.propensity,
                               levels=np.arange(1, self.n_levels_ + 1))
            cost = curve.incremental_cost
            lam = curve.multiplier_at(self.budget) if cost.max() >= self.budget else \
                float(curve.multipliers[int(np.argmax(cost))])
            return lam * self.cost_scale_ / self.revenue_scale_

        return calibrate

    def _revenue_shift(self, X, rct):
        """Per-level shift that centres the predicted revenue uplift on the RCT's
        difference in means (the EOM of treating everyone with the level) over
        the training users."""
        r, _ = self._forward_scaled(self._scaled_dict(X)["x"])
        eom = _EOMEvaluator(rct)
        n = rct.n_samples
        dim = np.array([eom.evaluate(np.full(n, k)).incremental_revenue
                        for k in range(1, self.n_levels_ + 1)])
        return dim - r.mean(axis=0) * self.revenue_scale_

    def _predict_uplift(self, X):
        x = self._scaled_dict(np.asarray(X, dtype=np.float64))["x"]
        r, c = self._forward_scaled(x)
        shift = getattr(self, "revenue_shift_", 0.0)
        return r * self.revenue_scale_ + shift, c * self.cost_scale_
