"""matplotlib, imported lazily: plotting is an optional extra."""

from __future__ import annotations

__all__ = ["_import_pyplot"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib, which is not installed. Install it with "
            '`pip install "sklearn-budget[plot]"`.'
        ) from exc
    return plt
