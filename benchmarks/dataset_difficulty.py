"""How hard is ``make_marketing_rct``? Two-stage learners as a fraction of the oracle.

For each setting and seed: draw an RCT, split it 50/50, fit causalml T- and
X-learners (LightGBM) for revenue and for cost separately on the train half,
predict (n, K) uplifts on the test half, allocate a budget of ``--budget-frac``
times the oracle's full spend (the spend of the oracle at multiplier 0) and
report the TRUE incremental revenue relative to the oracle's at that budget.

Two numbers per learner:

* ``frac``: the allocation solved on the predicted costs (what a two-stage
  pipeline deploys); ``spend`` is its true spend divided by the budget.
* ``random``: random users get a random level until the true budget is spent.
* ``frac_eq``: the multiplier re-chosen so the TRUE spend meets the budget
  (a fair comparison at equal spend).

Usage (from the repository root, with the package importable)::

    PYTHONPATH=. python benchmarks/dataset_difficulty.py --settings default hard --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import SETTINGS, positive_int, refuse_repeats

from sklearn_budget.datasets import make_marketing_rct

LEARNERS = ("T", "X")  # the causalml meta-learners _fit_uplift fits


def _allocate(r, c, lam):
    score = r - lam * c
    best = np.argmax(score, axis=1)
    return np.where(score[np.arange(len(r)), best] > 0, best + 1, 0)


def _spend(assign, c):
    full = np.hstack([np.zeros((len(c), 1)), c])
    return full[np.arange(len(c)), assign].sum()


def _bisect(r, c, budget, spend_cost=None, iters=60):
    """Smallest multiplier whose spend (on ``spend_cost``, default ``c``) fits the budget."""
    spend_cost = c if spend_cost is None else spend_cost
    if _spend(_allocate(r, c, 0.0), spend_cost) <= budget:
        return _allocate(r, c, 0.0)
    lo, hi = 0.0, 1.0
    while _spend(_allocate(r, c, hi), spend_cost) > budget:
        hi *= 2.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if _spend(_allocate(r, c, mid), spend_cost) > budget:
            lo = mid
        else:
            hi = mid
    return _allocate(r, c, hi)


def solve(r, c, budget):
    try:  # the package's solver once it exists
        from sklearn_budget._solver import solve_budget_allocation
    except ImportError:
        return _bisect(r, c, budget)
    return np.asarray(solve_budget_allocation(r, c, budget).assignment)


def _fit_uplift(kind, X_tr, t_tr, y_tr, X_te, probs, seed):
    from causalml.inference.meta import BaseTRegressor, BaseXRegressor
    from lightgbm import LGBMRegressor

    learner = LGBMRegressor(n_estimators=50, random_state=seed, verbose=-1, n_jobs=2)
    if kind == "T":
        model = BaseTRegressor(learner=learner, control_name=0)
        model.fit(X=X_tr, treatment=t_tr, y=y_tr)
        return model.predict(X=X_te)
    if kind != "X":
        raise ValueError(f"Unknown learner {kind!r}; choose from {', '.join(LEARNERS)}.")
    model = BaseXRegressor(learner=learner, control_name=0)
    k_levels = len(probs) - 1

    def prop(n):
        return {k: np.full(n, probs[k] / (probs[0] + probs[k])) for k in range(1, k_levels + 1)}

    model.fit(X=X_tr, treatment=t_tr, y=y_tr, p=prop(len(X_tr)))
    return model.predict(X=X_te, p=prop(len(X_te)))


def run(setting, seed, n_samples, budget_frac, learners):
    data = make_marketing_rct(n_samples=n_samples, setting=setting, random_state=seed)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n_samples)
    tr, te = idx[: n_samples // 2], idx[n_samples // 2 :]
    true_r = data.true_revenue[te, 1:] - data.true_revenue[te, :1]
    true_c = data.true_cost[te, 1:] - data.true_cost[te, :1]
    budget = budget_frac * _spend(_allocate(true_r, true_c, 0.0), true_c)
    oracle = solve(true_r, true_c, budget)
    oracle_value = true_r[np.arange(len(te)), oracle - 1][oracle > 0].sum()
    # random baseline: random users get a random level until the true budget is used
    order = rng.permutation(len(te))
    levels = rng.integers(1, true_r.shape[1] + 1, len(te))
    spent = np.cumsum(true_c[order, levels[order] - 1])
    rand = np.zeros(len(te), dtype=np.int64)
    rand[order[spent <= budget]] = levels[order[spent <= budget]]
    rand_value = true_r[np.arange(len(te)), rand - 1][rand > 0].sum()
    out = {"random": (rand_value / oracle_value, _spend(rand, true_c) / budget,
                      rand_value / oracle_value)}
    for kind in learners:
        r_hat = _fit_uplift(
            kind, data.X[tr], data.treatment[tr], data.revenue[tr], data.X[te],
            data.treatment_probabilities, seed,
        )
        c_hat = _fit_uplift(
            kind, data.X[tr], data.treatment[tr], data.cost[tr], data.X[te],
            data.treatment_probabilities, seed,
        )
        assign = solve(r_hat, c_hat, budget)
        value = true_r[np.arange(len(te)), assign - 1][assign > 0].sum()
        assign_eq = _bisect(r_hat, c_hat, budget, spend_cost=true_c)
        value_eq = true_r[np.arange(len(te)), assign_eq - 1][assign_eq > 0].sum()
        out[kind] = (
            value / oracle_value,
            _spend(assign, true_c) / budget,
            value_eq / oracle_value,
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["default", "hard"], choices=SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-samples", type=positive_int, default=20000)
    parser.add_argument("--budget-frac", type=float, default=0.4)
    parser.add_argument("--learners", nargs="+", default=["T", "X"], choices=LEARNERS,
                        help="causalml meta-learners (LightGBM): T, X")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "settings", "seeds", "learners")
    for setting in args.settings:
        results = {k: [] for k in ["random", *args.learners]}
        t0 = time.perf_counter()
        for seed in args.seeds:
            res = run(setting, seed, args.n_samples, args.budget_frac, args.learners)
            for k, v in res.items():
                results[k].append(v)
                print(f"{setting:8s} seed={seed} {k}: frac={v[0]:.3f} spend={v[1]:.2f} "
                      f"frac_eq={v[2]:.3f}", flush=True)
        for k, vals in results.items():
            a = np.array(vals)
            print(f"== {setting:8s} {k}-learner: frac {a[:, 0].mean():.2f} +- {a[:, 0].std():.2f}"
                  f" (spend/budget {a[:, 1].mean():.2f}), equal-true-spend frac "
                  f"{a[:, 2].mean():.2f} +- {a[:, 2].std():.2f}")
        print(f"({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
