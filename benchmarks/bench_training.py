"""Training cost and gradient estimators of the end-to-end allocator.

Two parts, on ``make_marketing_rct`` (ground truth known):

1. **Fits.** For each seed, ``EndToEndBudgetAllocator`` with default settings
   at ``reg_weight=0`` (the ablation) and ``reg_weight=1`` with each gradient
   estimator (``fd``, ``es``, ``softmax``). Reported: the epoch time with the
   regulariser divided by the epoch time without it (median of skorch's
   per-epoch ``dur`` over the epochs after the warm-up (the goal phase; for
   ``reg_weight=0`` the epochs after the 5th), and total fit time per
   epoch), the number of epochs early stopping ran, the true incremental
   revenue of the deployed allocation as a fraction of the oracle's (and at
   equal true spend), and the deployed true spend / budget.
2. **Estimator noise.** On the fitted ``reg_weight=0`` model and one goal
   batch of training users: each estimator's gradient of the batch goal with
   respect to the scores, drawn ``--repeats`` times (new perturbations /
   new batch), its time per call, its relative variance
   ``E||g - mean g||^2 / ||mean g||^2`` and its cosine with a reference
   gradient (Gaussian smoothing with 4,000 antithetic pairs, the smoothed
   goal that ``es`` estimates). ``fd`` and ``softmax`` are deterministic on
   a fixed batch, so the same is also measured where the noise that matters
   lives: the gradient with respect to the network's weights on a new random
   batch each draw, against the gradient of the goal on the whole training
   set (fd on all users). Batches of 4,096 users, or half the training users
   when that is fewer (``--quick``: 2,000 of 4,000), so that a random batch
   is never the whole training set; the report gives the size used.

3. **Epoch time against n.** One training epoch with and without the goal
   at n = 1e4, 1e5, 1e6 users (1e7 is left out: ~3 minutes per epoch on 2
   cores, the growth is linear).

Usage (repository root)::

    python benchmarks/bench_training.py                 # 3 seeds, n = 20000: 12 fits, ~40 s CPU each
    python benchmarks/bench_training.py --quick         # 1 seed, n = 8000
    python benchmarks/bench_training.py --epoch-sizes none   # without the epoch-time part
    python benchmarks/bench_training.py --output DIR    # default benchmarks/results

Writes ``training.md``, ``training.csv``, ``training_estimators.csv`` and (with the
epoch-time part) ``training_epoch_scaling.csv``; the report records the command's
arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _common import hardware, markdown_table, positive_float, positive_int, refuse_repeats

from sklearn_budget import EndToEndBudgetAllocator, rct_target
from sklearn_budget._comparison_scores import _equal_spend_assignment
from sklearn_budget._end_to_end._goal import gain_matrix, marketing_goal
from sklearn_budget.comparison import ComparisonData
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import oracle_allocation, true_value

CONFIGS = {
    "reg_weight=0": dict(reg_weight=0.0),
    "fd": dict(reg_weight=1.0, gradient_estimator="fd"),
    "es": dict(reg_weight=1.0, gradient_estimator="es"),
    "softmax": dict(reg_weight=1.0, gradient_estimator="softmax"),
}


def fit_part(seeds, n_samples, budget_frac):
    rows, fitted = [], {}
    for seed in seeds:
        d = make_marketing_rct(n_samples=n_samples, random_state=seed)
        data = ComparisonData.from_arrays("synthetic-default", d.X, d.treatment, d.revenue,
                                          d.cost, true_revenue=d.true_revenue,
                                          true_cost=d.true_cost, random_state=seed)
        budget = budget_frac * data.budget_scale()
        oracle = oracle_allocation(data.true_revenue, data.true_cost, budget)
        oracle_value = true_value(oracle, data.true_revenue, data.true_cost).incremental_revenue
        y = rct_target(data.treatment_train, data.revenue_train, data.cost_train)
        for name, cfg in CONFIGS.items():
            est = EndToEndBudgetAllocator(budget=budget, random_state=seed, **cfg)
            t0 = time.perf_counter()
            est.fit(data.X_train, y)
            fit_time = time.perf_counter() - t0
            hist = est.net_.history
            warm = est.warmup_epochs_  # goal switched on after this many epochs
            durs = np.array(hist[:, "dur"])
            r, c = est.predict(data.X_test), est.predict_cost(data.X_test)
            deployed = true_value(est.allocate(data.X_test), data.true_revenue, data.true_cost)
            tr, tc = data.true_uplift()
            eq = true_value(_equal_spend_assignment(r, c, tr, tc, budget), data.true_revenue,
                            data.true_cost)
            rows.append(dict(
                seed=seed, method=name, epochs=len(hist), warmup_epochs=warm,
                goal_phase_kept=est.goal_phase_kept_,
                epoch_dur_after_warmup=float(np.median(durs[warm:])) if len(durs) > warm
                else float("nan"),
                fit_time_per_epoch=fit_time / len(hist), fit_time=fit_time,
                best_valid_goal=float(max(hist[:, "valid_goal"])),
                oracle_fraction=deployed.incremental_revenue / oracle_value,
                equal_spend_fraction=eq.incremental_revenue / oracle_value,
                spend_ratio=deployed.incremental_cost / budget,
            ))
            print(f"seed {seed} {name:13s} epochs {len(hist):3d}  fit {fit_time:6.1f}s  "
                  f"oracle frac {rows[-1]['oracle_fraction']:.3f}  equal-spend "
                  f"{rows[-1]['equal_spend_fraction']:.3f}  spend/budget "
                  f"{rows[-1]['spend_ratio']:.3f}", flush=True)
            if name == "reg_weight=0" and seed == seeds[0]:
                fitted = dict(est=est, data=data)
    fits = pd.DataFrame(rows)
    fits["goal_epochs"] = fits.epochs - fits.warmup_epochs
    base = fits[fits.method == "reg_weight=0"].set_index("seed")
    fits["epoch_ratio"] = [
        r.epoch_dur_after_warmup / base.loc[r.seed, "epoch_dur_after_warmup"]
        for r in fits.itertuples()]
    fits["fit_time_per_epoch_ratio"] = [
        r.fit_time_per_epoch / base.loc[r.seed, "fit_time_per_epoch"] for r in fits.itertuples()]
    return fits, fitted


def epoch_scaling_part(sizes, budget=2.0):
    """Seconds per training epoch with and without the goal as n grows.

    One epoch each (goal on from the first epoch, no early stopping, no
    hold-out), skorch's own ``dur`` of that epoch, on ``make_marketing_rct``
    data tiled with small noise up to ``n`` users.
    """
    rows = []
    base = make_marketing_rct(n_samples=20000, random_state=0)
    rng = np.random.default_rng(0)
    # one throwaway fit first: the first epoch in a process pays torch's start-up
    EndToEndBudgetAllocator(budget=budget, max_epochs=1, early_stopping=False,
                            calibration="predicted").fit(base.X[:2000], rct_target(
                                base.treatment[:2000], base.revenue[:2000], base.cost[:2000]))
    for n in sizes:
        idx = rng.integers(0, len(base.X), n)
        X = base.X[idx] + 0.01 * rng.standard_normal((n, base.X.shape[1]))
        y = rct_target(base.treatment[idx], base.revenue[idx], base.cost[idx])
        durs = {}
        # the default goal batch ("auto": a quarter of the users, 4,096 to 32,768) and 4,096
        for name, rw, goal_batch in (("reg_weight=0", 0.0, "auto"), ("fd", 1.0, "auto"),
                                     ("fd_4096", 1.0, 4096)):
            est = EndToEndBudgetAllocator(budget=budget, reg_weight=rw, warmup_epochs=0,
                                          max_epochs=1, early_stopping=False,
                                          calibration="predicted", random_state=0,
                                          goal_batch_size=goal_batch)
            est.fit(X, y)
            durs[name] = float(est.net_.history[-1, "dur"])
        rows.append(dict(n_users=n, epoch_s_reg_weight_0=durs["reg_weight=0"],
                         epoch_s_with_goal_fd=durs["fd"],
                         ratio=durs["fd"] / durs["reg_weight=0"],
                         epoch_s_with_goal_fd_4096=durs["fd_4096"],
                         ratio_4096=durs["fd_4096"] / durs["reg_weight=0"],
                         users_per_s_with_goal=n / durs["fd"]))
        print(f"n {n:>9,d}  epoch {durs['reg_weight=0']:.2f} s (reg_weight=0), "
              f"{durs['fd']:.2f} s (with goal, fd): ratio {rows[-1]['ratio']:.2f}; "
              f"goal batch 4096: {durs['fd_4096']:.2f} s, ratio {rows[-1]['ratio_4096']:.2f}",
              flush=True)
    return pd.DataFrame(rows)


def noise_part(fitted, repeats, batch_size, seed=0):
    est, data = fitted["est"], fitted["data"]
    gen = torch.Generator().manual_seed(seed)
    x = ((data.X_train - est.x_mean_) / est.x_scale_).astype(np.float32)
    from sklearn_budget._validation import check_rct

    rct = check_rct(data.treatment_train, data.revenue_train, data.cost_train)
    with torch.no_grad():
        rev, cost = est.net_.module_(torch.as_tensor(x))
    r_all = (rev[:, 1:] - rev[:, :1]).double()
    c_all = (cost[:, 1:] - cost[:, :1]).double()
    arm = torch.as_tensor(rct.arm)
    revenue = torch.as_tensor(rct.revenue / est.revenue_scale_)
    cost_obs = torch.as_tensor(rct.cost / est.cost_scale_)
    weight = torch.as_tensor(1.0 / rct.propensity)
    lam = est.multiplier_ * est.cost_scale_ / est.revenue_scale_
    idx = torch.randperm(len(arm), generator=gen)[:batch_size]
    gains = gain_matrix(arm[idx], revenue[idx], cost_obs[idx], weight[idx], lam)

    def grad(estimator, n_pert=16, generator=None):
        r = r_all[idx].clone().requires_grad_(True)
        s, _ = marketing_goal(r, c_all[idx], gains, lam, estimator=estimator,
                              n_perturbations=n_pert, generator=generator)
        s.backward()
        return r.grad.clone()

    module = est.net_.module_
    x_t = torch.as_tensor(x)

    def param_grad(estimator, rows_, generator=None):
        """Gradient of the goal on users ``rows_`` w.r.t. the network's weights."""
        module.zero_grad()
        rev_, cost_ = module(x_t[rows_])
        r_ = rev_[:, 1:] - rev_[:, :1]
        c_ = cost_[:, 1:] - cost_[:, :1]
        g_ = gain_matrix(arm[rows_], revenue[rows_].float(), cost_obs[rows_].float(),
                         weight[rows_].float(), lam)
        s_, _ = marketing_goal(r_, c_, g_, lam, estimator=estimator, generator=generator)
        s_.backward()
        return torch.cat([p.grad.flatten() for p in module.parameters()
                          if p.grad is not None]).clone()

    reference = grad("es", n_pert=4000, generator=torch.Generator().manual_seed(123))
    # the full-training-set goal's gradient (fd on all users): what a batch estimates
    full_reference = param_grad("fd", torch.arange(len(arm)))
    rows = []
    for estimator in ("fd", "es", "softmax"):
        draws, times, pdraws = [], [], []
        for rep in range(repeats):
            g = torch.Generator().manual_seed(1000 + rep)
            t0 = time.perf_counter()
            draws.append(grad(estimator, generator=g))
            times.append(time.perf_counter() - t0)
            batch = torch.randperm(len(arm), generator=g)[:batch_size]
            pdraws.append(param_grad(estimator, batch, generator=g))
        G = torch.stack(draws).flatten(1)
        mean = G.mean(0)
        rel_var = float(((G - mean) ** 2).sum(1).mean() / (mean ** 2).sum().clamp_min(1e-30))
        cos = torch.nn.functional.cosine_similarity(G, reference.flatten()[None], dim=1)
        P = torch.stack(pdraws)
        pmean = P.mean(0)
        p_rel_var = float(((P - pmean) ** 2).sum(1).mean() / (pmean ** 2).sum().clamp_min(1e-30))
        p_cos = torch.nn.functional.cosine_similarity(P, full_reference[None], dim=1)
        rows.append(dict(estimator=estimator, batch=len(idx), time_ms=1e3 * np.median(times),
                         relative_variance=rel_var, cosine_with_reference=float(cos.mean()),
                         weights_rel_variance_over_batches=p_rel_var,
                         weights_cosine_with_full_data=float(p_cos.mean())))
        print(f"{estimator:8s} time {rows[-1]['time_ms']:.2f} ms  rel. variance {rel_var:.3g}  "
              f"cosine vs smoothed reference {rows[-1]['cosine_with_reference']:.3f}  "
              f"weights: rel. variance over batches {p_rel_var:.3g}, cosine with full-data "
              f"gradient {float(p_cos.mean()):.3f}", flush=True)
    return pd.DataFrame(rows)


def _epoch_size(text):
    """An ``--epoch-sizes`` value: a number of users, or ``none`` (skip the part)."""
    return None if text.lower() == "none" else positive_int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--n-samples", type=positive_int, default=None)
    parser.add_argument("--budget", type=positive_float, default=0.4,
                        help="budget as a fraction of the oracle's full spend")
    parser.add_argument("--repeats", type=positive_int, default=20)
    parser.add_argument("--epoch-sizes", nargs="*", type=_epoch_size, default=None,
                        help="n for the epoch-time scaling part (default 1e4 1e5 1e6; "
                             "--quick: 1e4 1e5); 'none', or the option with no value, "
                             "skips it")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds", "epoch_sizes")
    if args.epoch_sizes is not None and None in args.epoch_sizes:
        if len(args.epoch_sizes) > 1:
            parser.error("--epoch-sizes: 'none' skips the part; give it alone")
        args.epoch_sizes = []
    sizes = args.epoch_sizes if args.epoch_sizes is not None else (
        [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    n = args.n_samples or (8000 if args.quick else 20000)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    hw = hardware()
    print(f"Hardware: {hw}")
    t0 = time.perf_counter()
    fits, fitted = fit_part(seeds, n, args.budget)
    # at most half the training users: a random batch of all of them (n_train <= 4096,
    # e.g. --quick's 4,000) would have no batch-to-batch noise by construction
    n_train = len(fitted["data"].X_train)
    batch_size = max(1, min(4096, n_train // 2))
    print(f"estimator noise: batches of {batch_size:,} of the {n_train:,} training users",
          flush=True)
    noise = noise_part(fitted, args.repeats, batch_size=batch_size)
    scaling = epoch_scaling_part(sizes) if sizes else None
    summary = fits.groupby("method", sort=False).agg(
        epoch_ratio=("epoch_ratio", "mean"),
        fit_time_per_epoch_ratio=("fit_time_per_epoch_ratio", "mean"),
        epochs=("epochs", "mean"),
        goal_epochs=("goal_epochs", "mean"),
        goal_phase_kept=("goal_phase_kept",
                         lambda k: float(np.mean([bool(v) for v in k if v is not None]))
                         if any(v is not None for v in k) else float("nan")),
        oracle_fraction=("oracle_fraction", "mean"),
        oracle_fraction_std=("oracle_fraction", "std"),
        equal_spend_fraction=("equal_spend_fraction", "mean"),
        equal_spend_fraction_std=("equal_spend_fraction", "std"),
        spend_ratio=("spend_ratio", "mean"),
    ).reset_index()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fits.assign(part="fit").to_csv(out / "training.csv", index=False)
    noise.to_csv(out / "training_estimators.csv", index=False)
    if scaling is not None:
        scaling.to_csv(out / "training_epoch_scaling.csv", index=False)
    cmd = " ".join(["python benchmarks/bench_training.py",
                    shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip()
    text = "\n\n".join([
        f"# End-to-end training benchmark\n\nCommand: `{cmd}`; hardware: {hw}; "
        f"{len(seeds)} seed(s), n = {n} (half for training), budget = {args.budget:g} x "
        f"the oracle's full spend; {time.perf_counter() - t0:.0f} s in all.",
        "## Fits (mean over seeds; ratios vs reg_weight=0 on the same seed)",
        markdown_table(summary),
        "## Gradient estimators on one goal batch of the reg_weight=0 model",
        f"Batches of {batch_size:,} of the {n_train:,} training users (the fixed batch, and "
        "each random batch of the weight-gradient columns).",
        markdown_table(noise),
        *([] if scaling is None else [
            "## Epoch time against n (one epoch, goal on from the start)",
            markdown_table(scaling)]),
    ]) + "\n"
    (out / "training.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
