"""How often a Dask DataFrame's partitions are built by the solver, the metrics and ``score``.

A frame whose partitions are costly to build (a CSV parsed, features computed, a
join) is simulated by a ``map_partitions`` step that counts its calls. Its columns
are passed to one call at a time, as users do: ``frame[r_cols]`` and
``frame[c_cols]`` to the solver (then its labels computed), the RCT's columns to
``cost_curve`` and ``expected_outcome``, and features beside the target columns to
an allocator's ``score`` (the array: its slices as ``y``, ``treatment=``,
``cost=``). Reported: builds of each partition per call, against the
same calls on one Dask array of the same data (whose chunks are built once per
pass) and against the expected minimum (one pass to count the frame's rows, plus
the call's passes).

Usage (from the repository root; needs ``pip install ".[dask]"``)::

    python benchmarks/bench_dask_frames.py            # ~30 s on 2 shared cores
    python benchmarks/bench_dask_frames.py --quick    # ~10 s

Writes ``DIR/dask_frames.md`` (default DIR = ``benchmarks/results``) and prints it.
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from _common import positive_int  # noqa: E402
from bench_solver import hardware_lines, md_table  # noqa: E402

from sklearn_budget import (EndToEndBudgetAllocator, rct_target,  # noqa: E402
                            solve_budget_allocation)
from sklearn_budget.metrics import cost_curve, expected_outcome  # noqa: E402

K = 4
COLS = [("call", "call"), ("frame", "frame: builds per partition"),
        ("array", "Dask array: builds per chunk"), ("minimum", "expected minimum (frame)"),
        ("s", "frame: time (s)")]


def make_frame(n, seed=0):
    """Features, uplifts of K levels and RCT columns of n users, as one pandas frame."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    r = np.abs(rng.normal(1, 1, (n, K)))
    c = np.abs(rng.normal(1, 0.3, (n, K))) * np.arange(1, K + 1)
    t = rng.integers(0, K + 1, n)
    arm = np.maximum(t - 1, 0)
    revenue = np.where(t > 0, r[np.arange(n), arm], 0) + rng.normal(0, 1, n)
    cost = np.where(t > 0, c[np.arange(n), arm], 0.0)
    cols = {f"x{j}": X[:, j] for j in range(3)}
    cols.update({f"r{j}": r[:, j] for j in range(K)})
    cols.update({f"c{j}": c[:, j] for j in range(K)})
    cols.update(treatment=t, revenue=revenue, cost=cost)
    return pd.DataFrame(cols)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40,000 users instead of 200,000")
    parser.add_argument("--n", type=positive_int, default=None, help="users")
    parser.add_argument("--partitions", type=positive_int, default=8)
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (40_000 if args.quick else 200_000)
    command = " ".join(["python benchmarks/bench_dask_frames.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip()
    warnings.filterwarnings("ignore")
    dask.config.set(scheduler="threads")
    pdf = make_frame(n)
    builds = collections.Counter()

    def build(part, partition_info=None):  # the costly step, counted
        builds[partition_info["number"]] += 1
        return part

    def frame():
        base = dd.from_pandas(pdf, npartitions=args.partitions)
        return base.map_partitions(build, meta=base._meta)

    def build_chunk(block, block_info=None):
        builds[block_info[0]["chunk-location"][0]] += 1
        return block

    def array():
        rows = -(-n // args.partitions)
        return da.from_array(pdf.to_numpy(), chunks=(rows, -1)).map_blocks(build_chunk,
                                                                           dtype=float)

    rc, cc = [f"r{j}" for j in range(K)], [f"c{j}" for j in range(K)]
    xc, yc = ["x0", "x1", "x2"], ["treatment", "revenue", "cost"]
    at = {name: i for i, name in enumerate(pdf.columns)}
    y = rct_target(pdf["treatment"], pdf["revenue"], pdf["cost"])
    est = EndToEndBudgetAllocator(budget=1.0, max_epochs=2, warmup_epochs=1,
                                  hidden_layer_sizes=(8,), random_state=0,
                                  device="cpu").fit(pdf[xc].iloc[:10_000], y[:10_000])

    def cols(src, names):
        if isinstance(src, dd.DataFrame):
            return src[names]
        return src[:, [at[c] for c in names]] if isinstance(names, list) else src[:, at[names]]

    calls = {
        "solve_budget_allocation(r cols, c cols) + labels": (
            lambda s: solve_budget_allocation(cols(s, rc), cols(s, cc),
                                              budget=0.5 * n).assignment.compute(),
            "4 (rows counted, subsample, full pass, labels)"),
        "cost_curve(r cols, c cols, treatment, revenue, cost)": (
            lambda s: cost_curve(cols(s, rc), cols(s, cc), cols(s, "treatment").astype(int),
                                 cols(s, "revenue"), cols(s, "cost")),
            "3 (rows counted, 2 passes)"),
        "expected_outcome(policy, treatment, revenue, cost)": (
            lambda s: expected_outcome(np.zeros(n, dtype=int), cols(s, "treatment").astype(int),
                                       cols(s, "revenue"), cols(s, "cost")),
            "3 (rows counted, 2 passes)"),
        "est.score(features, target columns)": (
            lambda s: (est.score(cols(s, xc), s[yc]) if isinstance(s, dd.DataFrame) else
                       est.score(cols(s, xc), cols(s, "revenue"),
                                 treatment=cols(s, "treatment").astype(int),
                                 cost=cols(s, "cost"))),
            "3 (rows counted, 2 passes)"),
    }
    rows = []
    for name, (call, minimum) in calls.items():
        per = {}
        for kind, source in (("array", array), ("frame", frame)):
            builds.clear()
            t0 = time.perf_counter()
            call(source())
            seconds = time.perf_counter() - t0
            per[kind] = sum(builds.values()) / args.partitions
        rows.append(dict(call=name, frame=f"{per['frame']:g}", array=f"{per['array']:g}",
                         minimum=minimum, s=seconds))
        print(f"{name}: {per['frame']:g} builds per partition (array: {per['array']:g})",
              file=sys.stderr, flush=True)
    text = "\n".join([
        "# Builds of a Dask DataFrame's partitions per call", "",
        f"- command: `{command}`", *hardware_lines(),
        f"- {n:,} users, {args.partitions} partitions; dask {dask.__version__}, threaded "
        "scheduler", "", md_table(rows, COLS)])
    print(text)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "dask_frames.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
