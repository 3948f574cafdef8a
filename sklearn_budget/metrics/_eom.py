"""Expected Outcome Metric (EOM): the value of a policy estimated on RCT data.

The EOM estimates, from an RCT, the per-user outcome a policy ``pi`` would
earn: only users whose random arm equals ``pi(x_i)`` count, re-weighted by the
inverse probability of that arm and self-normalised (Hajek)::

    EOM_y = sum_i y_i [t_i = pi(x_i)] / p_i  /  sum_i [t_i = pi(x_i)] / p_i

"Incremental" subtracts the same estimate for the all-control policy, so the
policy "everyone control" has incremental revenue and cost exactly 0. The
cost curve of a policy family lives in :mod:`._cost_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_rct, labels_to_arms

__all__ = ["ExpectedOutcome", "expected_outcome"]


@dataclass(frozen=True)
class ExpectedOutcome:
    """Per-user outcomes of a policy estimated on an RCT (see :func:`expected_outcome`).

    Attributes
    ----------
    revenue, cost : float
        Hajek IPW estimates of the mean revenue and cost per user under the policy.
    incremental_revenue, incremental_cost : float
        The same minus the estimates for the all-control policy.
    n_matched : int
        Number of users whose observed arm equals the policy's arm.
    """

    revenue: float
    cost: float
    incremental_revenue: float
    incremental_cost: float
    n_matched: int


def check_weighted_total(name, total):
    """Raise ValueError when ``total`` (a sum of outcomes times 1 / propensity) overflowed."""
    if not np.isfinite(total):
        raise ValueError(
            f"`{name}` values weighted by 1 / propensity (the EOM's inverse-probability "
            "weights) are so large that their sum overflows float64; rescale them (e.g. to "
            "thousands of currency units), and the budget with them.")


class _MatchedSums:
    """Inverse-propensity weights and weighted outcomes of RCT users (``arm`` 0..K),
    pre-computed to sum them over the users each of many policies matches."""

    def __init__(self, arm, propensity, revenue, cost):
        self.arm = arm
        self.weight = 1.0 / propensity
        with np.errstate(over="ignore"):  # (an overflow is named by sums)
            self.w_rev = self.weight * revenue
            self.w_cost = self.weight * cost

    def sums(self, policy_arm):
        """Return ``(weight, weighted revenue, weighted cost, n_matched)`` sums."""
        match = policy_arm == self.arm
        with np.errstate(over="ignore", invalid="ignore"):
            out = (self.weight @ match, self.w_rev @ match, self.w_cost @ match,
                   int(np.count_nonzero(match)))
        check_weighted_total("revenue", out[1])
        check_weighted_total("cost", out[2])
        return out


class _EOMEvaluator(_MatchedSums):
    """Pre-computed weights of one RCT sample, to evaluate many policies fast."""

    def __init__(self, rct):
        super().__init__(rct.arm, rct.propensity, rct.revenue, rct.cost)
        self.rct = rct
        # the all-control policy, computed exactly like any policy (so it scores 0)
        w, wr, wc, _ = self.sums(np.zeros_like(rct.arm))
        self.control_revenue = wr / w
        self.control_cost = wc / w

    def evaluate(self, policy_arm):
        w, wr, wc, n_matched = self.sums(policy_arm)
        if n_matched == 0:
            raise ValueError(
                "No RCT user's observed arm equals the policy's arm, so the expected "
                "outcome cannot be estimated. Use a larger RCT sample or check that the "
                "assignment uses the same labels as `treatment`."
            )
        rev, cost = wr / w, wc / w
        return ExpectedOutcome(float(rev), float(cost), float(rev - self.control_revenue),
                               float(cost - self.control_cost), n_matched)


def expected_outcome(assignment, treatment, revenue, cost, propensity=None, control_name=0):
    """Estimate a policy's per-user revenue and cost on RCT data (Hajek IPW EOM).

    Parameters
    ----------
    assignment : array-like of shape (n_samples,)
        Arm the policy gives each RCT user, in the label space of ``treatment``.
    treatment : array-like of shape (n_samples,)
        Arm each user was randomised to.
    revenue, cost : array-like of shape (n_samples,)
        Observed outcomes.
    propensity : None, dict or array-like of shape (n_samples,), default=None
        Assignment probabilities: None uses the arm frequencies, a dict maps
        each label to its probability, an array gives each user's probability
        of their observed arm.
    control_name : hashable, default=0
        Label of the control arm.

    Returns
    -------
    ExpectedOutcome
        ``revenue``, ``cost``, ``incremental_revenue``, ``incremental_cost``
        (minus the control arm's Hajek means) and ``n_matched``.

    Examples
    --------
    >>> from sklearn_budget.metrics import expected_outcome
    >>> treatment = [0, 0, 1, 1]
    >>> revenue = [1.0, 3.0, 4.0, 6.0]
    >>> cost = [0.0, 0.0, 1.0, 1.0]
    >>> eom = expected_outcome([1, 1, 1, 1], treatment, revenue, cost)
    >>> eom.revenue, eom.incremental_revenue, eom.incremental_cost, eom.n_matched
    (5.0, 3.0, 1.0, 2)
    """
    from ._dask import any_dask, expected_outcome_dask

    if any_dask(assignment, treatment, revenue, cost, propensity):
        return expected_outcome_dask(assignment, treatment, revenue, cost, propensity,
                                     control_name)
    rct = check_rct(treatment, revenue, cost, control_name=control_name, propensity=propensity)
    assignment = np.asarray(assignment.detach().cpu() if hasattr(assignment, "detach")
                            else assignment)
    if assignment.ndim == 2 and assignment.shape[1] == 1:  # a column, as the RCT's columns
        assignment = assignment[:, 0]
    if assignment.ndim != 1 or len(assignment) != rct.n_samples:
        raise ValueError(
            f"`assignment` must have one arm label per RCT user, shape ({rct.n_samples},); "
            f"got shape {assignment.shape}."
        )
    arms = labels_to_arms(assignment, rct.levels, control_name)
    return _EOMEvaluator(rct).evaluate(arms)
