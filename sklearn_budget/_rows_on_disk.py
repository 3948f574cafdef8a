"""A 2-D array of rows in a file, appended and read a block of rows at a time.

The command line's out-of-core ``allocate`` keeps the predicted uplifts of a
file of users here (their number is known only once the file has been read),
and the Dask solver reads them back chunk by chunk:
``dask.array.from_array(rows, chunks=(chunk_rows, width))``. Each ``rows[key]``
opens a memory map and copies only the rows asked for, like a zarr or HDF5
dataset; ``dask.array.from_array`` of a ``numpy.memmap`` itself would read the
whole file.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["RowsOnDisk"]


class RowsOnDisk:
    """Rows of ``width`` values of one ``dtype`` in a raw C-order file.

    Parameters
    ----------
    path : str or path-like
        The file; created (empty) when ``n_rows`` is None and it does not exist.
    dtype : numpy dtype
    width : int
        Values per row.
    offset : int, default=0
        Bytes before the first row (a ``.npy`` header, see :meth:`npy`).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     rows = RowsOnDisk(os.path.join(folder, "r.bin"), np.float64, 2)
    ...     rows.append(np.ones((3, 2)))
    ...     rows.append(np.zeros((1, 2)))
    ...     print(rows.shape, float(rows[2:4].sum()))
    (4, 2) 2.0
    """

    def __init__(self, path, dtype, width, *, offset=0):
        self.path, self.dtype, self.width, self.offset = (
            os.fspath(path), np.dtype(dtype), int(width), int(offset))
        if not os.path.exists(self.path):
            open(self.path, "wb").close()

    @classmethod
    def npy(cls, path):
        """The rows of an existing 2-D C-order ``.npy`` file, read lazily."""
        m = np.load(path, mmap_mode="r")
        if m.ndim != 2 or not m.flags.c_contiguous:
            raise ValueError(f"{os.fspath(path)!r} holds no 2-D C-order array (shape {m.shape}).")
        return cls(path, m.dtype, m.shape[1], offset=m.offset)

    ndim = 2

    @property
    def shape(self):
        return ((os.path.getsize(self.path) - self.offset) // (self.dtype.itemsize * self.width),
                self.width)

    def append(self, block):
        """Write ``block`` (n, width) after the last row."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.ndim != 2 or block.shape[1] != self.width:
            raise ValueError(f"Expected rows of width {self.width}; got shape {block.shape}.")
        with open(self.path, "ab") as f:
            f.write(block.tobytes())

    def memmap(self):
        """A read-only ``numpy.memmap`` of all rows (empty file: an empty array)."""
        if self.shape[0] == 0:
            return np.empty((0, self.width), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                         shape=self.shape)

    def __getitem__(self, key):
        return np.array(self.memmap()[key])

    def __len__(self):
        return self.shape[0]
