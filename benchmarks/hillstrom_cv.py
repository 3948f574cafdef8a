"""Model choices for Hillstrom made on training data only: CV on the training halves.

For each seed (0, 1, 2) the Hillstrom data is split as in ``bench_quality.py``
(``ComparisonData``, half for training); the test half is never touched. Each
configuration of ``EndToEndBudgetAllocator`` (a JSON dict of parameters) is
fitted on 2/3 of the training half and scored (EOM incremental revenue per
user at the budget, ``score``; contact cost unless ``--cost visit``) on the
other third, 3 folds per seed.
``--inspect`` also prints, for seed 0, the share of users each arm gets and
the mean predicted revenue uplift per arm of a model fitted on the whole
training half (the arm-mix diagnosis in the README).

Usage (repository root)::

    python benchmarks/hillstrom_cv.py '{"loss": "mse"}' '{"loss": "huber"}'   # ~5 min per config
    python benchmarks/hillstrom_cv.py '{"loss": "mse", "reg_weight": 0}' --inspect
    python benchmarks/hillstrom_cv.py '{}' '{"monotone_cost": false}' --cost visit --budget 0.3

``--hillstrom`` points at the CSV (default: ../shared/data next to the repository).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from _common import json_params, positive_float, refuse_repeats

from sklearn_budget import EndToEndBudgetAllocator
from sklearn_budget._validation import labels_to_arms
from sklearn_budget.comparison import ComparisonData
from sklearn_budget.datasets import load_hillstrom

HERE = Path(__file__).resolve().parent


def _data(path, seed, budget_fraction, cost="contact"):
    d = load_hillstrom(path, cost=cost)
    X = d.X.to_numpy(dtype=float) if hasattr(d.X, "to_numpy") else np.asarray(d.X, float)
    data = ComparisonData.from_arrays("hillstrom", X, d.treatment, d.revenue, d.cost,
                                      random_state=seed)
    return data, budget_fraction * data.budget_scale()


def cross_validate(path, params, seeds, budget_fraction, cost="contact", label=""):
    scores = []
    for seed in seeds:
        data, budget = _data(path, seed, budget_fraction, cost)
        X, t = data.X_train, data.treatment_train
        r, c = data.revenue_train, data.cost_train
        folds = StratifiedKFold(3, shuffle=True, random_state=seed).split(X, t)
        for fold, (fit_idx, val_idx) in enumerate(folds, 1):
            t0 = time.perf_counter()
            est = EndToEndBudgetAllocator(budget=budget, random_state=seed, device="cpu",
                                          **params)
            est.fit(X[fit_idx], r[fit_idx], treatment=t[fit_idx], cost=c[fit_idx])
            scores.append(est.score(X[val_idx], r[val_idx], treatment=t[val_idx],
                                    cost=c[val_idx]))
            print(f"  {label} seed {seed} fold {fold}/3: EOM $/user {scores[-1]:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return np.asarray(scores).reshape(len(seeds), 3).mean(axis=1)


def inspect(path, params, budget_fraction, cost="contact"):
    data, budget = _data(path, 0, budget_fraction, cost)
    est = EndToEndBudgetAllocator(budget=budget, random_state=0, device="cpu", **params)
    est.fit(data.X_train, data.revenue_train, treatment=data.treatment_train,
            cost=data.cost_train)
    arms = labels_to_arms(est.allocate(data.X_test), est.levels_, 0)
    share = np.bincount(arms, minlength=len(est.levels_) + 1) / len(arms)
    print(f"  seed 0, levels {est.levels_.tolist()}: share of users per arm (control first) "
          f"{np.round(share, 3)}, mean predicted revenue uplift per level "
          f"{np.round(est.predict(data.X_test).mean(axis=0), 3)}")


def _params(parser, text):
    """A config: a JSON object of valid ``EndToEndBudgetAllocator`` parameters (else a
    parser error, before any fit)."""
    params = json_params(parser, "config", text)
    try:  # unknown names, names the script sets itself, invalid values
        EndToEndBudgetAllocator(budget=1.0, random_state=0, device="cpu",
                                **params)._validate_params()
    except (TypeError, ValueError) as exc:
        parser.error(f"config {text!r}: {exc}")
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="JSON dicts of estimator parameters")
    parser.add_argument("--hillstrom", default=str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--budget", type=positive_float, default=0.5,
                        help="budget as a fraction of the dearest e-mail's mean incremental "
                             "cost (contact cost: the fraction of users e-mailed)")
    parser.add_argument("--cost", choices=["contact", "visit"], default="contact",
                        help="cost convention of load_hillstrom (visit: the visit outcome)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--inspect", action="store_true")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds")
    # every config checked before the first fit (a config's CV takes minutes)
    configs = [(text, _params(parser, text)) for text in args.configs]
    for text, params in configs:
        per_seed = cross_validate(args.hillstrom, params, args.seeds, args.budget, args.cost,
                                  label=text)
        print(f"{text}: CV EOM $/user per seed {np.round(per_seed, 3)}, "
              f"mean {per_seed.mean():.3f}", flush=True)
        if args.inspect:
            inspect(args.hillstrom, params, args.budget, args.cost)


if __name__ == "__main__":
    main()
