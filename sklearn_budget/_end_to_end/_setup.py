"""What a fit settles before training: checks, device, cost order, torch's global state.

The estimator's parameter constraints and the tables behind them (optimizers,
what phase 2 fine-tunes) are here too.

The parameter checks that scikit-learn's constraints cannot express (run
before any data work; ``SetupMixin``), the torch device (``"auto"`` resolved), the order of
the levels along which ``monotone_cost`` makes cost rise, and torch's
process-wide state a fit touches: its CPU thread count and its global random
generator (held while a fit draws from it).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.callbacks import Callback

from .._labels import _plain
from .._validation import check_number_params
from .._warnings import warn
from ._goal import GOAL_FORMS, GRADIENT_ESTIMATORS

__all__ = ["GOAL_PHASE_PARAMS", "OPTIMIZERS", "PARAMETER_CONSTRAINTS", "TORCH_GLOBAL_STATE",
           "SetupMixin", "check_callbacks", "check_device", "check_network_params",
           "named_callbacks", "resolve_device", "resolve_monotone_cost", "torch_threads"]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

# which parameters phase 2 fine-tunes: a predicate on the module's parameter names
GOAL_PHASE_PARAMS = {
    "all": lambda name: True,
    "heads": lambda name: name.startswith(("revenue_head.", "cost_head.")),
    "bias": lambda name: name in ("revenue_head.bias", "cost_head.bias"),
}

# scikit-learn's parameter constraints of EndToEndBudgetAllocator (besides the base's)
PARAMETER_CONSTRAINTS = {
    "reg_weight": [Interval(Real, 0, None, closed="left")],
    "gradient_estimator": [StrOptions(set(GRADIENT_ESTIMATORS))],
    "n_perturbations": [Interval(Integral, 1, None, closed="left")],
    "perturbation_scale": [Interval(Real, 0, None, closed="neither")],
    "temperature": [Interval(Real, 0, None, closed="neither")],
    "goal_form": [StrOptions(set(GOAL_FORMS))],
    "overspend_penalty": [Interval(Real, 0, None, closed="left")],
    "goal_estimate": [StrOptions({"ipw", "dr"})],
    "goal_multipliers": [tuple, list],
    "warmup_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "goal_phase_acceptance": [Interval(Real, 0, 1, closed="both")],
    "goal_batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}),
                        None],
    "goal_phase_lr": [Interval(Real, 0, None, closed="neither"), None],
    "center_uplift": ["boolean"],
    "goal_phase_params": [StrOptions(set(GOAL_PHASE_PARAMS))],
    "goal_phase_validation": [StrOptions({"split", "crossfit", "shared"})],
    "goal_phase_epoch_size": [Interval(Integral, 1, None, closed="left"), None],
    "goal_phase_averaging": [Interval(Real, 0, 1, closed="neither"),
                             StrOptions({"uniform"}), None],
    "hidden_layer_sizes": [tuple, list],
    "monotone_cost": [StrOptions({"auto", "nonnegative"}), "boolean"],
    "loss": [StrOptions({"huber", "mse"})],
    "cost_loss": [StrOptions({"huber", "mse"})],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "device": [str],
    "n_threads": [Interval(Integral, 1, 1024, closed="both"), None],
    "verbose": ["verbose"],
    "callbacks": [list, tuple, None],
}

# torch's global generator (and its thread count) are process-wide: a fit seeds the
# generator and draws from it (weight initialisation, shuffling), so fits running at
# the same time in threads of one process take turns (processes are unaffected)
TORCH_GLOBAL_STATE = threading.RLock()


@contextmanager
def torch_threads(n_threads):
    """Run a block (a fit) with ``n_threads`` torch CPU threads (None: unchanged), in
    float32 by default and with gradients on, whatever the caller's torch settings
    (``torch.set_default_dtype(torch.float64)`` built a float64 network for float32
    inputs; ``torch.inference_mode()`` refused the backward pass), restored after. The
    default dtype is process-wide: other threads see float32 while a fit runs."""
    previous, dtype = torch.get_num_threads(), torch.get_default_dtype()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    torch.set_default_dtype(torch.float32)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        torch.set_default_dtype(dtype)
        if n_threads is not None:
            torch.set_num_threads(previous)


def resolve_monotone_cost(setting, rct):
    """``(on, order)`` of the cost constraint: the level columns from cheapest to dearest.

    Numeric levels rise in their numeric order (the column order, ``order``
    None). Text labels sort alphabetically ("15off" before "5off"), so
    ``"auto"`` orders them by their mean observed cost uplift in the RCT
    (inverse-propensity weighted), and True (the column order) warns.
    ``"nonnegative"`` has no order.
    """
    if setting == "nonnegative":
        return setting, None
    levels = rct.levels
    numeric = all(isinstance(v, Real) for v in np.asarray(levels).tolist())
    if setting and numeric:
        _warn_if_cost_falls(rct)
    if not setting or numeric:
        return bool(setting), None
    if setting != "auto":
        warn(f"monotone_cost=True forces the cost uplift to rise along the levels in "
             f"sorted order, {_plain(levels)}, which for text labels is alphabetical. "
             "Recode the levels as numbers in incentive order, or use "
             "monotone_cost='auto' (the order of their mean observed cost).", UserWarning)
        return True, None
    mean = np.array([_weighted_mean_and_se(rct.cost[rct.arm == k],
                                           rct.propensity[rct.arm == k])[0]
                     for k in range(len(levels) + 1)])
    return True, np.argsort(mean[1:] - mean[0], kind="stable").tolist()


def _warn_if_cost_falls(rct, n_se=3.0):
    """Warn when the observed mean cost falls between consecutive numeric levels.

    The monotone cost heads make the cost uplift rise along the numeric
    levels; where the RCT shows it falling by more than ``n_se`` standard
    errors (arm codes not in incentive order, or arms that are not levels of
    one incentive), the constraint pools those levels' costs.
    """
    stats = [_weighted_mean_and_se(rct.cost[rct.arm == k], rct.propensity[rct.arm == k])
             for k in range(1, rct.n_levels + 1)]
    for k in range(len(stats) - 1):
        (low, se_low, n_low), (high, se_high, n_high) = stats[k], stats[k + 1]
        if n_low < 2 or n_high < 2:
            continue
        drop, se = low - high, np.hypot(se_low, se_high)
        if drop > n_se * se:
            a, b = _plain(rct.levels[k:k + 2])
            size = (f"by {drop / se:.1f} standard errors" if se > 0 else
                    "and every user's cost in these arms is the same")
            warn(f"The cost heads make the cost uplift rise along the numeric levels, but "
                 f"the observed mean cost falls from level {a!r} ({low:.4g}) to {b!r} "
                 f"({high:.4g}), {size}. Recode the levels as numbers in incentive order, "
                 "or use monotone_cost='nonnegative' if they are not levels of one "
                 "incentive (cost uplift >= 0, in no order).", UserWarning)
            return


def _weighted_mean_and_se(cost, propensity):
    """Inverse-propensity (Hajek) mean of one arm's costs, its standard error, and n."""
    w = 1.0 / propensity
    if len(cost) == 0:
        return 0.0, 0.0, 0
    mean = float(np.sum(w * cost) / np.sum(w))
    se = float(np.sqrt(np.sum((w * (cost - mean)) ** 2)) / np.sum(w))
    return mean, se, len(cost)


def resolve_device(device):
    """The torch device string: ``"auto"`` is CUDA when available, else CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_network_params(hidden_layer_sizes, goal_multipliers, device):
    """Checks that scikit-learn's parameter constraints cannot express.

    Returns the torch device string (``"auto"`` resolved).
    """
    sizes = tuple(hidden_layer_sizes)
    if not sizes or not all(isinstance(h, Integral) and not isinstance(h, (bool, np.bool_))
                            and h > 0 for h in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be a non-empty tuple of positive ints, got "
            f"{hidden_layer_sizes!r}; e.g. (64, 64).")
    mult = tuple(goal_multipliers)
    if not mult or not all(isinstance(m, Real) and not isinstance(m, (bool, np.bool_))
                           and np.isfinite(m) and m > 0 for m in mult):
        raise ValueError(
            f"goal_multipliers must be a non-empty tuple of positive finite factors of "
            f"the budget's multiplier, got {goal_multipliers!r}; e.g. (1.0,) or "
            "(0.5, 1.0, 2.0).")
    return check_device(device)


def named_callbacks(callbacks):
    """``callbacks`` as ``(name, callback)`` pairs (unnamed ones: ``user_<class>_<i>``)."""
    return [item if isinstance(item, tuple) and len(item) == 2 else
            (f"user_{type(item).__name__}_{i}", item)
            for i, item in enumerate(callbacks or ())]


def check_callbacks(callbacks, reserved):
    """``callbacks``: None, or a list of skorch callbacks or ``(name, callback)`` pairs."""
    names = []
    for name, callback in named_callbacks(callbacks):
        if not isinstance(callback, Callback) or not isinstance(name, str):
            raise TypeError(f"callbacks must hold skorch Callback instances or (name, "
                            f"callback) pairs; got {(name, callback)!r:.100}.")
        if name in reserved:
            raise ValueError(f"The callback name {name!r} is the fit's own; choose another "
                             f"(taken: {', '.join(reserved)}).")
        if name in names:
            raise ValueError(f"Two callbacks are named {name!r}; names must be distinct.")
        if getattr(callback, "f_pickle", None):  # skorch's Checkpoint, TrainEndCheckpoint
            raise ValueError(
                f"The callback {name!r} pickles the whole net during the fit "
                f"(f_pickle={callback.f_pickle!r}), which then holds the fit's own callbacks "
                "and data and cannot be pickled. Checkpoint the parameters (f_params, the "
                "default) and pickle the fitted estimator after fit (joblib.dump(model, ...)).")
        names.append(name)


def check_device(device):
    """The torch device string of ``device`` (``"auto"`` resolved), checked to exist here."""
    resolved = resolve_device(device)
    try:
        dev = torch.device(resolved)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or "
            f"'cuda:N' ({exc}).") from None
    if dev.type == "meta":
        raise ValueError(f"device={device!r} holds no data (shapes only); use 'auto', 'cpu' "
                         "or 'cuda'.")
    if dev.type != "cpu":
        # torch.backends.mps, torch.cuda, torch.xpu, ... say whether they can run here
        # (torch.mps.is_available only exists since torch 2.5); a type without such a
        # check is left to torch
        checks = [getattr(getattr(module, dev.type, None), "is_available", None)
                  for module in (torch.backends, torch)]
        available = next((check for check in checks if callable(check)), None)
        if available is not None and not available():
            raise ValueError(
                f"device={device!r} but {'CUDA' if dev.type == 'cuda' else dev.type} is "
                "not available here; use device='auto' (CUDA when available, else CPU) "
                "or 'cpu'.")
        try:  # a type without such a check (xla, hpu, ...), or a cuda:N beyond the GPUs
            if available is None or dev.index is not None:
                torch.empty(0, device=dev)
        except Exception as exc:  # torch raises RuntimeError, ModuleNotFoundError, ...
            raise ValueError(
                f"device={device!r} cannot hold tensors here ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); use device='auto' (CUDA "
                "when available, else CPU) or 'cpu'.") from None
    return resolved


class SetupMixin:
    """The estimator's own checks and messages (a mixin of ``EndToEndBudgetAllocator``,
    through ``TrainingMixin``): parameters, user callbacks, the unreachable-budget advice."""

    # names of the callbacks the fit itself adds (a user's callback may not take them)
    _OWN_CALLBACKS = ("goal_phase_averaging", "goal_multiplier", "valid_goal",
                      "early_stopping", "progress", "epoch_timer", "train_loss",
                      "valid_loss", "print_log")

    def _user_callbacks(self):
        """``callbacks`` as ``(name, callback)`` pairs: fresh copies for this fit."""
        return [(name, clone(callback, safe=False))
                for name, callback in named_callbacks(self.callbacks)]

    def _check_fit_params(self):
        """Checks that scikit-learn's constraints cannot express (before any data work)."""
        # sklearn's Interval lets through a bool for a number and numbers beyond float32
        check_number_params(self.get_params(deep=False), self._parameter_constraints,
                            limit=float(np.finfo(np.float32).max), what="the network's float32")
        check_network_params(self.hidden_layer_sizes, self.goal_multipliers, self.device)
        check_callbacks(self.callbacks, self._OWN_CALLBACKS)
        warmup = self._fixed_warmup()
        if self.reg_weight > 0 and not self._two_phase() and warmup >= self.max_epochs:
            what = (f"warmup_epochs={self.warmup_epochs}" if self.warmup_epochs != "auto" else
                    "warmup_epochs='auto' without early stopping (5 warm-up epochs)")
            warn(f"{what} >= max_epochs={self.max_epochs}: the goal never switches on"
                 + (", yet early stopping picks the epoch by the validation goal"
                    if self.early_stopping else "")
                 + ". Use warmup_epochs='auto' with early stopping, fewer warm-up epochs, "
                 "more epochs, or reg_weight=0.", UserWarning)

    def _free_users_remedy(self):
        """The end-to-end remedy when predicted cost uplifts <= 0 break the budget."""
        if not self.monotone_cost_:
            return ("Use monotone_cost='auto' (or 'nonnegative' for arms that are not "
                    "levels of one incentive): the cost heads then predict non-negative "
                    "cost uplifts.")
        return ("Their cost heads predict an uplift of 0 at float32 precision (the "
                "softplus floor, or costs tiny next to the control's); if the training "
                "diverged, lower lr.")
