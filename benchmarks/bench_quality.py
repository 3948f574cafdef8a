"""Decision quality: methods x data sets x budgets x seeds (mean and spread over seeds).

A preset of ``sklearn-budget benchmark`` (see ``sklearn_budget/cli.py`` and
``sklearn_budget/comparison.py``): every method is fitted on the training half
of each seed's split and scored on the other half.

* synthetic (``make_marketing_rct``, default and hard settings): true
  incremental revenue of the deployed allocation as a fraction of the
  oracle's at the same budget, the same at equal *true* spend, true spend /
  budget, EOM incremental revenue at the budget, MT-AUCC;
* Hillstrom (when the CSV is found): EOM incremental revenue at a contact
  budget (fraction of users e-mailed) and with the visit-cost convention.

Usage (repository root)::

    python benchmarks/bench_quality.py                      # full preset (25-60 min on 2 cores)
    python benchmarks/bench_quality.py --quick              # 1 seed, default setting, 5 methods
    python benchmarks/bench_quality.py --hillstrom ../shared/data/hillstrom.csv

Writes ``benchmark.csv``, ``benchmark.md`` and ``cost_curves_*.png`` to
``benchmarks/results/quality`` (or ``--output``). ``--time-limit`` stops
cleanly with partial results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sklearn_budget.cli import main as cli_main

HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hillstrom", default=None,
                        help="Hillstrom CSV (default: ../shared/data next to the repository)")
    parser.add_argument("--seeds", nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--budgets", nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--time-limit", default=None)
    parser.add_argument("--output", default=str(HERE / "results" / "quality"))
    args = parser.parse_args(argv)

    hillstrom = args.hillstrom
    if hillstrom is None:
        shared = HERE.parent.parent / "shared" / "data"
        hillstrom = str(shared) if shared.is_dir() else None
    if args.quick:
        datasets = ["synthetic"]
        methods = ["end-to-end", "end-to-end-rw0", "T", "random", "oracle"]
        seeds, budgets = ["0"], ["0.4"]
    else:
        datasets = ["synthetic", "synthetic-hard"]
        if hillstrom:
            datasets += [f"hillstrom={hillstrom}", f"hillstrom-visit={hillstrom}"]
        methods = ["end-to-end", "end-to-end-es", "end-to-end-softmax", "end-to-end-rw0",
                   "S", "T", "X", "R", "DR", "random", "oracle"]
        seeds, budgets = ["0", "1", "2"], ["0.3", "0.5"]
    cli = ["benchmark", "--datasets", *(args.datasets or datasets),
           "--methods", *(args.methods or methods), "--seeds", *(args.seeds or seeds),
           "--budgets", *(args.budgets or budgets), "--output", args.output]
    if args.time_limit:
        cli += ["--time-limit", args.time_limit]
    print("sklearn-budget " + " ".join(cli), flush=True)
    return cli_main(cli)


if __name__ == "__main__":
    sys.exit(main())
