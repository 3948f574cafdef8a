"""Command line, ``sklearn-budget allocate``: score a file of users with a saved allocator.

The file is read and written a chunk of rows at a time (``--chunk-rows``;
:mod:`sklearn_budget._cli_tables`), so its size is bounded by the disk, not
the memory:

- at a budget per user (``--budget``, or the model's own) each user's choice
  depends on that user alone: one pass, chunk by chunk;
- with ``--total-budget`` the budget problem couples all users: a first pass
  writes the predicted uplifts to a scratch folder beside the output, the
  solver reads them back chunk by chunk (its Dask path, when dask is
  installed and there is more than one chunk), and a second pass writes the
  labels, with the id column read again.

Every user error (a file that is missing, empty, unreadable or not a model, a
blank or non-numeric feature cell, or one a pipeline's own steps refuse (a
pipeline fitted on a DataFrame gets the columns as read, for its encoders and
imputers: its error then names the chunk's first such cell), an output that
cannot be written) is a
:class:`CLIError`: one line, exit status 2. The model, the output and the
first chunk are checked before any scoring; a bad cell in a later chunk
stops the run with no output written.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._cli_tables import CLIError, TableWriter, check_output, iter_table, n_rows

__all__ = ["CLIError", "cmd_allocate"]


def _load_model(path):
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"Model file {str(path)!r} not found (save one with "
                       "joblib.dump(fitted_allocator, path)).")
    try:
        model = joblib.load(path)
    except Exception as exc:  # pickle raises many types on a file that is not one
        raise CLIError(f"Cannot load {str(path)!r} as a saved model (joblib.dump of a "
                       f"fitted allocator): {type(exc).__name__}: {exc}") from None
    if not hasattr(model, "allocate"):
        raise CLIError(f"{str(path)!r} holds a {type(model).__name__}, not a fitted "
                       "budget allocator (an object with `allocate`).")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"{str(path)!r} holds an unfitted {type(model).__name__}; fit "
                       "it before saving.") from None
    return model


def _feature_reader(model, columns, id_column, chunk_rows):
    """``read(frame, first_row) -> X``, the model's features of a chunk, checked now
    against the file's header."""
    features = getattr(model, "feature_names_in_", None)
    if features is not None:
        missing = [f for f in features if f not in columns]
        if missing:
            raise CLIError(f"Input is missing the model's feature column(s) {missing}.")
        names = list(features)
        if len(getattr(model, "steps", ())) > 1:  # a pipeline's own steps read the columns
            return lambda frame, start: frame[names]  # (text to encode, blanks to impute)
        return lambda frame, start: _numeric(frame[names], start, chunk_rows)
    drop = [id_column] if id_column in columns else []
    n_in = getattr(model, "n_features_in_", len(columns) - len(drop))
    if len(columns) - len(drop) != n_in:
        hint = ("" if drop else f" (no column is named {id_column!r}: name the id column, "
                "if any, with --id-column)")
        raise CLIError(f"Input has {len(columns) - len(drop)} feature columns, the model "
                       f"expects {n_in}{hint}.")
    return lambda frame, start: _numeric(frame.drop(columns=drop), start,
                                         chunk_rows).to_numpy()


def _numeric(X, start, chunk_rows):
    """The feature table as numbers, or a CLIError naming the column and the first bad row."""
    from ._validation import numeric_columns

    table, problem = numeric_columns(X, X.columns)
    if problem is not None:
        col, n_bad, row, cell = problem
        within = (f" among data rows {start + 1} to {start + len(X)}"
                  if start or len(X) == chunk_rows else "")
        raise CLIError(f"Feature column {col!r} has {n_bad} blank or non-numeric value(s)"
                       f"{within}, the first ({cell}) in data row {start + row + 1}.")
    return table


def _uplift(model, X, start, path):
    """``(predict(X), predict_cost(X))`` of a chunk from one model call where the model
    allows it; the model's ValueError (NaN predicted) names the user's data row."""
    final = getattr(model, "_final_estimator", model)
    raw = len(getattr(model, "steps", ())) > 1 and hasattr(X, "columns")  # (columns as read)
    try:
        if hasattr(final, "_validated_uplift"):
            Xt = model._transformed(X) if final is not model else X
            # rows counted from 1 as data rows of the file
            r, c = final._validated_uplift(Xt, (start + 1, f"the data rows of {str(path)!r}"))
        else:
            r, c = model.predict(X), model.predict_cost(X)
    except (ValueError, TypeError) as exc:
        if not raw:
            if isinstance(exc, TypeError):
                raise
            raise CLIError(str(exc)) from None
        raise _refused(exc, X, start, path) from None
    return np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)


def _refused(exc, X, start, path):
    """The CLIError of a chunk a pipeline refused: the likely cell (a text cell in a column
    of numbers; a blank one when the pipeline met NaN), else its message, on one line."""
    rows = f"The model refused data rows {start + 1} to {start + len(X)} of {str(path)!r}"
    found = _first_bad_cell(X, blanks="NaN" in str(exc))
    if found is None:
        return CLIError(f"{rows}: {' '.join(str(exc).split())}")
    column, row, cell = found
    return CLIError(f"{rows}: feature column {column!r} has {cell} in data row "
                    f"{start + row + 1}.")


def _first_bad_cell(X, blanks):
    """``(column, row, cell)`` of the first text cell in a column that holds numbers (a
    column of text is a pipeline's to encode), or with ``blanks`` of the first blank cell
    (one it does not impute); None."""
    import pandas as pd

    for name in X.columns:
        numbers = pd.to_numeric(X[name], errors="coerce")
        text = (numbers.isna() & X[name].notna()).to_numpy()
        if text.any() and numbers.notna().any():
            row = int(np.flatnonzero(text)[0])
            return name, row, f"the text {X[name].iloc[row]!r:.40}"
    for name in X.columns if blanks else ():
        missing = X[name].isna().to_numpy()
        if missing.any():
            return name, int(np.flatnonzero(missing)[0]), "a blank cell"
    return None


def _deployed(model, budget):
    """``arms(r, c) -> labels`` at the model's (re-read) multiplier, read once."""
    from ._labels import arms_to_labels

    final = getattr(model, "_final_estimator", model)
    multiplier = final._deployed_multiplier(budget)
    return lambda r, c: arms_to_labels(np.asarray(final._allocate(r, c, multiplier)),
                                       final.levels_, final.control_name)


def _progress(args, desc):
    """A progress bar over users on stderr (on a terminal, after a second; not ``--quiet``)."""
    from tqdm.auto import tqdm

    return tqdm(total=n_rows(args.input), desc=desc, unit=" users", unit_scale=True,
                leave=False, delay=1.0, disable=True if args.quiet else None, file=sys.stderr)


def _part(frame, labels, id_column, model, r=None, c=None):
    """One chunk of the output: the id column (if any), the treatment, the uplifts."""
    out = (frame[[id_column]] if id_column in frame.columns
           else frame.iloc[:, :0]).reset_index(drop=True)
    out["treatment"] = labels
    if r is not None:
        for k, level in enumerate(model.levels_):
            out[f"revenue_uplift_{level}"] = r[:, k]
            out[f"cost_uplift_{level}"] = c[:, k]
    return out


def _per_user(model, chunks, read, args, writer):
    """One pass: each chunk allocated at the (re-read) multiplier and written."""
    final = getattr(model, "_final_estimator", model)
    deployed = (_deployed(model, args.budget)
                if hasattr(final, "_deployed_multiplier") and hasattr(final, "_allocate")
                else None)
    with _progress(args, "allocating") as bar:
        for start, frame in chunks:
            X = read(frame, start)
            if deployed is not None:  # one model call for the labels and the uplifts
                r, c = _uplift(model, X, start, args.input)
                labels = deployed(r, c)
            else:
                labels = model.allocate(X, budget=args.budget)
                r, c = _uplift(model, X, start, args.input) if args.with_uplift else (None,
                                                                                       None)
            if not args.with_uplift:
                r = c = None
            writer.write(_part(frame, labels, args.id_column, model, r, c))
            bar.update(len(frame))
            yield labels


def _total(model, chunks, read, args, writer, has_id):
    """Predict every chunk to disk, solve the budget over all users, write the labels."""
    from ._labels import arms_to_labels
    from ._rows_on_disk import RowsOnDisk

    k = len(model.levels_)
    r_rows = RowsOnDisk(writer.scratch / "revenue_uplift.bin", np.float64, k)
    c_rows = RowsOnDisk(writer.scratch / "cost_uplift.bin", np.float64, k)
    with _progress(args, "predicting") as bar:
        for start, frame in chunks:
            r, c = _uplift(model, read(frame, start), start, args.input)
            r_rows.append(r)
            c_rows.append(c)
            bar.update(len(frame))
    arms = _solve(r_rows, c_rows, args.total_budget, args.chunk_rows, writer.scratch)
    n = len(r_rows)
    if has_id:
        id_chunks = iter_table(args.input, args.chunk_rows, columns=[args.id_column],
                               text_columns=[args.id_column])
    else:
        import pandas as pd

        id_chunks = ((s, pd.DataFrame(index=range(min(args.chunk_rows, n - s))))
                     for s in range(0, n, args.chunk_rows))
    for start, frame in id_chunks:
        stop = start + len(frame)
        labels = arms_to_labels(np.asarray(arms[start:stop]), model.levels_,
                                model.control_name)
        r, c = (r_rows[start:stop], c_rows[start:stop]) if args.with_uplift else (None, None)
        writer.write(_part(frame, labels, args.id_column, model, r, c))
        yield labels


def _solve(r_rows, c_rows, total_budget, chunk_rows, scratch):
    """The assignment (arm per user) of the budget problem on the uplifts on disk."""
    from ._solver import solve_budget_allocation

    n = len(r_rows)
    if n > chunk_rows:
        try:
            import dask.array as da
        except ImportError:
            print(f"sklearn-budget allocate: note: dask is not installed, so the budget "
                  f"problem over {n} users is solved in memory (pip install "
                  "'sklearn-budget[dask]' to solve it chunk by chunk).", file=sys.stderr)
        else:
            shape = (chunk_rows, r_rows.width)
            sol = solve_budget_allocation(da.from_array(r_rows, chunks=shape),
                                          da.from_array(c_rows, chunks=shape),
                                          budget=total_budget)
            arms = np.lib.format.open_memmap(scratch / "arms.npy", mode="w+",
                                             dtype=sol.assignment.dtype, shape=(n,))
            da.store(sol.assignment, arms)
            return arms
    return solve_budget_allocation(r_rows.memmap(), c_rows.memmap(),
                                   budget=total_budget).assignment


@contextmanager
def _terminated_as_exit():
    """SIGTERM (a scheduler's time limit) ends the run like Ctrl-C: scratch files removed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_allocate(args):
    """``sklearn-budget allocate``: write each user's treatment (and uplift)."""
    model = _load_model(args.model)
    out_path = Path(args.output)
    check_output(out_path)
    in_path = Path(args.input)
    if out_path.resolve() == in_path.resolve() or (
            out_path.exists() and in_path.exists() and os.path.samefile(out_path, in_path)):
        raise CLIError(f"--output {str(out_path)!r} is the --input file; it would be replaced "
                       "by the labels. Write to another file.")
    explicit_id, args.id_column = args.id_column is not None, args.id_column or "id"
    chunks = iter_table(args.input, args.chunk_rows, text_columns=[args.id_column])
    first_start, first = next(chunks)
    if explicit_id and args.id_column not in first.columns:  # (a misspelt name: no ids)
        raise CLIError(f"--id-column {args.id_column!r}: the input has no such column; its "
                       f"columns are {[str(c) for c in first.columns][:12]}.")
    read = _feature_reader(model, list(first.columns), args.id_column, args.chunk_rows)
    X = read(first, first_start)  # a bad cell in the first chunk fails before any work
    if len(getattr(model, "steps", ())) > 1 and hasattr(X, "columns"):
        _uplift(model, X, first_start, args.input)  # (the pipeline's own steps read them)
    has_id = args.id_column in first.columns
    if not has_id:
        print(f"sklearn-budget allocate: note: no {args.id_column!r} column in the input; the "
              "output keeps the input's row order (name the id column with --id-column).",
              file=sys.stderr)
    from itertools import chain

    chunks = chain([(first_start, first)], chunks)
    counts = Counter()
    with _terminated_as_exit(), TableWriter(out_path) as writer:
        parts = (_total(model, chunks, read, args, writer, has_id)
                 if args.total_budget is not None else _per_user(model, chunks, read, args,
                                                                  writer))
        try:
            for labels in parts:
                for label, count in zip(*np.unique(labels, return_counts=True)):
                    counts[label] += int(count)
        except OSError as exc:  # the scratch files of --total-budget (e.g. disk full)
            raise CLIError(f"Cannot write scratch files beside --output {str(out_path)!r}: "
                           f"{exc.strerror or exc}.") from None
    try:
        keys = sorted(counts)
    except TypeError:  # labels of mixed types
        keys = sorted(counts, key=str)
    counts = {str(k): counts[k] for k in keys}
    print(f"Allocated {writer.rows} users -> {out_path} (users per treatment: {counts}).")
    return 0
