"""Synthetic incentive RCT with known expected outcomes per arm (ground truth)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_marketing_rct"]

_SETTINGS = ("default", "hard")
_MIN_FEATURES = 4
_COUPON_STEP = 5.0  # incentive level k pays a coupon worth 5 * k on conversion
_BASKET_SCALE = 40.0  # typical basket value of a converting user

_DESCR_TEMPLATE = """\
Synthetic incentive (coupon) RCT
================================

:Setting: {setting}

**Data set characteristics**

:Number of users: {n_samples}
:Number of features: {n_features} (x0..x3 informative, the rest pure noise)
:Arms: control (0) and {n_treatments} incentive levels 1..{n_treatments}
:Coupon values: {values}
:Assignment probabilities: {probs}
:Noise scale: {noise}

**Generating process**

Features: x0, x2 and x4.. are standard normal, x1 is uniform on [-1, 1] and
x3 is a 0/1 "loyal customer" flag (P = 0.3). Level k pays a coupon of value
v_k = 5 k, only when the user converts. For arm k (0 = control, v_0 = 0):

* conversion probability p_k(x) = sigmoid(b(x) + s(x) h_k), with
  h_k = log(1 + v_k / 5) (diminishing returns in the level, h_0 = 0),
* expected basket value m(x) of a converting user,
* expected revenue  true_revenue[:, k] = p_k(x) m(x)  (gross, before costs),
* expected cost     true_cost[:, k]    = p_k(x) v_k   (0 for control).

Observed: the arm is drawn at random with the assignment probabilities,
conversion ~ Bernoulli(p_t(x)), revenue = conversion * basket,
cost = conversion * v_t. The basket is m(x) times a mean-one noise factor.

{setting_text}
"""

_DEFAULT_TEXT = """\
Setting "default" (moderate noise, clear heterogeneity):
b(x) = -1.5 + 1.2 x0 + 0.4 x3,
s(x) = 3 sigmoid(4 (x2 - 0.8)) (1 + 0.5 sin(pi x1)): a minority of users
respond strongly, high-baseline users cost much and gain little,
m(x) = 40 exp(0.3 x1 - 0.1 x0),
basket noise Gamma with coefficient of variation 0.5 * noise."""

_HARD_TEXT = """\
Setting "hard" (like real incentive data):
b(x) = -0.9 + 1.0 x0 + 0.5 x3 (large baseline),
s(x) = 2 (1 - x3) sigmoid(3 (x2 - 1) - x0) (1 + 0.5 sin(pi x1)):
small uplift, and loyal customers (x3 = 1, about 30%) do not respond at all,
yet cost v_k p_0(x) when treated because they convert anyway,
m(x) = 40 exp(0.5 x0 + 0.2 x3): the basket shares its driver x0 with the
baseline conversion, so most revenue variance is unrelated to the uplift,
basket noise lognormal with sigma = noise (heavy right tail). The revenue
uplift of the top level is about 13% of the control revenue."""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _check_args(n_samples, n_treatments, n_features, noise, treatment_probabilities, setting):
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("n_treatments", n_treatments, 1),
        ("n_features", n_features, _MIN_FEATURES),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(
                f"`{name}` must be an integer; got {value!r} ({type(value).__name__})."
            )
        if value < low:
            raise ValueError(f"`{name}` must be >= {low}; got {value}.")
    if isinstance(noise, bool) or not isinstance(noise, Real):
        raise TypeError(f"`noise` must be a number; got {noise!r} ({type(noise).__name__}).")
    if not 0 <= noise < np.inf:
        raise ValueError(f"`noise` must be a finite number >= 0; got {noise!r}.")
    if noise > 10 or 0 < noise < 1e-6:
        raise ValueError(
            f"`noise` must be 0 (no basket noise) or between 1e-6 and 10; got {noise!r}. "
            "Beyond 10 the mean-one noise factor is ~0 for almost every basket (and overflows "
            "further out); below 1e-6 it is 1 up to rounding (and its gamma shape 1 / cv^2 "
            "overflows further down): use 0.")
    if setting not in _SETTINGS:
        raise ValueError(f"`setting` must be one of {_SETTINGS}; got {setting!r}.")
    n_arms = n_treatments + 1
    if treatment_probabilities is None:
        return np.full(n_arms, 1.0 / n_arms)
    try:
        probs = np.asarray(treatment_probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`treatment_probabilities` must be a sequence of n_treatments + 1 = {n_arms} "
            f"numbers (control first); got {treatment_probabilities!r:.100}."
        ) from None
    if probs.shape != (n_arms,):
        raise ValueError(
            f"`treatment_probabilities` must have n_treatments + 1 = {n_arms} entries "
            f"(control first, then levels 1..{n_treatments}); got shape {probs.shape}."
        )
    if not np.all(np.isfinite(probs)) or np.any(probs <= 0):
        raise ValueError(
            "`treatment_probabilities` must be positive (every arm needs samples in an RCT); "
            f"got {probs.tolist()}."
        )
    if not np.isclose(probs.sum(), 1.0, atol=1e-6):
        raise ValueError(f"`treatment_probabilities` must sum to 1; got sum {probs.sum():.6g}.")
    return probs / probs.sum()


def _draw_features(rng, n_samples, n_features):
    X = rng.standard_normal((n_samples, n_features))
    X[:, 1] = rng.uniform(-1.0, 1.0, n_samples)
    X[:, 3] = (rng.uniform(size=n_samples) < 0.3).astype(np.float64)
    return X


def _structural(X, setting):
    """Return baseline logit b, sensitivity s and basket value m per user."""
    x0, x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2], X[:, 3]
    wave = 1.0 + 0.5 * np.sin(np.pi * x1)
    if setting == "default":
        b = -1.5 + 1.2 * x0 + 0.4 * x3
        s = 3.0 * _sigmoid(4.0 * (x2 - 0.8)) * wave
        m = _BASKET_SCALE * np.exp(0.3 * x1 - 0.1 * x0)
    else:
        b = -0.9 + 1.0 * x0 + 0.5 * x3
        s = 2.0 * (1.0 - x3) * _sigmoid(3.0 * (x2 - 1.0) - x0) * wave
        m = _BASKET_SCALE * np.exp(0.5 * x0 + 0.2 * x3)
    return b, s, m


def _basket_noise(rng, n_samples, noise, setting):
    """Mean-one multiplicative noise on the basket value."""
    if noise == 0:
        return np.ones(n_samples)
    if setting == "default":
        cv = 0.5 * noise
        shape = 1.0 / cv**2
        return rng.gamma(shape, 1.0 / shape, n_samples)
    sigma = 1.0 * noise
    return np.exp(sigma * rng.standard_normal(n_samples) - 0.5 * sigma**2)


def make_marketing_rct(
    n_samples=10000,
    n_treatments=3,
    n_features=8,
    noise=1.0,
    treatment_probabilities=None,
    setting="default",
    random_state=None,
):
    """Generate a randomized coupon experiment with known expected outcomes.

    Users get control (arm 0) or one of ``n_treatments`` coupon levels of
    increasing value ``v_k = 5 k``, paid only when the user converts. Revenue is
    conversion times basket value (gross revenue); cost is the coupon value
    times conversion. Responses are heterogeneous, nonlinear in the features and
    have diminishing returns in the level. ``true_revenue`` and ``true_cost``
    give the expected outcome of every arm given ``X``, so any allocation can be
    scored against the oracle (see :mod:`sklearn_budget.metrics`).

    Measured difficulty (``python benchmarks/dataset_difficulty.py``: n = 20000
    split 50/50 into train and test, seeds 0, 1, 2; budget = 40% of the
    oracle's full spend on the test half; causalml T-/X-learner with
    ``LGBMRegressor(n_estimators=50)`` fitted separately for revenue and cost,
    allocation solved on the predicted uplifts). True incremental revenue as a
    fraction of the oracle's at the same budget, mean +- std over the seeds,
    true spend / budget in brackets; "random" gives random users a random
    level until the true budget is spent:

    =============  ============  =========================  =========================
    setting        random        T-learner                  X-learner
    =============  ============  =========================  =========================
    ``"default"``  0.57 +- 0.01  0.80 +- 0.01 (spend 0.91)  0.84 +- 0.01 (spend 0.93)
    ``"hard"``     0.38 +- 0.01  0.45 +- 0.03 (spend 1.00)  0.48 +- 0.05 (spend 0.99)
    =============  ============  =========================  =========================

    With the multiplier re-chosen so the *true* spend meets the budget:
    default 0.83 / 0.86, hard 0.45 / 0.49 (T / X). At a 30% budget: default
    0.78 / 0.83, hard 0.39 +- 0.05 / 0.41 +- 0.07 (random 0.47 and 0.32). With
    more data the learners approach the oracle on "default" (0.92 / 0.96 at
    n = 300000, one seed) but stay far from it on "hard" (0.48 / 0.53).

    Parameters
    ----------
    n_samples : int, default=10000
        Number of users.
    n_treatments : int, default=3
        Number of incentive levels K (arms 1..K); arm 0 is the control.
    n_features : int, default=8
        Number of features, at least 4. Features x0..x3 drive the outcomes,
        the others are noise.
    noise : float, default=1.0
        Scale of the basket-value noise: 0 (no basket noise; conversion is
        always a Bernoulli draw) or between 1e-6 and 10. Gamma noise with coefficient of variation
        ``0.5 * noise`` in the "default" setting, lognormal with
        ``sigma = noise`` in the "hard" one.
    treatment_probabilities : array-like of shape (n_treatments + 1,), default=None
        Assignment probability of each arm, control first. Uniform if None.
    setting : {"default", "hard"}, default="default"
        "default": moderate noise, clear heterogeneity, a well-specified
        learner gets close to the oracle. "hard": heavy-tailed revenue,
        small uplift next to a large baseline that shares its driver with the
        basket value, and a segment (``x3 == 1``) that does not respond.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With attributes ``X`` (n_samples, n_features) float64, ``treatment``
        (n_samples,) int64 in 0..K, ``revenue`` and ``cost`` (n_samples,)
        observed outcomes (``cost >= 0``, 0 for control), ``true_revenue`` and
        ``true_cost`` (n_samples, K + 1) expected outcomes per arm including
        the control column 0, ``coupon_values`` (K + 1,), ``feature_names``,
        ``treatment_probabilities`` (K + 1,), ``setting`` and ``DESCR``.

    Examples
    --------
    >>> from sklearn_budget.datasets import make_marketing_rct
    >>> data = make_marketing_rct(n_samples=1000, random_state=0)
    >>> data.X.shape, data.true_revenue.shape
    ((1000, 8), (1000, 4))
    >>> sorted(set(data.treatment.tolist()))
    [0, 1, 2, 3]
    >>> bool((data.cost[data.treatment == 0] == 0).all())
    True
    >>> true_revenue_uplift = data.true_revenue[:, 1:] - data.true_revenue[:, [0]]
    >>> true_cost_uplift = data.true_cost[:, 1:] - data.true_cost[:, [0]]
    >>> true_cost_uplift.shape
    (1000, 3)
    """
    probs = _check_args(
        n_samples, n_treatments, n_features, noise, treatment_probabilities, setting
    )
    rng = check_random_state(random_state)
    n_samples, n_treatments, n_features = int(n_samples), int(n_treatments), int(n_features)

    X = _draw_features(rng, n_samples, n_features)
    b, s, m = _structural(X, setting)
    values = _COUPON_STEP * np.arange(n_treatments + 1, dtype=np.float64)
    lift = np.log1p(values / _COUPON_STEP)  # 0 for control, concave in the level
    p_convert = _sigmoid(b[:, None] + s[:, None] * lift[None, :])
    true_revenue = p_convert * m[:, None]
    true_cost = p_convert * values[None, :]

    treatment = rng.choice(n_treatments + 1, size=n_samples, p=probs).astype(np.int64)
    rows = np.arange(n_samples)
    converted = rng.uniform(size=n_samples) < p_convert[rows, treatment]
    basket = m * _basket_noise(rng, n_samples, float(noise), setting)
    revenue = np.where(converted, basket, 0.0)
    cost = np.where(converted, values[treatment], 0.0)

    descr = _DESCR_TEMPLATE.format(
        setting=setting,
        n_samples=n_samples,
        n_features=n_features,
        n_treatments=n_treatments,
        values=", ".join(f"{v:g}" for v in values[1:]),
        probs=", ".join(f"{p:.3g}" for p in probs),
        noise=noise,
        setting_text=_DEFAULT_TEXT if setting == "default" else _HARD_TEXT,
    )
    return Bunch(
        X=X,
        treatment=treatment,
        revenue=revenue,
        cost=cost,
        true_revenue=true_revenue,
        true_cost=true_cost,
        coupon_values=values,
        feature_names=[f"x{j}" for j in range(n_features)],
        treatment_probabilities=probs,
        setting=setting,
        DESCR=descr,
    )
