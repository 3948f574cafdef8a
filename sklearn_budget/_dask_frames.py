"""Dask DataFrames and Series as Dask arrays of known chunk sizes.

The solver, the metrics and the estimators read Dask *arrays* chunk by chunk.
A Dask DataFrame (or one of its columns) becomes one with a pass that counts
the rows of each partition. When one call gets several frames (the uplift
columns of a prediction file, an RCT's treatment, revenue and cost columns,
a model's features beside its RCT target), :func:`frames_as_arrays` converts
those of one source together: one pass counts the rows, and since all their
arrays are read off the same partitions, the source (a CSV parsed, features
computed) is built once per later pass rather than once per column and pass.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._array_checks import is_dask_frame

__all__ = ["frame_to_array", "frames_as_arrays"]

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


def _sources(frame):
    """Names of the sources (expressions without inputs) ``frame`` is computed from."""
    expr = getattr(frame, "expr", None)
    try:
        return {e._name for e in expr.walk() if not e.dependencies()}
    except Exception:  # not a dask-expr collection: no common source is assumed
        return set()


def _groups(frames):
    """Indices of ``frames`` grouped by common sources (frames of one source together)."""
    groups = []  # [sources, indices]
    for i, frame in enumerate(frames):
        mine, members = _sources(frame), [i]
        for group in [g for g in groups if g[0] & mine]:
            groups.remove(group)
            mine, members = mine | group[0], sorted(members + group[1])
        groups.append([mine, members])
    return [members for _, members in groups]


def _numeric(frame):
    """Whether ``frame``'s columns are numpy numbers (what the together path handles)."""
    dtypes = list(frame.dtypes) if frame.ndim == 2 else [frame.dtype]
    return bool(dtypes) and all(isinstance(d, np.dtype) and d.kind in "biuf" for d in dtypes)


def _side_by_side(*parts):
    """One partition of every frame as the columns of one frame, by position, each
    column's dtype kept."""
    import pandas as pd

    n = len(parts[0])
    if any(len(part) != n for part in parts):  # marked, not raised: a raise inside a task
        return _UNALIGNED  # is logged as an error by a distributed worker
    columns = {}
    for part in parts:
        for column in ([part] if part.ndim == 1 else [part.iloc[:, j]
                                                      for j in range(part.shape[1])]):
            columns[len(columns)] = column.to_numpy()
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


# the partition of frames whose partitions differ in length (no frame: its rows are -1)
_UNALIGNED = None


def _rows(part):
    return -1 if part is _UNALIGNED else len(part)


def _columns(part, start, stop, series):
    """Columns ``start:stop`` of a partition of the side-by-side frame, as an array."""
    return part.iloc[:, start].to_numpy() if series else part.iloc[:, start:stop].to_numpy()


def frames_as_arrays(*values):
    """``values`` with every Dask DataFrame or Series among them as a Dask array with
    known chunk sizes; the others as they are.

    Frames computed from a common source (columns of one file or frame,
    typically) are converted together when they hold numbers only and have as
    many partitions with the same divisions (or none known): one pass counts
    the rows, and each array's chunks are read off the same partitions, so
    their source is built once per pass of whatever reads them. Rows pair by
    position within each partition, as the arrays' would; each array has the
    dtype its frame's ``to_dask_array`` would give. Otherwise (frames of other
    sources, text columns, other partitions, partitions of different lengths)
    each frame is converted on its own (:func:`frame_to_array`).

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
    arrays = [None] * len(frames)
    for group in _groups(frames):
        members = [frames[k] for k in group]
        known = {f.known_divisions for f in members}
        if (len(members) > 1 and all(_numeric(f) for f in members)
                and len({f.npartitions for f in members}) == 1
                and (known == {False} or (known == {True} and len(
                    {tuple(f.divisions) for f in members}) == 1))):
            together = _converted_together(members)
            if together is not None:
                for k, array in zip(group, together):
                    arrays[k] = array
    out = list(values)
    for k, i in enumerate(where):
        out[i] = frame_to_array(frames[k]) if arrays[k] is None else arrays[k]
    return tuple(out)


def _converted_together(frames):
    """Each frame's array, its chunks read off the partitions of one side-by-side frame
    (None when they cannot be paired)."""
    import dask
    import dask.array as da
    import dask.dataframe as dd

    widths = [len(f.columns) if f.ndim == 2 else 1 for f in frames]
    meta = _side_by_side(*(f._meta for f in frames))
    try:
        stacked = dd.map_partitions(_side_by_side, *frames, meta=meta,
                                    align_dataframes=False, enforce_metadata=False)
        parts = stacked.to_delayed()
        lengths = dask.compute(*[dask.delayed(_rows)(part) for part in parts])
    except Exception:  # e.g. an optimiser that plans the frames' partitions otherwise:
        return None  # each frame alone (where a real error in the data shows again)
    if min(lengths, default=0) < 0:
        return None
    arrays, start = [], 0
    for frame, width in zip(frames, widths):
        series = frame.ndim == 1
        probe = _columns(meta, start, start + width, series)
        chunks = [da.from_delayed(dask.delayed(_columns)(part, start, start + width, series),
                                  shape=(n,) + probe.shape[1:], dtype=probe.dtype,
                                  meta=probe)
                  for part, n in zip(parts, lengths)]
        arrays.append(da.concatenate(chunks) if len(chunks) > 1 else chunks[0])
        start += width
    return arrays
