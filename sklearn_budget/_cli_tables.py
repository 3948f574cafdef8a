"""Command line: tables on disk a chunk of rows at a time (``sklearn-budget allocate``).

Input CSV is read with pandas' ``chunksize`` and Parquet by pyarrow's record
batches, so a file of any size is scored in the memory of one chunk. Output
goes to a temporary file beside ``--output``, renamed into place when the
whole file is written: a run that fails half-way (a bad cell in the last
chunk) leaves no partial output and no folders it created.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CLIError", "TableWriter", "check_output", "check_writable_folder", "iter_table",
           "n_rows"]


class CLIError(Exception):
    """A user error: printed without a traceback, exit status 2."""


# CSV (comma-separated text), plain or compressed as pandas infers it from the name
_CSV_SUFFIXES = tuple(f"{ext}{z}" for ext in (".csv", ".txt") for z in ("", ".gz", ".bz2", ".xz"))


def _is_parquet(path):
    return Path(path).suffix.lower() in (".parquet", ".pq")


def _pyarrow(what):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(f"{what} Parquet needs pyarrow: pip install 'sklearn-budget[parquet]' "
                       "(or use .csv files).") from None
    return pq


def n_rows(path):
    """Data rows of a Parquet file (from its metadata); None for CSV (not known ahead)."""
    return _pyarrow("Reading").ParquetFile(path).metadata.num_rows if _is_parquet(path) else None


def iter_table(path, chunk_rows, columns=None, text_columns=()):
    """``(first_row, frame)`` for each chunk of at most ``chunk_rows`` data rows of ``path``.

    ``columns`` reads only those; CSV columns in ``text_columns`` are read as
    text (an id column: its type must not depend on which rows a chunk holds,
    and ``007`` must stay ``007``). A file that is missing, unreadable (also
    in a later chunk), or without data rows is a :class:`CLIError`; the first
    chunk is read at the call, so such a file fails before any work.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"Input file {str(path)!r} not found.")
    chunks = _chunks(path, chunk_rows, columns, text_columns)
    first = _next(chunks, path)
    if first is None or len(first) == 0:
        raise CLIError(f"{str(path)!r} has no rows.")
    return _numbered(first, chunks, path)


def _chunks(path, chunk_rows, columns, text_columns):
    if _is_parquet(path):
        pq = _pyarrow("Reading")
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns)
        except Exception as exc:  # pyarrow's errors on a file that is not Parquet
            raise CLIError(f"Cannot read {str(path)!r} as a table: {str(exc).strip()}") from None
        return (b.to_pandas() for b in batches)
    import pandas as pd

    try:
        return iter(pd.read_csv(path, chunksize=chunk_rows, usecols=columns,
                                dtype={c: str for c in text_columns}))
    except (ValueError, OSError) as exc:  # pandas' parser and decoding errors too
        raise CLIError(f"Cannot read {str(path)!r} as a table: {str(exc).strip()}") from None


def _next(chunks, path):
    try:
        return next(chunks, None)
    except (ValueError, OSError, TypeError) as exc:  # a bad line, a truncated file
        raise CLIError(f"Cannot read {str(path)!r} as a table: {str(exc).strip()}") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and kin
        if type(exc).__module__.startswith("pyarrow"):
            raise CLIError(f"Cannot read {str(path)!r} as a table: {str(exc).strip()}") from None
        raise


def _numbered(first, chunks, path):
    start, frame = 0, first
    while frame is not None:
        if len(frame):
            yield start, frame
        start += len(frame)
        frame = _next(chunks, path)


def check_output(path):
    """Fail before the work when the output file cannot be written."""
    if path.is_dir():
        raise CLIError(f"--output {str(path)!r} is a folder; give a file name (.csv or "
                       ".parquet).")
    check_writable_folder(path.parent, f"the folder of --output {str(path)!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise CLIError(f"--output {str(path)!r} cannot be written (no write permission).")
    name = path.name.lower()
    if _is_parquet(path):
        _pyarrow("Writing")
    elif path.suffix.lower() in (".zip", ".tar") or name.endswith(
            (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz")):
        raise CLIError(f"--output {str(path)!r}: an archive cannot be written a chunk at a "
                       "time; write .csv (or .csv.gz, .csv.bz2, .csv.xz) or .parquet.")
    elif not name.endswith(_CSV_SUFFIXES):  # (.xlsx, .json were written as CSV text)
        raise CLIError(f"--output {str(path)!r}: the output is written as comma-separated "
                       "text or Parquet; name it .csv (or .txt, either with .gz, .bz2 or "
                       ".xz) or .parquet.")


def _missing_folders(folder):
    """The folders that creating ``folder`` would make (innermost first), and the
    nearest one that exists."""
    missing, existing = [], Path(folder).absolute()
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    return missing, existing


def check_writable_folder(folder, what):
    """Fail when ``folder`` cannot be created or written, without creating it yet
    (a run that fails later leaves no empty folders behind)."""
    existing = _missing_folders(folder)[1]
    if not existing.is_dir():
        raise CLIError(f"Cannot create {what}: {str(existing)!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"Cannot create {what}: no write permission in {str(existing)!r}.")


class TableWriter:
    """Write a table chunk by chunk; it appears at ``path`` only when complete.

    Used as a context manager: on success the temporary file is renamed to
    ``path``; on an error it is removed, with the folders this writer created.
    ``scratch`` is a temporary folder beside the output for other large
    intermediate files (removed at the end either way).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.rows = 0

    def __enter__(self):
        self._created = _missing_folders(self.path.parent)[0]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"Cannot create the folder of --output {str(self.path)!r}: "
                           f"{exc.strerror or exc}.") from None
        import tempfile

        try:
            self.scratch = Path(tempfile.mkdtemp(prefix=".sklearn-budget-",
                                                 dir=self.path.parent))
        except OSError as exc:
            self._remove_created()
            raise CLIError(f"Cannot write beside --output {str(self.path)!r}: "
                           f"{exc.strerror or exc}.") from None
        self._tmp = self.scratch / ("partial" + "".join(self.path.suffixes[-2:]))
        self._parquet = None
        return self

    def _remove_created(self):
        for folder in self._created:  # innermost first; only if left empty
            try:
                folder.rmdir()
            except OSError:
                break

    def write(self, frame):
        try:
            if _is_parquet(self.path):
                self._write_parquet(frame)
            else:
                frame.to_csv(self._tmp, mode="a" if self.rows else "w", header=not self.rows,
                             index=False)
        except OSError as exc:
            raise CLIError(f"Cannot write --output {str(self.path)!r}: "
                           f"{exc.strerror or exc}.") from None
        except ImportError as exc:  # a compression by extension whose module is missing
            raise CLIError(f"Cannot write --output {str(self.path)!r}: {exc}") from None
        self.rows += len(frame)

    def _write_parquet(self, frame):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._tmp, table.schema)
        elif table.schema != self._parquet.schema:
            try:  # e.g. an id column read as integers in one chunk, as floats in another
                table = table.cast(self._parquet.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise CLIError(f"Cannot write --output {str(self.path)!r}: the columns' types "
                               f"change from one chunk of rows to the next ({exc}); write a "
                               ".csv file or use a larger --chunk-rows.") from None
        self._parquet.write_table(table)

    def __exit__(self, exc_type, exc, tb):
        import shutil

        failed = exc_type is not None
        try:
            try:
                if self._parquet is not None:
                    self._parquet.close()
                if not failed:
                    target = self.path.resolve() if self.path.is_symlink() else self.path
                    if target.exists():  # an earlier output's permissions carry over
                        shutil.copymode(target, self._tmp)
                    os.replace(self._tmp, target)
            except OSError as err:
                if not failed:  # else the error that stopped the run is the one to show
                    failed = True
                    raise CLIError(f"Cannot write --output {str(self.path)!r}: "
                                   f"{err.strerror or err}.") from None
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
            if failed:
                self._remove_created()
        return False
