"""Warnings that point at the caller's line, not into the package."""

from __future__ import annotations

import os
import sys
import warnings

import sklearn

__all__ = ["warn"]

# frames in these folders are skipped: this package, and scikit-learn's wrappers
# (``fit`` runs under ``_fit_context``; meta-estimators call in from there)
_SKIPPED = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                 for m in (sys.modules[__package__], sklearn))


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first frame outside this package and sklearn.

    The public call that leads to a warning can be a few frames deep (``fit``,
    ``allocate``, a scorer, a ``Pipeline``), so a fixed ``stacklevel`` points
    into the package from some of them.
    """
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn's caller
    while frame.f_back is not None and os.path.abspath(
            frame.f_code.co_filename).startswith(_SKIPPED):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
