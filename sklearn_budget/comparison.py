"""Head-to-head comparison of budget allocators: the engine of the demo and benchmarks.

One function, :func:`compare_allocators`, fits every requested method on the
training part of an RCT and scores its allocation on the test part at one or
more budgets, over several seeds. On synthetic data (ground truth known) the
scores are the *true* incremental revenue and spend of the deployed
allocation, its fraction of the oracle's value and the value at equal true
spend; on every data set they include the EOM incremental revenue at the
budget (:func:`~sklearn_budget.metrics.value_at_budget`) and the MT-AUCC.
For the goal-trained end-to-end methods the rows also say whether the goal
phase was kept (``goal_phase_kept``; empty for the other methods), so a
table shows which networks are in fact their ``reg_weight=0`` ablation.

Methods (names accepted by ``methods``):

``"end-to-end"`` / ``"end-to-end-es"`` / ``"end-to-end-softmax"``
    :class:`~sklearn_budget.EndToEndBudgetAllocator` with the ``"fd"``,
    ``"es"`` and ``"softmax"`` gradient estimators.
``"end-to-end-rw0"``
    The same network with ``reg_weight=0`` (the ablation: a plain two-stage
    neural model).
``"S"``, ``"T"``, ``"X"``, ``"R"``, ``"DR"``
    :class:`~sklearn_budget.TwoStageBudgetAllocator` with the causalml
    meta-learner of that family over LightGBM (needs the ``baselines`` extra).
``"random"``
    Random scores (synthetic: random users get random levels until the true
    budget is spent).
``"oracle"``
    The true uplifts (synthetic data only).

Budgets are given as fractions: of the oracle's full spend on synthetic data
(the true incremental cost of treating every user who has a profitable
level), and of the largest EOM incremental cost of one level on real data
(for Hillstrom's contact cost, the fraction of users who may be e-mailed).
"""

from __future__ import annotations

import time
from numbers import Real

import numpy as np

from ._comparison_data import ComparisonData
from ._comparison_scores import _random_assignment, _score
from .metrics import oracle_allocation, true_value

__all__ = [
    "ALL_METHODS",
    "DEFAULT_METHODS",
    "ComparisonData",
    "compare_allocators",
    "make_allocator",
    "summarize",
]

TWO_STAGE = ("S", "T", "X", "R", "DR")
END_TO_END = ("end-to-end", "end-to-end-es", "end-to-end-softmax", "end-to-end-rw0")
ALL_METHODS = (*END_TO_END, *TWO_STAGE, "random", "oracle")
DEFAULT_METHODS = ("end-to-end", "end-to-end-rw0", "T", "X", "random", "oracle")

_E2E_ESTIMATOR = {"end-to-end": "fd", "end-to-end-es": "es", "end-to-end-softmax": "softmax",
                  "end-to-end-rw0": "fd"}


def make_allocator(method, budget, *, random_state=0, device="auto", fast=False,
                   n_jobs=1):
    """An unfitted allocator for a method name of :data:`ALL_METHODS`.

    Parameters
    ----------
    method : str
        A name of :data:`ALL_METHODS`.
    budget : float
        Average incremental cost per user.
    random_state : int, default=0
        Seed of the allocator and its learners.
    device, fast : str, bool, default="auto", False
        torch device of the end-to-end methods; smaller models (demos, tests).
    n_jobs : int, default=1
        Threads of the LightGBM learners of the two-stage methods.

    Returns
    -------
    allocator : estimator or None
        None for ``"random"`` and ``"oracle"``, which need no fitting.
    """
    if method in END_TO_END:
        from ._end_to_end import EndToEndBudgetAllocator

        return EndToEndBudgetAllocator(
            budget=budget,
            reg_weight=0.0 if method == "end-to-end-rw0" else 1.0,
            gradient_estimator=_E2E_ESTIMATOR[method],
            max_epochs=12 if fast else 30,
            device=device,
            random_state=random_state,
        )
    if method in TWO_STAGE:
        from ._two_stage import TwoStageBudgetAllocator
        from .baselines import make_meta_learner

        try:
            from lightgbm import LGBMRegressor
        except ImportError as exc:  # pragma: no cover - lightgbm ships with the extra
            raise ImportError(
                "The causalml baselines use LightGBM: pip install 'sklearn-budget[baselines]'"
            ) from exc
        learner = LGBMRegressor(n_estimators=50 if fast else 100, learning_rate=0.05,
                                num_leaves=15, random_state=random_state, verbose=-1,
                                n_jobs=n_jobs)
        return TwoStageBudgetAllocator(
            make_meta_learner(method, learner, random_state=random_state), budget=budget,
            random_state=random_state)
    if method in ("random", "oracle"):
        return None
    raise ValueError(f"Unknown method {method!r}; choose from {', '.join(ALL_METHODS)}.")


def repeated_values(values):
    """The values listed more than once (as text, sorted): a repeated seed, budget or method
    would be counted twice in :func:`summarize`'s means, as if it were another seed."""
    values = list(values)
    return sorted({str(v) for v in values if values.count(v) > 1})


def compare_allocators(data_factory, methods=DEFAULT_METHODS, budgets=(0.4,), seeds=(0,), *,
                       device="auto", fast=False, time_limit=None, progress=True,
                       n_jobs=1, keep_predictions=False):
    """Fit and score allocators over budgets and seeds.

    Parameters
    ----------
    data_factory : callable
        ``data_factory(seed) -> ComparisonData``: the train/test data of one seed.
    methods : sequence of str, default=DEFAULT_METHODS
        Names from :data:`ALL_METHODS`; ``"oracle"`` is skipped on data
        without ground truth.
    budgets : sequence of float, default=(0.4,)
        Budget fractions (see the module docstring), each finite and > 0
        (the scores are relative to the budget).
    seeds : sequence of int, default=(0,)
    device : str, default="auto"
        Device of the end-to-end models.
    fast : bool, default=False
        Smaller models (demo, tests).
    time_limit : float or None, default=None
        Seconds; no new fit starts after it, and the rows finished so far are
        returned (``result.attrs["complete"]`` is False).
    progress : bool, default=True
        Show a tqdm progress bar.
    n_jobs : int, default=1
        Threads of the LightGBM baselines.
    keep_predictions : bool, default=False
        Also return the test predictions ``{(seed, budget_fraction, method):
        (r, c)}`` in ``result.attrs["predictions"]`` (for cost-curve plots).

    Returns
    -------
    pandas.DataFrame
        One row per (seed, budget, method); see the module docstring. The
        column ``budget`` is the per-user budget, ``budget_fraction`` the
        fraction it was derived from.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    for name, values in (("methods", methods), ("budgets", budgets), ("seeds", seeds)):
        if isinstance(values, (str, bytes)) or not np.iterable(values):
            raise TypeError(f"`{name}` must be a sequence; got {values!r:.80}. For one value "
                            f"give {name}=({values!r:.40},).")
    methods = list(methods)
    budgets = list(budgets)
    bad = [b for b in budgets
           if isinstance(b, bool) or not isinstance(b, Real) or not 0 < b < np.inf]
    if bad or not budgets:
        raise ValueError(f"`budgets` must be fractions > 0 (of the full spend); got {budgets}.")
    for m in methods:
        if m not in ALL_METHODS:
            raise ValueError(f"Unknown method {m!r}; choose from {', '.join(ALL_METHODS)}.")
    seeds = list(seeds)
    for name, values in (("methods", methods), ("budgets", budgets), ("seeds", seeds)):
        repeated = repeated_values(values)
        if repeated:
            raise ValueError(f"`{name}` lists {', '.join(repeated)} more than once; give each "
                             "once.")
    start = time.perf_counter()
    rows, predictions, complete = [], {}, True
    bar = tqdm(total=len(seeds) * len(budgets) * len(methods), disable=not progress,
               desc="fitting", unit="fit")
    try:
        for seed in seeds:
            data = data_factory(seed)
            scale = data.budget_scale()
            for frac in budgets:
                budget = float(frac * scale)
                oracle_value = None
                if data.has_truth:
                    tr, tc = data.true_uplift()
                    oracle = oracle_allocation(data.true_revenue, data.true_cost, budget)
                    oracle_value = true_value(oracle, data.true_revenue,
                                              data.true_cost).incremental_revenue
                for method in methods:
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        complete = False
                        raise _TimeUp
                    bar.set_postfix_str(f"{data.name} seed={seed} budget={frac:g} {method}")
                    if method == "oracle" and not data.has_truth:
                        bar.update()
                        continue
                    row = _run_one(method, data, budget, seed, device, fast, n_jobs,
                                   oracle_value)
                    r_c = row.pop("_pred")
                    if keep_predictions:
                        predictions[(seed, frac, method)] = r_c
                    rows.append({"dataset": data.name, "seed": seed, "budget_fraction": frac,
                                 "budget": budget, **row})
                    bar.update()
    except _TimeUp:
        pass
    finally:
        bar.close()
    result = pd.DataFrame(rows)
    result.attrs["complete"] = complete
    result.attrs["elapsed"] = time.perf_counter() - start
    if keep_predictions:
        result.attrs["predictions"] = predictions
    return result


class _TimeUp(Exception):
    pass


def _run_one(method, data, budget, seed, device, fast, n_jobs, oracle_value):
    n_test = len(data.X_test)
    t0 = time.perf_counter()
    kept = None  # the end-to-end two-phase schedule: did the goal phase replace phase 1?
    if method == "oracle":
        r, c = data.true_uplift()
        assignment = oracle_allocation(data.true_revenue, data.true_cost, budget)
    elif method == "random":
        rng = np.random.default_rng(seed)
        r = rng.random((n_test, data.n_levels))
        c = np.ones((n_test, data.n_levels))
        if data.has_truth:
            assignment = _random_assignment(rng, data.true_uplift()[1], budget)
        else:
            assignment = None
    else:
        est = make_allocator(method, budget, random_state=seed, device=device, fast=fast,
                             n_jobs=n_jobs)
        from ._validation import rct_target

        est.fit(data.X_train, rct_target(data.treatment_train, data.revenue_train,
                                         data.cost_train))
        r, c = est.predict(data.X_test), est.predict_cost(data.X_test)
        assignment = est.allocate(data.X_test) if data.has_truth else None
        kept = getattr(est, "goal_phase_kept_", None)
    fit_time = time.perf_counter() - t0
    row = _score(method, data, r, c, assignment, budget, fit_time, oracle_value)
    row["goal_phase_kept"] = np.nan if kept is None else bool(kept)
    row["_pred"] = (r, c)
    return row


_SUMMARY_COLUMNS = ("oracle_fraction", "equal_spend_fraction", "spend_ratio", "true_revenue",
                    "eom_revenue", "mt_aucc", "fit_time")


def summarize(result, columns=_SUMMARY_COLUMNS):
    """Mean and standard deviation over seeds, one row per dataset x budget x method.

    Returns a DataFrame of strings ``"mean ± std"`` (std omitted with one
    seed), ordered like the methods in ``result``. Where a value is undefined
    (NaN) for some seeds, the mean is over the others and says how many:
    ``"0.900 (1 of 3)"``; ``"nan"`` when it is undefined for all.

    Parameters
    ----------
    result : DataFrame
        Per-seed rows of :func:`compare_allocators`.
    columns : sequence of str, default=_SUMMARY_COLUMNS
        Columns to summarise (those absent from ``result`` are skipped).

    Returns
    -------
    summary : DataFrame
    """
    import pandas as pd

    if result.empty:
        return pd.DataFrame()
    cols = [c for c in columns if c in result]
    keys = ["dataset", "budget_fraction", "method"]
    grouped = result.groupby(keys, sort=False)[cols]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    size = grouped.size()
    out = pd.DataFrame(index=mean.index)
    for col in cols:
        digits = 1 if col == "fit_time" else 3
        out[col] = [
            (f"{m:.{digits}f}" if (n < 2 or not np.isfinite(s))
             else f"{m:.{digits}f} ± {s:.{digits}f}")
            + (f" ({n} of {total})" if 0 < n < total else "")
            for m, s, n, total in zip(mean[col], std[col], count[col], size)
        ]
    out.insert(0, "seeds", size.values)
    if "goal_phase_kept" in result:
        # "kept / fits" of the goal phase, for the methods that have one
        kept = result.groupby(keys, sort=False)["goal_phase_kept"].agg(
            lambda v: f"{int((v == True).sum())}/{int(v.notna().sum())}"  # noqa: E712
            if v.notna().any() else "")
        out["goal_phase_kept"] = kept.values
    return out.reset_index()
