"""Budget solver: the multiple-choice knapsack over uplift predictions.

Given per-user revenue uplift ``r[i, k]`` and cost uplift ``c[i, k]`` for
incentive levels ``k = 1..K`` (control = 0, with zero uplift), find one arm per
user maximising ``sum_i r[i, a_i]`` subject to ``sum_i c[i, a_i] <= B``.

Method (exact Lagrangian + greedy completion):

1. For a multiplier ``lam >= 0`` every user independently takes
   ``a_i(lam) = argmax_k r[i, k] - lam * c[i, k]`` (control when no score is
   positive); the spend ``S(lam)`` is a non-increasing step function whose
   steps sit at the breakpoints ``(r_j - r_k) / (c_j - c_k)`` of each user's
   upper envelope.
2. The smallest ``lam*`` with ``S(lam*) <= B`` is found by narrowing a bracket
   ``S(lo) > B >= S(hi)`` onto breakpoints. Only the *active* users, whose
   decision changes inside the bracket, are kept (as compact copies); every
   user whose decision no longer changes is settled. While many are active,
   the spend drops at a sample of their crossing points place the budget
   between two pivots; then the pivot is the median crossing point. When few
   users remain active their breakpoints are enumerated and searched exactly.
3. For large ``n`` the first bracket comes from the same solve on a random
   subsample (itself bracketed the same way when large): around the
   subsample's multiplier, each subsampled user's next breakpoint above and
   below bounds the subsample's spend curve, and the bracket is where that
   bound is ``_BRACKET_Z`` standard errors above and below the (scaled)
   budget. The full data is then read once: one blocked pass finds every
   user's choice at ``hi`` and settles those whose choice also attains the
   best score at ``lo`` (scores are linear in the multiplier, so that choice
   holds on all of ``(lo, hi]``); a few percent stay active. A bracket that
   misses ``lam*`` is detected exactly and costs one more pass.
4. The budget left at ``lam*`` is spent greedily on upgrades of the users
   near the threshold (those with an upgrade earning within ``_GREEDY_BAND``
   of ``lam*`` per unit of cost; every user for small problems): each user's
   LP-efficient upgrades (the upper hull of their options seen from their
   choice, a tie jumping to its farthest option) are taken best revenue per
   cost first while they fit, then each user may take the one option that
   still fits best. This is the classical LP rounding: the result is feasible
   and within one user's revenue step of the integer optimum, that is within
   ``max_i max_k r[i, k]`` when no cost uplift is negative (with negative
   costs, within the largest difference between two arms' revenues of one
   user). It does not depend on the subsample (``random_state``), except that
   among levels whose scores tie at ``lam*`` only up to rounding a user may
   get either.

Speed: a pass over the data works on blocks of a few thousand users in reused
buffers, transposed to (K, rows) for numpy so that the max over levels is a
vectorised reduction over contiguous memory (numpy's reductions and argmax
along a short trailing axis are not). The solve costs about two ``np.argmax``
passes over the (n, K) score matrix, and its peak memory is a fraction of the
input's (the int64 assignment, the active users' rows and the subsample's).
Torch tensors (CPU or CUDA) are processed in torch on
their device with the same kernels, never copied to numpy. Dask arrays are
solved out of core, chunk by chunk (:mod:`sklearn_budget._solver_dask`): each
full pass is one computation over the chunks, reduced to a few totals and the
active users' rows, and the assignment comes back as a lazy Dask array.

This module holds the public entry points and their input checks; the search
(steps 1 and 2) is in :mod:`sklearn_budget._solver_search`, the first
bracket (step 3) in :mod:`sklearn_budget._solver_bracket`, the completion
(step 4) in :mod:`sklearn_budget._solver_greedy`, the array kernels in
:mod:`sklearn_budget._solver_backends` and the passes over Dask chunks in
:mod:`sklearn_budget._solver_dask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import array_api_compat
import numpy as np

from ._solver_backends import _ops_for
from ._solver_dask import allocate_at_multiplier_dask, solve_dask
from ._solver_passes import choices_at
from ._solver_search import _Solver
from ._validation import (check_budget, check_dask_uplift, check_uplift, is_dask_frame,
                          real_number)

__all__ = ["BudgetAllocation", "allocate_at_multiplier", "solve_budget_allocation"]


@dataclass(frozen=True)
class BudgetAllocation:
    """Result of :func:`solve_budget_allocation`.

    Attributes
    ----------
    assignment : array of shape (n_users,)
        Chosen arm per user: 0 = control, ``k`` = column ``k - 1`` of the
        uplift matrices. Same array library (and device) as the input; for
        Dask input a lazy Dask array (``.compute()`` it, or ``dask.array.store``
        it to disk).
    multiplier : float
        Lagrange multiplier ``lam*`` (price of one cost unit) of the solution.
    spend : float
        Total cost uplift of the assignment, summed in float64 as the solver sums
        it: never above ``budget`` (summed exactly, e.g. by ``math.fsum``, it may
        exceed a budget that the spend meets to the last bit by a few units in
        the last place).
    value : float
        Total revenue uplift of the assignment.
    dual_bound : float
        Upper bound on the optimal value: the Lagrangian dual at ``lam*``.
    budget : float
        Total budget used.
    optimality_gap : float
        ``(dual_bound - value) / |dual_bound|``: how far the value can be
        below the optimum, relatively (0 when both are 0).
    """

    assignment: object
    multiplier: float
    spend: float
    value: float
    dual_bound: float
    budget: float

    @property
    def optimality_gap(self):
        """Relative gap ``(dual_bound - value) / |dual_bound|`` (0 when both are 0)."""
        denom = abs(self.dual_bound)
        return 0.0 if denom == 0 else (self.dual_bound - self.value) / denom


# -- array backends ---------------------------------------------------------------------
# Both backends work on blocks of a few thousand users (numpy) or more (torch)
# and expose the same kernels. numpy's blocks are transposed to (K, rows) in
# reused buffers, so that the max over levels is a vectorised reduction over
# contiguous rows (numpy's reductions and argmax along a short trailing axis
# are not vectorised); torch's are row-major views (its reductions over a
# short trailing dimension are). The first maximising level is found as
# ``K - max_k(w_k * [s_k == max])`` with weights ``w = K, K-1, ..., 1``
# (exact: it compares each score with the maximum of the same scores). The
# score is always ``r + (-lam) * c``, which equals ``r - lam * c`` exactly in
# IEEE arithmetic, in every code path, so all paths agree on every choice.


def _is_dask(*arrays):
    return any(array_api_compat.is_dask_array(a) or is_dask_frame(a) for a in arrays)


def _check_inputs(revenue_uplift, cost_uplift):
    """Validated ``(r, c)``; torch tensors stay tensors (detached, same device).

    A finite sum implies finite entries, so for well-formed float tensors one
    reduction per matrix replaces the element-wise ``isfinite`` scan (torch's
    is several times slower than a pass of the solver); anything else, and
    any non-finite sum, goes through :func:`check_uplift`, which raises the
    package's uniform errors.
    """
    r, c = revenue_uplift, cost_uplift
    if array_api_compat.is_torch_array(r) and array_api_compat.is_torch_array(c):
        import torch

        r, c = r.detach(), c.detach()
        if (r.ndim == 2 and r.shape == c.shape and r.shape[1] > 0 and r.dtype == c.dtype
                and r.dtype in (torch.float32, torch.float64) and r.device == c.device
                and bool(torch.isfinite(r.sum()) & torch.isfinite(c.sum()))):
            return r, c
    r, c = check_uplift(r, c, allow_torch=True)
    if array_api_compat.is_torch_array(r):
        r, c = r.detach(), c.detach()
    return r, c


def allocate_at_multiplier(revenue_uplift, cost_uplift, multiplier):
    """Each user's best arm at a fixed price of cost.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like, torch.Tensor or dask.array.Array of shape (n_users, n_levels)
        Uplift against control of every incentive level (control excluded).
    multiplier : float
        Price of one cost unit, ``lam >= 0`` (``inf`` allowed).

    Returns
    -------
    assignment : array of shape (n_users,)
        ``argmax_k r[i, k] - lam * c[i, k]``, plus one; 0 (control) unless the
        best score is positive. A lazy Dask array for Dask input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget import allocate_at_multiplier
    >>> r = np.array([[1.0, 3.0], [0.5, 0.6]])
    >>> c = np.array([[1.0, 2.0], [1.0, 2.0]])
    >>> allocate_at_multiplier(r, c, 0.4)
    array([2, 1])
    >>> allocate_at_multiplier(r, c, 0.8)
    array([2, 0])
    """
    dask_input = _is_dask(revenue_uplift, cost_uplift)
    r, c = (check_dask_uplift if dask_input else _check_inputs)(revenue_uplift, cost_uplift)
    lam = _check_multiplier(multiplier)
    if dask_input:
        return allocate_at_multiplier_dask(r, c, lam)
    return choices_at(_ops_for(r), r, c, lam)


def _check_multiplier(multiplier):
    """``multiplier`` as a float >= 0 (``inf`` allowed), or a TypeError / ValueError."""
    lam = real_number(multiplier)
    if lam is None:
        raise TypeError(
            "`multiplier` must be one real number >= 0 (the price of a cost unit in revenue "
            f"units, the same for every user); got {type(multiplier).__name__} "
            f"{multiplier!r:.80}."
        )
    if math.isnan(lam) or lam < 0:
        raise ValueError(f"`multiplier` must be >= 0; got {multiplier}.")
    return lam


def choices_along(revenue_uplift, cost_uplift):
    """``lam -> allocate_at_multiplier(r, c, lam)`` for in-memory inputs checked once
    (a sweep over many multipliers would check them at every one)."""
    r, c = _check_inputs(revenue_uplift, cost_uplift)
    ops = _ops_for(r)
    return lambda lam: choices_at(ops, r, c, _check_multiplier(lam))


def solve_budget_allocation(revenue_uplift, cost_uplift, budget=None, *, budget_per_user=None,
                            random_state=0):
    """Assign one arm per user to maximise revenue uplift under a cost budget.

    Solves the multiple-choice knapsack ``max sum_i r[i, a_i]`` s.t.
    ``sum_i c[i, a_i] <= budget`` exactly in the Lagrangian sense, then spends
    what is left greedily; see the module docstring for the method. The value
    is never below treating nobody's (0): with negative cost uplifts (refunds),
    an assignment that holds refunds at a loss to fund others, worth less than
    0 in all, gives way to all-control.

    Parameters
    ----------
    revenue_uplift, cost_uplift : array-like, torch.Tensor or dask.array.Array of shape (n_users, n_levels)
        Uplift against control of every incentive level, control excluded (the
        layout of a causalml meta-learner's ``predict``). float32 or float64;
        torch tensors (CPU or CUDA) are processed in torch on their device.
        Dask arrays (numpy chunks) and Dask DataFrames (one column per
        level) are solved out of core: the data is read
        about twice, a chunk at a time (a random subsample, then one full
        pass; rarely more), memory holds only the users near the threshold
        (at most an eighth of each chunk's rows), and the result is the
        in-memory solve's, up to the rounding of the totals, which are
        summed per chunk (with the budget within rounding of a step of the
        spend, the two may differ by a step). NaN or
        infinite values are found as the chunks are read.
    budget : float, default=None
        Total budget in cost units. Give this or ``budget_per_user``.
    budget_per_user : float, default=None
        Average budget per user; the total is ``budget_per_user * n_users``.
    random_state : int, default=0
        Seed of the subsample that brackets the multiplier for large inputs
        (affects speed only, not the result).

    See Also
    --------
    allocate_at_multiplier : the policy at a given multiplier (lazy for Dask input).

    Returns
    -------
    BudgetAllocation
        ``assignment`` (0 = control, ``k`` = column ``k - 1``), ``multiplier``,
        ``spend`` (<= budget), ``value`` and ``dual_bound``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_budget import solve_budget_allocation
    >>> r = np.array([[3.0, 4.0], [2.0, 2.5], [1.0, 1.2]])
    >>> c = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    >>> sol = solve_budget_allocation(r, c, budget=3.0)
    >>> sol.assignment, sol.spend, sol.value
    (array([2, 1, 0]), 3.0, 6.0)

    Out of core, on Dask arrays (``pip install "sklearn-budget[dask]"``):

    >>> import dask.array as da
    >>> lazy = solve_budget_allocation(da.from_array(r, chunks=2), da.from_array(c, chunks=2),
    ...                                budget=3.0)
    >>> lazy.assignment.compute(), lazy.spend
    (array([2, 1, 0]), 3.0)
    """
    if (budget is None) == (budget_per_user is None):
        raise ValueError("Give exactly one of `budget` (total) and `budget_per_user`.")
    dask_input = _is_dask(revenue_uplift, cost_uplift)
    r, c = (check_dask_uplift if dask_input else _check_inputs)(revenue_uplift, cost_uplift)
    if budget is None:
        budget = check_budget(budget_per_user, name="budget_per_user") * r.shape[0]
        if math.isinf(budget):
            raise ValueError(f"`budget_per_user` x {r.shape[0]} users overflows float64; give "
                             "a smaller budget (it need not exceed the largest cost uplift).")
    else:
        budget = check_budget(budget)
    try:
        if isinstance(random_state, (bool, np.bool_)):
            raise TypeError
        np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ValueError(
            "`random_state` must be None, an int >= 0 or a numpy Generator (the seed of the "
            f"subsample that brackets the multiplier); got {random_state!r:.80}.") from None
    try:  # totals that overflow are refused below, with the fix (not numpy's warning)
        with np.errstate(over="ignore"):
            if dask_input:
                *numbers, assignment = solve_dask(r, c, budget, random_state)
            else:
                solver = _Solver(r, c, budget, random_state)
                numbers, assignment = solver.solve(), None
    except OverflowError:  # math.fsum of the greedy completion's gains
        numbers = (math.inf,) * 4
    # spend and value (the dual bound is lam* x budget + ...: inf x 0 where lam* is inf)
    if not all(math.isfinite(x) for x in numbers[1:3]):
        raise ValueError(
            "The uplifts are so large that their sums overflow float64 (the total value or "
            "spend is infinite); rescale revenue_uplift and cost_uplift (e.g. to thousands "
            "of currency units) and the budget with them.")
    if assignment is None:
        assignment = solver.assignment
    if numbers[2] < 0:  # (negative costs: refunds held at a loss) treating nobody is better
        numbers = (numbers[0], 0.0, 0.0, numbers[3])
        assignment = array_api_compat.array_namespace(assignment).zeros_like(assignment)
    return BudgetAllocation(assignment, *numbers, budget)
