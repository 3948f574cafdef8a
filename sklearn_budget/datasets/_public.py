"""Loaders for public marketing RCTs (Hillstrom, Criteo Uplift) from local CSV files.

Nothing is downloaded: the functions read a file you already have. ``path`` may
be the file itself or a folder holding it; without ``path`` the folder named by
``data_home`` or by the environment variable ``SKLEARN_BUDGET_DATA`` is searched.
"""

from __future__ import annotations

import math
import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._validation import numeric_columns, real_number

__all__ = ["load_hillstrom", "load_criteo_uplift"]

ENV_VAR = "SKLEARN_BUDGET_DATA"

_HILLSTROM_FILES = (
    "hillstrom.csv",
    "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
)
_HILLSTROM_ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
# one-hot columns, whichever values a file holds (the upstream spelling "Surburban")
_HILLSTROM_CATEGORIES = {"zip_code": ("Rural", "Surburban", "Urban"),
                         "channel": ("Multichannel", "Phone", "Web")}
_HILLSTROM_HINT = (
    "Download the MineThatData E-Mail Analytics challenge file (Kevin Hillstrom, 2008; "
    "blog.minethatdata.com, or `sklift.datasets.fetch_hillstrom` from scikit-uplift) and "
    "pass its location as `path=`, or put it as 'hillstrom.csv' in the folder named by "
    f"`data_home=` or the {ENV_VAR} environment variable."
)

_CRITEO_FILES = (
    "criteo-research-uplift-v2.1.csv.gz",
    "criteo-research-uplift-v2.1.csv",
    "criteo_uplift.csv",
)
_CRITEO_FEATURES = tuple(f"f{j}" for j in range(12))
_CRITEO_HINT = (
    "Download the Criteo Uplift Prediction Dataset v2.1 (criteo-research-uplift-v2.1.csv.gz, "
    "ailab.criteo.com/criteo-uplift-prediction-dataset or the Hugging Face mirror "
    "criteo/criteo-uplift; licence CC BY-NC-SA 4.0) and pass its location as `path=`, or put "
    f"it in the folder named by `data_home=` or the {ENV_VAR} environment variable."
)

_HILLSTROM_DESCR = """\
Hillstrom MineThatData E-Mail RCT (Kevin Hillstrom, March 2008)
===============================================================

64,000 customers who bought in the last twelve months were randomized to a
men's merchandise e-mail, a women's merchandise e-mail or no e-mail; visit,
conversion and spend were recorded over the following two weeks.

:Treatment: 0 = "No E-Mail" (control), 1 = "Mens E-Mail", 2 = "Womens E-Mail"
            (``treatment_names`` lists them in code order)
:Revenue: {revenue}
:Cost: {cost}
:Features: recency, history (dollars spent last year), mens, womens, newbie,
           one-hot zip_code (Rural, Surburban, Urban) and channel
           (Multichannel, Phone, Web). ``history_segment`` is a binned copy of
           ``history`` and is left out of ``X`` (it stays in ``frame``).

The data set has no cost column; the cost is a convention. Credit Kevin
Hillstrom / MineThatData when using it.
"""

_HILLSTROM_REVENUE = {
    "spend": "spend (USD, two-week window)",
    "conversion": "conversion (0/1)",
    "visit": "visit (0/1)",
}
_HILLSTROM_COST = {
    "contact": "contact: 1 per e-mail sent, 0 for the control (a contact budget)",
    "visit": "visit: the visit outcome (0/1) of every user, control included",
}

_CRITEO_DESCR = """\
Criteo Uplift Prediction Dataset v2.1 (Diemert et al., AdKDD 2018)
==================================================================

Users randomly eligible (treatment = 1) or not (treatment = 0) to an
advertising campaign; 12 anonymized dense features f0..f11; outcomes visit,
conversion and exposure. Full data: 13,979,592 rows, about 85% treated.

:Treatment: binary column ``treatment`` (0 = control)
:Revenue: {revenue}
:Cost: {cost}
:Rows read: {n_rows}

Default convention (revenue = conversion, cost = visit) follows DFCL (Zhou et
al., KDD 2024). Licence CC BY-NC-SA 4.0; cite Diemert, Betlei, Renaudin,
Amini, "A Large Scale Benchmark for Uplift Modeling".
"""


def _check_choice(value, name, choices):
    if not isinstance(value, str):  # a list is unhashable in `in`
        raise TypeError(f"`{name}` must be one of {tuple(choices)}; got "
                        f"{type(value).__name__} {value!r:.80}.")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}; got {value!r}.")


def _find_file(path, data_home, file_names, hint, dataset):
    """Return the CSV to read, or raise FileNotFoundError saying where we looked."""
    for name, value in (("path", path), ("data_home", data_home)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"`{name}` must be a file or folder path (str or path-like); got "
                            f"{type(value).__name__} {value!r:.80}.")
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_file():
            return candidate
        folders = [candidate] if candidate.is_dir() else []
        if not folders:
            raise FileNotFoundError(f"No {dataset} file at '{candidate}'. {hint}")
    else:
        folders = []
        if data_home is not None:
            folders.append(Path(data_home).expanduser())
        elif os.environ.get(ENV_VAR):
            folders.append(Path(os.environ[ENV_VAR]).expanduser())
        if not folders:
            raise FileNotFoundError(
                f"No {dataset} file given: pass `path=` (the CSV or its folder), `data_home=`, "
                f"or set {ENV_VAR}. {hint}"
            )
    tried = []
    for folder in folders:
        for name in file_names:
            candidate = folder / name
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    stem = dataset.split()[0].lower()  # "hillstrom", "criteo"
    near = sorted(str(f) for folder in folders if folder.is_dir() for f in folder.iterdir()
                  if f.is_file() and f.name.lower().startswith(stem) and ".csv" in f.name)
    found = f" Found {near[:5]}: pass one of them as `path=`." if near else ""
    raise FileNotFoundError(f"No {dataset} file found; looked for {tried}.{found} {hint}")


def _read_csv(file, nrows=None, dtype=None):
    """The table, or a ValueError naming the file (empty, unparsable or without rows)."""
    import pandas as pd

    try:
        frame = pd.read_csv(file, nrows=nrows, dtype=dtype)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot read '{file}' as a CSV table: {exc}") from exc
    if len(frame) == 0:
        raise ValueError(f"'{file}' has a header but no rows.")
    return frame


def _numeric(frame, columns, file):
    """``frame[columns]`` as float64, or a ValueError naming the column and the first bad line.

    A blank cell (a truncated or edited file) or a non-number is an error: the
    loaders promise float outcomes and features, and a blank treatment cell
    would otherwise become a bogus arm label.
    """
    table, problem = numeric_columns(frame, columns)
    if problem is not None:
        col, n_bad, row, cell = problem
        raise ValueError(
            f"'{file}': column '{col}' has {n_bad} missing or non-numeric value(s), the "
            f"first ({cell}) on line {row + 2} of the file. Is the file complete (not cut "
            "off) and unedited?"
        )
    return table


def _one_hot(frame, column, categories, file):
    """Dummy columns ``column=category`` for a fixed category list (the file's own values
    must be among them), so that the features do not depend on which ones appear."""
    import pandas as pd

    values = frame[column]
    unknown = sorted({str(v) for v in values.unique()} - set(categories))
    if unknown or values.isna().any():
        raise ValueError(
            f"'{file}': column '{column}' has value(s) {unknown or ['<missing>']} outside "
            f"{list(categories)}."
        )
    cat = pd.Categorical(values, categories=categories)
    return pd.get_dummies(pd.Series(cat, name=column, index=frame.index), prefix=column,
                          prefix_sep="=").astype(np.float64)


def _check_nrows(nrows):
    """``nrows`` as an int >= 1 (a whole number of any numeric type), or None."""
    if nrows is None:
        return None
    if isinstance(nrows, Integral) and not isinstance(nrows, bool) and nrows >= 1:
        return int(nrows)  # (also beyond float64: the whole file)
    value = None if isinstance(nrows, bool) else real_number(nrows)
    if value is None or not math.isfinite(value) or not value.is_integer() or value < 1:
        # (inf, NaN, 'abc', [3] gave raw errors)
        raise ValueError(f"`nrows` must be a positive integer or None; got {nrows!r}.")
    return int(value)


def _require_columns(frame, columns, file):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"'{file}' lacks the column(s) {missing}; found {list(frame.columns)}. "
            "Is this the right file?"
        )


def load_hillstrom(path=None, *, revenue="spend", cost="contact", data_home=None):
    """Load the Hillstrom MineThatData e-mail RCT (64,000 users, 2 e-mails + control).

    Parameters
    ----------
    path : str or path-like, default=None
        The CSV file or a folder holding ``hillstrom.csv`` (or the upstream
        file name). If None, ``data_home`` or the ``SKLEARN_BUDGET_DATA``
        environment variable names the folder.
    revenue : {"spend", "conversion", "visit"}, default="spend"
        Outcome used as revenue.
    cost : {"contact", "visit"}, default="contact"
        Cost convention: "contact" costs 1 per e-mail sent (0 for the
        control), "visit" uses the visit outcome as the cost.
    data_home : str or path-like, default=None
        Folder searched when ``path`` is None.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (DataFrame, 64000 x 11, float64), ``treatment`` (int64 codes,
        0 = "No E-Mail"), ``revenue``, ``cost`` (float64), ``feature_names``,
        ``treatment_names`` (labels in code order), ``frame`` (the raw
        table) and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If the file is not found; the message says where to download it.
    ValueError
        If the file is empty or lacks a column, or a used cell is blank or not a
        number (a file cut off mid-download), or a label is not one of the
        dataset's (segments, zip codes, channels), or ``revenue`` and ``cost``
        are both ``"visit"``.

    Examples
    --------
    >>> from sklearn_budget.datasets import load_hillstrom
    >>> data = load_hillstrom(csv_folder)  # doctest: +SKIP
    >>> data.X.shape  # doctest: +SKIP
    (64000, 11)
    >>> try:
    ...     load_hillstrom("/nonexistent/hillstrom.csv")
    ... except FileNotFoundError as exc:
    ...     print("MineThatData" in str(exc))
    True
    """
    _check_choice(revenue, "revenue", _HILLSTROM_REVENUE)
    _check_choice(cost, "cost", _HILLSTROM_COST)
    if revenue == cost:  # both "visit": the revenue of a visit would be its own cost
        raise ValueError("`revenue` and `cost` must be different outcomes; both are 'visit'.")
    file = _find_file(path, data_home, _HILLSTROM_FILES, _HILLSTROM_HINT, "Hillstrom")
    import pandas as pd

    frame = _read_csv(file)
    _require_columns(
        frame,
        ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment",
         "visit", "conversion", "spend"],
        file,
    )
    blank = np.flatnonzero(frame["segment"].isna().to_numpy())
    if len(blank):
        raise ValueError(
            f"'{file}': column 'segment' has {len(blank)} blank cell(s), the first on line "
            f"{blank[0] + 2} of the file. Is the file complete (not cut off) and unedited?")
    unknown = sorted(set(frame["segment"].unique()) - set(_HILLSTROM_ARMS), key=str)
    if unknown:
        raise ValueError(f"'{file}' has unknown segment label(s) {unknown}; "
                         f"expected {list(_HILLSTROM_ARMS)}.")
    treatment = frame["segment"].map({a: k for k, a in enumerate(_HILLSTROM_ARMS)})
    treatment = treatment.to_numpy(dtype=np.int64)

    numeric = _numeric(frame, ["recency", "history", "mens", "womens", "newbie"], file)
    X = pd.concat([numeric, *(_one_hot(frame, col, cats, file)
                              for col, cats in _HILLSTROM_CATEGORIES.items())], axis=1)

    outcomes = _numeric(frame, sorted({revenue, "visit"}), file)
    y = outcomes[revenue].to_numpy()
    if cost == "contact":
        c = (treatment != 0).astype(np.float64)
    else:
        c = outcomes["visit"].to_numpy()
    return Bunch(
        X=X,
        treatment=treatment,
        revenue=y,
        cost=c,
        feature_names=list(X.columns),
        treatment_names=list(_HILLSTROM_ARMS),
        frame=frame,
        DESCR=_HILLSTROM_DESCR.format(
            revenue=_HILLSTROM_REVENUE[revenue], cost=_HILLSTROM_COST[cost]
        ),
    )


def load_criteo_uplift(
    path=None, *, revenue="conversion", cost="visit", nrows=None, data_home=None
):
    """Load the Criteo Uplift Prediction Dataset v2.1 (binary treatment).

    Parameters
    ----------
    path : str or path-like, default=None
        The CSV file (plain or ``.gz``) or a folder holding
        ``criteo-research-uplift-v2.1.csv.gz`` (or ``.csv``, or
        ``criteo_uplift.csv``; other ``criteo*.csv*`` files there, such as a
        sample, are named in the error). If None, ``data_home`` or the
        ``SKLEARN_BUDGET_DATA`` environment variable names the folder.
    revenue : {"conversion", "visit"}, default="conversion"
        Outcome used as revenue.
    cost : {"visit", "exposure"}, default="visit"
        Outcome used as cost (DFCL convention: revenue = conversion,
        cost = visit).
    nrows : int, default=None
        Read only the first ``nrows`` rows (the full file has about 14M).
    data_home : str or path-like, default=None
        Folder searched when ``path`` is None.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (DataFrame with columns f0..f11, float64), ``treatment``
        (int64, 0 = control), ``revenue``, ``cost`` (float64),
        ``feature_names``, ``frame`` (the raw table) and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If the file is not found; the message says where to download it
        (and names other Criteo CSV files in the folder, e.g. a sample).
    ValueError
        If the file is empty or lacks a column, a used cell is blank or not a
        number (a file cut off mid-download), or ``treatment`` is not 0 / 1.

    Examples
    --------
    >>> from sklearn_budget.datasets import load_criteo_uplift
    >>> data = load_criteo_uplift(csv_folder, nrows=1000)  # doctest: +SKIP
    >>> data.X.shape  # doctest: +SKIP
    (1000, 12)
    >>> try:
    ...     load_criteo_uplift("/nonexistent/criteo.csv")
    ... except FileNotFoundError as exc:
    ...     print("Criteo" in str(exc))
    True
    """
    _check_choice(revenue, "revenue", ("conversion", "visit"))
    _check_choice(cost, "cost", ("visit", "exposure"))
    if revenue == cost:
        raise ValueError(f"`revenue` and `cost` must be different outcomes; both are {revenue!r}.")
    nrows = _check_nrows(nrows)
    file = _find_file(path, data_home, _CRITEO_FILES, _CRITEO_HINT, "Criteo Uplift")
    frame = _read_csv(file, nrows=None if nrows is None else int(nrows))
    _require_columns(frame, [*_CRITEO_FEATURES, "treatment", revenue, cost], file)
    X = _numeric(frame, list(_CRITEO_FEATURES), file)
    outcomes = _numeric(frame, ["treatment", revenue, cost], file)
    treatment = outcomes["treatment"].to_numpy()
    if not np.isin(treatment, (0, 1)).all():
        odd = sorted(set(treatment[~np.isin(treatment, (0, 1))].tolist()))[:5]
        raise ValueError(f"'{file}': column 'treatment' must be 0 or 1; found {odd}.")
    return Bunch(
        X=X,
        treatment=treatment.astype(np.int64),
        revenue=outcomes[revenue].to_numpy(),
        cost=outcomes[cost].to_numpy(),
        feature_names=list(_CRITEO_FEATURES),
        frame=frame,
        DESCR=_CRITEO_DESCR.format(revenue=revenue, cost=cost, n_rows=len(frame)),
    )
