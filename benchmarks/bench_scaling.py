"""Scaling of ``solve_budget_allocation`` and prediction throughput of the estimator.

Three sections, measured in one run on one machine:

1. ``n``: solve time against the number of users, n in {1e4, 1e5, 1e6, 1e7}
   at K = 8, float64 and float32, with the time of one
   ``np.argmax(scores, axis=1)`` over the same (n, K) score matrix alongside.
   The largest sizes are skipped when the machine's available memory could
   not hold them (about 6x the float64 input while the data is generated).
2. ``K``: the same against the number of levels, K in {2, 4, 8, 16} at
   n = 1e6.
3. ``throughput``: an :class:`~sklearn_budget.EndToEndBudgetAllocator` fitted
   on ``make_marketing_rct(n_samples=5000, random_state=0)`` (``max_epochs=2``)
   times ``predict`` (the uplift network), ``allocate`` (calibrated multiplier:
   one pass of :func:`~sklearn_budget.allocate_at_multiplier`) and
   ``allocate(total_budget=...)`` (the budget solver on the predictions) on n
   in {1e4, 1e5, 1e6} rows made by tiling the data set's features.

Every time is the best of ``--repeat`` runs (5 by default; the machine may be
shared, the minimum is the least disturbed run); solve and argmax are timed
alternately on the same data. Data as in ``bench_solver.py``.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_scaling.py            # full, a few minutes
    PYTHONPATH=. python benchmarks/bench_scaling.py --quick    # n <= 1e6, K at 1e5

Writes ``DIR/scaling.md``, ``DIR/scaling.csv`` and a log-log plot
``DIR/scaling.png`` (default DIR = ``benchmarks/results``, git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import os
import platform
import sys
import time

import numpy as np

try:
    from sklearn_budget import EndToEndBudgetAllocator, solve_budget_allocation
except ImportError:  # run from a checkout without PYTHONPATH=.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from sklearn_budget import EndToEndBudgetAllocator, solve_budget_allocation
from sklearn_budget.datasets import make_marketing_rct

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_solver import _timed, hardware_lines, make_instance, md_table  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency of the package
    torch = None


def available_bytes():
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fits(n, k):
    """Whether generating and solving an (n, k) float64 instance fits in memory."""
    avail = available_bytes()
    return avail is None or 6 * 2 * n * k * 8 < avail


def solve_row(r, c, bpu, repeat):
    """Best-of-``repeat`` solve and argmax times on the same data, alternately."""
    solve = (lambda: solve_budget_allocation(r, c, budget_per_user=bpu))
    _, sol = _timed(solve)  # warm-up, and lam* for the score matrix
    scores = r - sol.multiplier * c
    t_solve, t_argmax = [], []
    for _ in range(repeat):
        t_solve.append(_timed(solve)[0])
        t_argmax.append(_timed(lambda: np.argmax(scores, axis=1))[0])
    scores = None  # free it (not `del`: the lambda above closes over it)
    n = r.shape[0]
    return {
        "n": n, "K": r.shape[1], "dtype": str(r.dtype),
        "solve_s": min(t_solve), "argmax_s": min(t_argmax),
        "ratio": min(t_solve) / min(t_argmax),
        "ns_per_user": 1e9 * min(t_solve) / n, "users_per_s": n / min(t_solve),
        "dual_gap": sol.optimality_gap,
    }


def section_solver(todo, repeat, log):
    rows, notes = [], []
    for axis, n, k in todo:
        if not fits(n, k):
            notes.append(f"n = {n:,}, K = {k} skipped: not enough available memory.")
            log(f"skip {n}x{k}")
            continue
        r64, c64, bpu = make_instance(n, k, seed=2)
        for dtype in (np.float64, np.float32):
            r, c = (r64, c64) if dtype is np.float64 else (r64.astype(dtype), c64.astype(dtype))
            row = solve_row(r, c, bpu, repeat)
            row.update(section=f"scaling-{axis}")
            rows.append(row)
            log(f"{axis}: {n}x{k} {row['dtype']}: {row['solve_s']:.4f}s, "
                f"argmax {row['argmax_s']:.4f}s, {row['ratio']:.2f}x")
            del r, c
            gc.collect()
        del r64, c64
        gc.collect()
    return rows, notes


def section_throughput(sizes, repeat, log):
    data = make_marketing_rct(n_samples=5000, random_state=0)
    t0 = time.perf_counter()
    est = EndToEndBudgetAllocator(max_epochs=2, random_state=0).fit(
        data.X, data.revenue, treatment=data.treatment, cost=data.cost)
    fit_s = time.perf_counter() - t0
    log(f"throughput: fitted in {fit_s:.1f}s")
    rows = []
    for n in sizes:
        reps = -(-n // data.X.shape[0])
        X = np.tile(data.X, (reps, 1))[:n]
        k = len(est.levels_)
        calls = [
            ("predict", lambda: est.predict(X)),
            ("allocate (calibrated multiplier)", lambda: est.allocate(X)),
            ("allocate (total_budget: solver)",
             lambda: est.allocate(X, total_budget=est.budget * n)),
        ]
        for name, fn in calls:
            fn()  # warm-up
            best = min(_timed(fn)[0] for _ in range(repeat))
            rows.append({"section": "throughput", "call": name, "n": n, "K": k,
                         "seconds": best, "rows_per_s": n / best, "us_per_row": 1e6 * best / n})
            log(f"throughput {name} n={n}: {best:.4f}s ({n / best:,.0f} rows/s)")
        X = None  # free it (not `del`: the lambdas above close over it)
        gc.collect()
    return rows, fit_s


def plot(rows_n, rows_k, rows_tp, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for dtype, marker in (("float64", "o"), ("float32", "s")):
        sel = [r for r in rows_n if r["dtype"] == dtype]
        if not sel:
            continue
        n = [r["n"] for r in sel]
        ax.plot(n, [r["solve_s"] for r in sel], marker=marker, label=f"solve {dtype}")
        ax.plot(n, [r["argmax_s"] for r in sel], marker=marker, linestyle="--",
                label=f"argmax {dtype}")
    ax.set(xscale="log", yscale="log", xlabel="users n (K = 8)", ylabel="seconds (best of runs)",
           title="Solver vs one argmax pass, against n")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    for dtype, marker in (("float64", "o"), ("float32", "s")):
        sel = [r for r in rows_k if r["dtype"] == dtype]
        if not sel:
            continue
        k = [r["K"] for r in sel]
        ax.plot(k, [r["solve_s"] for r in sel], marker=marker, label=f"solve {dtype}")
        ax.plot(k, [r["argmax_s"] for r in sel], marker=marker, linestyle="--",
                label=f"argmax {dtype}")
    n_k = rows_k[0]["n"] if rows_k else 0
    ax.set(xscale="log", yscale="log", xlabel=f"levels K (n = {n_k:,})", ylabel="seconds",
           title="Solver vs one argmax pass, against K")
    ax.set_xticks([r["K"] for r in rows_k if r["dtype"] == "float64"] or [1])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[2]
    for call in dict.fromkeys(r["call"] for r in rows_tp):
        sel = [r for r in rows_tp if r["call"] == call]
        ax.plot([r["n"] for r in sel], [r["seconds"] for r in sel], marker="o", label=call)
    ax.set(xscale="log", yscale="log", xlabel="rows", ylabel="seconds",
           title="EndToEndBudgetAllocator throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


SOLVE_COLS = [("n", "n"), ("K", "K"), ("dtype", "dtype"), ("solve_s", "solve (s)"),
              ("argmax_s", "argmax (s)"), ("ratio", "solve / argmax"),
              ("ns_per_user", "ns / user"), ("users_per_s", "users / s"),
              ("dual_gap", "dual gap")]
TP_COLS = [("call", "call"), ("n", "rows"), ("K", "levels"), ("seconds", "seconds"),
           ("rows_per_s", "rows / s"), ("us_per_row", "us / row")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="n up to 1e6, the K sweep at n = 1e5, throughput up to 1e5 rows")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed repetitions of each measurement; the best is reported "
                             "(default: %(default)s)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"),
                        help="directory for scaling.md/.csv/.png (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if args.quick:
        ns, n_for_k, tp_sizes = [10**4, 10**5, 10**6], 10**5, [10**4, 10**5]
    else:
        ns, n_for_k, tp_sizes = [10**4, 10**5, 10**6, 10**7], 10**6, [10**4, 10**5, 10**6]
    ks = [2, 4, 8, 16]

    rows_n, notes = section_solver([("n", n, 8) for n in ns], args.repeat, log)
    rows_k, notes_k = section_solver([("K", n_for_k, k) for k in ks], args.repeat, log)
    notes += notes_k
    rows_tp, fit_s = section_throughput(tp_sizes, args.repeat, log)

    header = [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; mode: "
        f"{'quick' if args.quick else 'full'}",
        *hardware_lines(),
        f"- python {platform.python_version()}, numpy {np.__version__}"
        + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""),
        f"- times: best of {args.repeat} (gc before each); solve and argmax timed alternately "
        "on the same data; argmax = one `np.argmax(r - lam* c, axis=1)` over the (n, K) "
        "score matrix. Data as in `bench_solver.py` (seed 2). The issue's target (solve <= 5x, "
        "desirably <= 3x, one argmax) is set at 5,000,000 x 8; below about 1e6 users the solve's "
        "fixed cost (a 50,000-user subsample, a few ms) dominates.",
    ]
    out = ["# Scaling of `solve_budget_allocation` and estimator throughput", "", *header, ""]
    out += ["## 1. Solve time against n (K = 8)", "", md_table(rows_n, SOLVE_COLS), ""]
    out += [f"## 2. Solve time against K (n = {n_for_k:,})", "", md_table(rows_k, SOLVE_COLS), ""]
    out += ["## 3. EndToEndBudgetAllocator prediction throughput", "",
            f"Fitted on `make_marketing_rct(n_samples=5000, random_state=0)` with "
            f"`max_epochs=2` in {fit_s:.1f}s; rows are the data set's features tiled. "
            "`allocate` uses the calibrated multiplier (one pass of "
            "`allocate_at_multiplier`); `allocate(total_budget=...)` solves the budget problem "
            "on the predictions (budget = the estimator's `budget` per row).", "",
            md_table(rows_tp, TP_COLS), ""]
    notes.append(f"total benchmark wall time: {time.perf_counter() - start:.0f}s")
    out += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    text = "\n".join(out)
    print(text)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "scaling.md"), "w") as f:
        f.write(text)
    all_rows = rows_n + rows_k + rows_tp
    fields = list(dict.fromkeys(["section"] + [k for r in all_rows for k in r]))
    with open(os.path.join(args.output, "scaling.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(all_rows)
    try:
        plot(rows_n, rows_k, rows_tp, os.path.join(args.output, "scaling.png"))
    except ImportError:  # pragma: no cover - matplotlib is optional
        log("matplotlib not installed: no plot")
    log(f"wrote {args.output}/scaling.md, scaling.csv and scaling.png")


if __name__ == "__main__":
    main()
