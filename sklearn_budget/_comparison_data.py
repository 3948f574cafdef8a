"""The data of one seed of a comparison: an RCT split into train and test parts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._solver import allocate_at_multiplier
from .metrics import true_value
from .metrics._oracle import _check_truth

__all__ = ["ComparisonData"]


@dataclass
class ComparisonData:
    """An RCT split into train and test parts, with truth when it is known.

    ``true_revenue`` / ``true_cost`` are the (n_test, K + 1) expected outcomes
    of every arm on the test users (None for real data); ``true_revenue_train``
    / ``true_cost_train`` the same on the training users.
    """

    name: str
    X_train: np.ndarray
    treatment_train: np.ndarray
    revenue_train: np.ndarray
    cost_train: np.ndarray
    X_test: np.ndarray
    treatment_test: np.ndarray
    revenue_test: np.ndarray
    cost_test: np.ndarray
    true_revenue: np.ndarray | None = None
    true_cost: np.ndarray | None = None
    true_revenue_train: np.ndarray | None = None
    true_cost_train: np.ndarray | None = None

    @property
    def has_truth(self):
        return self.true_revenue is not None

    @property
    def n_levels(self):
        return int(np.max(self.treatment_train))

    @classmethod
    def from_arrays(cls, name, X, treatment, revenue, cost, *, true_revenue=None,
                    true_cost=None, test_size=0.5, random_state=0):
        """Split arrays (integer arms 0..K, 0 = control) stratified by arm.

        Parameters
        ----------
        name : str
            Data set name (the ``dataset`` column of the results).
        X : array-like of shape (n_samples, n_features)
        treatment : array-like of int of shape (n_samples,)
            Arm of each user (0 = control).
        revenue, cost : array-like of shape (n_samples,)
            Observed outcomes.
        true_revenue, true_cost : array-like of shape (n_samples, K + 1), default=None
            Expected outcomes of every arm (synthetic data); both or neither.
        test_size, random_state : float or int, int, default=0.5, 0
            Size and seed of the split (:func:`~sklearn.model_selection.train_test_split`).

        Returns
        -------
        data : ComparisonData
        """
        from sklearn.model_selection import train_test_split

        X = np.asarray(X, dtype=np.float64)
        idx = np.arange(len(X))
        tr, te = train_test_split(idx, test_size=test_size, stratify=treatment,
                                  random_state=random_state)
        truth = {}
        if (true_revenue is None) != (true_cost is None):
            raise ValueError("Give both `true_revenue` and `true_cost` (the expected outcomes "
                             "of every arm) or neither.")
        if true_revenue is not None:
            true_revenue, true_cost = _check_truth(true_revenue, true_cost)
            arms = int(np.max(treatment)) + 1
            if true_revenue.shape != (len(X), arms):
                raise ValueError(
                    f"`true_revenue` and `true_cost` must have one row per user and one column "
                    f"per arm, control first: shape ({len(X)}, {arms}) here; got "
                    f"{true_revenue.shape}.")
            truth = {"true_revenue": true_revenue[te], "true_cost": true_cost[te],
                     "true_revenue_train": true_revenue[tr], "true_cost_train": true_cost[tr]}
        t, r, c = (np.asarray(a) for a in (treatment, revenue, cost))
        return cls(name, X[tr], t[tr], r[tr], c[tr], X[te], t[te], r[te], c[te], **truth)

    def true_uplift(self):
        """True (n_test, K) revenue and cost uplifts of the levels over control."""
        r = self.true_revenue[:, 1:] - self.true_revenue[:, :1]
        c = self.true_cost[:, 1:] - self.true_cost[:, :1]
        return r, c

    def budget_scale(self):
        """Per-user budget that a fraction of 1.0 stands for (see module docs)."""
        if self.has_truth:
            r, c = self.true_uplift()
            full = allocate_at_multiplier(r, c, 0.0)
            return true_value(full, self.true_revenue, self.true_cost).incremental_cost
        t, cost = self.treatment_train, self.cost_train
        base = cost[t == 0].mean()
        return float(max(cost[t == k].mean() - base for k in range(1, self.n_levels + 1)))
