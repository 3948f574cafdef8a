"""Dask DataFrames and Series as Dask arrays of known chunk sizes.

The solver, the metrics and the estimators read Dask *arrays* chunk by chunk.
A Dask DataFrame (or one of its columns) becomes one with a pass that counts
the rows of each partition. When one call gets several frames (the uplift
columns of a prediction file, an RCT's treatment, revenue and cost columns,
a model's features beside its RCT target), :func:`frames_as_arrays` converts
them together: one pass counts the rows, and since all the arrays are slices
of one, a source they share (a CSV parsed, features computed) is built once
per later pass rather than once per column and pass.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._array_checks import is_dask_frame

__all__ = ["frame_to_array", "frames_as_arrays"]

# Integers of larger magnitude would not survive the float64 of a shared array.
_EXACT_INT = 2 ** 53


def _nullable_number(dt):
    import pandas as pd

    return isinstance(dt, pd.api.extensions.ExtensionDtype) and dt.kind in "biuf"


def _plain_numbers(frame):
    """``frame`` with pandas' nullable numbers as float64 (a missing value NaN, as in
    memory, where the checks then name it), not an object array."""
    if frame.ndim == 2:
        cast = {col: "float64" for col, dt in frame.dtypes.items() if _nullable_number(dt)}
        return frame.astype(cast) if cast else frame
    return frame.astype("float64") if _nullable_number(frame.dtype) else frame


def frame_to_array(frame):
    """A Dask DataFrame or Series as a Dask array with known chunk sizes (one pass).

    The sizes are those of the array's own chunks: ``to_dask_array(lengths=True)``
    counts the partitions of the frame as the query optimiser plans them, which can
    differ (a column selection of a Parquet file read by row groups: 3 != 6).
    Text columns become object arrays (dask's warning about that is the point here);
    pandas' nullable numbers become float64.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*converting pandas extension dtypes",
                                category=UserWarning)
        return _plain_numbers(frame).to_dask_array().compute_chunk_sizes()


class _Unaligned(Exception):
    """Partitions of the frames differ in length, or hold integers float64 cannot keep."""


def _numpy_dtype(frame):
    """The dtype ``frame.to_dask_array()`` would have, or None when it is not a number."""
    dtypes = list(frame.dtypes) if frame.ndim == 2 else [frame.dtype]
    if not dtypes or not all(isinstance(d, np.dtype) and d.kind in "biuf" for d in dtypes):
        return None
    return np.result_type(*dtypes)


def _side_by_side(*parts):
    """One partition of every frame, as the columns of one float64 frame (by position)."""
    import pandas as pd

    n = len(parts[0])
    columns = []
    for part in parts:
        if len(part) != n:
            raise _Unaligned
        values = part.to_numpy().reshape(n, -1)
        if values.dtype.kind in "iu" and n and np.abs(values).max() >= _EXACT_INT:
            raise _Unaligned
        columns.append(values.astype(np.float64))
    return pd.DataFrame(np.hstack(columns) if columns else np.empty((n, 0)))


def frames_as_arrays(*values):
    """``values`` with every Dask DataFrame or Series among them as a Dask array with
    known chunk sizes; the others as they are.

    Frames with numbers only and the same partitions (as many, and the same
    divisions or none known: columns of one source, typically) are converted
    together: one pass counts the rows, and each array is a slice of a single
    one, so their common source is built once per pass of whatever reads them.
    Their rows are paired by position within each partition, as the arrays'
    would be. Otherwise (text columns, other partitions, partitions of
    different lengths found on the way, integers beyond 2**53) each frame is
    converted on its own (:func:`frame_to_array`).

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd
    >>> frame = dd.from_pandas(pd.DataFrame({"t": [0, 1, 1, 0], "y": [0.5, 1.0, 2.0, 0.0]}),
    ...                        npartitions=2)
    >>> t, y, other = frames_as_arrays(frame["t"], frame["y"], np.arange(4))
    >>> t.dtype, t.chunks, y.compute().tolist(), other.tolist()
    (dtype('int64'), ((2, 2),), [0.5, 1.0, 2.0, 0.0], [0, 1, 2, 3])
    """
    where = [i for i, v in enumerate(values) if is_dask_frame(v)]
    frames = [_plain_numbers(values[i]) for i in where]
    out = list(values)
    if len(frames) < 2:
        for i, frame in zip(where, frames):
            out[i] = frame_to_array(frame)
        return tuple(out)
    dtypes = [_numpy_dtype(f) for f in frames]
    known = {f.known_divisions for f in frames}
    together = (all(d is not None for d in dtypes)  # (np.dtype(None) is float64)
                and len({f.npartitions for f in frames}) == 1
                and (known == {False} or (known == {True}
                                          and len({tuple(f.divisions) for f in frames}) == 1)))
    arrays = _converted_together(frames, dtypes) if together else None
    for k, i in enumerate(where):
        out[i] = frame_to_array(frames[k]) if arrays is None else arrays[k]
    return tuple(out)


def _converted_together(frames, dtypes):
    """Each frame's array, sliced from one (None when they cannot be paired)."""
    import dask.dataframe as dd
    import pandas as pd

    widths = [len(f.columns) if f.ndim == 2 else 1 for f in frames]
    meta = pd.DataFrame(np.empty((0, sum(widths))))
    stacked = dd.map_partitions(_side_by_side, *frames, meta=meta, align_dataframes=False,
                                enforce_metadata=False)
    try:
        whole = stacked.to_dask_array().compute_chunk_sizes()
    except _Unaligned:
        return None
    arrays, start = [], 0
    for frame, width, dtype in zip(frames, widths, dtypes):
        part = (whole[:, start:start + width] if frame.ndim == 2 else whole[:, start])
        arrays.append(part if dtype == np.float64 else part.astype(dtype))
        start += width
    return arrays
