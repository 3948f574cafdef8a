"""The packed RCT target: treatment, revenue and cost in one ``y``.

:func:`rct_target` packs them so that cross-validation slices them with
``X``; :func:`unpack_target` takes them back out of a packed ``y`` (a
structured array, a pandas or Dask DataFrame) or from keywords. Re-exported
by :mod:`._validation`, the one place inputs are checked.
"""

from __future__ import annotations

import numpy as np

from ._array_checks import _as_1d, _as_finite_float, _check_lengths, is_dask_frame
from ._labels import _check_treatment_labels, _plain

__all__ = ["RCT_FIELDS", "is_rct_target", "rct_target", "target_propensity", "unpack_target"]

RCT_FIELDS = ("treatment", "revenue", "cost")


def rct_target(treatment, revenue, cost, propensity=None):
    """Pack RCT outcomes into one ``y`` that scikit-learn can slice.

    Cross-validation splits ``X`` and ``y`` together, but not extra keyword
    arguments (unless metadata routing is enabled). Packing the observed arm,
    revenue and cost into a numpy structured array lets ``GridSearchCV``,
    ``cross_val_score`` and ``Pipeline`` carry them without routing.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
        Arm each user was randomised to (any hashable labels).
    revenue : array-like of shape (n_samples,)
        Observed revenue outcome.
    cost : array-like of shape (n_samples,)
        Observed cost outcome (non-negative; checked where the target is used,
        as by ``fit``, not here).
    propensity : array-like of shape (n_samples,), default=None
        Each user's probability of the observed arm, for RCTs whose
        assignment probabilities vary by user (stratified designs). Packed as
        a fourth field, it is sliced with the rest and used by ``fit``,
        ``score`` and the budget scorer as their ``propensity=`` (which must
        then be omitted). A per-arm dict needs no slicing: pass it as
        ``propensity=`` instead.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        Structured array with fields ``"treatment"``, ``"revenue"`` and ``"cost"``
        (and ``"propensity"`` when given).

    Examples
    --------
    >>> from sklearn_budget import rct_target
    >>> y = rct_target([0, 1, 2], [1.0, 2.0, 0.0], [0.0, 0.5, 0.0])
    >>> y["revenue"]
    array([1., 2., 0.])
    >>> y[[0, 2]]["treatment"]
    array([0, 2])
    """
    t = _as_1d(treatment, "treatment")
    r = _as_finite_float(revenue, "revenue")
    c = _as_finite_float(cost, "cost")
    fields = {"revenue": r, "cost": c}
    if propensity is not None:
        if isinstance(propensity, dict):
            raise TypeError(
                "rct_target packs per-user propensities (an array); a dict {label: "
                "probability} needs no slicing: pass it as `propensity=` to fit / score.")
        fields["propensity"] = _as_finite_float(propensity, "propensity")
    _check_lengths(t=t, **fields)
    _check_treatment_labels(t)
    t_dtype = t.dtype if t.dtype.kind in "biuf" else object
    y = np.empty(len(t), dtype=[("treatment", t_dtype)] + [(f, "f8") for f in fields])
    y["treatment"] = t
    for name, values in fields.items():
        y[name] = values
    return y


def is_rct_target(y):
    """Return True if ``y`` is a packed target: :func:`rct_target`'s structured array,
    or a DataFrame with (at least) the columns treatment, revenue and cost."""
    names = getattr(getattr(y, "dtype", None), "names", None)
    if names is None and hasattr(y, "columns"):
        names = list(y.columns)
    return names is not None and all(f in names for f in RCT_FIELDS)


def target_propensity(y, propensity=None):
    """The per-user ``propensity`` packed in ``y`` by :func:`rct_target`, else ``propensity``.

    Both at once is an error: the packed one is sliced with ``y`` and the
    keyword would not be. A DataFrame's ``propensity`` column is not read: it
    often holds P(treated | x) (causalml's ``p``), not each user's probability
    of the observed arm; a warning says so when no ``propensity=`` is given.
    """
    if not is_rct_target(y):
        return propensity
    names = getattr(getattr(y, "dtype", None), "names", None)
    if names is None:
        if propensity is None and "propensity" in list(getattr(y, "columns", ())):
            from ._warnings import warn

            warn("The 'propensity' column of the DataFrame `y` is not used: it may hold "
                 "P(treated | x) rather than each user's probability of the observed arm. "
                 "Pass those as `propensity=` (or pack them with rct_target(..., "
                 "propensity=...)); a per-arm dict {label: probability} works too.")
        return propensity
    if "propensity" not in names:
        return propensity
    if propensity is not None:
        raise ValueError(
            "`y` carries a 'propensity' field; do not pass `propensity=` as well.")
    return y["propensity"]


def unpack_target(y, treatment=None, cost=None):
    """Return ``(treatment, revenue, cost)`` from a packed ``y`` or from keywords.

    Parameters
    ----------
    y : structured ndarray, DataFrame or array-like of shape (n_samples,)
        The output of :func:`rct_target`, a DataFrame with the columns
        treatment, revenue and cost, or the observed revenue.
    treatment, cost : array-like of shape (n_samples,), default=None
        Required when ``y`` is the plain revenue; must be omitted otherwise.

    Returns
    -------
    treatment, revenue, cost : ndarray
    """
    if is_rct_target(y):
        if treatment is not None or cost is not None:
            raise ValueError(
                "`y` is already a packed rct_target (it carries treatment and cost); "
                "do not pass `treatment=` or `cost=` as well."
            )
        if is_dask_frame(y):  # lazy columns
            return tuple(y[f] for f in ("treatment", "revenue", "cost"))
        if hasattr(y, "columns"):  # a DataFrame: plain arrays, its index dropped
            return tuple(y[f].to_numpy() for f in ("treatment", "revenue", "cost"))
        return y["treatment"], y["revenue"], y["cost"]
    if y is not None and treatment is None and cost is None:
        fields = (list(getattr(y, "columns", ())) or
                  list(getattr(getattr(y, "dtype", None), "names", None) or ()))
        if fields or np.ndim(y) == 2:
            got = (f"columns {_plain(fields)[:10]}" if fields else
                   f"shape {np.shape(y)}")
            raise ValueError(
                f"`y` has {got}, but a packed RCT target needs the fields 'treatment', "
                "'revenue' and 'cost' (lower case): build it with rct_target(treatment, "
                "revenue, cost), rename the columns, or give y=revenue with treatment=... and "
                "cost=....")
    if y is None or treatment is None or cost is None:
        from sklearn import get_config

        missing = [n for n, v in (("y", y), ("treatment", treatment), ("cost", cost)) if v is None]
        route = ("request them for scoring: set_score_request(treatment=True, cost=True) on "
                 "the estimator or the budget scorer" if get_config().get(
                     "enable_metadata_routing") else
                 "they reach score only with sklearn.set_config(enable_metadata_routing=True)")
        raise ValueError(
            f"Missing RCT input(s): {', '.join(missing)}. Give y=revenue with treatment=... "
            f"and cost=... (fit, score; inside GridSearchCV or cross_validate {route}), or "
            "pack them: y=rct_target(treatment, revenue, cost)."
        )
    return treatment, y, cost
