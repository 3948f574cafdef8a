"""RCT data model and input checks: the one place where inputs are validated.

Every public entry point of :mod:`sklearn_budget` funnels its RCT inputs
(treatment, revenue outcome, cost outcome), uplift matrices and budgets
through the functions here, so error messages are uniform and name the fix.
The array checks live in :mod:`._array_checks`, the treatment labels' in
:mod:`._labels`, the packed target's in :mod:`._target`; all are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from ._array_checks import (
    _as_1d,
    _as_finite_float,
    _check_lengths,
    as_float_array,
    check_budget,
    check_dask_rows,
    check_dask_uplift,
    check_feature_frame,
    check_predicted_uplift,
    check_uplift,
    is_dask_frame,
    numeric_columns,
    real_number,
)
from ._labels import (
    _check_levels,
    _check_treatment_labels,
    _plain,
    arms_to_labels,
    check_control_name,
    labels_to_arms,
)
from ._param_checks import check_number_params
from ._target import is_rct_target, rct_target, target_propensity, unpack_target

__all__ = [
    "RCTData",
    "rct_target",
    "is_rct_target",
    "unpack_target",
    "target_propensity",
    "check_rct",
    "check_both_sides",
    "numeric_columns",
    "real_number",
    "is_dask_frame",
    "check_uplift",
    "check_dask_uplift",
    "check_budget",
    "as_float_array",
    "labels_to_arms",
    "arms_to_labels",
    "check_control_name",
    "check_number_params",
    "check_dask_rows",
    "check_feature_frame",
    "check_predicted_uplift",
    "check_n_multipliers",
    "check_multipliers",
    "check_estimate",
]

@dataclass(frozen=True)
class RCTData:
    """Validated RCT sample.

    Attributes
    ----------
    treatment : ndarray of shape (n_samples,)
        Labels as given.
    arm : ndarray of shape (n_samples,)
        Integer codes: 0 for control, ``k`` for ``levels[k - 1]``.
    revenue, cost : ndarray of shape (n_samples,)
        Observed outcomes (float64).
    levels : ndarray of shape (n_levels,)
        Sorted non-control labels (the column order of uplift matrices).
    control_name : object
        The control label.
    propensity : ndarray of shape (n_samples,)
        Probability that each user received the arm they were observed in.
    """

    treatment: np.ndarray
    arm: np.ndarray
    revenue: np.ndarray
    cost: np.ndarray
    levels: np.ndarray
    control_name: object
    propensity: np.ndarray

    @property
    def n_levels(self):
        return len(self.levels)

    @property
    def n_samples(self):
        return len(self.arm)

    @property
    def arm_probabilities(self):
        """Probability of each arm in ``[control, *levels]`` order, averaged over users.

        Where the propensity is one number per arm (arm frequencies, or a
        dict) it is that number. Per-user propensities give only the observed
        arm's probability: with one level the other arm's is its complement,
        so the mean over all users is exact; with several, the share of users
        in each arm estimates it (the mean propensity of an arm's users would
        over-weight those more likely to get that arm).
        """
        counts = np.bincount(self.arm, minlength=self.n_levels + 1)
        if not self.propensity_varies:
            return np.array([self.propensity[self.arm == k].mean() if counts[k] else 0.0
                             for k in range(self.n_levels + 1)])
        if self.n_levels == 1:
            treated = self.treated_probability()
            return np.array([1.0 - treated.mean(), treated.mean()])
        return counts / counts.sum()

    @property
    def propensity_varies(self):
        """Whether the propensity differs between users of one arm (a stratified design)."""
        return any(np.ptp(self.propensity[self.arm == k]) > 0
                   for k in range(self.n_levels + 1) if np.any(self.arm == k))

    def treated_probability(self):
        """Each user's probability of the one level (one-level RCTs): from the propensity."""
        return np.where(self.arm == 1, self.propensity, 1.0 - self.propensity)

    def subset(self, index):
        """Return the RCTData of the rows ``index`` (levels kept)."""
        return RCTData(
            self.treatment[index], self.arm[index], self.revenue[index], self.cost[index],
            self.levels, self.control_name, self.propensity[index],
        )


def check_rct(treatment, revenue, cost, *, control_name=0, propensity=None, min_arm_samples=1,
              levels=None):
    """Validate RCT inputs and return an :class:`RCTData`.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
        Observed arm labels; ``control_name`` marks the control group.
    revenue, cost : array-like of shape (n_samples,)
        Observed outcomes; cost must be non-negative.
    control_name : hashable, default=0
        Label of the control arm.
    propensity : None, dict or array-like of shape (n_samples,), default=None
        Assignment probabilities. None estimates them from arm frequencies; a
        dict maps each label to its probability; an array gives each user's
        probability of the arm they were observed in.
    min_arm_samples : int, default=1
        Fewest users every arm must have.
    levels : array-like, default=None
        Expected non-control labels (e.g. those seen in ``fit``). Labels outside
        them raise; levels absent from this sample are allowed.

    Returns
    -------
    RCTData

    Examples
    --------
    >>> from sklearn_budget._validation import check_rct
    >>> rct = check_rct(["c", "a", "b", "c"], [1, 2, 3, 4], [0, 1, 1, 0], control_name="c")
    >>> rct.levels, rct.arm
    (array(['a', 'b'], dtype='<U1'), array([0, 1, 2, 0]))
    """
    check_control_name(control_name)
    t, r, c = check_rct_columns(treatment, revenue, cost)
    if len(t) == 0:
        raise ValueError("The RCT sample is empty; pass at least one user per arm.")
    levels = rct_levels(t, control_name, levels)
    arm = labels_to_arms(t, levels, control_name)
    counts = np.bincount(arm, minlength=len(levels) + 1)
    if min_arm_samples > 1 and counts.min() < min_arm_samples:
        names = _plain([control_name, *levels])
        small = {names[k]: int(n) for k, n in enumerate(counts) if n < min_arm_samples}
        raise ValueError(
            f"Arm(s) with too few users: {small} (need at least {min_arm_samples} each). "
            "Collect more data, merge rare arms, or drop them."
        )
    p = _check_propensity(propensity, t, arm, counts, control_name, levels)
    return RCTData(t, arm, r, c, levels, control_name, p)


def check_rct_columns(treatment, revenue, cost):
    """``(treatment, revenue, cost)`` as arrays, each value checked (labels, finite
    outcomes, costs >= 0, sums that fit in float64); the arms as a whole are not."""
    t = _as_1d(treatment, "treatment")
    r = _as_finite_float(revenue, "revenue")
    c = _as_finite_float(cost, "cost")
    _check_lengths(treatment=t, revenue=r, cost=c)
    for name, v in (("revenue", r), ("cost", c)):
        with np.errstate(over="ignore"):
            total = float(np.abs(v).sum())
        check_outcome_total(name, total, v)
    _check_treatment_labels(t)
    if (c < 0).any():
        raise ValueError(
            f"`cost` has {int((c < 0).sum())} negative value(s); observed costs must be "
            ">= 0 (the amount spent on each user). Check the sign or the column."
        )
    return t, r, c


def check_outcome_total(name, total, values):
    """Raise ValueError when ``total`` (the sum of ``|values|``) overflowed float64."""
    if not np.isfinite(total):
        raise ValueError(
            f"`{name}` values are so large that their sum overflows float64 (largest "
            f"{float(np.abs(values).max()):.3g}); rescale them (e.g. to thousands of currency "
            "units), and the budget with them.")


def rct_levels(labels, control_name, levels):
    """The sorted non-control labels of an RCT whose (checked) treatment labels are
    ``labels`` (every user's, or each distinct one once), or ``levels`` checked
    against them; a ValueError when the control or every level is missing."""
    is_control = labels == control_name
    if not np.any(is_control):
        raise ValueError(
            f"No control users: no treatment label equals control_name={control_name!r}. "
            f"Labels seen: {_plain(np.unique(labels))[:10]}. Set `control_name` to the "
            "control label."
        )
    seen_levels = np.unique(labels[~is_control])
    if levels is None:
        if len(seen_levels) == 0:
            raise ValueError(
                "Only the control arm is present; an RCT needs at least two arms "
                "(control and one incentive level)."
            )
        return seen_levels
    levels = _check_levels(levels, control_name)
    unknown = np.setdiff1d(seen_levels, levels)
    if len(unknown):
        raise ValueError(
            f"Treatment labels {_plain(unknown)} were not seen when fitting (known: "
            f"{_plain(levels)}). Refit on data that contains every arm."
        )
    return levels


def _check_propensity(propensity, t, arm, counts, control_name, levels, users=None):
    n = len(arm)
    if propensity is None:
        return (counts / n)[arm]
    arms = [control_name, *levels]
    if isinstance(propensity, dict):
        missing = [lab for lab in arms if lab not in propensity
                   and counts[labels_to_arms(np.asarray([lab]), levels, control_name)[0]] > 0]
        if missing:
            hint = ""
            key_types = {type(k).__name__ for k in _plain(list(propensity))}
            label_types = {type(v).__name__ for v in _plain(arms)}
            if key_types.isdisjoint(label_types):
                hint = (f" Its keys are of type {', '.join(sorted(key_types))}; the treatment "
                        f"labels are {t.dtype} (e.g. {_plain(arms[:2])}).")
            raise ValueError(
                f"`propensity` dict has no probability for arm(s) {_plain(missing)}; give one "
                f"per label.{hint}"
            )
        # the arms of this sample (another arm's entry is not used: it may be None)
        values = {lab: real_number(propensity[lab]) for lab in arms if lab in propensity}
        if any(v is None for v in values.values()) or any(
                isinstance(v, (str, bytes, bool, np.bool_)) for v in propensity.values()):
            raise TypeError(
                f"`propensity` dict values must be real numbers (each arm's assignment "
                f"probability); got {propensity!r:.200}."
            )
        p = np.array([values[lab] for lab in t])
        given = [values[lab] for lab in arms if lab in values]
        # the arms of one experiment share the users: their probabilities sum to 1 (less
        # when some arms are not in this data; more by rounding, up to 0.01 per arm)
        if np.isfinite(given).all() and sum(given) > 1 + 0.01 * len(given):
            raise ValueError(
                f"`propensity` dict gives the arms {_plain(arms)} probabilities that sum to "
                f"{sum(given):.6g} > 1; give each arm's share of the users in the experiment "
                "(e.g. {0: 0.5, 1: 0.25, 2: 0.25}).")
    else:
        p = _as_finite_float(propensity, "propensity")
        _check_lengths(treatment=t, propensity=p)
    return check_propensity_values(p, users)


def check_propensity_values(p, users=None):
    """``p`` (float64 per user), or a ValueError unless every value lies in [1e-12, 1].

    ``users``: the number of users each value stands for (default one each).
    """
    def count(mask):
        return int(mask.sum() if users is None else np.asarray(users)[mask].sum())

    bad = ~(np.isfinite(p) & (p > 0) & (p <= 1))
    if bad.any():
        raise ValueError(
            f"`propensity` values must lie in (0, 1]; they are each user's probability of "
            f"the arm they were observed in. Got {float(p[bad][0])} for {count(bad)} user(s)."
        )
    tiny = p < 1e-12  # their inverse-probability weights (1 / p) swamp or overflow the sums
    if tiny.any():
        raise ValueError(
            f"`propensity` has {count(tiny)} value(s) below 1e-12 (the smallest "
            f"{float(p.min()):.3g}): no experiment assigns an arm that rarely, and the "
            "inverse-probability weights 1 / p would overflow. Check the column.")
    return p


def check_both_sides(rct, **parts):
    """Raise ValueError unless every arm of ``rct`` has users in each named index set.

    A stratified split can still leave an arm of a few users out of one part
    (its share rounds to zero there).
    """
    names = [rct.control_name, *rct.levels]
    total = np.bincount(rct.arm, minlength=rct.n_levels + 1)
    for part, index in parts.items():
        empty = np.flatnonzero(np.bincount(rct.arm[index], minlength=rct.n_levels + 1) == 0)
        if len(empty):
            raise ValueError(
                f"arm(s) {_plain([names[k] for k in empty])} with "
                f"{_plain(total[empty])} user(s) in all got none in the {part} part"
            )


# parameters of a cost curve's sweep
def check_n_multipliers(n_multipliers):
    """``n_multipliers`` as an int in [3, 100000], or a TypeError / ValueError saying so."""
    if isinstance(n_multipliers, (bool, np.bool_)) or \
            not isinstance(n_multipliers, (Integral, np.integer)):
        raise TypeError(f"`n_multipliers` must be an integer >= 3; got {n_multipliers!r}.")
    if not 3 <= int(n_multipliers) <= 100_000:
        raise ValueError(
            f"`n_multipliers` must be between 3 and 100,000; got {n_multipliers} (each point "
            "evaluates the policy on every user; a few hundred resolve the curve).")
    return int(n_multipliers)


def check_multipliers(multipliers):
    """Given multipliers as a decreasing float64 array, or a TypeError / ValueError."""
    try:
        if np.iscomplexobj(multipliers):
            raise TypeError
        multipliers = np.asarray(multipliers, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(
            f"`multipliers` must be real numbers >= 0; got {multipliers!r:.80}.") from None
    if len(multipliers) == 0 or not np.all(np.isfinite(multipliers)) or \
            (multipliers < 0).any():
        raise ValueError("`multipliers` must be a non-empty array of finite values >= 0.")
    return np.sort(multipliers)[::-1]


def check_estimate(estimate):
    """``estimate`` of a cost curve: 'eom' or 'dr', or a ValueError."""
    if estimate not in ("eom", "dr"):
        raise ValueError(f"`estimate` must be 'eom' or 'dr'; got {estimate!r}.")
    return estimate
