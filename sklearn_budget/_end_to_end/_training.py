"""How the end-to-end estimator trains.

Builds the skorch ``BudgetNet`` with its callbacks (goal multiplier,
validation goal, early stopping, progress bar) and runs the two-phase
schedule of ``warmup_epochs="auto"`` (phase 1 prediction loss, phase 2
fine-tuning with the goal, kept only if it wins the paired bootstrap on the
validation users); the checks and torch state a fit settles first are in
``_setup.py``. Kept out of ``_estimator.py``, which holds the scikit-learn face.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .._validation import check_both_sides
from .._warnings import warn
from ._gate import CrossFit, check_halves, halves as _halves, paired_bootstrap_differences
from ._module import UpliftNetwork
from ._net import (BudgetNet, GoalMultiplier, GoalPhaseAveraging, goal_batch_size_for,
                   restart_lr_schedules)
from ._scaling import _finite
from ._setup import (GOAL_PHASE_PARAMS, OPTIMIZERS, TORCH_GLOBAL_STATE, SetupMixin,
                     resolve_device,
                     resolve_monotone_cost, torch_threads)

__all__ = ["OPTIMIZERS", "TrainingMixin"]

def _freeze_for_goal_phase(module, which):
    """Stop the gradient of the parameters that phase 2 leaves alone; return them."""
    trainable = GOAL_PHASE_PARAMS[which]
    frozen = [p for name, p in module.named_parameters()
              if p.requires_grad and not trainable(name)]
    for param in frozen:
        param.requires_grad_(False)
    return frozen


class TrainingMixin(SetupMixin):
    """How ``EndToEndBudgetAllocator`` fits: builds the skorch net and its
    callbacks, then runs the training schedule (``warmup_epochs``,
    ``goal_phase_acceptance``, ``goal_phase_lr``, ``goal_phase_params``,
    ``goal_phase_validation``); needs the scaling mixin's ``_fit_scales``,
    ``_scaled_dict``, ``_make_calibrator``, ``_forward_scaled``,
    ``_goal_of`` and ``_revenue_shift``."""

    # paired bootstrap resamples of the validation users behind goal_phase_acceptance
    _goal_bootstrap_samples = 50
    # the skorch net class (subclasses may swap the goal, e.g. benchmarks/goal_ceiling.py)
    _net_class = BudgetNet

    def _extra_callbacks(self):
        """More ``(name, callback)`` pairs for the skorch net (none; a subclass hook).

        They run right after the goal multiplier's, before the validation
        scoring and early stopping, so their ``on_epoch_end`` sees every epoch.
        """
        return []

    def _goal_phase_wins(self, phase1_pred, x_valid, valid_rct, seed, crossfit=None):
        """Paired bootstrap of (phase-2 goal - phase-1 goal) on the validation users.

        ``phase1_pred`` are phase 1's validation predictions; phase 2's come
        from the current network, or with ``crossfit`` (the ``CrossFit``
        record of ``goal_phase_validation="crossfit"``) from the epoch each
        half picked, judged on the other half.
        """
        if crossfit is None:
            folds = [(self._forward_scaled(x_valid), phase1_pred, valid_rct)]
        else:
            folds = crossfit.folds(self, phase1_pred, x_valid, valid_rct)
        diffs = paired_bootstrap_differences(
            lambda pred, rct: self._goal_of(pred, rct, self.budget),
            folds, self._goal_bootstrap_samples, seed)
        self.goal_phase_win_rate_ = float(np.mean(diffs > 0)) if len(diffs) else 0.0
        self.goal_phase_mean_gain_ = float(np.mean(diffs)) if len(diffs) else None
        return bool(len(diffs) and diffs.mean() > 0
                    and self.goal_phase_win_rate_ >= self.goal_phase_acceptance)

    def _keep_goal_phase(self, phase2_goals, phase1_goal, phase1_pred, x_valid, valid_rct,
                         seed, crossfit=None):
        """Whether phase 2's restored best epoch replaces phase 1 (the gate).

        Its best validation goal must beat phase 1's on the picking users, and
        then win the paired bootstrap on the judging ones (with ``crossfit``:
        each half's pick judged on the other half); sets
        ``goal_phase_win_rate_``.
        """
        self.goal_phase_mean_gain_ = None
        if not len(phase2_goals) or float(np.max(phase2_goals)) <= phase1_goal:
            self.goal_phase_win_rate_ = 0.0
            return False
        # the best goal epoch is restored: is its lead more than noise?
        return self._goal_phase_wins(phase1_pred, x_valid, valid_rct, seed, crossfit)

    def _validation_goal(self, goal_users):
        """The ``valid_goal`` scoring: EOM revenue at the budget on ``goal_users``
        (with ``goal_phase_validation="crossfit"`` in phase 2, each half's too)."""
        predictions = self._forward_scaled(goal_users["x"])
        crossfit = goal_users.get("crossfit")
        if crossfit is not None:
            crossfit.record(self, self.net_, predictions)
        return self._goal_of(predictions, goal_users["rct"], self.budget)

    def _goal_selects_epochs(self):
        """Whether early stopping (from the first epoch) monitors the validation goal: a
        fixed warm-up with the goal (``reg_weight=0`` trains, and is judged by, the loss)."""
        return self.warmup_epochs != "auto" and self.reg_weight > 0

    def _two_phase(self):
        return (self.warmup_epochs == "auto" and self.early_stopping and self.reg_weight > 0)

    def _fixed_warmup(self):
        if self.warmup_epochs != "auto":
            return self.warmup_epochs
        # two phases: the goal stays off until phase 2 sets the warm-up
        return np.iinfo(np.int32).max if self._two_phase() else 5

    def _fit_two_phases(self, train_dict, goal_users, seed):
        """Phase 1: prediction loss to early stopping; phase 2: fine-tune with the goal.

        ``goal_users`` (dict with the scaled validation features ``"x"`` and
        their ``"rct"``) is what the ``valid_goal`` scoring reads; with
        ``goal_phase_validation="split"`` phase 2 narrows it to one half of
        the validation users, which picks phase 2's best epoch, and the gate
        judges that epoch on the other half (no winner's curse from picking
        and judging on the same users); with ``"crossfit"`` the validation
        goal stays on all validation users and each half's best epoch is
        judged on the other half.
        """
        net = self.net_
        net.partial_fit(train_dict, None)  # early stopping restores the best epoch
        self._check_converged(train_dict["x"])
        phase1_epochs = len(net.history)
        phase1_best = self._restored_epoch()
        phase1_state = copy.deepcopy(net.module_.state_dict())
        x_valid, valid_rct = goal_users["x"], goal_users["rct"]
        phase1_pred = self._forward_scaled(x_valid)
        crossfit = None
        if self.goal_phase_validation == "split":
            pick, judge = _halves(valid_rct, seed)
            goal_users["x"], goal_users["rct"] = x_valid[pick], valid_rct.subset(pick)
            phase1_goal = self._goal_of([p[pick] for p in phase1_pred], goal_users["rct"],
                                        self.budget)
            x_valid, valid_rct = x_valid[judge], valid_rct.subset(judge)
            phase1_pred = [p[judge] for p in phase1_pred]
        else:
            if self.goal_phase_validation == "crossfit":
                crossfit = CrossFit(_halves(valid_rct, seed, "crossfit"), valid_rct)
                goal_users["crossfit"] = crossfit
            # the deployed phase-1 network is the epoch early stopping restored
            phase1_goal = float(net.history[phase1_best - 1, "valid_goal"])
        net.warmup_epochs = phase1_epochs  # goal active from the next epoch on
        goal_lr = self.lr / 10 if self.goal_phase_lr is None else self.goal_phase_lr
        if self.verbose:
            size = self.goal_phase_epoch_size
            print(f"Phase 1 (prediction loss) ended after {phase1_epochs} epochs. Goal phase: "
                  f"lr {goal_lr:g}, epochs of "
                  + ("all" if size is None else f"at most {size}") + " training users, "
                  "the goal measured on "
                  + (f"{min(self.goal_batch_size_, len(train_dict))} of them per step"
                     if self.goal_batch_size_ else "each training batch")
                  + ("" if self.goal_phase_averaging is None else
                     f", weights averaged ({self.goal_phase_averaging})") + "; "
                  "phase 1's validation goal "
                  + ("on the picking half " if self.goal_phase_validation == "split" else "")
                  + f"{phase1_goal:.4g}.", flush=True)
        for group in net.optimizer_.param_groups:
            # initial_lr: where a user's LR schedule restarts in phase 2
            group["lr"] = group["initial_lr"] = goal_lr
        restart_lr_schedules(net)
        stopper = dict(net.callbacks_)["early_stopping"]
        stopper.monitor, stopper.lower_is_better = "valid_goal", False
        frozen = _freeze_for_goal_phase(net.module_, self.goal_phase_params)
        # a goal epoch is a fixed number of steps whatever the data size
        net.epoch_size = self.goal_phase_epoch_size
        try:
            net.partial_fit(train_dict, None)  # EarlyStopping resets on train begin
        finally:
            net.epoch_size = None
            for param in frozen:
                param.requires_grad_(True)
        phase2 = net.history[phase1_epochs:, "valid_goal"]
        picked = self._restored_epoch()
        kept = self._keep_goal_phase(phase2, phase1_goal, phase1_pred, x_valid, valid_rct,
                                     seed, crossfit=crossfit)
        goal_users.pop("crossfit", None)
        if not kept:
            net.module_.load_state_dict(phase1_state)
        if np.isneginf(np.asarray(phase2, dtype=np.float64)).any():
            warn(f"The goal phase diverged (the network's outputs became NaN or infinite "
                 f"at lr {goal_lr:g}); those epochs were not picked"
                 + ("" if kept else " and phase 1's network is deployed")
                 + ". Lower goal_phase_lr.", UserWarning)
        if self.verbose:
            best = float(np.max(phase2)) if len(phase2) else float("nan")
            gain = self.goal_phase_mean_gain_
            print(f"Goal phase {'kept' if kept else 'rejected (phase 1 deployed)'}: best "
                  f"validation goal {best:.4g} vs {phase1_goal:.4g}, bootstrap win rate "
                  f"{self.goal_phase_win_rate_:.2f} (needs {self.goal_phase_acceptance:g})"
                  + ("" if gain is None else f", mean gain {gain:.4g} (needs > 0)") + ".",
                  flush=True)
        self.warmup_epochs_ = phase1_epochs
        self.goal_phase_kept_ = kept
        self.phase1_best_epoch_ = phase1_best
        self.goal_phase_best_epoch_ = picked
        self.best_epoch_ = picked if kept else phase1_best

    def _check_converged(self, x_train, max_rows=4096):
        """Raise when the trained network's outputs are not finite (training diverged);
        warn when the losses diverged after the epoch early stopping restored."""
        if not _finite(*self._forward_scaled(x_train[:max_rows])):
            raise ValueError(
                f"Training diverged: the network's outputs are NaN or infinite after "
                f"{len(self.net_.history)} epoch(s) (optimizer={self.optimizer!r}, "
                f"lr={self.lr:g}). Lower lr" + ("" if self.optimizer == "adam" else
                                                ", or use optimizer='adam'") + "."
            )
        history = self.net_.history
        losses = np.array([[row.get(key, 0.0) for key in ("train_loss", "valid_loss")]
                           for row in history], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(losses).all(axis=1))
        if len(bad):
            epoch = self._restored_epoch()
            how = ("restored by early stopping" if epoch < len(history)
                   else "the last, whose outputs are finite")
            warn(f"Training diverged at epoch {bad[0] + 1} of {len(history)} (the loss became "
                 f"NaN or infinite; optimizer={self.optimizer!r}, lr={self.lr:g}); the "
                 f"network of epoch {epoch} ({how}) is deployed. Lower lr"
                 + ("" if self.optimizer == "adam" else ", or use optimizer='adam'") + ".",
                 UserWarning)

    def _restored_epoch(self):
        """Epoch (numbered as in ``net_.history``) whose weights the network has now.

        Early stopping restores its best epoch, which is not always the
        argmin of the validation loss: skorch counts an improvement only
        beyond a relative threshold (1e-4).
        """
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        if stopper is None or not getattr(stopper, "best_epoch_", 0):
            return len(self.net_.history)
        return int(stopper.best_epoch_)

    def _strip_training_state(self):
        """Drop what only training needs (closures over the data, goal tensors, RNG).

        Keeps the fitted estimator small and picklable (``joblib.dump``); the
        history (losses, goals, multipliers) stays in ``net_.history``.
        """
        net = self.net_
        net.callbacks = []
        net.callbacks_ = []
        net.train_split = None
        net.goal_data_ = None
        net.generator_ = None
        net.sampler_generator_ = None

    def _fit_uplift(self, X, rct, validation=None):
        # the fit seeds torch's global generator (weight initialisation, shuffling); fork
        # it so that the caller's torch random state is left as it was, and hold it so
        # that a fit in another thread cannot draw from it meanwhile
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with (TORCH_GLOBAL_STATE, torch_threads(self.n_threads),
              torch.random.fork_rng(devices=devices)):
            return self._fit_network(X, rct, validation)

    def _fit_network(self, X, rct, validation):
        device = resolve_device(self.device)  # checked at the start of fit
        self.monotone_cost_, cost_order = resolve_monotone_cost(self.monotone_cost, rct)
        self.cost_order_ = (None if self.monotone_cost_ in (False, "nonnegative") else
                            self.levels_ if cost_order is None else self.levels_[cost_order])
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        torch.manual_seed(seed)
        X = np.asarray(X, dtype=np.float64)
        self._fit_scales(X, rct)

        callbacks = []
        if self.goal_phase_averaging is not None:
            callbacks.append(("goal_phase_averaging",
                              GoalPhaseAveraging(self.goal_phase_averaging)))
        callbacks += [("goal_multiplier", GoalMultiplier(self._make_calibrator(X, rct, rng)))]
        # before the validation scoring and early stopping, so they see every epoch
        # (EarlyStopping ends training from its on_epoch_end, skipping later callbacks)
        callbacks += self._extra_callbacks()
        train_split = None
        idx_train = np.arange(len(X))
        if self.early_stopping:
            if validation is not None:
                x_valid, valid_rct = np.asarray(validation[0], dtype=np.float64), validation[1]
            else:
                try:
                    idx_train, idx_valid = train_test_split(
                        idx_train, test_size=self.validation_fraction, stratify=rct.arm,
                        random_state=rng.randint(np.iinfo(np.int32).max))
                    check_both_sides(rct, fitting=idx_train, validation=idx_valid)
                except ValueError as exc:
                    raise ValueError(
                        f"Cannot hold out validation_fraction={self.validation_fraction} of "
                        f"the {len(X)} fitting users with every arm on both sides "
                        f"({exc}). Use more data, a larger validation_fraction, or "
                        "early_stopping=False.") from exc
                valid_rct, x_valid = rct.subset(idx_valid), X[idx_valid]
            valid_dict = self._scaled_dict(x_valid, valid_rct)
            train_split = predefined_split(Dataset(valid_dict))
            # the users the validation goal is measured on (phase 2 may narrow them)
            goal_users = {"x": valid_dict["x"], "rct": valid_rct}
            if self._two_phase() and self.goal_phase_validation != "shared":
                check_halves(valid_rct, self.goal_phase_validation)  # now, not after phase 1
            callbacks.append(("valid_goal", EpochScoring(
                lambda net, X_, y_: self._validation_goal(goal_users),
                lower_is_better=False, name="valid_goal", use_caching=False)))
        # the user's (LR schedules, checkpoints, ...): after the validation scores they
        # may monitor, before early stopping, which ends the last epoch early
        callbacks += self._user_callbacks()
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_goal" if self._goal_selects_epochs() else "valid_loss",
                lower_is_better=not self._goal_selects_epochs(),
                patience=self.patience, load_best=True, sink=lambda *a: None)))
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        train_dict = self._scaled_dict(X[idx_train], rct.subset(idx_train))
        self.goal_batch_size_ = goal_batch_size_for(self.goal_batch_size, len(idx_train))
        self.net_ = self._net_class(
            UpliftNetwork,
            module__n_features=X.shape[1],
            module__n_arms=self.n_levels_ + 1,
            module__hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            module__monotone_cost=self.monotone_cost_,
            module__cost_order=cost_order,
            criterion=torch.nn.MSELoss,  # unused: BudgetNet.get_loss builds the loss
            optimizer=OPTIMIZERS[self.optimizer],
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train__shuffle=True,
            device=device,
            verbose=self.verbose,
            reg_weight=self.reg_weight,
            gradient_estimator=self.gradient_estimator,
            n_perturbations=self.n_perturbations,
            perturbation_scale=self.perturbation_scale,
            temperature=self.temperature,
            loss_type=self.loss,
            cost_loss_type=self.cost_loss,
            warmup_epochs=self._fixed_warmup(),
            goal_multipliers=tuple(self.goal_multipliers),
            goal_batch_size=self.goal_batch_size_,
            goal_form=self.goal_form,
            goal_estimate=self.goal_estimate,
            budget=self.budget / self.cost_scale_,
            overspend_penalty=self.overspend_penalty,
            seed=seed,
        )
        self.net_.initialize()
        if self.goal_batch_size_:
            self.net_.goal_data_ = {k: torch.as_tensor(v, device=self.net_.device)
                                    for k, v in train_dict.items()}
        if self._two_phase():
            self._fit_two_phases(train_dict, goal_users, seed)
        else:
            self.net_.partial_fit(train_dict, None)
            self.warmup_epochs_ = min(self._fixed_warmup(), len(self.net_.history))
            self.goal_phase_kept_ = None
            self.phase1_best_epoch_ = None
            self.goal_phase_best_epoch_ = None
            self.best_epoch_ = self._restored_epoch()
            self.goal_phase_win_rate_ = self.goal_phase_mean_gain_ = None
            self._check_converged(train_dict["x"])  # (two phases: checked after phase 1)
            epochs, warmup = len(self.net_.history), self._fixed_warmup()
            if self.reg_weight > 0 and epochs <= warmup < self.max_epochs:
                warn(f"Early stopping ended training after {epochs} epoch(s), inside the "
                     f"{warmup}-epoch warm-up: the goal never switched on, so the deployed "
                     "network learnt the prediction loss only (its epoch picked by the "
                     "validation goal). Use patience > warmup_epochs, or "
                     "warmup_epochs='auto'.", UserWarning)
        self.revenue_shift_ = self._revenue_shift(X, rct) if self.center_uplift else \
            np.zeros(self.n_levels_)
        self._strip_training_state()
        return self
