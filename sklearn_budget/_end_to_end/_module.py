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
    monotone_cost : bool or "nonnegative", default=True
        If True, the expected cost of level ``k`` is the control cost plus a
        cumulative sum of non-negative increments, so cost uplift is
        non-negative and non-decreasing in the incentive level by
        construction. This is what keeps the marketing-goal regulariser from
        "gaming" the budget by under-stating costs (README, "Goal form and
        estimate"). ``"nonnegative"``: the control cost plus one non-negative
        increment per level, for arms that are not levels of one incentive
        (cost uplift >= 0, in no order). False: each arm's cost is only >= 0.
    dropout : float, default=0.0
        Dropout after each hidden layer.
    cost_order : sequence of int, default=None
        With ``monotone_cost``: the levels (0-based columns after control)
        from the cheapest to the dearest; None is column order.

    Notes
    -----
    ``forward`` accepts (and ignores) the extra per-sample fields that skorch
    passes along from the dict ``X`` (observed arm, outcomes, propensity): they
    are only used by the loss.
    """

    def __init__(self, n_features, n_arms, hidden_layer_sizes=(64, 64), monotone_cost=True,
                 dropout=0.0, cost_order=None):
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
        # position of each level in the cost order (None: column order)
        rank = None
        if cost_order is not None and list(cost_order) != list(range(n_arms - 1)):
            if sorted(cost_order) != list(range(n_arms - 1)):
                raise ValueError(f"`cost_order` must order the {n_arms - 1} levels; "
                                 f"got {list(cost_order)}.")
            rank = torch.argsort(torch.as_tensor(list(cost_order)))
        self.register_buffer("cost_rank", rank)

    def forward(self, x, **_batch_fields):
        """Return ``(revenue, cost)``, each of shape (n, n_arms), control in column 0."""
        h = self.trunk(x)
        revenue = self.revenue_head(h)
        raw = self.cost_head(h)
        if self.monotone_cost:
            base = F.softplus(raw[:, :1])
            steps = F.softplus(raw[:, 1:])
            if self.monotone_cost != "nonnegative":
                steps = torch.cumsum(steps, 1)
            if self.cost_rank is not None:  # the j-th cheapest level's cumulative cost
                steps = steps[:, self.cost_rank]
            cost = base + torch.cat([torch.zeros_like(base), steps], 1)
        else:
            cost = F.softplus(raw)
        return revenue, cost
