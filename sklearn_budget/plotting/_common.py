"""matplotlib, imported lazily: plotting is an optional extra."""

from __future__ import annotations

import numpy as np

__all__ = ["_import_pyplot", "_series"]


def _series(owner, **arrays):
    """The named arrays as 1-D float arrays of one common, non-zero length."""
    out = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in arrays.items()}
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) > 1 or not min(lengths.values()):
        detail = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(
            f"{owner} needs {', '.join(arrays)} of one common, non-zero length; got {detail}.")
    return list(out.values())


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib, which is not installed. Install it with "
            '`pip install "sklearn-budget[plot]"`.'
        ) from exc
    return plt
