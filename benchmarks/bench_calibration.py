"""How well each calibration puts the deployed spend on the budget.

On ``make_marketing_rct`` (true expected costs known), every method is fitted
with ``calibration="holdout"`` (EOM on the held-out 30%), ``"holdout-dr"``
(doubly robust cost estimate on the same slice) and ``"predicted"`` (trust
the model's cost predictions), and its ``allocate`` on the test half is
scored by the TRUE incremental cost per user divided by the budget (1.0 is
perfect) and the true incremental revenue as a fraction of the oracle's.

The ``perfect model`` rows are the noise floor of each calibration: the true
expected uplifts stand in for a model's predictions, calibrated on the same
held-out slice as the fitted models and on ``--perfect-slices - 1`` further
random slices of the same size per seed. Their spend error comes only from
the outcome noise of the held-out RCT users (3,000 at the default
``--n-samples 20000``: 30% of the 10,000-user training half; and, for
``"predicted"``, from the training users differing from the test users).

Usage (repository root)::

    python benchmarks/bench_calibration.py      # 6 seeds, default + hard, ~11 min on 2 cores
    python benchmarks/bench_calibration.py --quick          # 2 seeds, default only
    python benchmarks/bench_calibration.py --methods T --seeds 0 1 --output DIR

Writes ``calibration.md`` and ``calibration.csv`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import (hardware, markdown_table, nonnegative_int, positive_float, positive_int,
                     refuse_repeats)

from sklearn_budget import EndToEndBudgetAllocator
from sklearn_budget._solver import allocate_at_multiplier
from sklearn_budget._validation import check_rct, labels_to_arms
from sklearn_budget.comparison import END_TO_END, TWO_STAGE, ComparisonData, make_allocator
from sklearn_budget.datasets import make_marketing_rct
from sklearn_budget.metrics import oracle_allocation, true_value

CALIBRATIONS = ("holdout", "holdout-dr", "predicted")
# the methods with a fitted model to calibrate (make_allocator returns None for
# "random" and "oracle", which need no fitting)
METHODS = (*END_TO_END, *TWO_STAGE)


def _uplift(revenue, cost):
    return revenue[:, 1:] - revenue[:, :1], cost[:, 1:] - cost[:, :1]


def _calibrated_multiplier(data, r_train, c_train, budget, calibration, random_state):
    """The multiplier a fitted model with these training uplifts would deploy.

    Runs the estimators' own calibration (``_calibration_split`` and
    ``_calibrate`` of ``BaseBudgetAllocator``) on the given uplifts.
    """
    est = EndToEndBudgetAllocator(budget=budget, calibration=calibration,
                                  random_state=random_state)
    rct = check_rct(data.treatment_train, data.revenue_train, data.cost_train)
    est.levels_ = rct.levels
    cal = (np.arange(rct.n_samples) if calibration == "predicted"
           else est._calibration_split(rct)[1])
    est._calibrate(r_train[cal], c_train[cal], rct.subset(cal))
    return est.multiplier_


def perfect_model_rows(data, budget, oracle_value, seed, calibrations, n_slices):
    """Calibrate the TRUE uplifts like a model's; the spend error is the calibration's own."""
    r_train, c_train = _uplift(data.true_revenue_train, data.true_cost_train)
    r_test, c_test = data.true_uplift()
    rows = []
    for calibration in calibrations:
        # rep 0: the slice the fitted models hold out (same random_state)
        for rep in range(n_slices if calibration != "predicted" else 1):
            lam = _calibrated_multiplier(data, r_train, c_train, budget, calibration,
                                         seed if rep == 0 else 1000 * seed + rep)
            tv = true_value(allocate_at_multiplier(r_test, c_test, float(lam)),
                            data.true_revenue, data.true_cost)
            rows.append(dict(setting=data.name.removeprefix("synthetic-"), seed=seed,
                             method="perfect model", calibration=calibration,
                             spend_ratio=tv.incremental_cost / budget,
                             oracle_fraction=tv.incremental_revenue / oracle_value,
                             fit_time=0.0))
    return rows


def run(settings, seeds, methods, n_samples, budget_frac, calibrations=CALIBRATIONS,
        perfect_slices=10):
    rows = []
    for setting in settings:
        for seed in seeds:
            d = make_marketing_rct(n_samples=n_samples, setting=setting, random_state=seed)
            data = ComparisonData.from_arrays(
                f"synthetic-{setting}", d.X, d.treatment, d.revenue, d.cost,
                true_revenue=d.true_revenue, true_cost=d.true_cost, random_state=seed)
            budget = budget_frac * data.budget_scale()
            oracle = oracle_allocation(data.true_revenue, data.true_cost, budget)
            oracle_value = true_value(oracle, data.true_revenue,
                                      data.true_cost).incremental_revenue
            if perfect_slices:
                rows += perfect_model_rows(data, budget, oracle_value, seed, calibrations,
                                           perfect_slices)
            for method in methods:
                for calibration in calibrations:
                    est = make_allocator(method, budget, random_state=seed, device="cpu")
                    est.set_params(calibration=calibration)
                    t0 = time.perf_counter()
                    est.fit(data.X_train, data.revenue_train, treatment=data.treatment_train,
                            cost=data.cost_train)
                    arms = labels_to_arms(est.allocate(data.X_test), est.levels_, 0)
                    tv = true_value(arms, data.true_revenue, data.true_cost)
                    rows.append(dict(
                        setting=setting, seed=seed, method=method, calibration=calibration,
                        spend_ratio=tv.incremental_cost / budget,
                        oracle_fraction=tv.incremental_revenue / oracle_value,
                        fit_time=time.perf_counter() - t0,
                    ))
                    r = rows[-1]
                    print(f"{setting:8s} seed {seed} {method:15s} {calibration:10s} "
                          f"spend/budget {r['spend_ratio']:.3f}  oracle frac "
                          f"{r['oracle_fraction']:.3f}", flush=True)
    return pd.DataFrame(rows)


def summarize(frame):
    frame = frame.assign(within_5pct=(frame.spend_ratio - 1).abs() <= 0.05,
                         abs_error=(frame.spend_ratio - 1).abs())
    return frame.groupby(["setting", "method", "calibration"], sort=False).agg(
        spend_ratio=("spend_ratio", "mean"),
        spend_ratio_std=("spend_ratio", "std"),
        mean_abs_error=("abs_error", "mean"),
        within_5pct=("within_5pct", "mean"),
        oracle_fraction=("oracle_fraction", "mean"),
        oracle_fraction_std=("oracle_fraction", "std"),
        runs=("seed", "count"),
    ).reset_index()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--settings", nargs="+", default=None, choices=["default", "hard"])
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=["end-to-end", "end-to-end-rw0", "T"],
                        help="fitted methods: " + ", ".join(METHODS))
    parser.add_argument("--n-samples", type=positive_int, default=20000)
    parser.add_argument("--budget", type=positive_float, default=0.4,
                        help="budget as a fraction of the oracle's full spend (> 0)")
    parser.add_argument("--perfect-slices", type=nonnegative_int, default=10,
                        help="calibration slices per seed for the perfect-model rows "
                             "(0: no such rows)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    for method in args.methods:
        if method in ("random", "oracle"):
            parser.error(f"--methods {method}: it fits no model, so it has no calibration to "
                         f"measure; choose from {', '.join(METHODS)}")
        if method not in METHODS:
            parser.error(f"--methods: unknown method {method!r}; choose from "
                         f"{', '.join(METHODS)}")
    refuse_repeats(parser, args, "settings", "seeds", "methods")
    settings = args.settings or (["default"] if args.quick else ["default", "hard"])
    seeds = args.seeds if args.seeds is not None else ([0, 1] if args.quick else list(range(6)))
    hw = hardware()
    print(f"Hardware: {hw}")
    t0 = time.perf_counter()
    frame = run(settings, seeds, args.methods, args.n_samples, args.budget,
                perfect_slices=args.perfect_slices)
    summary = summarize(frame)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "calibration.csv", index=False)
    cmd = " ".join(["python benchmarks/bench_calibration.py",
                    shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip()
    text = "\n\n".join([
        f"# Calibration benchmark\n\nCommand: `{cmd}`; hardware: {hw}; seeds {seeds}, "
        f"n = {args.n_samples} (half for training, 30% of that held out for calibration), "
        f"budget = {args.budget:g} x the oracle's full spend; "
        f"{time.perf_counter() - t0:.0f} s in all.",
        "spend_ratio = true incremental cost of `allocate` on the test half / budget "
        "(mean and std over seeds); within_5pct = share of runs with |spend_ratio - 1| <= 0.05.",
        markdown_table(summary),
    ]) + "\n"
    (out / "calibration.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
