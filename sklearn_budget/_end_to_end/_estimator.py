"""EndToEndBudgetAllocator: the scikit-learn face of the end-to-end method."""

from __future__ import annotations

from .._base import BaseBudgetAllocator
from ._scaling import ScaledNetworkMixin
from ._setup import PARAMETER_CONSTRAINTS
from ._training import TrainingMixin

__all__ = ["EndToEndBudgetAllocator"]

class EndToEndBudgetAllocator(TrainingMixin, ScaledNetworkMixin, BaseBudgetAllocator):
    """Budget allocation learned end to end through the marketing goal.

    A torch network (shared trunk, per-arm revenue and cost heads) is trained
    with skorch on RCT data to minimise::

        loss = L_pred - reg_weight * G

    where ``L_pred`` fits each user's observed arm outcomes (scaled squared or
    Huber error) and ``G`` is the Lagrangian value of the budget allocation
    that the model's own predictions define, measured on the RCT batch
    (Yan et al. 2023). ``G`` is piecewise constant, so its gradient is
    estimated (``gradient_estimator``). ``reg_weight=0`` is the plain
    two-stage neural model.

    After training, the deployment multiplier is calibrated on a held-out RCT
    slice so that the EOM incremental cost meets ``budget``, exactly as in
    :class:`~sklearn_budget.TwoStageBudgetAllocator`.

    Parameters
    ----------
    budget : float, default=1.0
        Average incremental cost per user the allocation may spend.
    reg_weight : float, default=1.0
        Weight of the marketing goal in the loss (0 = prediction loss only).
    gradient_estimator : {"fd", "es", "softmax"}, default="fd"
        ``"fd"``: per-user finite differences (lowest variance); ``"es"``:
        Gaussian smoothing with antithetic pairs (the paper's family);
        ``"softmax"``: a differentiable relaxation of the argmax.
    n_perturbations : int, default=16
        Antithetic pairs per batch for ``"es"``.
    perturbation_scale : float, default=0.1
        ``"es"``: noise std relative to the scores' std. ``"fd"``: floor of
        the flip margin relative to the scores' std.
    temperature : float, default=0.3
        ``"softmax"``: temperature relative to the scores' std.
    goal_form : {"lagrangian", "penalty"}, default="lagrangian"
        ``"lagrangian"``: the goal is the RCT estimate of
        ``revenue - lam * cost`` of the policy ``argmax_k r_k - lam c_k``
        at the budget's multiplier ``lam`` (re-calibrated on the training
        RCT data every epoch); under-stating costs cannot raise it, because
        every unit of real cost is paid at ``lam``. ``"penalty"``: the
        revenue of the allocation that meets the budget on the batch's
        *predicted* costs, minus ``overspend_penalty * lam`` per unit of
        RCT-estimated overspend. See the README's benchmark for the
        measured comparison.
    goal_estimate : {"ipw", "dr"}, default="ipw"
        ``goal_form="lagrangian"``: how the policy's value is estimated on
        the RCT batch. ``"ipw"``: inverse propensity (only users whose
        random arm matches the policy count); ``"dr"``: doubly robust, the
        network's own (detached) predictions for every arm plus the matched
        users' weighted residuals, so every user and arm carries a signal.
        Measured (``benchmarks/bench_goal.py``, hard synthetic setting):
        ``"dr"`` beat the ablation on 4 of 4 tuning seeds but lost badly on
        2 of 3 report seeds, so it is not the default.
    overspend_penalty : float, default=2.0
        ``goal_form="penalty"`` only: price of a unit of overspend as a
        multiple of the budget's multiplier.
    goal_multipliers : tuple of float, default=(1.0,)
        ``goal_form="lagrangian"`` only: the goal is averaged over these
        multiples of the current multiplier (a schedule of prices around
        the budget's one).
    warmup_epochs : int or "auto", default="auto"
        Epochs of prediction loss only before the goal is switched on.
        ``"auto"`` (with ``early_stopping``): train in two phases. Phase 1
        is the ``reg_weight=0`` model, trained until the validation loss
        stops improving (early stopping, best epoch restored); phase 2
        fine-tunes it with the goal switched on (at most ``max_epochs``
        more epochs, early stopping on the validation goal) and is kept
        only if it beats phase 1's network on the validation goal (see
        ``goal_phase_kept_``). A fixed warm-up stops the
        regulariser's run early when its first epochs do not beat an
        under-trained warm-up epoch (measured on the hard synthetic
        setting: the deployed model was a warm-up epoch in half the seeds).
        Without early stopping ``"auto"`` means 5 epochs.
    goal_phase_acceptance : float in [0, 1], default=0.5
        ``warmup_epochs="auto"``: the goal phase is kept only if its best
        epoch beats phase 1 on the validation goal, on average and in at
        least this share of 50 paired bootstrap resamples of the validation
        users (0.5: it must lead in the majority). Higher is more
        conservative: on the tuning seeds 0.9 rejected one of the three goal
        phases that truly helped in the hard synthetic setting (one worth
        +23%); 0 keeps it whenever its best epoch leads on the validation
        data the pick is judged on and the mean of the bootstrap differences
        is positive.
    goal_phase_lr : float or None, default=None
        Learning rate of phase 2 (the fine-tuning with the goal) of
        ``warmup_epochs="auto"``; None means ``lr / 10``. Measured on the
        tuning seeds (hard setting, goal phase kept): fine-tuning at ``lr``
        lost 17% against the ablation, at ``lr / 10`` it gained 11%
        (``benchmarks/bench_goal.py``).
    goal_phase_params : {"all", "heads", "bias"}, default="all"
        Which parameters phase 2 of ``warmup_epochs="auto"`` fine-tunes with
        the goal: ``"all"``; ``"heads"``, only the revenue and cost output
        layers (the trunk keeps phase 1's features, so the goal re-weighs
        them instead of refitting them to the noisy per-user signal);
        ``"bias"``, only the output layers' per-arm offsets. Measured
        (``benchmarks/bench_goal.py``): ``"heads"`` was level with ``"all"``
        within noise on the tuning seeds and 0.7% / 3.1% behind it (default /
        hard setting) on the report seeds.
    goal_phase_validation : {"crossfit", "split", "shared"}, default="crossfit"
        How phase 2 of ``warmup_epochs="auto"`` uses the validation users to
        pick its epoch and to judge it against phase 1 (the gate).
        ``"crossfit"``: the epoch is picked on all validation users; the
        gate judges the pick of each half (stratified by arm) on the other
        half, so every validation user judges and none judges an epoch it
        picked (``valid_goal_half1`` / ``valid_goal_half2`` in
        ``net_.history``). The gate thus judges the halves' picks, which
        may differ from the deployed epoch (picked on all users): it judges
        the fine-tuning rather than one epoch. ``"split"``: picked on one
        half, judged on the other. ``"shared"``: both on all validation users (a winner's
        curse: the gate inherits the pick's luck). With ``"split"`` the
        ``valid_goal`` entries of phase 2's epochs in ``net_.history`` are
        measured on the picking half only. Measured
        (``benchmarks/goal_ceiling.py``, deployed gain over the same fit's
        phase-1 network, a 4,096-user goal batch; README, "What limits the
        goal phase"): with 200,000 users (6 seeds, budget 0.15) ``"crossfit"``
        +2.1% (kept 4/6) against ``"split"``'s +0.3% (1/6); with 20,000 users
        it also kept two hard-setting fine-tunes that lost (-2.1%, -6.7%).
    goal_phase_epoch_size : int or None, default=8192
        Training users drawn at random (without replacement) for each epoch
        of phase 2 of ``warmup_epochs="auto"``, so that a goal epoch (the
        unit of the multiplier's re-calibration, of validation and of
        ``patience``) is a fixed number of steps at ``goal_phase_lr``
        whatever the data size; with fewer training users every epoch uses
        them all. None: full passes. Measured with 200,000 synthetic users
        (``benchmarks/goal_ceiling.py``, 6 tuning seeds): with full passes the
        epoch the validation goal picked averaged -0.7% / -0.5% against the
        ablation (default / hard setting), with 8,192-user epochs +1.0% / +5.3%.
    goal_phase_averaging : float in (0, 1), "uniform" or None, default=None
        Average the weights over the steps of phase 2 of
        ``warmup_epochs="auto"`` (``torch.optim.swa_utils.AveragedModel``): a
        float is the per-step decay of an exponential moving average,
        ``"uniform"`` the running mean since phase 2 began (stochastic weight
        averaging); the average is validated (``valid_goal``), judged and
        deployed, training goes on from the raw weights (the history's
        ``valid_loss`` is theirs: skorch records it before the epoch's end,
        where the average is taken). With a fixed ``warmup_epochs`` it
        averages over every step with the goal on. None: no averaging. Off by
        default: on fresh seeds 0.97 did not beat it (README, "What limits the
        goal phase").
    center_uplift : bool, default=False
        After training, shift each level's revenue uplift so that its mean
        over the training users is the RCT's difference in means (``revenue_shift_``).
    goal_batch_size : int, "auto" or None, default="auto"
        The goal is measured on a separate random batch of this many training
        samples each step, drawn with replacement (as many draws as there
        are fitting users when fewer): an EOM over the 512 users
        of a prediction batch is mostly noise. ``"auto"``: a quarter of the
        fitting users, at least 4,096 and at most 32,768 (``goal_batch_size_``;
        4,096 below 16,388 fitting users, i.e. below about 23,400 users passed
        to ``fit`` with the default ``calibration_size``). None uses the
        training batch. The rule was chosen on tuning seeds with 35,000 to
        140,000 fitting users and checked on fresh ones (README, "What limits
        the goal phase": the deployed gain over the ``reg_weight=0`` ablation
        per batch size); a larger batch costs little time (fits about 10%
        longer at 70,000 users).
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the shared trunk's hidden layers (ReLU); the per-arm revenue
        and cost heads sit on the last one.
    monotone_cost : "auto", "nonnegative" or bool, default="auto"
        Cost uplift non-negative and non-decreasing along the levels by
        construction. The order (``cost_order_``): numeric levels in their
        order (a warning says when the RCT's mean cost falls between two of
        them); text labels (sorted, "15off" precedes "5off") with ``"auto"``
        in the order of their mean observed cost uplift, with True sorted
        (it warns). ``"nonnegative"``: cost uplift non-negative, in no order,
        for arms that are not levels of one incentive (e.g. different
        e-mails). False: no constraint on the uplift (each arm's cost >= 0).
    loss : {"huber", "mse"}, default="huber"
        Prediction loss of the revenue, on outcomes scaled to unit standard
        deviation (Huber with threshold 1, or squared error). Huber was chosen on
        training data only: on Hillstrom's training halves (3-fold CV) it
        won 3 of 3 seeds, and on the synthetic tuning seeds it raised the
        value at equal spend by 0.9% (default setting) and 6% (hard).
    cost_loss : {"mse", "huber"}, default="mse"
        Prediction loss of the costs (``loss`` is the revenue's). The budget
        is a mean, so the costs are fitted by squared error: Huber fits a
        robust centre, below the mean of right-skewed costs, so predicted
        costs ran low (``calibration="predicted"`` overspent) and the
        cost-benefit trade-off was off. Measured on the synthetic tuning
        seeds 10-17 (``reg_weight=0``, value at equal true spend): squared
        error for costs +2.2% (default setting) and +3.9% (hard) over Huber.
        On Hillstrom's contact budget (a fixed cost per e-mail) Huber did
        better in cross-validation on the training data (0.381 vs 0.308 $
        per user); compare both with ``GridSearchCV`` when costs are fixed.
    lr : float, default=1e-3
        Learning rate of the optimizer (phase 2 of ``warmup_epochs="auto"``
        runs at ``goal_phase_lr``).
    batch_size : int, default=512
        Training users per step of the prediction loss (the goal has its own
        ``goal_batch_size``).
    max_epochs : int, default=30
        Most epochs of training (with ``warmup_epochs="auto"``, of each
        phase); early stopping usually ends it sooner.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        torch optimizer: ``torch.optim.Adam``, ``AdamW`` or ``SGD``, with
        torch's other defaults (``SGD`` without momentum).
    weight_decay : float, default=1e-4
        L2 penalty of the optimizer (decoupled with ``"adamw"``).
    early_stopping : bool, default=True
        Stop after ``patience`` epochs without improvement on held-out RCT
        data and keep the best epoch. Epochs that train the prediction loss
        only (``reg_weight=0``, phase 1 of ``warmup_epochs="auto"``) are
        judged by the validation prediction loss; epochs with the goal by
        the validation goal (EOM incremental revenue at the budget), and
        the goal phase is kept only if it beats the prediction-only model on
        that goal. (Selecting prediction-only epochs by the noisy validation
        goal stopped training after a few epochs with cost predictions still
        ~30% low.) With a fixed ``warmup_epochs`` and ``reg_weight > 0`` every
        epoch is judged by the validation goal. With ``calibration="holdout"``
        (or ``"holdout-dr"``) the validation data is the calibration slice
        (both choices are made on the same held-out users, so no training data
        is lost to a second split; an EOM on ~1000 users is too noisy to
        select epochs); with
        ``calibration="predicted"`` it is ``validation_fraction`` of the
        training data.
    validation_fraction : float, default=0.15
        Used only with ``calibration="predicted"`` (see ``early_stopping``).
    patience : int, default=8
        Epochs without improvement on the validation data before early
        stopping ends training (with ``warmup_epochs="auto"``, each phase).
    callbacks : list, tuple or None, default=None
        More skorch callbacks for the net, as instances or ``(name,
        callback)`` pairs, e.g. an LR schedule
        (``skorch.callbacks.LRScheduler(policy="CosineAnnealingLR",
        T_max=30)``) or checkpoints (``skorch.callbacks.Checkpoint(
        dirname=...)``, by default when ``valid_loss`` improves). Each fit
        uses fresh clones of them. They run after the validation scores
        (``valid_loss``, ``valid_goal``), before early stopping. With
        ``warmup_epochs="auto"`` an ``LRScheduler`` restarts in the goal
        phase: from its first epoch, at ``goal_phase_lr`` (unless it was
        given ``last_epoch``); schedules of absolute rates (``CyclicLR``,
        ``OneCycleLR``) set their own there too.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else CPU.
    n_threads : int or None, default=None
        torch CPU threads during ``fit`` (restored afterwards); None keeps
        torch's setting. Use 1 when fits share a few cores (``GridSearchCV(
        n_jobs=2)``): oversubscribed, a 4-second fit took over a minute on 2
        cores. Fits in threads of one process take turns (torch's generator is
        process-wide); in processes, GridSearchCV's default, they overlap.
    control_name : hashable, default=0
    calibration : {"holdout", "holdout-dr", "predicted"}, default="holdout"
        See :class:`TwoStageBudgetAllocator`.
    calibration_size : float or int, default=0.3
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        1 prints skorch's epoch table (losses, goals, duration) and, with
        ``warmup_epochs="auto"``, where phase 1 ended and whether the goal
        phase was kept (validation goals, win rate); 2 adds a progress bar.

    Attributes
    ----------
    net_ : BudgetNet
        The fitted skorch net (``net_.history`` has losses and goals).
    levels_ : ndarray
        Non-control treatment labels (column order of ``predict``).
    multiplier_ : float
        Calibrated deployment multiplier.
    warmup_epochs_ : int
        Epochs trained before the goal was switched on (phase 1 with
        ``warmup_epochs="auto"``). With ``reg_weight=0`` the goal is never
        on; this is then the warm-up it would have had (``"auto"``: the
        smaller of 5 and the epochs trained).
    goal_phase_kept_ : bool or None
        With ``warmup_epochs="auto"``: whether the fine-tuning with the goal
        beat the ``reg_weight=0`` phase on the validation goal (False: the
        deployed network is phase 1's); see ``goal_phase_acceptance``. None
        when there is no goal phase to judge: a fixed warm-up,
        ``reg_weight=0`` or ``early_stopping=False`` (so are
        ``phase1_best_epoch_``, ``goal_phase_best_epoch_``,
        ``goal_phase_win_rate_`` and ``goal_phase_mean_gain_``).
    best_epoch_ : int
        The epoch (numbered as in ``net_.history``, from 1) whose weights
        the deployed network has: the one early stopping restored (phase 1's
        when the goal phase was rejected), or the last without early stopping.
    phase1_best_epoch_ : int or None
        With ``warmup_epochs="auto"``: the epoch phase 1 restored (the
        ``reg_weight=0`` network the goal phase starts from and is judged
        against); None for a fixed warm-up.
    goal_phase_best_epoch_ : int or None
        With ``warmup_epochs="auto"``: the goal phase's epoch restored by
        early stopping on the validation goal (deployed if ``goal_phase_kept_``).
        With ``"crossfit"`` the gate judged each validation half's own best
        epoch instead (``valid_goal_half1`` / ``_half2`` in the history).
    goal_phase_win_rate_ : float or None
        Share of those resamples in which the goal phase's network had the
        higher validation goal (0 when its best epoch did not even beat
        phase 1 on the full validation data).
    goal_phase_mean_gain_ : float or None
        Their mean difference of the validation goal (EOM revenue per user);
        the gate also needs it > 0. None where no resample was drawn.
    goal_batch_size_ : int or None
        The goal batch size used (``goal_batch_size`` with ``"auto"``
        resolved for the number of fitting users).
    revenue_shift_ : ndarray of shape (n_levels,)
        Added to each level's revenue uplift (zeros unless ``center_uplift``).
    x_mean_, x_scale_, revenue_scale_, cost_scale_ : ndarray or float
        The scaling of ``X``, revenue and cost in training.
    monotone_cost_, cost_order_ : bool or "nonnegative", ndarray or None
        Whether cost rises by construction, along these levels (None: off or
        ``"nonnegative"``).
    n_levels_, treatment_probabilities_, calibration_curve_, n_features_in_, feature_names_in_
        As for :class:`TwoStageBudgetAllocator`.

    Notes
    -----
    Measured (README, "Benchmarks"; 20,000 users, seeds 0-2): the network
    beats the best of causalml's T- and X-learners by 4-6% (default setting)
    and 41-80% (hard) at equal true spend, mostly as an uplift model; the
    goal phase adds -0.8% to +0.8% over the ``reg_weight=0`` ablation, +2.4%
    with 200,000 users (budget 0.15, fresh seeds). The limit is the noise of
    the RCT estimate of the goal (``benchmarks/goal_ceiling.py``).
    Select ``reg_weight`` with ``GridSearchCV`` (``score`` is the marketing
    goal); look at a fit with :class:`~sklearn_budget.plotting.TrainingHistoryDisplay`.

    Examples
    --------
    >>> from sklearn_budget import EndToEndBudgetAllocator, rct_target
    >>> from sklearn_budget.datasets import make_marketing_rct
    >>> d = make_marketing_rct(n_samples=3000, random_state=0)
    >>> est = EndToEndBudgetAllocator(budget=1.0, max_epochs=3, warmup_epochs=1,
    ...                               random_state=0)
    >>> est = est.fit(d.X, rct_target(d.treatment, d.revenue, d.cost))
    >>> est.predict(d.X[:2]).shape
    (2, 3)
    """

    _parameter_constraints = {**BaseBudgetAllocator._parameter_constraints,
                              **PARAMETER_CONSTRAINTS}

    def __init__(self, budget=1.0, reg_weight=1.0, *, gradient_estimator="fd",
                 n_perturbations=16, perturbation_scale=0.1, temperature=0.3,
                 goal_form="lagrangian", goal_estimate="ipw", overspend_penalty=2.0,
                 goal_multipliers=(1.0,), warmup_epochs="auto", goal_phase_acceptance=0.5,
                 goal_phase_lr=None, goal_phase_params="all", goal_phase_validation="crossfit",
                 goal_phase_epoch_size=8192, goal_phase_averaging=None, center_uplift=False,
                 goal_batch_size="auto", hidden_layer_sizes=(64, 64), monotone_cost="auto",
                 loss="huber", cost_loss="mse", lr=1e-3, batch_size=512, max_epochs=30,
                 optimizer="adam", weight_decay=1e-4, early_stopping=True,
                 validation_fraction=0.15, patience=8, callbacks=None, device="auto",
                 n_threads=None,
                 control_name=0, calibration="holdout", calibration_size=0.3,
                 random_state=None, verbose=0):
        self.budget = budget
        self.reg_weight = reg_weight
        self.gradient_estimator = gradient_estimator
        self.n_perturbations = n_perturbations
        self.perturbation_scale = perturbation_scale
        self.temperature = temperature
        self.goal_form = goal_form
        self.goal_estimate = goal_estimate
        self.overspend_penalty = overspend_penalty
        self.goal_multipliers = goal_multipliers
        self.warmup_epochs = warmup_epochs
        self.goal_phase_acceptance = goal_phase_acceptance
        self.goal_phase_lr = goal_phase_lr
        self.goal_phase_params = goal_phase_params
        self.goal_phase_validation = goal_phase_validation
        self.goal_phase_epoch_size = goal_phase_epoch_size
        self.goal_phase_averaging = goal_phase_averaging
        self.center_uplift = center_uplift
        self.goal_batch_size = goal_batch_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.monotone_cost = monotone_cost
        self.loss = loss
        self.cost_loss = cost_loss
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.callbacks = callbacks
        self.device = device
        self.n_threads = n_threads
        self.control_name = control_name
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state
        self.verbose = verbose

    # the calibration slice doubles as the validation data (BaseBudgetAllocator hook);
    # fitting itself (_fit_uplift) lives in TrainingMixin
    _validates_on_holdout = True
