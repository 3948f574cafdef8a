"""The budget solver on Dask arrays: in memory, chunked, and out of core.

Same data as ``bench_solver.py`` (5,000,000 users x 8 levels, float64;
1,000,000 with ``--quick``; ``--n`` and ``--k`` for others), solved four ways
in one run:

- ``numpy``: the in-memory solve (the baseline of every ratio);
- ``dask``: the same arrays wrapped by ``dask.array.from_array`` in chunks of
  ``--chunk-rows`` rows (default 500,000), assignment computed;
- ``dask, out of core``: the arrays saved as ``.npy`` files in a temporary
  folder and read a chunk at a time (each chunk copied out of a memory map,
  like a zarr or HDF5 dataset would be read), the assignment stored to a
  memory-mapped ``.npy`` with ``dask.array.store``: the input is never loaded
  whole (the operating system's page cache may still hold it). (Passing the
  memory map itself to ``dask.array.from_array`` does load it whole: with
  dask 2026.8 the peak memory of a mere ``.sum()`` is 1.0 x the array.)
- the same with a quarter of the chunk size.

For each: the best of ``--repeat`` wall times, the ratio to the numpy solve,
the peak memory that tracemalloc sees (numpy reports to it; memory-mapped
pages do not count) relative to the input's size, the number of times the
solver read every chunk (each pass is one Dask computation over all of
them; the final assignment is one more; counted by wrapping the input in a
map that counts the chunks it hands out), and whether the assignment equals
the in-memory one.

Usage (from the repository root; needs dask: ``pip install ".[dask]"``)::

    python benchmarks/bench_dask.py            # about a minute
    python benchmarks/bench_dask.py --quick

Writes ``DIR/dask.md`` (default DIR = ``benchmarks/results``) and prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from _common import nonnegative_int, positive_int  # noqa: E402
from bench_solver import hardware_lines, make_instance, md_table, peak_memory  # noqa: E402

from sklearn_budget import solve_budget_allocation  # noqa: E402
from sklearn_budget._rows_on_disk import RowsOnDisk  # noqa: E402

COLS = [("way", "way"), ("chunks", "chunk rows"), ("solve_s", "time (s)"),
        ("ratio", "x numpy"), ("peak_x_input", "peak memory (x input)"),
        ("passes", "reads of each chunk"), ("same", "same assignment")]


_READS = {}  # chunk index -> times the chunk was handed to a computation


def _counted(block, block_info=None):
    if not block_info or 0 not in block_info:
        # dask's metadata inference calls the function once on a dummy block without
        # block_info (when ``map_blocks`` is called, e.g. inside _reads_per_chunk): not a
        # read of a chunk, and counting it (as key None) made one chunk too many
        return block
    key = block_info[0]["chunk-location"][0]
    _READS[key] = _READS.get(key, 0) + 1  # (a dict update is atomic under the GIL)
    return block


def _reads_per_chunk(fn):
    """``fn()`` and how often it read each chunk of r and c (the mean over chunks)."""
    _READS.clear()
    out = fn()
    reads = {key: v for key, v in _READS.items() if key is not None}
    return out, sum(reads.values()) / max(len(reads), 1) / 2


def _best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _on_cluster(args, paths, bpu, base, ref):
    """The out-of-core solve on a ``distributed.LocalCluster`` of worker processes."""
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.cluster, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster):
        def run():
            rm, cm = (da.from_array(RowsOnDisk.npy(p), chunks=(args.chunk_rows, args.k))
                      for p in paths)
            sol = solve_budget_allocation(rm, cm, budget_per_user=bpu)
            # computed, not stored: a worker process given a numpy memmap writes to its
            # own copy (a cluster stores to zarr or files of its own)
            return sol, sol.assignment.compute()

        t, (_, arm) = _best(run, args.repeat)
    same = bool((arm == ref.assignment).all())
    print(f"cluster of {args.cluster}: {t:.3f}s", file=sys.stderr)
    return dict(way=f"dask.distributed, {args.cluster} worker processes x 1 thread, out of "
                    "core (.npy in, assignment computed)",
                chunks=args.chunk_rows, solve_s=t, ratio=t / base, passes="",
                peak_x_input="(in the workers)", same=same)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 users")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="users (default 5,000,000)")
    parser.add_argument("--k", type=positive_int, default=8, help="levels (default 8)")
    parser.add_argument("--chunk-rows", type=positive_int, default=500_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--cluster", type=nonnegative_int, default=0, metavar="N",
                        help="also solve out of core on a distributed.LocalCluster of N "
                             "worker processes (needs distributed)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (1_000_000 if args.quick else 5_000_000)
    r, c, bpu = make_instance(n, args.k, seed=0)
    in_bytes = r.nbytes + c.nbytes
    rows = []

    t, ref = _best(lambda: solve_budget_allocation(r, c, budget_per_user=bpu), args.repeat)
    base = t
    rows.append(dict(way="numpy (in memory)", chunks="", solve_s=t, ratio=1.0, passes="",
                     peak_x_input=peak_memory(
                         lambda: solve_budget_allocation(r, c, budget_per_user=bpu)) / in_bytes,
                     same=True))
    print(f"numpy: {t:.3f}s", file=sys.stderr)

    def run_dask(rd, cd):
        sol = solve_budget_allocation(rd, cd, budget_per_user=bpu)
        return sol, sol.assignment.compute()

    rd, cd = (da.from_array(x, chunks=(args.chunk_rows, args.k)) for x in (r, c))
    t, (sol, arm) = _best(lambda: run_dask(rd, cd), args.repeat)
    counted = [x.map_blocks(_counted, dtype=x.dtype) for x in (rd, cd)]
    (sol, _), reads = _reads_per_chunk(lambda: run_dask(*counted))
    rows.append(dict(way="dask (from_array)", chunks=args.chunk_rows, solve_s=t, ratio=t / base,
                     passes=f"{reads:.3g}",
                     peak_x_input=peak_memory(lambda: run_dask(rd, cd)) / in_bytes,
                     same=bool((arm == ref.assignment).all())))
    print(f"dask: {t:.3f}s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"{name}.npy") for name in ("r", "c")]
        for path, x in zip(paths, (r, c)):
            np.save(path, x)
        out_path = os.path.join(tmp, "assignment.npy")
        for chunk_rows in (args.chunk_rows, max(1, args.chunk_rows // 4)):
            def run_ooc(count=False):
                rm, cm = (da.from_array(RowsOnDisk.npy(p), chunks=(chunk_rows, args.k))
                          for p in paths)
                if count:
                    rm, cm = (x.map_blocks(_counted, dtype=x.dtype) for x in (rm, cm))
                sol = solve_budget_allocation(rm, cm, budget_per_user=bpu)
                out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.int64, shape=(n,))
                da.store(sol.assignment, out)
                out.flush()
                return sol

            t, sol = _best(run_ooc, args.repeat)
            reads = _reads_per_chunk(lambda: run_ooc(count=True))[1]
            same = bool((np.load(out_path, mmap_mode="r") == ref.assignment).all())
            rows.append(dict(way="dask, out of core (.npy in, .npy out)",
                             chunks=chunk_rows, solve_s=t, ratio=t / base,
                             passes=f"{reads:.3g}",
                             peak_x_input=peak_memory(run_ooc) / in_bytes, same=same))
            print(f"out of core {chunk_rows}: {t:.3f}s", file=sys.stderr)
        if args.cluster:
            rows.append(_on_cluster(args, paths, bpu, base, ref))

    write_report(args.output, "dask.md",
                 f"# Budget solver on Dask arrays: {n:,} users x {args.k} levels, float64",
                 f"best of {args.repeat}; input {in_bytes / 2**20:.0f} MiB",
                 "- time: the solve plus computing (or storing) the assignment; reads of "
                 "each chunk: how often the solve and the assignment handed each chunk of "
                 "the input to a computation (mean over chunks)", md_table(rows, COLS))


def write_report(folder, name, title, setup, note, table):
    """Print the Markdown report (title, hardware, versions, ``setup``, ``note``, table)
    and write it to ``folder/name``."""
    text = "\n".join([title, "", *hardware_lines(),
                      f"- dask {dask.__version__}, threaded scheduler (default), numpy "
                      f"{np.__version__}; {setup}", note, "", table])
    print(text)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        f.write(text + "\n")

if __name__ == "__main__":
    main()
