"""skorch driver: the regularised loss and the callbacks that schedule it."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler, PrintLog
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import RandomSampler

from .._solver import solve_budget_allocation
from ._goal import decide, gain_matrix, marketing_goal, penalised_gains

__all__ = ["BudgetNet", "GoalMultiplier", "GoalPhaseAveraging", "GoalPrintLog",
           "goal_batch_size_for", "restart_lr_schedules"]

_LOSSES = {"huber": torch.nn.functional.huber_loss, "mse": torch.nn.functional.mse_loss}


# goal_batch_size="auto": a quarter of the fitting users, within these bounds
AUTO_GOAL_BATCH_MIN, AUTO_GOAL_BATCH_MAX = 4096, 32768


def goal_batch_size_for(goal_batch_size, n_fit):
    """The goal batch size used with ``n_fit`` fitting users.

    ``"auto"``: a quarter of the fitting users, at least 4,096 and at most
    32,768 (measured in ``benchmarks/goal_ceiling.py`` with 35,000 to 140,000
    fitting users); other values are returned unchanged. Each step draws
    ``min(size, n_fit)`` users.

    Examples
    --------
    >>> goal_batch_size_for("auto", 7_000), goal_batch_size_for("auto", 70_000)
    (4096, 17500)
    >>> goal_batch_size_for("auto", 10**8), goal_batch_size_for(1024, 10**8)
    (32768, 1024)
    """
    if not (isinstance(goal_batch_size, str) and goal_batch_size == "auto"):
        return goal_batch_size
    return int(min(max(AUTO_GOAL_BATCH_MIN, n_fit // 4), AUTO_GOAL_BATCH_MAX))


class BudgetNet(NeuralNet):
    """A skorch ``NeuralNet`` whose loss is ``L_pred - reg_weight * goal``.

    ``X`` is a dict (:class:`skorch.helper.SliceDict`) with the features
    ``"x"`` and the per-sample RCT fields ``"arm"`` (0 = control),
    ``"revenue"``, ``"cost"`` (scaled by ``revenue_scale``/``cost_scale``) and
    ``"weight"`` (inverse propensity); skorch batches all of them together, so
    the loss sees each user's observed arm and outcomes. ``y`` is unused.

    Extra parameters (besides skorch's) are set as attributes:
    ``reg_weight``, ``gradient_estimator``, ``n_perturbations``,
    ``perturbation_scale``, ``temperature``, ``loss_type`` and
    ``cost_loss_type`` ("mse" or "huber", of the revenue and of the cost;
    None: the cost's is ``loss_type``),
    ``warmup_epochs``, ``goal_multipliers`` (factors applied to the current
    multiplier), ``goal_batch_size`` and ``goal_data`` (tensors the larger goal
    batch is drawn from), ``goal_form`` ("lagrangian" or "penalty"),
    ``goal_estimate`` ("ipw" or "dr", for "lagrangian"), ``budget`` (per
    user, scaled cost units) and ``overspend_penalty`` (for "penalty": the
    price of overspend relative to the current multiplier), ``seed``, and
    ``epoch_size`` (None: an epoch passes over all training samples; an int:
    each epoch draws that many of them at random, without replacement, so an
    epoch is a fixed number of steps whatever the data size).
    """

    def __init__(self, module, *args, reg_weight=1.0, gradient_estimator="fd",
                 n_perturbations=16, perturbation_scale=0.1, temperature=0.3, loss_type="mse",
                 cost_loss_type=None, warmup_epochs=0, goal_multipliers=(1.0,),
                 goal_batch_size=None, goal_form="lagrangian", goal_estimate="ipw", budget=1.0,
                 overspend_penalty=2.0, seed=0, epoch_size=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.reg_weight = reg_weight
        self.gradient_estimator = gradient_estimator
        self.n_perturbations = n_perturbations
        self.perturbation_scale = perturbation_scale
        self.temperature = temperature
        self.loss_type = loss_type
        self.cost_loss_type = cost_loss_type
        self.warmup_epochs = warmup_epochs
        self.goal_multipliers = goal_multipliers
        self.goal_batch_size = goal_batch_size
        self.goal_form = goal_form
        self.goal_estimate = goal_estimate
        self.budget = budget
        self.overspend_penalty = overspend_penalty
        self.seed = seed
        self.epoch_size = epoch_size
        # multiplier of the goal in scaled units, set by the GoalMultiplier callback
        self.multiplier_ = 0.0
        self.goal_data_ = None

    def get_default_callbacks(self):
        return [(name, GoalPrintLog() if name == "print_log" else callback)
                for name, callback in super().get_default_callbacks()]

    def initialize(self):
        super().initialize()
        self.generator_ = torch.Generator(device=self.device).manual_seed(self.seed)
        # draws the samples of a partial epoch (DataLoader samplers run on the CPU)
        self.sampler_generator_ = torch.Generator().manual_seed(self.seed)
        return self

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; with ``epoch_size``, training epochs draw that many samples."""
        if not (training and self.epoch_size and len(dataset) > self.epoch_size):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train")
        kwargs.pop("shuffle", None)  # the sampler shuffles
        kwargs.setdefault("batch_size", self.batch_size)
        kwargs["sampler"] = RandomSampler(dataset, num_samples=self.epoch_size,
                                          generator=self.sampler_generator_)
        return self.iterator_train(dataset, **kwargs)

    # -- loss --------------------------------------------------------------------------
    def _prediction_loss(self, revenue_pred, cost_pred, batch):
        arm = batch["arm"][:, None]
        r_fit = revenue_pred.gather(1, arm)[:, 0]
        c_fit = cost_pred.gather(1, arm)[:, 0]
        return (_LOSSES[self.loss_type](r_fit, batch["revenue"])
                + _LOSSES[self.cost_loss_type or self.loss_type](c_fit, batch["cost"]))

    def goal_active(self):
        return self.reg_weight > 0 and len(self.history) > self.warmup_epochs

    def _estimate(self, r_up, c_up, gains, lam):
        return marketing_goal(r_up, c_up, gains, lam, estimator=self.gradient_estimator,
                              n_perturbations=self.n_perturbations,
                              perturbation_scale=self.perturbation_scale,
                              temperature=self.temperature, generator=self.generator_)

    def _penalty_goal(self, r_up, c_up, batch):
        """Revenue of the allocation that meets the budget on the predicted costs,
        minus ``overspend_penalty * multiplier_`` per unit of (RCT-estimated) overspend."""
        if not (torch.isfinite(r_up).all() and torch.isfinite(c_up).all()):
            # diverged: a NaN goal, as the Lagrangian form gives (the epoch is not picked)
            return (r_up.sum() + c_up.sum()) * float("nan"), float("nan")
        with torch.no_grad():
            lam = float(solve_budget_allocation(r_up.detach(), c_up.detach(),
                                                budget_per_user=self.budget).multiplier)
            decisions = decide(r_up.detach() - lam * c_up.detach())
            penalty = self.overspend_penalty * self.multiplier_
            gains, over = penalised_gains(batch["arm"], batch["revenue"], batch["cost"],
                                          batch["weight"], decisions, self.budget, penalty,
                                          r_up.shape[1] + 1)
        surrogate, value = self._estimate(r_up, c_up, gains, lam)
        return surrogate, value - penalty * over

    def _lagrangian_gains(self, revenue_pred, cost_pred, batch, lam):
        """(n, K+1) value of ``revenue - lam * cost`` each user adds per arm (IPW or DR)."""
        predicted = (revenue_pred - lam * cost_pred) if self.goal_estimate == "dr" else None
        return gain_matrix(batch["arm"], batch["revenue"], batch["cost"], batch["weight"], lam,
                           predicted)

    def _goal(self, revenue_pred, cost_pred, batch):
        r_up = revenue_pred[:, 1:] - revenue_pred[:, :1]
        c_up = cost_pred[:, 1:] - cost_pred[:, :1]
        if self.goal_form == "penalty":
            return self._penalty_goal(r_up, c_up, batch)
        surrogate, value = 0.0, 0.0
        for factor in self.goal_multipliers:
            lam = self.multiplier_ * factor
            gains = self._lagrangian_gains(revenue_pred, cost_pred, batch, lam)
            s, v = self._estimate(r_up, c_up, gains, lam)
            surrogate = surrogate + s / len(self.goal_multipliers)
            value += v / len(self.goal_multipliers)
        return surrogate, value

    def _goal_batch(self):
        """A random batch of ``goal_batch_size`` training samples, forwarded."""
        data = self.goal_data_
        n = data["arm"].shape[0]
        idx = torch.randint(0, n, (min(self.goal_batch_size, n),), generator=self.generator_,
                            device=self.device)
        batch = {k: v[idx] for k, v in data.items()}
        revenue_pred, cost_pred = self.module_(batch["x"])
        return revenue_pred, cost_pred, batch

    def get_loss(self, y_pred, y_true, X=None, training=False):
        revenue_pred, cost_pred = y_pred
        batch = {k: v.to(self.device) for k, v in X.items() if k != "x"}
        loss = self._prediction_loss(revenue_pred, cost_pred, batch)
        if training and self.goal_active():
            if self.goal_batch_size and self.goal_data_ is not None:
                revenue_pred, cost_pred, batch = self._goal_batch()
            surrogate, value = self._goal(revenue_pred, cost_pred, batch)
            self.history.record_batch("goal", value)
            loss = loss - self.reg_weight * surrogate
        return loss


class GoalMultiplier(Callback):
    """Re-calibrates the goal's multiplier at the start of every epoch.

    ``calibrate(net)`` returns the multiplier (scaled units) at which the
    allocation from the current predictions meets the budget on the training
    RCT data (EOM incremental cost); it is only called once the goal is active.
    """

    def __init__(self, calibrate):
        self.calibrate = calibrate

    def on_epoch_begin(self, net, **kwargs):
        if net.reg_weight > 0 and len(net.history) > net.warmup_epochs:
            lam = float(self.calibrate(net))
            net.multiplier_ = lam if np.isfinite(lam) else 0.0
            net.history.record("goal_multiplier", net.multiplier_)


class GoalPhaseAveraging(Callback):
    """Averages the network's weights over the goal's training steps.

    Each step of the goal fine-tuning follows one RCT batch's noisy goal; the
    average of the weights along the way is meant to follow their mean (it
    did not beat the raw weights on fresh seeds: the estimator's
    ``goal_phase_averaging``). ``decay``: a
    float in (0, 1), an exponential moving average per step
    (``torch.optim.swa_utils.get_ema_multi_avg_fn``), or ``"uniform"``, the
    running mean since the goal became active (stochastic weight averaging);
    both kept by ``torch.optim.swa_utils.AveragedModel``. At the end of every
    goal epoch the average is loaded into the module, so the validation
    scoring, early stopping's snapshot and hence the deployed network are
    the average; the next epoch resumes training from the raw weights.
    Must come first among the callbacks (its ``on_epoch_end`` before the
    scoring, its ``on_epoch_begin`` before the multiplier's re-calibration).
    """

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.averaged_, self.raw_ = None, None

    def on_epoch_begin(self, net, **kwargs):
        if self.raw_ is not None:
            net.module_.load_state_dict(self.raw_)
            self.raw_ = None

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not (training and net.goal_active()):
            return
        if self.averaged_ is None:
            fn = None if self.decay == "uniform" else get_ema_multi_avg_fn(self.decay)
            self.averaged_ = AveragedModel(net.module_, multi_avg_fn=fn)
        self.averaged_.update_parameters(net.module_)

    def on_epoch_end(self, net, **kwargs):
        if self.averaged_ is None or not net.goal_active():
            return
        self.raw_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        net.module_.load_state_dict(self.averaged_.module.state_dict())


class GoalPrintLog(PrintLog):
    """skorch's per-epoch table, with its header printed again when the columns change.

    Goal epochs add columns (``goal_multiplier``, the cross-fitted halves'
    goals); under the first epoch's header their values sat under the wrong
    names.
    """

    def initialize(self):
        super().initialize()
        self.columns_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        columns = self._sorted_keys(net.history[-1].keys())
        if columns != self.columns_:
            self.first_iteration_ = True  # PrintLog prints the header then
            self.columns_ = columns
        super().on_epoch_end(net, **kwargs)


def restart_lr_schedules(net):
    """Start the user's LR schedules (skorch ``LRScheduler``) afresh at the optimizer's
    ``lr``, for the goal phase: continued at phase 1's epoch count, torch's recursive
    forms scaled the goal phase's lr by the schedule's ratios there (a cosine past its
    ``T_max``: 365x in a review's fit). Not a schedule given ``last_epoch``, nor one
    without an epoch count (``ReduceLROnPlateau``)."""
    for _, callback in net.callbacks_:
        if not isinstance(callback, LRScheduler) or "last_epoch" in vars(callback):
            continue
        policy = getattr(callback, "policy_", None) or callback.policy
        try:
            takes = "last_epoch" in inspect.signature(policy).parameters
        except (TypeError, ValueError):  # (a string skorch did not resolve)
            takes = False
        if takes:
            callback.last_epoch = -1
