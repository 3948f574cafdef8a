"""Results on Dask arrays against in memory, at several chunkings: solver labels, metrics' grid.

Two sections, the checks behind two figures of the main README (both by default;
``--only ties`` or ``--only grid`` for one):

- ``ties``: the solver on tied predictions in sorted rows (a tree model on coarse
  features gives a few distinct users, and data grouped by user type keeps the
  copies together). For each of ``--seeds`` (default 0-5), ``--distinct`` (20, 200,
  2000) distinct users each copied to fill 120,000 users x 4 levels, rows left
  sorted by user type, and budgets of 1%, 10%, 30% and 60% of the spend at the
  most expensive level of every user, ``solve_budget_allocation`` in memory and on
  ``dask.array.from_array`` of the same arrays in chunks of ``--ties-chunks``
  (6,000, 15,000 and 40,000 rows): 6 x 3 x 4 x 3 = 216 cases. Counted: the cases
  whose Dask labels differ from the in-memory ones (and how many labels), whose
  value is below the in-memory value (relative 1e-9), and whose spend (as reported,
  or summed exactly over the labels) is over the budget; and, for information,
  those whose returned multiplier differs (where the policy is the same over an
  interval of multipliers the point returned may depend on the chunking; the labels
  may not). The data are those of the review that found the tied-groups bug (its
  script, with the same random draws).
- ``grid``: the metrics' automatic multiplier grid. Above 200,000 RCT users its
  quantiles come from a sample of the decision breakpoints drawn per chunk, so a
  value or multiplier read from it moves slightly with the chunking. On an RCT of
  300,000 users x 4 levels (``--grid-n``), ``value_at_budget`` and
  ``multiplier_at_budget`` at a budget of 0.5 per user, in memory and with the
  uplifts as Dask arrays in chunks of ``--grid-chunks`` (30,000, 50,000, 100,000
  and 300,000 rows; the outcomes stay numpy arrays), and the relative difference.

``--quick``: seed 0 only (36 tie cases) and two chunkings of the grid (50,000 and
300,000 rows), same data. Dask's threaded scheduler (the default) unless
``--scheduler sync``.

Usage (from the repository root; needs dask: ``pip install ".[dask]"``)::

    python benchmarks/bench_dask_agreement.py            # ~1.5 min on 2 shared cores
    python benchmarks/bench_dask_agreement.py --quick    # ~15 s
    python benchmarks/bench_dask_agreement.py --only grid

Writes ``DIR/dask_agreement.md`` (default DIR = ``benchmarks/results``; with the
command, the machine and the figures in the README's words) and
``DIR/dask_agreement.json`` (every case), and prints the report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from _common import nonnegative_int, positive_int, refuse_repeats  # noqa: E402
from bench_solver import hardware_lines, md_table  # noqa: E402

from sklearn_budget import solve_budget_allocation  # noqa: E402
from sklearn_budget.metrics import multiplier_at_budget, value_at_budget  # noqa: E402

K = 4
TIES_N = 120_000
BUDGET_FRACS = (0.01, 0.1, 0.3, 0.6)
GRID_BUDGET = 0.5

TIES_COLS = [("distinct", "distinct users"), ("cases", "cases"),
             ("differ", "labels differ (cases)"), ("labels", "labels differ (users)"),
             ("worse", "Dask value lower"), ("over", "over budget"),
             ("mult", "multiplier differs (cases)"), ("s", "time (s)")]
GRID_COLS = [("way", "way"), ("chunks", "chunk rows"), ("value", "value_at_budget"),
             ("value_diff", "value: relative difference"), ("mult", "multiplier_at_budget"),
             ("mult_diff", "multiplier: relative difference"), ("s", "time (s)")]


def tied_instances(seed, distincts):
    """``(distinct, r, c)`` per distinct count: the review's draws (one generator per seed,
    drawn in the order of ``distincts``), each distinct user copied in consecutive rows."""
    rng = np.random.default_rng(seed)
    for distinct in distincts:
        base = np.abs(rng.normal(size=(distinct, 1))) + 0.1
        c = base * np.arange(1, K + 1) * 0.5 + rng.uniform(0, 0.1, (distinct, K))
        r = (np.sqrt(np.arange(1, K + 1)) * (1 + rng.normal(size=(distinct, 1))) * base
             + rng.normal(0, 0.2, (distinct, K)))
        copies = TIES_N // distinct
        yield distinct, np.repeat(r, copies, axis=0), np.repeat(c, copies, axis=0)


def labels_spend(c, labels):
    """The exact (``math.fsum``) spend of per-user labels (0 = control)."""
    rows = np.flatnonzero(labels)
    return math.fsum(c[rows, labels[rows] - 1])


def run_ties(args, seeds, chunkings):
    cases, rows = [], []
    for seed in seeds:
        for distinct, r, c in tied_instances(seed, args.distinct):
            t0 = time.perf_counter()
            for frac in BUDGET_FRACS:
                budget = frac * float(c.max(axis=1).sum())
                ref = solve_budget_allocation(r, c, budget=budget)
                ref_labels = np.asarray(ref.assignment)
                for chunk_rows in chunkings:
                    sol = solve_budget_allocation(da.from_array(r, chunks=(chunk_rows, K)),
                                                  da.from_array(c, chunks=(chunk_rows, K)),
                                                  budget=budget)
                    labels = sol.assignment.compute()
                    spend = labels_spend(c, labels)
                    cases.append(dict(
                        seed=seed, distinct=distinct, budget_frac=frac, budget=budget,
                        chunk_rows=chunk_rows,
                        labels_differ=int((labels != ref_labels).sum()),
                        value=sol.value, value_in_memory=ref.value,
                        worse=bool(sol.value < ref.value - 1e-9 * abs(ref.value)),
                        spend=sol.spend, labels_spend=spend,
                        over=bool(sol.spend > budget or spend > budget * (1 + 1e-12)),
                        multiplier=sol.multiplier, multiplier_in_memory=ref.multiplier))
            seconds = time.perf_counter() - t0
            mine = [x for x in cases if x["seed"] == seed and x["distinct"] == distinct]
            print(f"ties: seed {seed}, {distinct} distinct users: {len(mine)} cases, "
                  f"{sum(x['labels_differ'] > 0 for x in mine)} differ, {seconds:.1f}s",
                  file=sys.stderr, flush=True)
            rows.append(dict(distinct=distinct, seed=seed, s=seconds))
    table = []
    for distinct in args.distinct:
        mine = [x for x in cases if x["distinct"] == distinct]
        table.append(dict(distinct=f"{distinct} x {TIES_N // distinct:,} copies",
                          **_ties_counts(mine),
                          s=sum(x["s"] for x in rows if x["distinct"] == distinct)))
    table.append(dict(distinct="all", **_ties_counts(cases), s=sum(x["s"] for x in rows)))
    totals = table[-1]
    n_instances = len(cases) // len(chunkings)
    line = (f"{totals['cases']} sorted-tie cases ({n_instances} instances x "
            f"{len(chunkings)} chunkings: {', '.join(f'{x:,}' for x in chunkings)} rows), "
            f"in memory vs Dask: {totals['differ']} differ, {totals['worse']} worse, "
            f"{totals['over']} over budget ({totals['mult']} with another multiplier)")
    return cases, table, line


def _ties_counts(cases):
    return dict(cases=len(cases), differ=sum(x["labels_differ"] > 0 for x in cases),
                labels=sum(x["labels_differ"] for x in cases),
                worse=sum(x["worse"] for x in cases), over=sum(x["over"] for x in cases),
                mult=sum(x["multiplier"] != x["multiplier_in_memory"] for x in cases))


def grid_rct(n, seed=0):
    """The review's RCT: ``(r, c, treatment, revenue, cost)``, (n, 4) uplifts."""
    rng = np.random.default_rng(seed)
    base = np.abs(rng.normal(size=(n, 1))) + 0.1
    c = base * np.arange(1, K + 1) * 0.5 + rng.uniform(0, 0.1, (n, K))
    r = (np.sqrt(np.arange(1, K + 1)) * (1 + rng.normal(size=(n, 1))) * base
         + rng.normal(0, 0.2, (n, K)))
    t = rng.integers(0, K + 1, n)
    r0, c0 = np.hstack([np.zeros((n, 1)), r]), np.hstack([np.zeros((n, 1)), c])
    revenue = r0[np.arange(n), t] + rng.normal(0, 1, n)
    return r, c, t, revenue, c0[np.arange(n), t]


def run_grid(args, chunkings):
    r, c, t, revenue, cost = grid_rct(args.grid_n)

    def read(rr, cc):
        t0 = time.perf_counter()
        value = value_at_budget(rr, cc, t, revenue, cost, GRID_BUDGET)
        mult = multiplier_at_budget(rr, cc, t, revenue, cost, GRID_BUDGET)
        return value, mult, time.perf_counter() - t0

    value0, mult0, s = read(r, c)
    table = [dict(way="numpy (in memory)", value=value0, value_diff=0.0, mult=mult0,
                  mult_diff=0.0, s=s, chunks="")]
    print(f"grid: in memory {value0:.6f} / {mult0:.6f}, {s:.1f}s", file=sys.stderr, flush=True)
    for chunk_rows in chunkings:
        value, mult, s = read(da.from_array(r, chunks=(chunk_rows, K)),
                              da.from_array(c, chunks=(chunk_rows, K)))
        table.append(dict(way="dask (from_array)", chunks=chunk_rows, value=value,
                          value_diff=f"{(value - value0) / abs(value0):.1e}", mult=mult,
                          mult_diff=f"{(mult - mult0) / abs(mult0):.1e}", s=s))
        print(f"grid: dask {chunk_rows:,} rows {value:.6f} / {mult:.6f}, {s:.1f}s",
              file=sys.stderr, flush=True)
    values = [x["value"] for x in table[1:]]
    line = (f"value_at_budget on {args.grid_n:,} users: {value0:.5f} in memory, "
            f"{min(values):.5f} to {max(values):.5f} at {len(chunkings)} chunkings "
            f"({', '.join(f'{x:,}' for x in chunkings)} rows)")
    for x in table:  # the table shows 6 decimals, the default format only 3 digits
        x["value"], x["mult"] = f"{x['value']:.6f}", f"{x['mult']:.6f}"
    return table, line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="seed 0 only (36 tie cases); the grid at 2 chunkings")
    parser.add_argument("--only", choices=("ties", "grid"), default=None,
                        help="run one section (default: both)")
    parser.add_argument("--seeds", type=nonnegative_int, nargs="+", default=None,
                        help="tie instances' seeds (default 0-5; 0 with --quick)")
    parser.add_argument("--distinct", type=positive_int, nargs="+", default=[20, 200, 2000],
                        help="distinct users of the tie instances (each copied to fill "
                             f"{TIES_N:,} users)")
    parser.add_argument("--ties-chunks", type=positive_int, nargs="+", default=None,
                        help="chunk rows of the tie cases (default 6000 15000 40000)")
    parser.add_argument("--grid-n", type=positive_int, default=300_000,
                        help="RCT users of the grid section (default 300,000; above 200,000 "
                             "the grid is sampled)")
    parser.add_argument("--grid-chunks", type=positive_int, nargs="+", default=None,
                        help="chunk rows of the grid section (default 30000 50000 100000 "
                             "300000; 50000 300000 with --quick)")
    parser.add_argument("--scheduler", choices=("threads", "sync"), default="threads",
                        help="dask scheduler (default: threads, dask's default for arrays)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds", "distinct", "ties_chunks", "grid_chunks")
    for distinct in args.distinct:
        if TIES_N % distinct:
            parser.error(f"--distinct {distinct}: must divide {TIES_N:,}")
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(range(6)))
    ties_chunks = args.ties_chunks or [6_000, 15_000, 40_000]
    grid_chunks = args.grid_chunks or ([50_000, 300_000] if args.quick
                                       else [30_000, 50_000, 100_000, 300_000])
    command = " ".join(["python benchmarks/bench_dask_agreement.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip()
    t_start = time.perf_counter()
    dask.config.set(scheduler=args.scheduler)

    sections, figures, record = [], [], dict(command=command)
    if args.only in (None, "ties"):
        cases, table, line = run_ties(args, seeds, ties_chunks)
        figures.append(line)
        record["ties"] = dict(figure=line, seeds=seeds, cases=cases)
        sections += [
            f"## Solver labels on sorted tied predictions ({TIES_N:,} users x {K} levels)",
            "",
            f"Seeds {', '.join(map(str, seeds))}; budgets {', '.join(map(str, BUDGET_FRACS))} "
            "x the spend at every user's most expensive level; chunks of "
            f"{', '.join(f'{x:,}' for x in ties_chunks)} rows. A case: one instance and budget "
            "solved in memory and on Dask at one chunking. Lower: the Dask value below the "
            "in-memory one (relative 1e-9); over budget: the reported spend, or the labels' "
            "exact spend, above the budget; time: both solves of every case.",
            "", md_table(table, TIES_COLS), ""]
    if args.only in (None, "grid"):
        table, line = run_grid(args, grid_chunks)
        figures.append(line)
        record["grid"] = dict(figure=line, rows=table)
        sections += [
            f"## Metrics' automatic grid at several chunkings ({args.grid_n:,} RCT users x "
            f"{K} levels)", "",
            f"Budget {GRID_BUDGET} per user, 100 automatic multipliers; the uplifts as Dask "
            "arrays, the outcomes numpy arrays; time: both metrics.",
            "", md_table(table, GRID_COLS), ""]

    total = time.perf_counter() - t_start
    text = "\n".join([
        "# Results on Dask arrays against in memory, at several chunkings", "",
        f"- command: `{command}`", *hardware_lines(),
        f"- dask {dask.__version__}, {args.scheduler} scheduler, numpy {np.__version__}; "
        f"{total:.0f} s in all", "", "Figures:", "", *[f"- {x}" for x in figures], "",
        *sections]).rstrip()
    print(text)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "dask_agreement.md"), "w") as f:
        f.write(text + "\n")
    record["seconds"] = total
    with open(os.path.join(args.output, "dask_agreement.json"), "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
