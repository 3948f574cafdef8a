"""How the comparison scores one fitted method on the test half of a seed.

The EOM revenue at the budget and the MT-AUCC on every data set; with ground
truth, the deployed allocation's true revenue and spend, its fraction of the
oracle's value and the value at equal true spend. Helpers of
:mod:`sklearn_budget.comparison`.
"""

from __future__ import annotations

import numpy as np

from ._solver import allocate_at_multiplier
from ._warnings import warn
from .metrics import mt_aucc, true_value, value_at_budget

__all__ = []


def _equal_spend_assignment(r, c, true_r, true_c, budget, iters=60):
    """Allocation from scores ``r - lam c`` whose TRUE spend meets ``budget``; None when
    none does (users predicted to cost nothing are treated at any multiplier)."""
    def spend(lam):
        a = allocate_at_multiplier(r, c, lam)
        return a, _true_cost(a, true_c)

    a, s = spend(0.0)
    if s <= budget:
        return a
    lo, hi = 0.0, 1.0
    scale = max(np.abs(r).max(), 1e-12) / max(np.abs(c).max(), 1e-12)
    hi = scale
    while spend(hi)[1] > budget and hi < 1e12 * scale:
        lo, hi = hi, hi * 4
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if spend(mid)[1] > budget:
            lo = mid
        else:
            hi = mid
    for lam in (hi, np.inf):
        a, s = spend(lam)
        if s <= budget:
            return a
    return None


def _true_cost(assignment, true_c):
    rows = np.arange(len(assignment))
    return float(np.where(assignment > 0, true_c[rows, np.clip(assignment - 1, 0, None)],
                          0.0).mean())


def _random_assignment(rng, true_c, budget):
    n, k = true_c.shape
    order = rng.permutation(n)
    levels = rng.integers(1, k + 1, n)
    spent = np.cumsum(true_c[order, levels[order] - 1]) / n
    out = np.zeros(n, dtype=np.int64)
    keep = order[spent <= budget]
    out[keep] = levels[keep]
    return out


def _mt_aucc_or_nan(method, r, c, t, rev, cost, levels):
    """MT-AUCC, or NaN (with a warning) where it is undefined for this model.

    MT-AUCC normalises by the maximal-spend policy's EOM revenue, which is 0
    when the model predicts no profitable treatment (e.g. on a small sample
    with rare conversions); one such fit must not stop a benchmark.
    """
    try:
        return mt_aucc(r, c, t, rev, cost, levels=levels)
    except ValueError as exc:
        warn(f"{method}: MT-AUCC undefined, reported as NaN ({exc})", RuntimeWarning)
        return float("nan")


def _score(method, data, r, c, assignment, budget, fit_time, oracle_value):
    t, rev, cost = data.treatment_test, data.revenue_test, data.cost_test
    levels = np.arange(1, data.n_levels + 1)
    row = {
        "method": method,
        "eom_revenue": value_at_budget(r, c, t, rev, cost, budget, levels=levels),
        "mt_aucc": _mt_aucc_or_nan(method, r, c, t, rev, cost, levels),
        "fit_time": fit_time,
    }
    if data.has_truth:
        tr, tc = data.true_uplift()
        deployed = true_value(assignment, data.true_revenue, data.true_cost)
        equal = _equal_spend_assignment(r, c, tr, tc, budget)
        if equal is None:
            warn(f"{method}: at every multiplier its policy's true spend exceeds the budget "
                 f"{budget:.3g} per user (users with a predicted cost uplift <= 0 are treated "
                 "at any multiplier), so its value at equal spend is reported as NaN",
                 RuntimeWarning)
            eq_revenue = float("nan")
        else:
            eq_revenue = true_value(equal, data.true_revenue,
                                    data.true_cost).incremental_revenue
        if oracle_value > 0:
            fractions = (deployed.incremental_revenue / oracle_value, eq_revenue / oracle_value)
        else:  # a budget too small for any user: nothing to be a fraction of
            warn(f"{method}: the oracle earns {oracle_value:g} at budget {budget:.3g} per "
                 "user, so fractions of its value are undefined, reported as NaN (use a "
                 "larger budget)", RuntimeWarning)
            fractions = (float("nan"), float("nan"))
        row.update(
            true_revenue=deployed.incremental_revenue,
            true_spend=deployed.incremental_cost,
            spend_ratio=deployed.incremental_cost / budget if budget > 0 else float("nan"),
            oracle_fraction=fractions[0],
            equal_spend_fraction=fractions[1],
            regret=oracle_value - deployed.incremental_revenue,
        )
    return row
