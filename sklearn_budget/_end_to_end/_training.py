"""Training helpers of the end-to-end estimator: device, threads, checks, bootstrap.

Kept out of the estimator so that ``_estimator.py`` holds the scikit-learn
face (parameters, data scaling, the training phases) and nothing else.
"""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch

__all__ = ["check_network_params", "paired_bootstrap_differences", "torch_threads"]


@contextmanager
def torch_threads(n_threads):
    """Run a block with ``n_threads`` torch CPU threads (None: unchanged)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_network_params(hidden_layer_sizes, goal_multipliers, device):
    """Checks that scikit-learn's parameter constraints cannot express.

    Returns the torch device string (``"auto"`` resolved).
    """
    sizes = tuple(hidden_layer_sizes)
    if not sizes or not all(isinstance(h, Integral) and h > 0 for h in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be a non-empty tuple of positive ints, got "
            f"{hidden_layer_sizes!r}; e.g. (64, 64).")
    mult = tuple(goal_multipliers)
    if not mult or not all(isinstance(m, Real) and np.isfinite(m) and m > 0 for m in mult):
        raise ValueError(
            f"goal_multipliers must be a non-empty tuple of positive finite factors of "
            f"the budget's multiplier, got {goal_multipliers!r}; e.g. (1.0,) or "
            "(0.5, 1.0, 2.0).")
    resolved = _resolve_device(device)
    try:
        dev = torch.device(resolved)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or "
            f"'cuda:N' ({exc}).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available here; use device='auto' "
            "(CUDA when available, else CPU) or 'cpu'.")
    return resolved


def paired_bootstrap_differences(goal_of, new_pred, old_pred, rct, n_resamples, seed):
    """``goal_of(new) - goal_of(old)`` on paired bootstrap resamples of the users.

    ``goal_of(predictions, rct)`` scores a tuple of per-user prediction
    arrays on an RCT sample; resamples in which it raises ``ValueError``
    (e.g. an arm left out) are skipped. Returns the differences (ndarray).
    """
    rng = np.random.default_rng(seed)
    n = rct.n_samples
    diffs = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        sub = rct.subset(idx)
        try:
            diffs.append(goal_of([p[idx] for p in new_pred], sub)
                         - goal_of([p[idx] for p in old_pred], sub))
        except ValueError:
            continue
    return np.asarray(diffs, dtype=float)
