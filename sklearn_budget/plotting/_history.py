"""TrainingHistoryDisplay: the training curves of an end-to-end allocator."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import _import_pyplot, _series

__all__ = ["TrainingHistoryDisplay"]


def _history_column(history, key):
    return np.array([row.get(key, np.nan) for row in history], dtype=np.float64)


def _check_restored(restored_epochs, epochs):
    """``restored_epochs``: None, or two epoch numbers of ``epochs`` (or None each)."""
    if restored_epochs is None:
        return None
    if isinstance(restored_epochs, (str, bytes)) or not hasattr(restored_epochs, "__len__") or (
            len(restored_epochs) != 2):
        raise TypeError("`restored_epochs` must be None or two epoch numbers (phase 1, goal "
                        f"phase), each None for no circle; got {restored_epochs!r:.80}.")
    for epoch in restored_epochs:
        if epoch is None:
            continue
        if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)):
            raise TypeError(f"`restored_epochs` holds {epoch!r:.80}; give epoch numbers "
                            "(integers) or None.")
        if epoch not in set(int(e) for e in epochs):
            raise ValueError(
                f"restored epoch {epoch} is not among the plotted epochs "
                f"({int(epochs[0])}..{int(epochs[-1])}); pass epoch numbers "
                "from `epochs`, or None for no circle.")
    return tuple(restored_epochs)


class TrainingHistoryDisplay:
    """Training curves of a fitted end-to-end allocator, phase by phase.

    Left panel: training loss (``L_pred - reg_weight * goal`` once the goal is
    on) and validation prediction loss per epoch; right panel: the validation
    goal (EOM incremental revenue at the budget on the held-out RCT users). A
    dashed line marks where the goal was switched on (phase 2 of
    ``warmup_epochs="auto"``), and circles the epochs the schedule restores:
    phase 1's best validation loss and phase 2's best validation goal. The
    title says whether the goal phase was kept. Build it with
    :meth:`from_estimator`.

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers (skorch's, from 1).
    train_loss, valid_loss, valid_goal : ndarray of shape (n_epochs,)
        Per-epoch values; NaN where not recorded (no validation data).
    goal_on : int or None, default=None
        Epochs trained before the goal was switched on; None (or at least
        ``n_epochs``): the goal was never on.
    goal_phase_kept : bool or None, default=None
        Whether the goal phase replaced phase 1 (``goal_phase_kept_``).
    split_validation : bool, default=False
        Phase 2's validation goal was measured on half of the validation
        users (``goal_phase_validation="split"``), so its level is not
        comparable with phase 1's; noted in the panel.
    name : str, default=None
        Title prefix (e.g. the estimator's class name).
    restored_epochs : tuple of two (int or None), or None, default=None
        Epoch numbers early stopping restored in phase 1 (circled on the loss
        panel) and in the goal phase (on the goal panel); None in either
        place: no circle there. None (the default): circle each phase's best
        validation loss / goal.
    half_goals : tuple of two ndarray of shape (n_epochs,) or None, default=None
        The goal phase's validation goal on each half of the validation users
        (``goal_phase_validation="crossfit"``: the gate judges each half's
        best epoch on the other half); drawn as thin lines, NaN where not
        recorded.

    Attributes
    ----------
    lines_ : dict of matplotlib Line2D
        ``"train_loss"``, ``"valid_loss"`` and ``"valid_goal"`` (those
        recorded), and ``"valid_goal_half1"`` / ``"valid_goal_half2"`` with
        ``half_goals``.
    goal_on_lines_ : list of matplotlib Line2D
        The "goal on" markers, one per panel (empty when the goal was never on).
    restored_markers_ : list of matplotlib Line2D
        Circles at the epochs early stopping restored.
    axes_ : ndarray of two matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_budget import EndToEndBudgetAllocator, rct_target
    >>> from sklearn_budget.datasets import make_marketing_rct
    >>> from sklearn_budget.plotting import TrainingHistoryDisplay
    >>> d = make_marketing_rct(n_samples=3000, random_state=0)
    >>> est = EndToEndBudgetAllocator(budget=1.0, max_epochs=3, random_state=0)
    >>> est = est.fit(d.X, rct_target(d.treatment, d.revenue, d.cost))
    >>> disp = TrainingHistoryDisplay.from_estimator(est)
    >>> sorted(disp.lines_)
    ['train_loss', 'valid_goal', 'valid_goal_half1', 'valid_goal_half2', 'valid_loss']
    """

    def __init__(self, epochs, train_loss, valid_loss, valid_goal, *, goal_on=None,
                 goal_phase_kept=None, split_validation=False, name=None,
                 restored_epochs=None, half_goals=None):
        self.epochs, self.train_loss, self.valid_loss, self.valid_goal = _series(
            "TrainingHistoryDisplay", epochs=epochs, train_loss=train_loss,
            valid_loss=valid_loss, valid_goal=valid_goal)
        if goal_on is not None and (isinstance(goal_on, (bool, np.bool_)) or not isinstance(
                goal_on, (int, np.integer)) or not 0 <= goal_on <= len(self.epochs)):
            raise ValueError(
                f"`goal_on` must be None or the index (0..{len(self.epochs)}) of the first "
                f"epoch with the goal; got {goal_on!r:.80}.")
        if goal_phase_kept is not None and not isinstance(goal_phase_kept, (bool, np.bool_)):
            raise TypeError(f"`goal_phase_kept` must be True, False or None; got "
                            f"{goal_phase_kept!r:.80}.")
        self.goal_on = goal_on
        self.goal_phase_kept = goal_phase_kept
        self.split_validation = split_validation
        self.name = name
        self.restored_epochs = _check_restored(restored_epochs, self.epochs)
        if half_goals is not None:  # checked here: a bad one failed half-way through plot
            if len(half_goals) != 2:
                raise ValueError("`half_goals` must be two series (the validation goal on "
                                 f"each half) or None; got {len(half_goals)}.")
            half_goals = tuple(_series("TrainingHistoryDisplay", epochs=self.epochs,
                                       half_goal=h)[1] for h in half_goals)
        self.half_goals = half_goals

    def _restored_epochs(self):
        """(index, panel) of the epochs the schedule restores."""
        n, on = len(self.epochs), self.goal_on
        goal_seen = on is not None and on < n
        if self.restored_epochs is None:  # each phase's best validation value
            out = []
            phase1 = self.valid_loss[:n if on is None else min(on, n)]
            if np.isfinite(phase1).any():
                out.append((int(np.nanargmin(phase1)), 0))
            if goal_seen and np.isfinite(self.valid_goal[on:]).any():
                out.append((on + int(np.nanargmax(self.valid_goal[on:])), 1))
            return out
        index = {int(e): i for i, e in enumerate(self.epochs)}
        return [(index[int(epoch)], panel) for panel, epoch in enumerate(self.restored_epochs)
                if epoch is not None and (panel == 0 or goal_seen)]

    def plot(self, axes=None):
        """Draw both panels.

        Parameters
        ----------
        axes : sequence of two matplotlib Axes, default=None
            Loss panel and goal panel; None makes a new figure.

        Returns
        -------
        display : TrainingHistoryDisplay
        """
        plt = _import_pyplot()
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes = np.asarray(axes, dtype=object).ravel()
        if len(axes) != 2:
            raise ValueError(
                f"`axes` must hold two matplotlib Axes (loss panel, goal panel); got "
                f"{len(axes)}. Use e.g. `fig, axes = plt.subplots(1, 2)`.")
        ax_loss, ax_goal = axes
        self.lines_ = {}
        goal_seen = self.goal_on is not None and self.goal_on < len(self.epochs)
        train_label = "training loss (minus the goal term once on)" if goal_seen else \
            "training loss"
        for key, ax, label in [("train_loss", ax_loss, train_label),
                               ("valid_loss", ax_loss, "validation loss"),
                               ("valid_goal", ax_goal, "validation goal")]:
            values = getattr(self, key)
            if np.isfinite(values).any():
                (self.lines_[key],) = ax.plot(self.epochs, values, marker=".", label=label)
        for i, values in enumerate(self.half_goals or ()):
            if np.isfinite(values).any():
                (self.lines_[f"valid_goal_half{i + 1}"],) = ax_goal.plot(
                    self.epochs, values, linewidth=0.8, alpha=0.6,
                    label=f"validation goal, half {i + 1} (gate)")
        self.goal_on_lines_ = []
        if goal_seen:
            x = self.epochs[self.goal_on] - 0.5
            self.goal_on_lines_ = [ax.axvline(x, color="gray", linestyle="--",
                                              label="goal switched on") for ax in axes]
        self.restored_markers_ = []
        for i, panel in self._restored_epochs():
            values = self.valid_loss if panel == 0 else self.valid_goal
            label = "epoch restored by early stopping"
            (marker,) = axes[panel].plot([self.epochs[i]], [values[i]], marker="o",
                                         markersize=9, markerfacecolor="none",
                                         color="black", linestyle="none", label=label)
            self.restored_markers_.append(marker)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("prediction loss (scaled outcomes)")
        ax_goal.set_xlabel("epoch")
        ax_goal.set_ylabel("validation EOM revenue per user at the budget")
        if self.split_validation and goal_seen:
            ax_goal.text(0.02, 0.02, "goal phase measured on the picking half",
                         transform=ax_goal.transAxes, fontsize="small", color="gray")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize="small")
        status = {True: "goal phase kept", False: "goal phase rejected (phase 1 deployed)",
                  None: ""}[self.goal_phase_kept]
        title = ": ".join(part for part in (self.name, status) if part)
        if title:
            ax_loss.figure.suptitle(title)
        self.axes_ = axes
        self.figure_ = ax_loss.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, axes=None, name=None):
        """Plot the training history of a fitted end-to-end allocator.

        Parameters
        ----------
        estimator : EndToEndBudgetAllocator
            Fitted; its ``net_.history`` (skorch) is read.
        axes : sequence of two matplotlib Axes, default=None
            See :meth:`plot`.
        name : str, default=None
            Title prefix; None uses the estimator's class name.

        Returns
        -------
        display : TrainingHistoryDisplay
        """
        if not hasattr(estimator, "net_"):
            check_is_fitted(estimator)  # an unfitted estimator says so first
            raise TypeError(
                f"TrainingHistoryDisplay shows a skorch training history, and "
                f"{type(estimator).__name__} has none (no `net_`); pass a fitted "
                "EndToEndBudgetAllocator (the last step of a pipeline: `pipe[-1]`).")
        history = getattr(estimator.net_, "history", None)
        if history is None or not len(history):
            raise ValueError(
                f"{type(estimator).__name__} has no training history (net_.history); "
                "TrainingHistoryDisplay needs a fitted EndToEndBudgetAllocator.")
        n = len(history)
        goal_on = getattr(estimator, "warmup_epochs_", None)
        if not getattr(estimator, "reg_weight", 1.0) or (goal_on is not None and goal_on >= n):
            goal_on = None
        kept = getattr(estimator, "goal_phase_kept_", None)
        split = kept is not None and getattr(estimator, "goal_phase_validation", "") == "split"
        # epochs early stopping restored: phase 1's and the goal phase's
        restored = (getattr(estimator, "phase1_best_epoch_", None),
                    getattr(estimator, "goal_phase_best_epoch_", None))
        best = getattr(estimator, "best_epoch_", None)
        if kept is None and best is not None:
            # one phase (reg_weight=0) or a fixed warm-up: one restored epoch, judged by
            # the validation loss without the goal, by the validation goal with it
            restored = (best, None) if goal_on is None else (None, best)
        if not getattr(estimator, "early_stopping", True):  # the last epoch, none restored
            restored = (None, None)
        halves = None
        if any("valid_goal_half1" in row for row in history):
            halves = tuple(_history_column(history, f"valid_goal_half{i}") for i in (1, 2))
        return cls(_history_column(history, "epoch"), _history_column(history, "train_loss"),
                   _history_column(history, "valid_loss"),
                   _history_column(history, "valid_goal"), goal_on=goal_on,
                   goal_phase_kept=kept, split_validation=split,
                   name=type(estimator).__name__ if name is None else name,
                   restored_epochs=restored, half_goals=halves).plot(axes=axes)
