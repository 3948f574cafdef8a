"""Speed, memory and exactness of ``solve_budget_allocation``.

Four sections, all measured in the same run on the same machine:

1. ``headline``: the issue's target, 5,000,000 users x 8 levels (1,000,000 with
   ``--quick``), float64 and float32 on the same data. The solve is timed
   against one ``np.argmax(scores, axis=1)`` pass over the (n, K) score matrix
   ``r - lam* c`` of the same data (target ratio <= 5x required, <= 3x
   desired). Solve and argmax are timed alternately, ``--repeat`` times each
   (best of 5 by default; the machine may be shared, the minimum is the
   least disturbed run), so the ratio comes from one run. The peak memory of
   the solve (tracemalloc, which numpy reports to, in a separate repetition)
   is given as a multiple of the input size ``r.nbytes + c.nbytes``.
2. ``torch``: the same solve on ``torch.from_numpy`` tensors of the same data,
   against ``torch.argmax``; CUDA as well when available.
3. ``lp``: against the LP relaxation of the multiple-choice knapsack solved by
   HiGHS through ``scipy.optimize.milp`` (no integer variables) at 100,000 x 8
   (5,000 x 8 with ``--quick``): time ratio, the gap of our integral value to
   the LP optimum (an upper bound on the integer optimum), and our
   ``dual_bound`` against it (the Lagrangian dual of this problem equals its LP
   relaxation, so they should agree).
4. ``exactness``: 200 small random instances (n <= 40, K <= 4, ties, zero-cost
   levels, negative uplifts, negative costs) against the exact integer optimum
   of ``scipy.optimize.milp``.

Scaling in n and K, and the estimators' prediction throughput, are in
``bench_scaling.py``.

Data: cost increasing with the level (cumulative sum of positive steps),
revenue concave in cost with per-user heterogeneity (lognormal scale and
curvature) plus a little noise, budget = 30% of the spend at multiplier 0 (every
user on their best level).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_solver.py            # full (the LP takes minutes)
    PYTHONPATH=. python benchmarks/bench_solver.py --quick    # about 45 s of CPU time (mostly torch)

Writes ``DIR/solver.md`` and ``DIR/solver.csv`` (default DIR =
``benchmarks/results``, git-ignored) and prints the Markdown to stdout.
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
import tracemalloc

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from _common import positive_int

try:
    from sklearn_budget import solve_budget_allocation
except ImportError:  # run from a checkout without PYTHONPATH=.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from sklearn_budget import solve_budget_allocation

try:
    import torch
except ImportError:  # the torch section is skipped
    torch = None

REQUIRED_RATIO, DESIRED_RATIO = 5.0, 3.0


# -- data ---------------------------------------------------------------------------------
def make_instance(n, k, seed=0):
    """Realistic float64 uplifts ``(r, c)`` of shape (n, k) and the budget per user.

    Cost rises with the level (cumsum of positive steps); revenue is concave in
    cost, ``a_i * log1p(b_i * c) / b_i`` with lognormal scale ``a_i`` and
    curvature ``b_i``, plus noise (so some users' envelopes are not concave).
    Budget = 30% of the spend at multiplier 0.
    """
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.2, 1.0, size=(n, k))
    np.cumsum(c, axis=1, out=c)
    a = rng.lognormal(0.0, 0.75, size=(n, 1))
    b = rng.lognormal(0.0, 0.5, size=(n, 1))
    r = c * b
    np.log1p(r, out=r)
    r *= a / b
    noise = rng.standard_normal(size=(n, k))
    noise *= 0.05 * a
    r += noise
    del noise
    best = np.argmax(r, axis=1)
    take = np.take_along_axis(r, best[:, None], axis=1)[:, 0] > 0
    max_spend = float(np.take_along_axis(c, best[:, None], axis=1)[:, 0][take].sum())
    return r, c, 0.3 * max_spend / n


# -- measurement helpers --------------------------------------------------------------------
def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device="cpu"):
    gc.collect()
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def best_of(fn, repeat=5, device="cpu"):
    """Best wall time of ``repeat`` calls (gc between them) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        out = None
        t, out = _timed(fn, device)
        times.append(t)
    return min(times), out


def peak_memory(fn):
    """Peak bytes allocated during ``fn()`` as seen by tracemalloc (numpy reports to it)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak


def solve_vs_argmax(r, c, bpu, *, repeat, memory=True, device="cpu"):
    """Time the solve and one argmax over ``r - lam* c`` alternately on the same data."""
    solve = (lambda: solve_budget_allocation(r, c, budget_per_user=bpu))
    _, sol = _timed(solve, device)  # warm-up, and lam* for the score matrix
    scores = r - sol.multiplier * c
    argmax = ((lambda: np.argmax(scores, axis=1)) if isinstance(scores, np.ndarray)
              else (lambda: torch.argmax(scores, dim=1)))
    t_solve, t_argmax = [], []
    for _ in range(repeat):
        t_solve.append(_timed(solve, device)[0])
        t_argmax.append(_timed(argmax, device)[0])
    scores = None  # free it (not `del`: the lambda above closes over it)
    row = {
        "n": r.shape[0], "K": r.shape[1], "dtype": str(r.dtype).replace("torch.", ""),
        "solve_s": min(t_solve), "argmax_s": min(t_argmax),
        "ratio": min(t_solve) / min(t_argmax),
        "solve_median_s": float(np.median(t_solve)), "argmax_median_s": float(np.median(t_argmax)),
        "value": sol.value, "dual_bound": sol.dual_bound, "dual_gap": sol.optimality_gap,
        "spend_over_budget": sol.spend / (bpu * r.shape[0]),
    }
    if memory:
        in_bytes = r.nbytes + c.nbytes
        peak = peak_memory(solve)
        row.update(peak_mb=peak / 2**20, peak_x_input=peak / in_bytes)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        solve()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        in_bytes = r.element_size() * r.nelement() * 2
        row.update(peak_mb=peak / 2**20, peak_x_input=peak / in_bytes)
    return row, sol


def verdict(ratio):
    if ratio <= DESIRED_RATIO:
        return "desired (<=3x)"
    if ratio <= REQUIRED_RATIO:
        return "required (<=5x)"
    return "MISSED (>5x)"


# -- sections -------------------------------------------------------------------------------
def section_headline(n, k, repeat, log):
    rows = []
    r64, c64, bpu = make_instance(n, k, seed=0)
    for dtype in (np.float64, np.float32):
        r, c = (r64, c64) if dtype is np.float64 else (r64.astype(dtype), c64.astype(dtype))
        row, _ = solve_vs_argmax(r, c, bpu, repeat=repeat)
        row.update(section="headline", backend="numpy", target=verdict(row["ratio"]))
        rows.append(row)
        log(f"headline numpy {row['dtype']}: {row['solve_s']:.3f}s, argmax {row['argmax_s']:.3f}s, "
            f"{row['ratio']:.2f}x, peak {row['peak_x_input']:.2f}x input")
        del r, c
        gc.collect()
    return rows, (r64, c64, bpu)


def section_torch(data, repeat, log):
    rows, notes = [], []
    if torch is None:
        notes.append("torch not installed: torch rows skipped.")
        return rows, notes
    r64, c64, bpu = data
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" not in devices:
        notes.append("CUDA not available on this machine: torch CUDA rows skipped.")
    notes.append(f"torch CPU rows use torch's default {torch.get_num_threads()} threads for "
                 "both the solve and `torch.argmax`; they have no peak memory (torch's CPU "
                 "allocator does not report to tracemalloc).")
    for device in devices:
        for dtype in (np.float64, np.float32):
            r = torch.from_numpy(r64 if dtype is np.float64 else r64.astype(dtype))
            c = torch.from_numpy(c64 if dtype is np.float64 else c64.astype(dtype))
            if device == "cuda":
                r, c = r.cuda(), c.cuda()
            row, _ = solve_vs_argmax(r, c, bpu, repeat=repeat, memory=False, device=device)
            row.update(section="torch", backend=f"torch-{device}", target=verdict(row["ratio"]))
            rows.append(row)
            log(f"torch {device} {row['dtype']}: {row['solve_s']:.3f}s, {row['ratio']:.2f}x argmax")
            del r, c
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows, notes


def _constraints(c):
    """Sparse rows ``sum_k x[i, k] <= 1`` (one per user) and the cost row, over ``x.ravel()``."""
    n, k = c.shape
    cols = np.arange(n * k)
    one_per_user = sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), cols)),
                                 shape=(n, n * k))
    return sp.vstack([one_per_user, sp.csr_matrix(c.reshape(1, -1))]).tocsr()


def lp_relaxation(r, c, budget, time_limit):
    """Optimum of the LP relaxation (0 <= x <= 1, no integer variables) by HiGHS via milp."""
    n, k = r.shape
    res = milp(-r.ravel(), integrality=np.zeros(n * k), bounds=Bounds(0, 1),
               constraints=LinearConstraint(_constraints(c), -np.inf, np.r_[np.ones(n), budget]),
               options={"time_limit": time_limit})
    if res.status == 1:  # milp: iteration or time limit reached
        raise LPTimeLimit(f"HiGHS LP stopped: {res.message}")
    if res.status != 0 or res.fun is None:
        raise RuntimeError(f"HiGHS LP failed: {res.message}")
    return -res.fun


class LPTimeLimit(RuntimeError):
    """HiGHS stopped at ``--lp-time-limit`` before the LP optimum."""


def section_lp(n, k, repeat, time_limit, log):
    """The LP rows and notes; a HiGHS failure (the time limit) is a note, not a crash, so
    the sections already measured are still reported."""
    r, c, bpu = make_instance(n, k, seed=1)
    budget = bpu * n
    t_ours, sol = best_of(lambda: solve_budget_allocation(r, c, budget=budget), repeat=repeat)
    log(f"lp {n}x{k}: ours {t_ours:.3f}s; HiGHS LP relaxation (milp) ...")
    try:
        t_lp, lp = _timed(lambda: lp_relaxation(r, c, budget, time_limit))
    except RuntimeError as exc:
        reason = ("time limit reached" if isinstance(exc, LPTimeLimit)
                  else "HiGHS failed")
        note = (f"LP: {reason} at {n:,} x {k} (--lp-time-limit {time_limit:g} s; ours "
                f"{t_ours:.3f}s); no LP row. {exc}")
        log(note)
        return [], [note]
    log(f"lp {n}x{k}: HiGHS {t_lp:.1f}s")
    return [{
        "section": "lp", "n": n, "K": k, "dtype": "float64",
        "backend": "numpy vs scipy.optimize.milp (HiGHS, LP relaxation)",
        "solve_s": t_ours, "lp_s": t_lp, "speedup": t_lp / t_ours, "value": sol.value,
        "lp_value": lp, "dual_bound": sol.dual_bound, "gap_to_lp": (lp - sol.value) / abs(lp),
        "dual_minus_lp": (sol.dual_bound - lp) / abs(lp),
        "spend_over_budget": sol.spend / budget,
    }], []


KINDS = ("integer ties", "zero-cost levels", "negative uplifts", "negative costs")


def _small_instance(rng, kind):
    n, k = int(rng.integers(1, 41)), int(rng.integers(1, 5))
    if kind == "integer ties":  # coarse grids: many equal scores and breakpoints
        r = rng.integers(-2, 7, size=(n, k)) * 0.5
        c = rng.integers(0, 4, size=(n, k)).astype(float)
    elif kind == "zero-cost levels":
        r = rng.normal(1.0, 1.0, size=(n, k))
        c = rng.uniform(0.0, 2.0, size=(n, k)) * (rng.random((n, k)) > 0.3)
    elif kind == "negative uplifts":
        r = rng.normal(0.0, 1.0, size=(n, k))
        c = np.cumsum(rng.exponential(1.0, size=(n, k)), axis=1)
    else:  # some levels cost less than control
        r = rng.normal(0.5, 1.0, size=(n, k))
        c = rng.normal(0.5, 1.0, size=(n, k))
    full = np.clip(c, 0, None).max(axis=1).sum()
    budget = 0.0 if rng.random() < 0.1 else float(rng.uniform(0.0, 1.1) * full)
    return r, c, budget


def _exact_optimum(r, c, budget):
    n, k = r.shape
    a = _constraints(c)
    res = milp(-r.ravel(), constraints=LinearConstraint(a, -np.inf, np.r_[np.ones(n), budget]),
               integrality=np.ones(n * k), bounds=Bounds(0, 1),
               options={"mip_rel_gap": 0.0, "presolve": True})
    if res.status != 0:
        raise RuntimeError(f"milp failed: {res.message}")
    return -res.fun


def section_exactness(n_instances, log, seed=3):
    rng = np.random.default_rng(seed)
    per = {kind: [] for kind in KINDS}
    t0 = time.perf_counter()
    for i in range(n_instances):
        kind = KINDS[i % len(KINDS)]
        r, c, budget = _small_instance(rng, kind)
        opt = _exact_optimum(r, c, budget)
        sol = solve_budget_allocation(r, c, budget=budget)
        a = np.asarray(sol.assignment)
        rows = np.arange(len(r))
        # value and spend recomputed from the assignment, not trusted
        value = float(np.hstack([np.zeros((len(r), 1)), r])[rows, a].sum())
        spend = float(np.hstack([np.zeros((len(c), 1)), c])[rows, a].sum())
        tol = 1e-9 * max(1.0, abs(opt))
        gap = max(opt - value, 0.0)
        bound = max(float(r.max()), 0.0)
        per[kind].append({
            "rel_gap": (gap / abs(opt)) if abs(opt) > tol else (0.0 if gap <= tol else np.inf),
            "exact": gap <= tol,
            "gap_over_bound": 0.0 if gap <= tol else (gap / bound if bound > 0 else np.inf),
            "infeasible": spend > budget + 1e-9 * max(1.0, abs(budget)),
            "dual_below_opt": sol.dual_bound < opt - 1e-7 * max(1.0, abs(opt)),
            "value_mismatch": abs(value - sol.value) > 1e-9 * max(1.0, abs(value)),
        })
    log(f"exactness: {n_instances} instances in {time.perf_counter() - t0:.1f}s")
    rows = []
    for kind, recs in list(per.items()) + [("all", sum(per.values(), []))]:
        if not recs:
            continue
        g = np.array([x["rel_gap"] for x in recs])
        rows.append({
            "section": "exactness", "case": kind, "instances": len(recs),
            "max_rel_gap": float(g.max()), "mean_rel_gap": float(g.mean()),
            "frac_optimal": float(np.mean([x["exact"] for x in recs])),
            "max_gap_over_max_r": float(max(x["gap_over_bound"] for x in recs)),
            "infeasible": int(sum(x["infeasible"] for x in recs)),
            "dual_below_opt": int(sum(x["dual_below_opt"] for x in recs)),
            "value_mismatch": int(sum(x["value_mismatch"] for x in recs)),
        })
    return rows


# -- report ---------------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware_lines():
    """CPU model, cores, memory and load: the machine the numbers belong to."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = cores
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        mem = f", {int(info['MemTotal'].split()[0]) / 2**20:.1f} GiB RAM"
    except (OSError, KeyError, ValueError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = "; load average at start {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min)".format(
            *os.getloadavg())
    return [f"- hardware: CPU {cpu_model()}, {cores} logical cores ({usable} usable){mem}{load}"]


def _fmt(v):
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if not np.isfinite(v):
            return str(v)
        if abs(v) >= 1e4:
            return f"{v:,.1f}"
        if abs(v) < 1e-3:
            return f"{v:.1e}"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def md_table(rows, columns):
    head = "| " + " | ".join(label for _, label in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r.get(key, "")) for key, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


SPEED_COLS = [("n", "n"), ("K", "K"), ("dtype", "dtype"), ("backend", "backend"),
              ("solve_s", "solve (s)"), ("argmax_s", "argmax (s)"), ("ratio", "solve / argmax"),
              ("solve_median_s", "solve median (s)"), ("argmax_median_s", "argmax median (s)"),
              ("peak_x_input", "peak mem (x input)"), ("peak_mb", "peak mem (MiB)"),
              ("dual_gap", "dual gap"), ("target", "target")]
LP_COLS = [("n", "n"), ("K", "K"), ("solve_s", "ours (s)"), ("lp_s", "HiGHS LP (s)"),
           ("speedup", "LP / ours"), ("value", "ours value"), ("lp_value", "LP optimum"),
           ("gap_to_lp", "(LP - ours) / LP"), ("dual_bound", "ours dual_bound"),
           ("dual_minus_lp", "(dual - LP) / LP"), ("spend_over_budget", "spend / budget")]
EXACT_COLS = [("case", "instances"), ("instances", "count"), ("max_rel_gap", "max rel. gap"),
              ("mean_rel_gap", "mean rel. gap"), ("frac_optimal", "exactly optimal"),
              ("max_gap_over_max_r", "max gap / max r"), ("infeasible", "over budget"),
              ("dual_below_opt", "dual_bound < opt"), ("value_mismatch", "value mismatch")]


def render(header, sections, notes):
    out = ["# `solve_budget_allocation` benchmark", "", *header, ""]
    for title, rows, cols, text in sections:
        if not rows and not text:
            continue
        if title:
            out += [f"## {title}", ""]
        if text:
            out += [text, ""]
        if rows:
            out += [md_table(rows, cols), ""]
    if notes:
        out += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000,000 users for the headline, 5,000 for the LP (about 45 s of "
                             "CPU time)")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="timed repetitions of each measurement; the best is reported "
                             "(default: %(default)s)")
    parser.add_argument("--lp-n", type=positive_int, default=None,
                        help="users of the LP comparison (default: 100,000; 5,000 with --quick)")
    parser.add_argument("--lp-time-limit", type=float, default=1800.0,
                        help="HiGHS time limit in seconds (default: %(default)s)")
    parser.add_argument("--no-lp", action="store_true", help="skip the LP comparison")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"),
                        help="directory for solver.md and solver.csv (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.lp_time_limit > 0:
        parser.error(f"--lp-time-limit must be > 0 seconds; got {args.lp_time_limit:g}")
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    n_exact = 200
    n_head = 1_000_000 if args.quick else 5_000_000
    n_lp = args.lp_n if args.lp_n is not None else (5_000 if args.quick else 100_000)

    header = [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; mode: "
        f"{'quick' if args.quick else 'full'}",
        *hardware_lines(),
        f"- python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"torch {torch.__version__ if torch is not None else 'not installed'}",
        f"- times: best of {args.repeat} (gc before each), solve and argmax timed alternately "
        "in the same run; argmax = one `argmax(scores, axis=1)` over the (n, K) score matrix "
        "`r - lam* c` of the same data; medians shown for the spread. Peak memory from "
        "tracemalloc in a separate repetition, relative to `r.nbytes + c.nbytes`.",
        "- data: cost = cumsum of U(0.2, 1) steps; revenue = a log1p(b c) / b + noise, a, b "
        "lognormal per user; budget = 30% of the spend at multiplier 0.",
    ]
    rows_head, data = section_headline(n_head, 8, args.repeat, log)
    rows_torch, notes = section_torch(data, args.repeat, log)
    del data
    gc.collect()
    rows_lp, notes_lp = ([], []) if args.no_lp else section_lp(n_lp, 8, args.repeat,
                                                                args.lp_time_limit, log)
    notes += notes_lp
    rows_exact = section_exactness(n_exact, log)
    notes.append(f"total benchmark wall time: {time.perf_counter() - start:.0f}s")

    sections = [
        (f"1. Headline: {n_head:,} users x 8 levels (numpy)", rows_head, SPEED_COLS, ""),
        ("2. Torch tensors (ratio vs `torch.argmax` on the same tensor)", rows_torch, SPEED_COLS,
         "" if rows_torch else "skipped"),
        ("3. Against the HiGHS LP relaxation (`scipy.optimize.milp`)", rows_lp, LP_COLS,
         "The LP optimum upper-bounds the integer optimum; `(LP - ours) / LP` is the value our "
         "integral solution leaves on the table at most. HiGHS is timed once (our solve: best "
         f"of {args.repeat})." if rows_lp else "skipped (--no-lp)" if args.no_lp
         else "no result: see the LP note below"),
        (f"4. Exactness vs `scipy.optimize.milp` ({n_exact} instances, n <= 40, K <= 4)",
         rows_exact, EXACT_COLS,
         "gap = integer optimum - ours (value recomputed from the assignment); "
         "'max gap / max r' is relative to the a-priori bound max_i max_k r[i, k]."),
    ]
    text = render(header, sections, notes)
    print(text)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "solver.md"), "w") as f:
        f.write(text)
    all_rows = rows_head + rows_torch + rows_lp + rows_exact
    fields = list(dict.fromkeys(["section", "case", "backend"] + [k for r in all_rows for k in r]))
    with open(os.path.join(args.output, "solver.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(all_rows)
    log(f"wrote {args.output}/solver.md and solver.csv")


if __name__ == "__main__":
    main()
