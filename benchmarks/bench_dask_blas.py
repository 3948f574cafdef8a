"""A cost curve on Dask arrays with many BLAS threads against one: the oversubscription.

Each policy of a metric's sweep costs a few dot products over a chunk's users (the
weights against a boolean mask of the matched users), which OpenBLAS spreads over
all cores; under dask's threaded scheduler every chunk's task does so at once, and on
a machine shared with other jobs that oversubscribes the cores. This times
``cost_curve`` over a fixed grid of 40 multipliers (20 to 0.05, geometric, and 0) on
an RCT of 1,000,000 users x 4 levels (``--n``; 300,000 with ``--quick``; the data of
the review that measured it), the uplifts as Dask arrays in chunks of
``--chunk-rows`` (100,000) rows, the outcomes numpy arrays:

- with ``--many-threads`` BLAS threads (default: the logical cores, what OpenBLAS
  starts with unless ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` say otherwise),
- with one BLAS thread (``threadpoolctl.threadpool_limits(1)``, as the README
  advises; the same as starting with ``OPENBLAS_NUM_THREADS=1``),

alternately ``--repeat`` times (3), and the same in memory. The threads are set
with ``threadpoolctl`` in this one process, whatever the environment says; the
report gives the BLAS library, the threads it had at start and the load average
before and after (the ratio is a property of the machine's load: on idle cores the
two are close). Also one 100,000-user float @ bool dot product at each setting
(mean of 20), and the largest difference between the curves (results unchanged).

Usage (from the repository root; needs dask and threadpoolctl)::

    python benchmarks/bench_dask_blas.py             # 1,000,000 users: about a minute
                                                     # (more on loaded cores)
    python benchmarks/bench_dask_blas.py --n 2000000
    python benchmarks/bench_dask_blas.py --quick     # 300,000 users, ~15 s

Writes ``DIR/dask_blas.md`` (default DIR = ``benchmarks/results``; with the command
and the figure in the README's words) and ``DIR/dask_blas.json``, and prints the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from _common import positive_int  # noqa: E402
from bench_solver import hardware_lines, md_table  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from sklearn_budget.metrics import cost_curve  # noqa: E402

K = 4
GRID = np.r_[np.geomspace(20, 0.05, 39), 0.0]
COLS = [("way", "way"), ("threads", "BLAS threads"), ("best", "best (s)"),
        ("median", "median (s)"), ("ratio", "best / Dask at 1 thread"),
        ("dot_ms", "one 1e5 dot (ms)"), ("diff", "largest difference from Dask at 1 thread")]


def make_rct(n, seed=0):
    """The review's data: ``(r, c, treatment, revenue, cost)``, (n, 4) uplifts."""
    rng = np.random.default_rng(seed)
    base = np.abs(rng.normal(size=(n, 1))) + 0.1
    c = base * np.arange(1, K + 1) * 0.5 + rng.uniform(0, 0.1, (n, K))
    r = np.sqrt(np.arange(1, K + 1)) * (1 + rng.normal(size=(n, 1))) * base
    t = rng.integers(0, K + 1, n)
    revenue = rng.normal(size=n)
    cost = rng.uniform(0, 1, n) * (t > 0)
    return r, c, t, revenue, cost


def blas_libraries():
    return [f"{x['internal_api']} {x.get('version') or '(version unknown)'} "
            f"({x['num_threads']} thread{'s' if x['num_threads'] != 1 else ''})"
            for x in threadpool_info() if x["user_api"] == "blas"]


def dot_ms(threads, rng):
    """Mean time (ms) of one 100,000-user float @ bool dot product at ``threads``."""
    w, m = rng.random(100_000), rng.random(100_000) < 0.2
    with threadpool_limits(threads, user_api="blas"):
        t0 = time.perf_counter()
        for _ in range(20):
            w @ m
        return (time.perf_counter() - t0) / 20 * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300,000 users, 2 repeats")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="users (default 1,000,000)")
    parser.add_argument("--chunk-rows", type=positive_int, default=100_000)
    parser.add_argument("--many-threads", type=positive_int, default=os.cpu_count() or 1,
                        help="BLAS threads of the 'many' runs (default: the logical cores, "
                             f"here {os.cpu_count()})")
    parser.add_argument("--repeat", type=positive_int, default=None,
                        help="runs of each setting, alternately (default 3; 2 with --quick)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (300_000 if args.quick else 1_000_000)
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 3)
    command = " ".join(["python benchmarks/bench_dask_blas.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip()
    libraries = blas_libraries()
    if not libraries:
        parser.error("threadpoolctl finds no BLAS library loaded by numpy: nothing to limit")
    hardware = hardware_lines()
    t_start = time.perf_counter()
    r, c, t, revenue, cost = make_rct(n)
    rd, cd = (da.from_array(x, chunks=(args.chunk_rows, K)) for x in (r, c))
    settings = {"many": args.many_threads, "one": 1}
    ways = {"dask": (rd, cd), "numpy": (r, c)}
    times = {(way, s): [] for way in ways for s in settings}
    curves = {}
    for rep in range(repeat):
        order = list(settings) if rep % 2 == 0 else list(settings)[::-1]
        for way, (rr, cc) in ways.items():
            for setting in order:
                with threadpool_limits(settings[setting], user_api="blas"):
                    t0 = time.perf_counter()
                    curves[way, setting] = cost_curve(rr, cc, t, revenue, cost,
                                                      multipliers=GRID)
                    seconds = time.perf_counter() - t0
                times[way, setting].append(seconds)
                print(f"run {rep + 1}/{repeat}: {way}, {settings[setting]} BLAS thread(s): "
                      f"{seconds:.2f}s", file=sys.stderr, flush=True)
    rng = np.random.default_rng(1)
    dots = {s: dot_ms(settings[s], rng) for s in settings}
    ref = curves["dask", "one"]
    one = min(times["dask", "one"])
    scale = max(np.abs(ref.incremental_revenue).max(), np.abs(ref.incremental_cost).max())
    rows, gaps = [], {}
    for way in ways:
        for setting in settings:
            curve = curves[way, setting]
            gaps[way, setting] = gap = max(
                np.abs(curve.incremental_revenue - ref.incremental_revenue).max(),
                np.abs(curve.incremental_cost - ref.incremental_cost).max())
            label = ("dask (from_array)" if way == "dask" else "numpy (in memory)")
            rows.append(dict(way=label, threads=settings[setting],
                             best=min(times[way, setting]),
                             median=statistics.median(times[way, setting]),
                             ratio=min(times[way, setting]) / one,
                             dot_ms=dots[setting], diff=f"{gap:.1e}"))
    many = min(times["dask", "many"])
    # unchanged: equal up to the order of summation (a BLAS dot product over more threads
    # may add in another order)
    unchanged = gaps["dask", "many"] <= 1e-12 * scale
    figure = (f"cost_curve on Dask ({n:,} users, {args.chunk_rows:,}-row chunks, "
              f"{len(GRID)} multipliers): {many / one:.1f} times slower with "
              f"{args.many_threads} BLAS threads ({many:.2f} s) than with one ({one:.2f} s) "
              f"on {os.cpu_count()} cores (load average at the end {os.getloadavg()[0]:.2f}); "
              f"results {'unchanged' if unchanged else 'CHANGED'}")
    total = time.perf_counter() - t_start
    text = "\n".join([
        f"# A cost curve on Dask arrays: {args.many_threads} BLAS threads vs 1", "",
        f"- command: `{command}`", *hardware,
        "- load average at the end {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min)".format(
            *os.getloadavg()),
        f"- BLAS at start: {', '.join(libraries)}; dask {dask.__version__}, threaded scheduler "
        f"(default), numpy {np.__version__}; {total:.0f} s in all",
        f"- an RCT of {n:,} users x {K} levels, uplifts in chunks of {args.chunk_rows:,} rows, "
        f"outcomes numpy; {len(GRID)} multipliers; {repeat} runs of each setting, "
        "alternately", "", "Figure:", "", f"- {figure}", "", md_table(rows, COLS)])
    print(text)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "dask_blas.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.output, "dask_blas.json"), "w") as f:
        json.dump(dict(command=command, figure=figure, blas=libraries, n=n,
                       chunk_rows=args.chunk_rows, seconds=total,
                       times={f"{w} {settings[s]}": v for (w, s), v in times.items()},
                       rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
