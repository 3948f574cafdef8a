"""A fitted allocator (or pipeline) on Dask arrays: each method chunk by chunk.

``predict``, ``predict_cost``, ``allocate`` and a pipeline's ``transform``
apply to one user at a time, so on a Dask array of features they run lazily
on each chunk of rows (the whole fitted object travels with the tasks; it is
picklable, so a distributed scheduler works too). ``allocate(total_budget=...)``
is the one global step: the predicted uplifts go to the solver's Dask path
(:mod:`sklearn_budget._solver_dask`), which reads them chunk by chunk. A chunk
of no rows (a filter emptied it) gives an empty part of the result.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._dask_frames import frame_to_array
from ._solver import solve_budget_allocation
from ._validation import arms_to_labels, check_budget, check_dask_rows, is_dask_frame

__all__ = ["allocate_chunks", "check_frame_columns", "check_same_rows", "gathered", "is_dask",
           "map_rows", "uplift_chunks"]


def is_dask(X):
    """True for a Dask array or DataFrame (without importing dask)."""
    return array_api_compat.is_dask_array(X) or is_dask_frame(X)


def gathered(X):
    """A Dask array or DataFrame computed into memory (numpy / pandas), else ``X`` as is."""
    return X.compute() if is_dask(X) else X


def check_frame_columns(obj, X):
    """``X``, checked now against the fitted ``obj``: a Dask DataFrame must have the
    columns it was fitted on, in that order (as scikit-learn asks of a pandas one), or
    as many when it was fitted without names; a Dask array as many features."""
    check_is_fitted(obj)
    names = getattr(obj, "feature_names_in_", None)
    n_features = getattr(obj, "n_features_in_", None)
    if not is_dask_frame(X):
        return check_dask_rows(X, n_features, type(obj).__name__) if is_dask(X) else X
    if names is not None and [str(c) for c in X.columns] != [str(n) for n in names]:
        raise ValueError(
            f"X has the columns {[str(c) for c in X.columns][:10]}, but "
            f"{type(obj).__name__} was fitted on {[str(n) for n in names][:10]}: select "
            "those, in that order (X[list(model.feature_names_in_)]).")
    if names is None and n_features is not None and len(X.columns) != n_features:
        raise ValueError(f"X has {len(X.columns)} features, but {type(obj).__name__} was "
                         f"fitted with {n_features} features.")
    return X


def _checked_rows(obj, X, n_features):
    """``X`` in chunks of whole rows, checked against the fitted ``obj`` now (a Dask
    DataFrame becomes an array: its partitions' lengths are computed)."""
    X = check_frame_columns(obj, X)
    if is_dask_frame(X):
        X = frame_to_array(X)
    return check_dask_rows(X, n_features, type(obj).__name__)


def _frame(obj, block):
    """A chunk as the fitted object saw its training data (with feature names if it had them)."""
    names = getattr(obj, "feature_names_in_", None)
    if names is None:
        return block
    import pandas as pd

    return pd.DataFrame(block, columns=names)


def _call(block, obj, method, empty):
    if block.shape[0] == 0:  # a chunk a filter emptied: the fitted steps refuse 0 rows
        return empty
    out = np.asarray(getattr(obj, method)(_frame(obj, block)))
    steps = getattr(obj, "steps", None)  # a Pipeline: its transformers' names
    names = [name for name, _ in steps[:-1]] if steps else [type(obj).__name__]
    return check_same_rows(out, block.shape[0], names)


def check_same_rows(out, n_rows, names):
    """``out``, or a ValueError when a Pipeline's transformer steps ``names`` changed the
    number of rows (``n_rows``, None when the input does not say): an allocation needs one
    label per user, in their order."""
    n_out = _num_samples(out)
    if n_rows is not None and n_out != n_rows:
        raise ValueError(
            f"The pipeline's transformer step(s) {names} turned {n_rows} rows into "
            f"{n_out}; a budget pipeline needs one row per user, in the same order. "
            "Filter or resample users before the pipeline, not in a step.")
    return out


def _uplift(block, est, n_users, block_info=None):
    """``(r, c)`` of one chunk, side by side."""
    k = est.n_levels_
    if block.shape[0] == 0:
        return np.empty((0, 2 * k), dtype=np.float64)
    chunk = (block_info[0]["array-location"][0][0], n_users) if block_info else None
    r, c = est._validated_uplift(_frame(est, block), chunk)
    return np.concatenate([r, c], axis=1)


def map_rows(obj, X, method, *, width, n_features=None):
    """``obj.method(chunk)`` on every chunk of rows of ``X``, lazily: float, ``width`` columns
    (``method`` must keep the rows: checked per chunk)."""
    X = _checked_rows(obj, X, n_features)
    empty = np.empty((0, width), dtype=np.float64)
    return X.map_blocks(_call, obj, method, empty, chunks=(X.chunks[0], (width,)),
                        dtype=np.float64, meta=np.empty((0, 0), dtype=np.float64))


def uplift_chunks(est, X):
    """Lazy predicted uplifts ``(r, c)`` of an allocator, from one model call per chunk.

    Both are slices of one Dask array, so a computation that needs both
    predicts each chunk once; and since the array's name is a hash of the
    model and ``X``, so do ``r`` and ``c`` of separate calls computed together.
    """
    check_is_fitted(est)
    X = _checked_rows(est, X, est.n_features_in_)
    k = est.n_levels_
    out = X.map_blocks(_uplift, est, X.shape[0], chunks=(X.chunks[0], (2 * k,)),
                       dtype=np.float64, meta=np.empty((0, 0), dtype=np.float64))
    return out[:, :k], out[:, k:]


def _allocate_block(block, est, multiplier, empty, n_users, block_info=None):
    if block.shape[0] == 0:
        return empty
    chunk = (block_info[0]["array-location"][0][0], n_users) if block_info else None
    r, c = est._validated_uplift(_frame(est, block), chunk)
    return arms_to_labels(np.asarray(est._allocate(r, c, multiplier)), est.levels_,
                          est.control_name)


def allocate_chunks(est, X, budget, total_budget):
    """Lazy ``est.allocate(X, budget, total_budget)`` of a Dask ``X`` (labels per user).

    At the calibrated (or re-read) multiplier every chunk is allocated on its
    own; with ``total_budget`` the budget problem over all of ``X`` is solved
    on the predicted uplifts, read chunk by chunk: the model runs on each
    chunk once per pass of the solver and once more for the labels (three
    times in all, usually). To predict only once, persist ``predict(X)`` and
    ``predict_cost(X)`` and call :func:`~sklearn_budget.solve_budget_allocation`
    on them.
    """
    check_is_fitted(est)
    dtype = arms_to_labels(np.zeros(1, dtype=np.int64), est.levels_, est.control_name).dtype
    meta = np.empty((0,), dtype=dtype)
    if total_budget is None:
        multiplier = est._deployed_multiplier(budget)
        X = _checked_rows(est, X, est.n_features_in_)
        return X.map_blocks(_allocate_block, est, multiplier, meta, X.shape[0], drop_axis=1,
                            dtype=dtype, meta=meta)
    r, c = uplift_chunks(est, X)
    arms = solve_budget_allocation(
        r, c, budget=check_budget(total_budget, name="total_budget")).assignment
    return arms.map_blocks(arms_to_labels, est.levels_, est.control_name, dtype=dtype,
                           meta=meta)
