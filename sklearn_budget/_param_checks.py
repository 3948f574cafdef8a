"""Estimator parameters: what scikit-learn's parameter constraints cannot say.

:func:`sklearn.utils._param_validation.validate_parameter_constraints` takes
``True`` for the number 1 (a bool is an ``Integral``) and any finite float
for an ``Interval`` without an upper end; the allocators' ``fit`` calls
:func:`check_number_params` before any data work (re-exported by
:mod:`._validation`, where the input checks live).
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_number_params"]


def check_number_params(params, constraints, *, limit=None, what=""):
    """What scikit-learn's ``Interval`` constraints let through: a bool for a number
    (``max_epochs=True`` is 1) and, with ``limit``, a number beyond it.

    ``params``: the estimator's ``get_params(deep=False)``; ``constraints``: its
    ``_parameter_constraints``. Raises sklearn's ``InvalidParameterError``.
    """
    from sklearn.utils._param_validation import Interval, InvalidParameterError

    for name, allowed in constraints.items():
        value = params.get(name)
        if not isinstance(allowed, list) or not any(isinstance(c, Interval) for c in allowed):
            continue
        if isinstance(value, (bool, np.bool_)) and "boolean" not in allowed:
            raise InvalidParameterError(
                f"The {name!r} parameter must be a number, not the bool {value!r}.")
        if limit is not None and isinstance(value, (int, float, np.number)) and \
                not isinstance(value, (bool, np.bool_)) and abs(float(value)) > limit:
            raise InvalidParameterError(
                f"The {name!r} parameter is {value!r}, beyond what {what} arithmetic holds "
                f"({limit:.3g}); use a value on the scale of the default.")
