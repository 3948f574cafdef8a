"""Helpers shared by the benchmark scripts (hardware line, Markdown tables, synthetic cases,
command-line checks)."""

from __future__ import annotations

import argparse
import os
import platform

SETTINGS = ("default", "hard")  # the settings of make_marketing_rct


def _int_at_least(text, low):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}; got {text!r}")
    return value


def positive_int(text):
    """argparse ``type=``: an integer >= 1 (sizes, counts, repetitions)."""
    return _int_at_least(text, 1)


def nonnegative_int(text):
    """argparse ``type=``: an integer >= 0 (where 0 means "none")."""
    return _int_at_least(text, 0)


def positive_float(text):
    """argparse ``type=``: a finite number > 0 (a budget: the scores are relative to it)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value


def json_params(parser, what, text):
    """``text`` parsed as a JSON object of estimator parameters, else a parser error."""
    import json

    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"{what}: not valid JSON ({exc}): {text!r}")
    if not isinstance(params, dict):
        parser.error(f"{what}: expected a JSON object of parameters; got {text!r}")
    return params


def refuse_repeats(parser, args, *options):
    """``parser.error`` if an option lists a value more than once (``--seeds 0 0``): it
    would be fitted twice and counted twice in the means, as if it were another seed.
    ``options`` are argparse destinations (``"seeds"``, ``"n_samples"``...)."""
    from sklearn_budget.comparison import repeated_values

    for option in options:
        repeated = repeated_values(getattr(args, option, None) or [])
        if repeated:
            parser.error(f"--{option.replace('_', '-')} lists {', '.join(repeated)} more than "
                         "once; give each once.")


def hardware():
    """One line naming the CPU, its logical cores, Python and (if loaded) torch."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return text
    return f"{text}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def markdown_table(frame, digits=3):
    """A pandas DataFrame as a Markdown table, floats with ``digits`` significant digits."""
    cols = list(frame.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        out.append("| " + " | ".join(f"{v:.{digits}g}" if isinstance(v, float) else str(v)
                                     for v in row) + " |")
    return "\n".join(out)


def synthetic_case(setting, seed, n_samples, budget_frac):
    """One seed of ``make_marketing_rct`` split like the comparison, with its budget.

    Returns a dict: ``data`` (:class:`~sklearn_budget.comparison.ComparisonData`,
    truth kept), ``budget`` (``budget_frac`` x the oracle's full spend),
    ``oracle`` (the oracle allocation's true incremental revenue at that
    budget on the test half), ``y`` (packed training target) and ``tr`` /
    ``tc`` (true revenue / cost uplift of the test users).
    """
    from sklearn_budget import rct_target
    from sklearn_budget.comparison import ComparisonData
    from sklearn_budget.datasets import make_marketing_rct
    from sklearn_budget.metrics import oracle_allocation, true_value

    d = make_marketing_rct(n_samples=n_samples, setting=setting, random_state=seed)
    data = ComparisonData.from_arrays(setting, d.X, d.treatment, d.revenue, d.cost,
                                      true_revenue=d.true_revenue, true_cost=d.true_cost,
                                      random_state=seed)
    budget = budget_frac * data.budget_scale()
    oracle = true_value(oracle_allocation(data.true_revenue, data.true_cost, budget),
                        data.true_revenue, data.true_cost).incremental_revenue
    tr, tc = data.true_uplift()
    return dict(data=data, budget=budget, oracle=oracle, tr=tr, tc=tc,
                y=rct_target(data.treatment_train, data.revenue_train, data.cost_train))


def synthetic_cases(settings, seeds, n_samples, budget_frac):
    """``(setting, seed, case)`` for every setting and seed (see :func:`synthetic_case`)."""
    for setting in settings:
        for seed in seeds:
            yield setting, seed, synthetic_case(setting, seed, n_samples, budget_frac)


def equal_spend_fraction(revenue_uplift, cost_uplift, case):
    """True value / oracle's of the predictions' ranking, at equal TRUE spend."""
    from sklearn_budget._comparison_scores import _equal_spend_assignment
    from sklearn_budget.metrics import true_value

    data = case["data"]
    arms = _equal_spend_assignment(revenue_uplift, cost_uplift, case["tr"], case["tc"],
                                   case["budget"])
    value = true_value(arms, data.true_revenue, data.true_cost).incremental_revenue
    return value / case["oracle"]
