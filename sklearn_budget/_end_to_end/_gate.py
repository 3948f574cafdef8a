"""The goal phase's gate: which validation users pick, which judge, and the
paired bootstrap that decides whether phase 2 replaces phase 1.

Helpers over per-user prediction arrays and ``RCTData`` samples, plus
``CrossFit``, which records each validation half's best goal-phase epoch
while training runs; the training schedule (``_training.py``) calls them.
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["CrossFit", "check_halves", "halves", "paired_bootstrap_differences"]


def paired_bootstrap_differences(goal_of, folds, n_resamples, seed):
    """``goal_of(new) - goal_of(old)`` on paired bootstrap resamples of the users.

    ``folds`` is a list of ``(new_pred, old_pred, rct)``: tuples of per-user
    prediction arrays and the RCT sample they score (one fold, or the two
    halves of a cross-fit); each resample draws every fold's users with
    replacement, and its difference is the folds' differences averaged with
    weights proportional to their sizes. ``goal_of(predictions, rct)``
    scores predictions on an RCT sample; resamples in which it raises
    ``ValueError`` (e.g. an arm left out) are skipped. Returns the
    differences (ndarray).
    """
    rng = np.random.default_rng(seed)
    sizes = np.array([rct.n_samples for _, _, rct in folds], dtype=float)
    weights = sizes / sizes.sum()
    diffs = []
    for _ in range(n_resamples):
        total = 0.0
        try:
            for (new_pred, old_pred, rct), w in zip(folds, weights):
                idx = rng.integers(0, rct.n_samples, rct.n_samples)
                sub = rct.subset(idx)
                total += w * (goal_of([p[idx] for p in new_pred], sub)
                              - goal_of([p[idx] for p in old_pred], sub))
        except ValueError:
            continue
        diffs.append(total)
    return np.asarray(diffs, dtype=float)


def halves(rct, seed, mode="split"):
    """Two halves of the validation users, stratified by arm."""
    try:
        return train_test_split(np.arange(rct.n_samples), test_size=0.5, stratify=rct.arm,
                                random_state=seed)
    except ValueError as exc:
        raise ValueError(
            f"goal_phase_validation={mode!r} needs every arm at least twice among the "
            f"{rct.n_samples} validation users ({exc}); use more data, a larger "
            "calibration_size / validation_fraction, or goal_phase_validation='shared'."
        ) from None


def check_halves(rct, mode):
    """The ValueError :func:`halves` would raise for these validation users, before any
    training (phase 2 draws the halves after phase 1)."""
    halves(rct, 0, mode)


class CrossFit:
    """Phase 2's validation goal on each half of the validation users, and the
    network at each half's best epoch (``goal_phase_validation="crossfit"``).

    The gate then judges each half's pick on the other half, so all the
    validation users judge and none judges an epoch it picked.
    """

    def __init__(self, halves, rct):
        self.halves = halves
        self.rcts = [rct.subset(idx) for idx in halves]
        self.best = [-np.inf, -np.inf]
        self.states = [None, None]

    def record(self, estimator, net, predictions):
        """Score both halves (``valid_goal_half1`` / ``_half2`` in the history)."""
        for i, (idx, rct) in enumerate(zip(self.halves, self.rcts)):
            goal = estimator._goal_of([p[idx] for p in predictions], rct, estimator.budget)
            net.history.record(f"valid_goal_half{i + 1}", goal)
            if self.states[i] is None or goal > self.best[i]:  # (a NaN goal never leads)
                self.best[i] = goal
                self.states[i] = copy.deepcopy(net.module_.state_dict())

    def folds(self, estimator, phase1_pred, x_valid, valid_rct):
        """``(new, old, rct)`` per half: the other half's pick against phase 1."""
        module = estimator.net_.module_
        current = copy.deepcopy(module.state_dict())
        out = []
        try:
            for state, judge, rct in zip(self.states, self.halves[::-1], self.rcts[::-1]):
                module.load_state_dict(state)
                out.append((estimator._forward_scaled(x_valid[judge]),
                            [p[judge] for p in phase1_pred], rct))
        finally:
            module.load_state_dict(current)
        return out
