"""The torch module: a shared trunk with revenue and cost heads for every arm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UpliftNetwork"]


class UpliftNetwork(nn.Module):
    """Expected revenue and cost of every arm (control first) given features.

    Parameters
    ----------
    n_features : int
        Input width.
    n_arms : int
        Number of arms including control (``K + 1``).
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the shared trunk.
    monotone_cost : bool, default=True
        If True, the expected cost of level ``k`` is the control cost plus a
        cumulative sum of non-negative increments, so cost uplift is
        non-negative and non-decreasing in the incentive level by
        construction. This is what keeps the marketing-goal regulariser from
        "gaming" the budget by under-stating costs (README, "Goal form and
        estimate").
    dropout : float, default=0.0
        Dropout after each hidden layer.

    Notes
    -----
    ``forward`` accepts (and ignores) the extra per-sample fields that skorch
    passes along from the dict ``X`` (observed arm, outcomes, propensity): they
    are only used by the loss.
    """

    def __init__(self, n_features, n_arms, hidden_layer_sizes=(64, 64), monotone_cost=True,
                 dropout=0.0):
        super().__init__()
        layers, width = [], n_features
        for h in hidden_layer_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.trunk = nn.Sequential(*layers)
        self.revenue_head = nn.Linear(width, n_arms)
        self.cost_head = nn.Linear(width, n_arms)
        self.monotone_cost = monotone_cost

    def forward(self, x, **_batch_fields):
        """Return ``(revenue, cost)``, each of shape (n, n_arms), control in column 0."""
        h = self.trunk(x)
        revenue = self.revenue_head(h)
        raw = self.cost_head(h)
        if self.monotone_cost:
            base = F.softplus(raw[:, :1])
            steps = torch.cumsum(F.softplus(raw[:, 1:]), 1)
            cost = base + torch.cat([torch.zeros_like(base), steps], 1)
        else:
            cost = F.softplus(raw)
        return revenue, cost
