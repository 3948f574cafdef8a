"""Command line, ``sklearn-budget allocate``: score a file of users with a saved allocator.

Every user error (a file that is missing, empty, unreadable or not a model, a
blank or non-numeric feature cell, an output that cannot be written) is a
:class:`CLIError`: one line, exit status 2, raised before any work is done
where it can be.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["CLIError", "check_writable_folder", "cmd_allocate"]


class CLIError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def _read_table(path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"Input file {str(path)!r} not found.")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except ImportError as exc:
        raise CLIError(f"Reading Parquet needs pyarrow: pip install pyarrow ({exc}).") from None
    except (ValueError, OSError) as exc:  # pandas' parser and decoding errors too
        raise CLIError(f"Cannot read {str(path)!r} as a table: {exc}") from None
    if len(frame) == 0:
        raise CLIError(f"{str(path)!r} has no rows.")
    return frame


def _check_output(path):
    """Fail before the work when the output cannot be written."""
    if path.is_dir():
        raise CLIError(f"--output {str(path)!r} is a folder; give a file name (.csv or "
                       ".parquet).")
    check_writable_folder(path.parent, f"the folder of --output {str(path)!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise CLIError(f"--output {str(path)!r} cannot be written (no write permission).")
    if path.suffix.lower() in (".parquet", ".pq"):
        from importlib.util import find_spec

        if find_spec("pyarrow") is None and find_spec("fastparquet") is None:
            raise CLIError("Writing Parquet needs pyarrow (or fastparquet): pip install "
                           "pyarrow, or write a .csv file.")


def check_writable_folder(folder, what):
    """Fail when ``folder`` cannot be created or written, without creating it yet
    (a run that fails later leaves no empty folders behind)."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CLIError(f"Cannot create {what}: {str(existing)!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"Cannot create {what}: no write permission in {str(existing)!r}.")


def _numeric_features(X):
    """The feature table as numbers, or a CLIError naming the column and the first bad row."""
    from ._validation import numeric_columns

    table, problem = numeric_columns(X, X.columns)
    if problem is not None:
        col, n_bad, row, cell = problem
        raise CLIError(f"Feature column {col!r} has {n_bad} blank or non-numeric value(s), "
                       f"the first ({cell}) in data row {row + 1}.")
    return table


def cmd_allocate(args):
    """``sklearn-budget allocate``: write each user's treatment (and uplift)."""
    import joblib
    import numpy as np

    model_path = Path(args.model)
    if not model_path.is_file():
        raise CLIError(f"Model file {str(model_path)!r} not found (save one with "
                       "joblib.dump(fitted_allocator, path)).")
    try:
        model = joblib.load(model_path)
    except Exception as exc:  # pickle raises many types on a file that is not one
        raise CLIError(f"Cannot load {str(model_path)!r} as a saved model (joblib.dump of a "
                       f"fitted allocator): {type(exc).__name__}: {exc}") from None
    if not hasattr(model, "allocate"):
        raise CLIError(f"{str(model_path)!r} holds a {type(model).__name__}, not a fitted "
                       "budget allocator (an object with `allocate`).")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"{str(model_path)!r} holds an unfitted {type(model).__name__}; fit "
                       "it before saving.") from None
    out_path = Path(args.output)
    _check_output(out_path)
    frame = _read_table(args.input)
    features = getattr(model, "feature_names_in_", None)
    if features is not None:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise CLIError(f"Input is missing the model's feature column(s) {missing}.")
        X = _numeric_features(frame[list(features)])
    else:
        drop = [c for c in (args.id_column,) if c and c in frame.columns]
        X = frame.drop(columns=drop)
        n_in = getattr(model, "n_features_in_", X.shape[1])
        if X.shape[1] != n_in:
            hint = ("" if args.id_column in frame.columns else
                    f" (no column is named {args.id_column!r}: name the id column, if any, "
                    "with --id-column)")
            raise CLIError(f"Input has {X.shape[1]} feature columns, the model expects "
                           f"{n_in}{hint}.")
        X = _numeric_features(X).to_numpy()
    if args.total_budget is not None:
        assignment = model.allocate(X, total_budget=args.total_budget)
    else:
        assignment = model.allocate(X, budget=args.budget)
    if args.id_column in frame.columns:
        out = frame[[args.id_column]].copy()
    else:
        out = frame.iloc[:, :0].copy()
        print(f"sklearn-budget allocate: note: no {args.id_column!r} column in the input; the "
              "output keeps the input's row order (name the id column with --id-column).",
              file=sys.stderr)
    out["treatment"] = assignment
    if args.with_uplift:
        r, c = model.predict(X), model.predict_cost(X)
        for k, level in enumerate(model.levels_):
            out[f"revenue_uplift_{level}"] = r[:, k]
            out[f"cost_uplift_{level}"] = c[:, k]
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.suffix.lower() in (".parquet", ".pq"):
            out.to_parquet(out_path, index=False)
        else:
            out.to_csv(out_path, index=False)
    except OSError as exc:
        raise CLIError(f"Cannot write --output {str(out_path)!r}: {exc.strerror or exc}.") \
            from None
    counts = {str(k): int(v) for k, v in zip(*np.unique(assignment, return_counts=True))}
    print(f"Allocated {len(out)} users -> {out_path} (users per treatment: {counts}).")
    return 0
