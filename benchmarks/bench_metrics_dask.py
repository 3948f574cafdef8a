"""Metrics of a large RCT on Dask arrays: in memory, chunked, and out of core.

An RCT of 5,000,000 users (1,000,000 with ``--quick``; ``--n`` for others)
with 4 incentive levels and noisy uplift predictions, scored three ways in
one run:

- ``numpy``: the in-memory metrics (the baseline of every ratio);
- ``dask``: the same arrays wrapped by ``dask.array.from_array`` in chunks of
  ``--chunk-rows`` rows (default 500,000);
- ``dask, out of core``: the arrays saved as ``.npy`` files in a temporary
  folder and read a chunk at a time (each chunk copied out of a memory map,
  like a zarr or HDF5 dataset would be read).

Two metrics are timed: ``value_at_budget`` (the cost curve over an automatic
grid of 100 multipliers, read at a budget: what ``score`` computes) and
``expected_outcome`` of one assignment. For each: the best of ``--repeat``
wall times, the ratio to numpy, the peak memory that tracemalloc sees
relative to the input's size, how often each chunk was read, and the
difference from the in-memory result. Above 200,000 users the Dask grid's
quantiles come from a sample of the breakpoints, so the value read at the
budget differs a little; the curve at the in-memory grid's multipliers is
compared as well (it differs only in the last bits).

Usage (from the repository root; needs dask: ``pip install ".[dask]"``)::

    python benchmarks/bench_metrics_dask.py            # about five minutes on 2 cores
    python benchmarks/bench_metrics_dask.py --quick

Writes ``DIR/metrics_dask.md`` (default DIR = ``benchmarks/results``) and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask.array as da  # noqa: E402
from _common import positive_int  # noqa: E402
from bench_dask import _READS, _best, _counted, write_report  # noqa: E402
from bench_solver import md_table, peak_memory  # noqa: E402

from sklearn_budget._rows_on_disk import RowsOnDisk  # noqa: E402
from sklearn_budget.metrics import cost_curve, expected_outcome, value_at_budget  # noqa: E402

COLS = [("way", "way"), ("chunks", "chunk rows"), ("metric", "metric"), ("s", "time (s)"),
        ("ratio", "x numpy"), ("peak_x_input", "peak memory (x input)"),
        ("reads", "reads of each chunk"), ("diff", "difference from numpy")]
K = 4
BUDGET = 0.5


def make_rct(n, seed=0):
    """``(rct, uplift)``: (n, 3) treatment / revenue / cost and (n, 2K) predicted r | c."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, K + 1, n)
    value = np.arange(1, K + 1) * 0.5  # coupon values of the levels
    gain = rng.gamma(2.0, 0.4, (n, 1)) * np.sqrt(value)  # concave revenue uplift
    p_use = np.clip(rng.beta(2, 3, (n, 1)) + 0.05 * np.arange(K), 0, 1)
    true_c = p_use * value
    uplift = gain[:, 0] * np.sqrt(np.maximum(t, 1))  # of the user's own arm
    revenue = rng.gamma(2.0, 2.0, n) + np.where(t > 0, uplift, 0.0)
    own = np.maximum(t - 1, 0)
    cost = np.where(t > 0, (rng.random(n) < p_use[np.arange(n), own]) * value[own], 0.0)
    r = gain * np.sqrt(np.arange(1, K + 1)) + rng.normal(scale=0.3, size=(n, K))
    c = np.abs(true_c + rng.normal(scale=0.05, size=(n, K)))
    return np.column_stack([t, revenue, cost]), np.hstack([r, c])


def _reads(fn):
    _READS.clear()
    fn()
    reads = {key: v for key, v in _READS.items() if key is not None}
    return sum(reads.values()) / max(len(reads), 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 users")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="users (default 5,000,000)")
    parser.add_argument("--chunk-rows", type=positive_int, default=500_000)
    parser.add_argument("--repeat", type=positive_int, default=2)
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (1_000_000 if args.quick else 5_000_000)
    rct, rc = make_rct(n)
    in_bytes = rct.nbytes + rc.nbytes
    policy = np.random.default_rng(1).integers(0, K + 1, n)

    def metrics(rct, rc, policy):
        t = rct[:, 0].astype(np.int64)
        return {
            "value_at_budget": lambda: value_at_budget(rc[:, :K], rc[:, K:], t, rct[:, 1],
                                                       rct[:, 2], BUDGET),
            "expected_outcome": lambda: expected_outcome(policy, t, rct[:, 1],
                                                         rct[:, 2]).incremental_revenue,
        }

    rows, base, ref = [], {}, {}
    for name, fn in metrics(rct, rc, policy).items():
        t, ref[name] = _best(fn, args.repeat)
        base[name] = t
        rows.append(dict(way="numpy (in memory)", metric=name, s=t, ratio=1.0,
                         peak_x_input=peak_memory(fn) / in_bytes, diff=0.0))
        print(f"numpy {name}: {t:.3f}s", file=sys.stderr)
    t_mem = rct[:, 0].astype(np.int64)
    grid = cost_curve(rc[:, :K], rc[:, K:], t_mem, rct[:, 1], rct[:, 2]).multipliers
    ref_curve = cost_curve(rc[:, :K], rc[:, K:], t_mem, rct[:, 1], rct[:, 2], multipliers=grid)

    def run(way, chunks, arrays):
        rd, cd, pd_ = arrays
        counted = [rd.map_blocks(_counted, dtype=rd.dtype), cd]  # reads of the outcomes
        for name, fn in metrics(rd, cd, pd_).items():
            t, got = _best(fn, args.repeat)
            reads = _reads(metrics(*counted, pd_)[name])
            rows.append(dict(way=way, chunks=chunks, metric=name, s=t, ratio=t / base[name],
                             peak_x_input=peak_memory(fn) / in_bytes, reads=f"{reads:.3g}",
                             diff=f"{abs(got - ref[name]) / abs(ref[name]):.1e} (relative)"))
            print(f"{way} {name}: {t:.3f}s", file=sys.stderr)
        curve = cost_curve(cd[:, :K], cd[:, K:], rd[:, 0].astype(np.int64), rd[:, 1], rd[:, 2],
                           multipliers=grid)
        gap = max(np.abs(curve.incremental_revenue - ref_curve.incremental_revenue).max(),
                  np.abs(curve.incremental_cost - ref_curve.incremental_cost).max())
        rows.append(dict(way=way, chunks=chunks, metric="cost_curve at numpy's grid",
                         diff=f"{gap:.1e} (largest, absolute)"))

    chunks = (args.chunk_rows, -1)
    run("dask (from_array)", args.chunk_rows,
        (da.from_array(rct, chunks=chunks), da.from_array(rc, chunks=chunks),
         da.from_array(policy, chunks=args.chunk_rows)))
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"{name}.npy") for name in ("rct", "uplift", "policy")]
        for path, x in zip(paths, (rct, rc, policy[:, None])):
            np.save(path, x)
        rd, cd, pd_ = (da.from_array(RowsOnDisk.npy(p), chunks=chunks) for p in paths)
        run("dask, out of core (.npy)", args.chunk_rows, (rd, cd, pd_[:, 0]))

    write_report(args.output, "metrics_dask.md",
                 f"# Metrics on Dask arrays: an RCT of {n:,} users, {K} levels, float64",
                 f"best of {args.repeat}; input (outcomes and predicted uplifts) "
                 f"{in_bytes / 2**20:.0f} MiB; budget {BUDGET} per user",
                 "- reads of each chunk: how often a metric handed each chunk of the outcomes "
                 "to a computation (mean over chunks)", md_table(rows, COLS))

if __name__ == "__main__":
    main()
