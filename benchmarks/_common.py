"""Helpers shared by the benchmark scripts (hardware line, Markdown tables)."""

from __future__ import annotations

import os
import platform


def hardware():
    """One line naming the CPU, its logical cores, Python and (if loaded) torch."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return text
    return f"{text}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def markdown_table(frame, digits=3):
    """A pandas DataFrame as a Markdown table, floats with ``digits`` significant digits."""
    cols = list(frame.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        out.append("| " + " | ".join(f"{v:.{digits}g}" if isinstance(v, float) else str(v)
                                     for v in row) + " |")
    return "\n".join(out)
