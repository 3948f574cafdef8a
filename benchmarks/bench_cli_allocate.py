"""``sklearn-budget allocate`` on a large file: in one piece vs a chunk of rows at a time.

A CSV of ``--n`` users (default 2,000,000; 200,000 with ``--quick``) with an
id column and the 8 features of ``make_marketing_rct``, and a saved
end-to-end allocator (fitted on 6,000 synthetic users, a few epochs: the
file handling is measured, not the model). The command runs as a child
process four ways, in one run on the same file:

- ``--budget`` (the model's calibrated multiplier, one pass) and
  ``--total-budget`` (one budget problem over all users: predictions to a
  scratch folder, the solver's Dask path over them, a second pass);
- each with ``--chunk-rows`` at least the file's length (the whole file in
  memory at once, as the command did before it read in chunks: the
  baseline of the ratios) and at the default 200,000 rows (an eighth of
  the file when that is less).

For each: wall time, its ratio to the one-piece run of the same mode, the
child's peak resident memory (``ru_maxrss``, which includes the Python
interpreter, torch and pandas: about 0.4 GB before any data), and how many
users' treatments differ from the one-piece run (the model predicts in
float32 batches, whose last bits can depend on how rows are batched).

Usage (from the repository root; ``--total-budget`` reads in chunks with dask, in memory without)::

    python benchmarks/bench_cli_allocate.py           # a few minutes on 2 cores
    python benchmarks/bench_cli_allocate.py --quick

Writes ``DIR/cli_allocate.md`` (default DIR = ``benchmarks/results``) and prints it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import positive_int  # noqa: E402
from bench_solver import hardware_lines, md_table  # noqa: E402

COLS = [("mode", "mode"), ("chunks", "chunk rows"), ("time_s", "time (s)"),
        ("ratio", "x one piece"), ("peak_gb", "peak RSS (GB)"), ("differ", "labels differing")]


def _write_inputs(folder, n, seed=0):
    """The users' CSV (written in pieces) and a saved allocator; returns the file sizes."""
    import joblib
    import pandas as pd

    from sklearn_budget import EndToEndBudgetAllocator, rct_target
    from sklearn_budget.datasets import make_marketing_rct

    d = make_marketing_rct(n_samples=6000, random_state=seed)
    est = EndToEndBudgetAllocator(budget=1.0, max_epochs=6, warmup_epochs=3,
                                  random_state=seed, verbose=0)
    est.fit(pd.DataFrame(d.X, columns=d.feature_names),
            rct_target(d.treatment, d.revenue, d.cost))
    joblib.dump(est, os.path.join(folder, "model.joblib"))
    rng = np.random.default_rng(seed)
    path = os.path.join(folder, "users.csv")
    for start in range(0, n, 500_000):
        m = min(500_000, n - start)
        frame = pd.DataFrame(rng.normal(size=(m, len(d.feature_names))),
                             columns=d.feature_names)
        frame.insert(0, "id", np.arange(start, start + m))
        frame.to_csv(path, mode="a" if start else "w", header=not start, index=False,
                     float_format="%.6g")
    return os.path.getsize(path), est


def _run(folder, mode, value, chunk_rows, out):
    cmd = [sys.executable, "-m", "sklearn_budget", "allocate", "--model",
           os.path.join(folder, "model.joblib"), "--input", os.path.join(folder, "users.csv"),
           f"--{mode}", str(value), "--chunk-rows", str(chunk_rows), "--output", out, "--quiet"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak memory
        elapsed = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 users")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="users (default 2,000,000)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (200_000 if args.quick else 2_000_000)
    import pandas as pd

    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        log(f"fitting the model and writing a CSV of {n:,} users ...")
        size, est = _write_inputs(folder, n)
        log(f"inputs written: a {size / 2**20:,.0f} MiB CSV")
        total = 0.5 * n  # half the model's budget per user, over everyone
        for mode, value in (("budget", 1.0), ("total-budget", total)):
            ref = None
            for chunks in (n, max(1, min(200_000, n // 8))):
                out = os.path.join(folder, f"out_{mode}_{chunks}.csv")
                log(f"sklearn-budget allocate --{mode} {value:g} --chunk-rows {chunks:,} ...")
                t, peak = _run(folder, mode, value, chunks, out)
                log(f"  {t:.1f} s, peak RSS {peak:.2f} GB")
                labels = pd.read_csv(out, usecols=["treatment"]).treatment.to_numpy()
                if ref is None:
                    ref, t_ref = labels, t
                rows.append(dict(mode=f"--{mode} {value:g}", chunks=f"{chunks:,}",
                                 time_s=round(t, 2), ratio=round(t / t_ref, 2),
                                 peak_gb=round(peak, 2),
                                 differ=int((labels != ref).sum())))
                os.remove(out)
    text = "\n".join([
        f"# sklearn-budget allocate: {n:,} users, a {size / 2**20:,.0f} MiB CSV",
        "", *hardware_lines(),
        f"- model: EndToEndBudgetAllocator (default architecture); total budget "
        f"{total:g} = 0.5 per user; one child process per row",
        "", md_table(rows, COLS), ""])
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "cli_allocate.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
