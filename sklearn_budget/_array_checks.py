"""Checks of array inputs: 1-D per-user values, uplift matrices, budgets.

The array half of the input checks; :mod:`._validation` (the RCT data model)
builds on them and re-exports the public ones, so every entry point still
imports its checks from one place.
"""

from __future__ import annotations

import math
from decimal import Decimal
from numbers import Real

import numpy as np

from ._labels import _plain

__all__ = ["as_float_array", "check_budget", "check_dask_uplift", "check_uplift",
           "is_dask_frame", "numeric_columns", "real_number"]


def _torch_to_numpy(values):
    """A torch tensor as numpy (bfloat16 / float16 as float32: numpy has no bfloat16)."""
    values = values.detach().cpu()
    if values.is_floating_point() and values.element_size() < 4:
        values = values.float()
    return values.numpy()


def _as_1d(values, name):
    """Return ``values`` as a 1-D numpy array, or raise a ValueError naming it."""
    if hasattr(values, "detach"):  # torch tensor
        values = _torch_to_numpy(values)
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"`{name}` must be one-dimensional with one value per user; got shape "
            f"{arr.shape}. Pass a 1-D array, list or pandas Series."
        )
    return arr


# dtype kinds that are not numbers: text, bytes, void, dates, durations, complex
_NOT_NUMERIC = "USVMmc"


def _as_finite_float(values, name):
    arr = _as_1d(values, name)
    try:
        if arr.dtype.kind in _NOT_NUMERIC:
            raise TypeError
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be numeric; got dtype {arr.dtype}. Convert it to numbers first."
        ) from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"`{name}` contains {int(bad.sum())} NaN or infinite value(s) (first at "
            f"index {int(np.flatnonzero(bad)[0])}). Drop or impute those rows before fitting."
        )
    return arr


def as_float_array(values, name):
    """``values`` as a float64 ndarray, or a TypeError naming ``name``."""
    if hasattr(values, "detach"):  # torch tensor
        values = _torch_to_numpy(values)
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    try:
        if arr.dtype.kind in _NOT_NUMERIC:
            raise TypeError
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be numeric; got dtype {arr.dtype}. Convert it to numbers first."
        ) from None


def _check_lengths(**arrays):
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(
            f"Inconsistent numbers of samples ({detail}); every input needs one row per user."
        )


def check_uplift(revenue_uplift, cost_uplift=None, *, allow_torch=False):
    """Validate (n, K) uplift matrices (columns = incentive levels, control excluded).

    Returns numpy float arrays (or the torch tensors themselves when
    ``allow_torch`` is True and both inputs are tensors).
    """
    pair = [revenue_uplift] if cost_uplift is None else [revenue_uplift, cost_uplift]
    names = ["revenue_uplift", "cost_uplift"]
    out = []
    for name, m in zip(names, pair):
        if hasattr(m, "detach") and allow_torch:
            import torch

            if m.ndim == 1:
                m = m[:, None]
            if m.ndim != 2 or m.shape[1] == 0:
                raise ValueError(
                    f"`{name}` must be 2-D with one row per user and one column per incentive "
                    f"level (control excluded), at least one level; got {tuple(m.shape)}.")
            if m.is_complex():
                raise TypeError(f"`{name}` must be real; got the complex dtype {m.dtype}.")
            if m.dtype in (torch.float16, torch.bfloat16):  # too coarse to sum spends
                m = m.float()
            elif not torch.is_floating_point(m):
                m = m.double()
            if not bool(torch.isfinite(m).all()):
                raise ValueError(
                    f"`{name}` contains NaN or infinite values; fix the model's output.")
            out.append(m)
            continue
        if hasattr(m, "detach"):
            m = _torch_to_numpy(m)
        arr = _levels_matrix(name, _plain_array(name, m))
        if not np.isfinite(arr).all():
            raise ValueError(
                f"`{name}` contains NaN or infinite values; fix or drop those users first."
            )
        out.append(arr)
    if len(out) == 2:
        if type(out[0]) is not type(out[1]):
            raise TypeError("Pass revenue_uplift and cost_uplift as the same array type.")
        if tuple(out[0].shape) != tuple(out[1].shape):
            raise ValueError(
                f"revenue_uplift {tuple(out[0].shape)} and cost_uplift {tuple(out[1].shape)} "
                "must have the same shape (n_users, n_levels)."
            )
        if out[0].dtype != out[1].dtype:
            if hasattr(out[0], "detach"):  # float32 and float64: both float64, as numpy
                dt = torch.promote_types(out[0].dtype, out[1].dtype)
                out = [o.to(dt) for o in out]
            else:
                dt = np.result_type(out[0], out[1])
                out = [o.astype(dt, copy=False) for o in out]
        return out[0], out[1]
    return out[0]


def check_predicted_uplift(r, c, n_rows, levels, owner, chunk=None):
    """A model's predicted ``(r, c)`` for ``n_rows`` users, checked: float64, one column
    per level of ``levels``; NaN or infinity named by the user's row (``chunk`` = (first
    row, what the rows belong to) when the users are a chunk of a larger input)."""
    try:
        r, c = check_uplift(r, c)
    except ValueError:
        bad = ~(np.isfinite(np.asarray(r, dtype=np.float64)).all(axis=-1)
                & np.isfinite(np.asarray(c, dtype=np.float64)).all(axis=-1))
        if np.ndim(bad) != 1 or not bad.any():
            raise
        first, where = 0, f"{n_rows} users"
        if chunk is not None:
            first = chunk[0]
            where = f"{n_rows} users in rows {first}..{first + n_rows - 1} of {chunk[1]}"
        raise ValueError(
            f"{owner} predicted NaN or infinite uplifts for {int(bad.sum())} "
            f"of {where} (first at row {first + int(np.flatnonzero(bad)[0])}): their "
            "features are probably far outside the training data's range (unscaled, "
            "other units, corrupt) or the model overflowed. Check those rows of X."
        ) from None
    if r.shape != (n_rows, len(levels)):
        raise ValueError(
            f"{owner}._predict_uplift returned shape {r.shape}; expected "
            f"({n_rows}, {len(levels)}) (one column per level {_plain(levels)}).")
    return r.astype(np.float64, copy=False), c.astype(np.float64, copy=False)


def _plain_array(name, m):
    """``np.asarray(m)``, with pandas' nullable columns (Float64, Int64) as floats and a
    ragged list named."""
    if hasattr(m, "to_numpy") and hasattr(m, "dtypes"):
        import pandas as pd

        dtypes = list(m.dtypes) if hasattr(m.dtypes, "__iter__") else [m.dtypes]
        if any(isinstance(d, pd.api.extensions.ExtensionDtype) for d in dtypes) and all(
                pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d)
                for d in dtypes):  # (plain numpy columns keep their dtype, e.g. float32)
            return m.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return np.asarray(m)
    except ValueError as exc:  # numpy's "inhomogeneous shape"
        raise ValueError(f"`{name}` is not a rectangular (n_users, n_levels) array: "
                         f"{exc}") from None


def _levels_matrix(name, m):
    """``m`` (numpy or Dask) as a float (n_users, n_levels) matrix; 1-D is one level."""
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(
            f"`{name}` must be 2-D with one row per user and one column per incentive "
            f"level (control excluded), at least one level; got shape {m.shape}."
        )
    if m.dtype.kind not in "fiub":
        raise TypeError(f"`{name}` must be numeric; got dtype {m.dtype}.")
    if m.dtype == np.float16:  # r - lam * c overflows float16 at moderate multipliers
        return m.astype(np.float32)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


def check_dask_rows(X, n_features, owner):
    """A Dask array of features, in chunks of whole rows, its shape checked now (not when
    computed) against the ``n_features`` that ``owner`` (a class name) was fitted with."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D Dask array of features (n_users, n_features); got shape {X.shape}.")
    if math.isnan(X.shape[0]):
        raise ValueError(
            "X has chunks of unknown size; call `X.compute_chunk_sizes()` first (the output "
            "needs the number of users per chunk).")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {owner} was fitted with {n_features} features.")
    return X.rechunk({1: -1})


def is_dask_frame(a):
    """True for a Dask DataFrame or Series (not imported: they may not be installed)."""
    return (type(a).__module__.startswith(("dask.dataframe", "dask_expr"))
            and hasattr(a, "to_dask_array"))


def check_dask_uplift(revenue_uplift, cost_uplift):
    """Validated Dask ``(r, c)``: 2-D float, one chunk across the levels, aligned rows.

    Shapes and dtypes are checked here; the values (NaN, infinity) are
    checked chunk by chunk as the solver reads them.
    """
    import dask.array as da

    from ._dask_frames import frames_as_arrays

    # frames, e.g. predictions read with dd.read_parquet: converted together
    revenue_uplift, cost_uplift = frames_as_arrays(revenue_uplift, cost_uplift)
    out = []
    for name, m in (("revenue_uplift", revenue_uplift), ("cost_uplift", cost_uplift)):
        m = da.asarray(m)
        if any(math.isnan(s) for s in m.shape):
            raise ValueError(
                f"`{name}` has chunks of unknown size; call "
                "`.compute_chunk_sizes()` on it first (the number of users must be known).")
        if not isinstance(m._meta, np.ndarray):
            raise TypeError(
                f"`{name}` must be a Dask array of numpy chunks; got chunks of "
                f"{type(m._meta).__name__}. Convert them with `.map_blocks(np.asarray)`.")
        out.append(_levels_matrix(name, m))
    r, c = out
    if r.shape != c.shape:
        raise ValueError(
            f"revenue_uplift {r.shape} and cost_uplift {c.shape} must have the same shape "
            "(n_users, n_levels).")
    if r.dtype != c.dtype:
        dt = np.result_type(r.dtype, c.dtype)
        r, c = r.astype(dt), c.astype(dt)
    r = r.rechunk({1: -1})
    return r, c.rechunk(r.chunks)


def real_number(value):
    """``value`` as a Python float if it is one real number, else None.

    Python and numpy reals, ``Decimal``, objects with ``__float__``, and numpy
    arrays and torch tensors holding one value of a real dtype; not bools,
    complex numbers (numpy's would silently lose their imaginary part), dates,
    durations, text or a masked value.
    """
    if isinstance(value, (bool, np.bool_, str, bytes, complex)) or np.ma.is_masked(value):
        return None
    if isinstance(value, Decimal):
        return math.nan if value.is_nan() else float(value)  # (float() refuses sNaN)
    dtype = getattr(value, "dtype", None)
    if dtype is not None:  # numpy scalars, arrays and tensors (of one value)
        if (value.numel() if hasattr(value, "numel") else getattr(value, "size", None)) != 1:
            return None
        kind = getattr(dtype, "kind", None)
        if kind == "O":  # an object array: its one element decides
            return real_number(np.asarray(value).reshape(-1)[0])
        real = kind in ("i", "u", "f") if kind is not None else not any(
            w in str(dtype) for w in ("bool", "complex", "qint", "quint"))
        if not real:
            return None
        try:  # (a missing value of a nullable dtype, a sparse matrix, a meta tensor: None)
            return float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, OverflowError, RuntimeError, NotImplementedError):
            return None
    if isinstance(value, Real) or hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def check_budget(budget, *, name="budget", allow_none=False):
    """Return ``budget`` as a float, checking it is finite and non-negative."""
    if budget is None and allow_none:
        return None
    value = real_number(budget)
    if value is None:
        array = hasattr(budget, "dtype") and not isinstance(budget, np.generic)
        raise TypeError(f"`{name}` must be a real number; got {type(budget).__name__}"
                        + (f" of dtype {budget.dtype}." if array else "."))
    budget = value
    if not np.isfinite(budget) or budget < 0:
        raise ValueError(
            f"`{name}` must be finite and >= 0; got {budget}. A budget is an amount of "
            "cost units (per user or in total)."
        )
    return budget


def _is_datetime_like(dtype):
    import pandas as pd

    return (pd.api.types.is_datetime64_any_dtype(dtype) or
            pd.api.types.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype))


def check_feature_frame(X):
    """A DataFrame ``X`` whose columns are not all numbers: a ValueError naming them.

    scikit-learn's own message names no column ("could not convert string to
    float: 'a'"), or comes from numpy's type promotion (dates).
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return
    import pandas as pd

    def text(col, dt):  # object / category / string columns whose values are not numbers
        if pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt):
            return False
        values = X[col]
        return bool((pd.to_numeric(values.astype(object), errors="coerce").isna()
                     & values.notna()).any())

    bad = {str(col): str(dt) for col, dt in dtypes.items()
           if _is_datetime_like(dt) or text(col, dt)}
    if bad:
        listed = ", ".join(f"{c!r} ({d})" for c, d in list(bad.items())[:5])
        raise ValueError(
            f"X has {len(bad)} column(s) that are not numbers: {listed}"
            f"{' ...' if len(bad) > 5 else ''}. Encode them first, e.g. with a "
            "OneHotEncoder / OrdinalEncoder (categories) or as numbers (dates: days since a "
            "reference day) in a Pipeline before the allocator.")


def numeric_columns(frame, columns):
    """``frame[columns]`` as a float64 DataFrame, and the first bad cell, if any.

    Returns ``(table, problem)``: ``problem`` is None, or ``(column, n_bad,
    row, cell)`` for the first column with blank, non-numeric or infinite
    cells (``row``: 0-based position; ``cell``: ``"a blank cell"`` or the
    text's repr), for the caller to word (a loader names the file's line,
    the command line the data row).
    """
    import pandas as pd

    out = {}
    for col in columns:
        if _is_datetime_like(frame[col].dtype):  # to_numeric would give nanoseconds
            bad = np.ones(len(frame), dtype=bool)
            values = None
        else:
            values = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
            bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = frame[col].iloc[row]
            cell = "a blank cell" if pd.isna(cell) else repr(str(cell))
            return None, (col, int(bad.sum()), row, cell)
        out[col] = values
    return pd.DataFrame(out, index=frame.index), None
