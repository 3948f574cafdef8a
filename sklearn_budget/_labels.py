"""Treatment labels and the integer arms the models and metrics work with.

Users' arm labels may be any sortable hashable (ints, strings, ...); inside
the package arm 0 is the control and arm ``k`` the ``k``-th non-control label
in sorted order (the column order of every uplift matrix). Checks and
conversions of labels live here; :mod:`._validation` re-exports them.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = ["arms_to_labels", "check_control_name", "labels_to_arms"]


def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN; pandas.NA cannot be a bool
    except (TypeError, ValueError):
        return True


def check_control_name(control_name):
    """``control_name`` if it can label the control arm, else a TypeError saying why."""
    if isinstance(control_name, (bool, np.bool_)):
        raise TypeError(
            f"`control_name` must be the control arm's label (an int or a string, as in "
            f"`treatment`); got the bool {control_name!r}, which equals the label "
            f"{int(control_name)}. Pass {int(control_name)} if that is the control label.")
    try:
        hash(control_name)
    except TypeError:
        raise TypeError(
            f"`control_name` must be one label (an int or a string, as in `treatment`); got "
            f"{type(control_name).__name__} {control_name!r:.80}.") from None
    if np.ndim(control_name) != 0 or _is_missing(control_name):
        raise TypeError(
            f"`control_name` must be one label (an int or a string, as in `treatment`); got "
            f"{control_name!r:.80}.")
    return control_name


def _check_treatment_labels(t):
    """Raise when treatment labels are missing (NaN, None) or of mixed types."""
    try:
        labels = np.unique(t)
    except TypeError:  # None, pandas.NA or mixed types cannot be sorted
        labels = None
    if labels is not None and labels.dtype.kind == "f":
        missing = np.isnan(t)
    elif labels is not None and labels.dtype.kind != "O":
        return
    else:  # object labels: look at each
        missing = np.array([_is_missing(v) for v in t], dtype=bool)
    if missing.any():
        raise ValueError(
            f"`treatment` has {int(missing.sum())} missing label(s) (NaN / None; first at "
            f"index {int(np.flatnonzero(missing)[0])}). Every RCT user needs the arm they were "
            "randomised to: drop those users first."
        )
    if t.dtype.kind != "O":
        return
    kinds = sorted({"number" if isinstance(v, (int, float, np.number)) else
                    "str" if isinstance(v, (str, bytes)) else type(v).__name__ for v in t})
    if len(kinds) > 1:
        raise TypeError(
            f"`treatment` mixes label types ({', '.join(kinds)}); use one type for every "
            "arm, e.g. all strings or all integers."
        )


def _check_levels(levels, control_name):
    """Given ``levels``: 1-D, distinct, sorted (the uplift columns' order), no control."""
    arr = np.asarray(levels)
    try:
        ok = arr.ndim == 1 and len(arr) > 0 and np.array_equal(np.unique(arr), arr)
    except TypeError:  # mixed types that cannot be sorted
        ok = False
    if not ok or np.any(arr == control_name):
        raise ValueError(
            f"`levels` must be the distinct non-control treatment labels in sorted order "
            f"(the column order of the uplift matrices, as in a fitted allocator's "
            f"`levels_`); got {levels!r:.200} with control_name={control_name!r}."
        )
    return arr


def _plain(values):
    """Labels as Python scalars, for messages (``1``, not ``np.int64(1)``)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def labels_to_arms(labels, levels, control_name=0):
    """Map treatment labels to integer arms: 0 = control, k = ``levels[k - 1]``."""
    labels = np.asarray(labels)
    levels = np.asarray(levels)
    arm = np.zeros(len(labels), dtype=np.int64)
    is_control = labels == control_name
    if (~is_control).any():
        rest = labels[~is_control]
        try:
            pos = np.searchsorted(levels, rest)
        except TypeError:  # labels of another type than the levels (str against int)
            known = set(levels.tolist())
            unknown = [x for x in dict.fromkeys(rest.tolist()) if x not in known]
            raise ValueError(
                f"Unknown treatment label(s) {unknown[:10]} (types "
                f"{sorted({type(x).__name__ for x in unknown})}); known levels are "
                f"{_plain(levels)} and control {control_name!r}. Use the labels the model "
                "was fitted with (arm codes from allocate_at_multiplier map to them with "
                "levels[code - 1])."
            ) from None
        pos_clipped = np.minimum(pos, len(levels) - 1)
        if len(levels) == 0 or np.any(levels[pos_clipped] != rest):
            unknown = np.unique(rest[(pos >= len(levels)) | (levels[pos_clipped] != rest)])
            raise ValueError(
                f"Unknown treatment label(s) {_plain(unknown)[:10]}; known levels are "
                f"{_plain(levels)} and control {control_name!r}."
            )
        arm[~is_control] = pos_clipped + 1
    return arm


def arms_to_labels(arms, levels, control_name=0):
    """Inverse of :func:`labels_to_arms`."""
    arms = np.asarray(arms)
    levels = np.asarray(levels)
    dtype = np.result_type(levels, np.asarray([control_name]))
    if levels.dtype.kind in "iu" and isinstance(control_name, (Integral, np.integer)) \
            and not isinstance(control_name, (bool, np.bool_)):
        info = np.iinfo(levels.dtype)
        if info.min <= int(control_name) <= info.max:
            dtype = levels.dtype  # int8 or uint64 labels stay int8 / uint64 with control 0
    names = np.asarray([control_name, *levels], dtype=dtype)
    return names[arms]
