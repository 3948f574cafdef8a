"""Command line: ``sklearn-budget {demo,benchmark,allocate}`` (also ``python -m sklearn_budget``).

``demo``
    The main job on built-in synthetic data (no files needed): fit the
    end-to-end allocator, its ``reg_weight=0`` ablation and the causalml
    baselines, print a comparison table and write it (CSV, Markdown) with a
    cost-curve plot (PNG) to ``--output``.
``benchmark``
    The comparison over data sets (synthetic default/hard, Hillstrom,
    Criteo), methods, budgets and seeds, with a ``--time-limit``.
``allocate``
    Score users from a CSV or Parquet file with a saved (joblib) allocator
    and write their assignments, a chunk of rows at a time (files larger
    than memory; ``--total-budget`` solves one budget over all of them).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._cli_allocate import cmd_allocate as _cmd_allocate
from ._cli_tables import CLIError, check_writable_folder
from .baselines import _import_causalml_meta

__all__ = ["main"]

_TABLE_COLUMNS = {
    "method": "method",
    "oracle_fraction": "true value / oracle",
    "equal_spend_fraction": "at equal true spend",
    "spend_ratio": "true spend / budget",
    "true_revenue": "true incr. revenue",
    "eom_revenue": "EOM incr. revenue",
    "mt_aucc": "MT-AUCC",
    "fit_time": "fit time (s)",
    "goal_phase_kept": "goal phase kept",
}


def _number(kind, low, *, strict, high=None):
    """argparse ``type=``: a finite ``kind`` above ``low`` (at or above unless ``strict``),
    at most ``high``."""
    import math

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: "
                                             f"{text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {low:g}; got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}; got {text!r}")
        return value

    return parse


# -- data sets -------------------------------------------------------------------------------
def _synthetic_factory(setting, n_samples):
    from .comparison import ComparisonData
    from .datasets import make_marketing_rct

    def factory(seed):
        d = make_marketing_rct(n_samples=n_samples, setting=setting, random_state=seed)
        return ComparisonData.from_arrays(
            f"synthetic-{setting}", d.X, d.treatment, d.revenue, d.cost,
            true_revenue=d.true_revenue, true_cost=d.true_cost, random_state=seed)

    return factory


def _public_factory(name, path, n_samples, **kwargs):
    from .comparison import ComparisonData
    from .datasets import load_criteo_uplift, load_hillstrom

    loader = load_hillstrom if name.startswith("hillstrom") else load_criteo_uplift
    try:
        data = loader(path, **kwargs)
    except (FileNotFoundError, ValueError) as exc:  # missing, empty or corrupt file
        raise CLIError(str(exc)) from None
    X = data.X.to_numpy(dtype=float) if hasattr(data.X, "to_numpy") else data.X

    def factory(seed):
        import numpy as np

        rows = np.arange(len(X))
        if n_samples and n_samples < len(rows):
            rows = np.sort(np.random.default_rng(seed).choice(rows, n_samples, replace=False))
        return ComparisonData.from_arrays(name, X[rows], data.treatment[rows],
                                          data.revenue[rows], data.cost[rows],
                                          random_state=seed)

    return factory


# -- output ----------------------------------------------------------------------------------
def _print_table(summary):
    table = summary.rename(columns=_TABLE_COLUMNS)
    print(table.to_string(index=False))  # the current sys.stdout (captured in tests)


def _write_results(result, summary, output, stem):
    output.mkdir(parents=True, exist_ok=True)
    result.to_csv(output / f"{stem}.csv", index=False)
    md = summary.rename(columns=_TABLE_COLUMNS)
    (output / f"{stem}.md").write_text(_markdown(md))
    return [output / f"{stem}.csv", output / f"{stem}.md"]


def _markdown(frame):
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _plot_cost_curves(result, factory, path, seed, frac):
    """One panel per data set: cost curves of every method at the first seed/budget."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'sklearn-budget[plot]'): "
              "no plot written.", file=sys.stderr)
        return None
    from .plotting import CostCurveDisplay

    predictions = result.attrs.get("predictions", {})
    data = factory(seed)
    budget = float(result.loc[result.budget_fraction == frac, "budget"].iloc[0])
    fig, ax = plt.subplots(figsize=(9, 5.5))
    oracle = data.true_uplift() if data.has_truth else None
    first = True
    for (s, f, method), (r, c) in predictions.items():
        if s != seed or f != frac or method in ("oracle", "random"):
            continue
        disp = CostCurveDisplay.from_predictions(
            r, c, data.treatment_test, data.revenue_test, data.cost_test,
            levels=list(range(1, data.n_levels + 1)), oracle=oracle if first else None,
            budget=budget, name=method, ax=ax, random_reference=first)
        disp.budget_marker_.set_label("_nolegend_")
        first = False
    ax.axvline(budget, color="gray", linewidth=0.8, label=f"budget ({budget:.3g} per user)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    ax.set_title(f"{data.name}: EOM cost curves, test split, seed {seed}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- commands --------------------------------------------------------------------------------
def _check_methods(methods):
    from .comparison import ALL_METHODS, TWO_STAGE

    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise CLIError(f"Unknown method(s) {unknown}; choose from {', '.join(ALL_METHODS)}.")
    if any(m in TWO_STAGE for m in methods):
        try:
            _import_causalml_meta()
            import lightgbm  # noqa: F401
        except ImportError:
            raise CLIError(
                "The causalml baselines (" + ", ".join(m for m in methods if m in TWO_STAGE)
                + ") need the 'baselines' extra: pip install 'sklearn-budget[baselines]', "
                "or leave them out with --methods.") from None


def _check_repeats(args):
    """A value given twice (``--seeds 0 0``) would be counted twice in the means."""
    from .comparison import repeated_values

    for option in ("methods", "seeds", "budgets", "datasets"):
        repeated = repeated_values(getattr(args, option, None) or [])
        if repeated:
            raise CLIError(f"--{option} lists {', '.join(repeated)} more than once; give each "
                           "once.")


def _run(args, factories, stem):
    from .comparison import END_TO_END, compare_allocators, summarize

    _check_methods(args.methods)
    if args.device != "auto":
        import torch

        from ._end_to_end._setup import check_device

        try:  # a device string, and one that runs here if an end-to-end model needs it
            if any(m in END_TO_END for m in args.methods):
                check_device(args.device)
            else:
                torch.device(args.device)
        except ValueError as exc:  # check_device's message
            raise CLIError(str(exc).replace("device=", "--device ")) from None
        except RuntimeError as exc:  # torch's, for a string that is not a device
            raise CLIError(f"--device {args.device!r} is not a torch device ({exc}); use "
                           "auto, cpu, cuda or cuda:N.") from None
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise CLIError(f"--output {str(output)!r} is a file; give a folder for the tables "
                       "and plots.")
    check_writable_folder(output, f"--output {str(output)!r}")
    try:  # before the fits: a folder that cannot be made fails now, not after them
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"Cannot create --output {str(output)!r}: {exc.strerror or exc}.") \
            from None
    results = []
    remaining = args.time_limit
    import time

    import pandas as pd

    t0 = time.perf_counter()
    complete = True
    plots = []
    for name, factory in factories:
        if remaining is not None:
            remaining = args.time_limit - (time.perf_counter() - t0)
            if remaining <= 0:
                complete = False
                break
        res = compare_allocators(factory, args.methods, args.budgets, args.seeds,
                                 device=args.device, fast=args.fast, time_limit=remaining,
                                 progress=not args.quiet, keep_predictions=True)
        complete &= res.attrs["complete"]
        if not res.empty:
            results.append(res)
            output.mkdir(parents=True, exist_ok=True)
            png = _plot_cost_curves(res, factory, output / f"cost_curves_{name}.png",
                                    args.seeds[0], args.budgets[0])
            if png:
                plots.append(png)
    result = pd.concat(results, ignore_index=True) if results else pd.DataFrame()
    summary = summarize(result)
    if summary.empty and not complete:
        print("No fit finished within the time limit.")
    elif summary.empty:
        print(f"No results: none of the methods {args.methods} applies to these data sets "
              "(the oracle needs the ground truth that only synthetic data has).")
    else:
        _print_table(summary)
    files = _write_results(result, summary, output, stem) + plots
    print(("Results" if complete else "Partial results (time limit reached)") + " written to: "
          + ", ".join(str(f) for f in files))
    return 0


def _cmd_demo(args):
    _check_repeats(args)
    args.methods = args.methods or (["end-to-end", "end-to-end-rw0", "T", "X", "random",
                                     "oracle"])
    try:
        _import_causalml_meta()
    except ImportError:
        print("causalml is not installed: the demo runs without the T/X baselines "
              "(pip install 'sklearn-budget[baselines]' to include them).", file=sys.stderr)
        args.methods = [m for m in args.methods if m not in ("S", "T", "X", "R", "DR")]
    n = args.n_samples if args.n_samples is not None else (6000 if args.quick else 20000)
    args.fast = args.quick
    if not args.quiet:
        print(f"sklearn-budget demo: synthetic coupon RCT (make_marketing_rct, setting "
              f"{args.setting!r}, {n} users, 50/50 train/test), budget = "
              f"{', '.join(f'{b:g}' for b in args.budgets)} x the oracle's full spend, "
              f"seeds {args.seeds}.")
    return _run(args, [(f"synthetic-{args.setting}", _synthetic_factory(args.setting, n))],
                "demo")


def _cmd_benchmark(args):
    _check_repeats(args)
    factories = []
    for spec in args.datasets:
        name, _, path = spec.partition("=")
        if name in ("synthetic", "synthetic-default", "synthetic-hard") and path:
            raise CLIError(f"--datasets {spec!r}: synthetic data is generated, not read; "
                           f"drop '={path}'.")
        if name in ("synthetic", "synthetic-default", "synthetic-hard"):
            setting = "hard" if name.endswith("hard") else "default"
            factories.append((f"synthetic-{setting}",
                              _synthetic_factory(setting, 20000 if args.n_samples is None
                                                 else args.n_samples)))
        elif name in ("hillstrom", "hillstrom-visit"):
            cost = "visit" if name.endswith("visit") else "contact"
            factories.append((name, _public_factory(name, path or None, args.n_samples,
                                                    cost=cost)))
        elif name == "criteo":
            factories.append((name, _public_factory(name, path or None, args.n_samples)))
        else:
            raise CLIError(f"Unknown data set {spec!r}; use synthetic, synthetic-hard, "
                           "hillstrom[=PATH], hillstrom-visit[=PATH] or criteo[=PATH].")
        names = [name for name, _ in factories]
        if names.count(names[-1]) > 1:  # two spellings, or two files, under one name
            raise CLIError(f"--datasets lists {names[-1]} more than once (as {spec!r}); its "
                           "rows would be averaged as seeds. Give each once (another file: "
                           "another run, with another --output).")
    args.methods = args.methods or ["end-to-end", "end-to-end-rw0", "T", "X", "random",
                                    "oracle"]
    return _run(args, factories, "benchmark")


# -- parser ----------------------------------------------------------------------------------
def _add_comparison_args(p, *, default_output):
    p.add_argument("--methods", nargs="+", default=None,
                   help="methods to compare (end-to-end, end-to-end-es, end-to-end-softmax, "
                        "end-to-end-rw0, S, T, X, R, DR, random, oracle)")
    p.add_argument("--budgets", nargs="+", type=_number(float, 1e-6, strict=False, high=100),
                   default=[0.4],
                   help="budgets per user, as fractions of the oracle's full spend "
                        "(synthetic data) or of the dearest arm's mean incremental cost "
                        "over control (real data) (default: 0.4)")
    p.add_argument("--seeds", nargs="+", type=_number(int, 0, strict=False, high=2**32 - 1),
                   default=[0], help="random seeds, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--n-samples", type=_number(int, 100, strict=False, high=100_000_000),
                   default=None, help="users per data set (100 to 100,000,000)")
    p.add_argument("--device", default="auto", help="torch device of the end-to-end model")
    p.add_argument("--time-limit", type=_number(float, 0, strict=False), default=None,
                   help="seconds; stop starting new fits after it, keep partial results")
    p.add_argument("--output", default=default_output, help="folder for tables and plots")
    p.add_argument("--quiet", action="store_true", help="no progress output")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with a usage error on one line (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(
        prog="sklearn-budget",
        description="Budget allocation for marketing incentives (end-to-end vs two-stage).")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="compare allocators on built-in synthetic data")
    _add_comparison_args(demo, default_output="sklearn_budget_demo")
    demo.add_argument("--quick", action="store_true",
                      help="smaller data and models (about 15 s on 2 cores)")
    demo.add_argument("--setting", choices=["default", "hard"], default="default",
                      help="synthetic setting: default, or hard (a small uplift over a "
                           "large baseline, heavy-tailed baskets)")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("benchmark", help="the full comparison suite")
    bench.add_argument("--datasets", nargs="+", default=["synthetic"],
                       help="synthetic, synthetic-hard, hillstrom[=PATH], "
                            "hillstrom-visit[=PATH], criteo[=PATH]")
    _add_comparison_args(bench, default_output="sklearn_budget_benchmark")
    bench.add_argument("--fast", action="store_true", help="smaller models")
    bench.set_defaults(func=_cmd_benchmark)

    alloc = sub.add_parser("allocate", help="assign treatments with a saved model")
    alloc.add_argument("--model", required=True, help="joblib file of a fitted allocator")
    alloc.add_argument("--input", required=True, help="CSV or Parquet file of users")
    group = alloc.add_mutually_exclusive_group()
    group.add_argument("--budget", type=_number(float, 0, strict=False), default=None,
                       help="average cost per user (default: the model's budget)")
    group.add_argument("--total-budget", type=_number(float, 0, strict=False), default=None,
                       help="total cost over all users in the file")
    alloc.add_argument("--output", required=True,
                       help="file to write: .csv or .txt (optionally .gz, .bz2, .xz), or .parquet")
    alloc.add_argument("--id-column", default=None,
                       help="column copied to the output and not used as a feature (default: "
                            "'id', if the input has one)")
    alloc.add_argument("--with-uplift", action="store_true",
                       help="also write predicted revenue and cost uplift per level")
    alloc.add_argument("--chunk-rows", type=_number(int, 1, strict=False), default=200_000,
                       help="users read, scored and written at a time (default: 200000); "
                            "memory grows with it, not with the file")
    alloc.add_argument("--quiet", action="store_true", help="no progress bar")
    alloc.set_defaults(func=_cmd_allocate)
    return parser


def main(argv=None):
    """Entry point of ``sklearn-budget``; returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "quiet", False):
        os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"sklearn-budget {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
