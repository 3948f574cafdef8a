"""What limits the goal phase: the noise of its RCT goal, or the mechanism?

A diagnostic on ``make_marketing_rct`` (ground truth known), not a method
users can run: the goal phase of ``EndToEndBudgetAllocator`` (phase 2 of
``warmup_epochs="auto"``, fine-tuning through the marketing goal) is run
with two training goals on the same seeds:

* ``rct goal`` (the estimator as shipped): the Lagrangian value
  ``revenue - lam cost`` of the model's policy estimated by inverse
  propensity on a batch of RCT users;
* ``true goal``: the same Lagrangian value computed from the users' TRUE
  expected revenue and cost of every arm (no outcome noise, no random-arm
  noise): the best signal the goal could ever give. Only the training goal
  changes; the pick of phase 2's epoch and the gate still use the RCT
  validation users, exactly as shipped.

After every epoch a callback records the network's true value at equal true
spend on the test half (fraction of the oracle's value; the test users are
only looked at, never used to choose anything), so each fit gives:

* ``ablation``: phase 1 (prediction loss only) as restored at its best
  validation-loss epoch, i.e. the ``reg_weight=0`` model;
* ``best epoch``: the best phase-2 epoch in hindsight (what a perfect pick
  would deploy: the ceiling of the fine-tuning itself);
* ``last epoch``: the last phase-2 epoch run;
* ``picked``: the phase-2 epoch chosen by the validation goal;
* ``deployed``: the final network (the picked epoch if the gate kept it,
  else phase 1).

The CSV also has the range of the budget's multiplier over the goal epochs
(``multiplier_min`` / ``multiplier_max``, scaled units) and the test users'
mean predicted revenue uplift at the last epoch (``last_mean_uplift``).

Usage (repository root)::

    python benchmarks/goal_ceiling.py                 # tuning seeds 10-17, ~4 min
    python benchmarks/goal_ceiling.py --seeds 10 --settings default
    python benchmarks/goal_ceiling.py --gate-power default:13 hard:10 hard:15   # ~2 min
    python benchmarks/goal_ceiling.py --seeds 10 11 12 13 14 15 --n-samples 200000 \
        --goals "rct goal"    # 10x the users, ~10 min; add
        # --set '{"goal_phase_epoch_size": null}' for full-pass goal epochs

``--gate-power`` fits the ablation and the noise-free goal's model (its
picked epoch deployed whatever the gate says) and reports how often the
gate's statistic (EOM incremental revenue at the budget) on 200 random
1,500-user slices of the test half prefers it, next to its true gain.

Writes ``goal_ceiling.md`` and ``goal_ceiling.csv`` (or ``gate_power.md``) to
``benchmarks/results`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import Callback

from _common import (SETTINGS, equal_spend_fraction, hardware, json_params, markdown_table,
                     positive_float, positive_int, refuse_repeats, synthetic_case,
                     synthetic_cases)

from sklearn_budget import EndToEndBudgetAllocator
from sklearn_budget._end_to_end._net import BudgetNet
from sklearn_budget.metrics import value_at_budget


class TrueGoalNet(BudgetNet):
    """``BudgetNet`` whose Lagrangian goal uses the batch users' true expected
    revenue and cost of every arm (keys ``true_revenue`` / ``true_cost``)."""

    def _lagrangian_gains(self, revenue_pred, cost_pred, batch, lam):
        return (batch["true_revenue"] - lam * batch["true_cost"]).to(revenue_pred.dtype)


class TestValue(Callback):
    """Records the true value at equal true spend on the test users every epoch."""

    def __init__(self, estimator, case):
        self.estimator, self.case = estimator, case

    def on_epoch_end(self, net, **kwargs):
        est = self.estimator
        r, c = est._forward_scaled(est._scaled_dict(self.case["data"].X_test)["x"])
        r, c = r * est.revenue_scale_, c * est.cost_scale_
        net.history.record("test_value", equal_spend_fraction(r, c, self.case))
        net.history.record("test_mean_uplift", float(r.mean()))


class DiagnosticAllocator(EndToEndBudgetAllocator):
    """``EndToEndBudgetAllocator`` with the per-epoch test-value callback and,
    with ``true_goal``, :class:`TrueGoalNet` (set as attributes, not parameters)."""

    def setup(self, case, true_goal):
        """``case`` from ``_common.synthetic_case``; ``true_goal``: train on the truth."""
        self._diag = dict(case=case, true_goal=true_goal)
        data = case["data"]
        if true_goal:
            self._net_class = TrueGoalNet
            x = np.asarray(data.X_train, dtype=np.float64)
            self._row_of = {row.tobytes(): i for i, row in enumerate(x)}
        return self

    def _extra_callbacks(self):
        return [("test_value", TestValue(self, self._diag["case"]))]

    def _scaled_dict(self, X, rct=None):
        out = super()._scaled_dict(X, rct)
        if rct is None or not self._diag["true_goal"]:
            return out
        rows = [self._row_of.get(np.asarray(row, dtype=np.float64).tobytes())
                for row in X]
        if any(r is None for r in rows):
            raise ValueError("TrueGoalNet needs every training row among data.X_train.")
        data = self._diag["case"]["data"]
        out["true_revenue"] = (data.true_revenue_train[rows] /
                               self.revenue_scale_).astype(np.float32)
        out["true_cost"] = (data.true_cost_train[rows] / self.cost_scale_).astype(np.float32)
        return out


class KeepGoalPhase(DiagnosticAllocator):
    """Deploys phase 2's picked epoch whatever the gate decides."""

    def _keep_goal_phase(self, *args, **kwargs):
        self.goal_phase_win_rate_ = np.nan
        return True


def gate_power(setting, seed, budget_frac, n_samples, params, n_slices=200, slice_size=1500):
    """Can an EOM on ``slice_size`` held-out users see a true gain?

    Fits the ablation and the noise-free-goal model (picked epoch deployed
    whatever the gate says) and compares their EOM incremental revenue at the
    budget on random slices of the test half (the gate's statistic).
    """
    case = synthetic_case(setting, seed, n_samples, budget_frac)
    data, budget = case["data"], case["budget"]
    fits = {}
    for name, cls, extra in [("ablation", DiagnosticAllocator, dict(reg_weight=0.0)),
                             ("noise-free goal", KeepGoalPhase, {})]:
        est = cls(budget=budget, random_state=seed, **{**params, **extra})
        est.setup(case, true_goal=(name != "ablation"))
        est.fit(data.X_train, case["y"])
        r, c = est.predict(data.X_test), est.predict_cost(data.X_test)
        fits[name] = (r, c, equal_spend_fraction(r, c, case))

    def eom_gain(idx):
        values = [value_at_budget(r[idx], c[idx], data.treatment_test[idx],
                                  data.revenue_test[idx], data.cost_test[idx], budget)
                  for r, c, _ in (fits["noise-free goal"], fits["ablation"])]
        return values[0] - values[1]

    rng = np.random.default_rng(seed)
    n_test = len(data.X_test)
    diffs = np.array([eom_gain(rng.choice(n_test, slice_size, replace=False))
                      for _ in range(n_slices)])
    return dict(setting=setting, seed=seed,
                true_gain=fits["noise-free goal"][2] / fits["ablation"][2] - 1,
                slice_win_rate=float(np.mean(diffs > 0)),
                full_test_eom_gain=eom_gain(np.arange(n_test)))


def _summarise_fit(est):
    h = est.net_.history
    values = np.array([row.get("test_value", np.nan) for row in h], dtype=float)
    if np.isnan(values).any():
        raise RuntimeError("an epoch has no test value; the TestValue callback must run "
                           "before early stopping")
    n1 = est.warmup_epochs_
    # the epochs early stopping restored (skorch's improvement threshold makes them
    # differ from the argmin / argmax now and then), numbered from 1
    phase1 = est.phase1_best_epoch_ - 1
    phase2 = values[n1:]
    picked = est.goal_phase_best_epoch_ - 1 - n1 if len(phase2) else None
    # the budget's multiplier, re-set every goal epoch (scaled units), and the mean
    # predicted revenue uplift of the test users at the last epoch (users' units)
    lam = np.array([row.get("goal_multiplier", np.nan) for row in h[n1:]], dtype=float)
    lam = lam[np.isfinite(lam)]
    return dict(
        multiplier_min=float(lam.min()) if len(lam) else np.nan,
        multiplier_max=float(lam.max()) if len(lam) else np.nan,
        last_mean_uplift=float(h[-1, "test_mean_uplift"]),
        ablation=values[phase1],
        best_epoch=float(phase2.max()) if len(phase2) else np.nan,
        last_epoch=float(phase2[-1]) if len(phase2) else np.nan,
        picked=float(phase2[picked]) if picked is not None else np.nan,
        phase1_epochs=n1, phase2_epochs=len(phase2),
        kept=est.goal_phase_kept_, win_rate=est.goal_phase_win_rate_)


def run(settings, seeds, budget_frac, n_samples, goals, params):
    rows = []
    for setting, seed, case in synthetic_cases(settings, seeds, n_samples, budget_frac):
        data = case["data"]
        for goal in goals:
            est = DiagnosticAllocator(budget=case["budget"], random_state=seed, **params)
            est.setup(case, true_goal=(goal == "true goal"))
            t0 = time.perf_counter()
            est.fit(data.X_train, case["y"])
            deployed = equal_spend_fraction(est.predict(data.X_test),
                                            est.predict_cost(data.X_test), case)
            row = dict(setting=setting, seed=seed, goal=goal, **_summarise_fit(est),
                       deployed=deployed, fit_time=time.perf_counter() - t0)
            rows.append(row)
            print(f"{setting:8s} seed {seed} {goal:9s} ablation {row['ablation']:.3f} "
                  f"best {row['best_epoch']:.3f} last {row['last_epoch']:.3f} picked "
                  f"{row['picked']:.3f} deployed {row['deployed']:.3f} kept {row['kept']} "
                  f"({row['phase2_epochs']} goal epochs, {row['fit_time']:.0f} s)",
                  flush=True)
    frame = pd.DataFrame(rows)
    for col in ("best_epoch", "last_epoch", "picked", "deployed"):
        frame[f"{col}_gain"] = frame[col] / frame["ablation"] - 1
    return frame


def summarise(frame):
    out = []
    for (setting, goal), g in frame.groupby(["setting", "goal"], sort=False):
        row = dict(setting=setting, goal=goal, ablation=f"{g.ablation.mean():.3f}")
        for col in ("best_epoch", "last_epoch", "picked", "deployed"):
            gain = g[f"{col}_gain"]
            row[col] = (f"{g[col].mean():.3f} ({gain.mean():+.1%} ± {gain.std():.1%}; "
                        f"better on {(gain > 0.001).sum()}/{len(g)})")
        row["kept"] = f"{int(g.kept.sum())}/{len(g)}"
        out.append(row)
    return pd.DataFrame(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["default", "hard"], choices=SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10, 18)))
    parser.add_argument("--budget", type=positive_float, default=0.4,
                        help="budget as a fraction of the oracle's full spend")
    parser.add_argument("--n-samples", type=positive_int, default=20000)
    parser.add_argument("--goals", nargs="+", default=["rct goal", "true goal"],
                        choices=["rct goal", "true goal"])
    parser.add_argument("--set", default="{}",
                        help="JSON of estimator parameters for every fit")
    parser.add_argument("--gate-power", nargs="+", default=None, metavar="SETTING:SEED",
                        help="instead: how often an EOM on 1,500 test users sees the true "
                             "gain of the noise-free goal's model, e.g. default:13 hard:15")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "settings", "seeds", "goals", "gate_power")
    params = json_params(parser, "--set", args.set)
    cases = []
    for item in args.gate_power or []:
        setting, sep, seed = item.partition(":")
        if not sep or setting not in SETTINGS or not seed.lstrip("-").isdigit():
            parser.error(f"--gate-power takes SETTING:SEED with SETTING one of "
                         f"{', '.join(SETTINGS)} and an integer SEED; got {item!r}")
        cases.append((setting, int(seed)))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.gate_power:
        rows = []
        for setting, seed in cases:
            rows.append(gate_power(setting, seed, args.budget, args.n_samples, params))
            print(rows[-1], flush=True)
        text = markdown_table(pd.DataFrame(rows))
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gate_power.md").write_text(f"# Gate power\n\n{hardware()}\n\n{text}\n")
        print(text)
        return
    frame = run(args.settings, args.seeds, args.budget, args.n_samples, args.goals, params)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "goal_ceiling.csv", index=False)
    table = summarise(frame)
    text = (f"# Goal ceiling\n\n{hardware()}\n\nseeds {args.seeds}, budget {args.budget} "
            f"x oracle spend, parameters {args.set}; values: true incremental revenue at "
            "equal true spend / oracle's (mean; gain over the same fit's phase-1 ablation, "
            "mean ± std, runs better by > 0.1%)\n\n" + markdown_table(table) + "\n")
    (out / "goal_ceiling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
