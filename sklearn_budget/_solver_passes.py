"""Budget solver, passes: what one full pass does to a block of rows.

Pure functions of the rows they are given (numpy arrays or torch tensors,
through the backend ``ops`` of :mod:`sklearn_budget._solver_backends`), so the
in-memory solve (:mod:`sklearn_budget._solver_search`) runs them over all
users and the Dask solve (:mod:`sklearn_budget._solver_dask`) over each
chunk: the totals and the choices at a multiplier, the users whose decision
changes inside a bracket, and the candidate upgrades of a settled choice.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["choices_at", "pass_rows", "upgrades_of_rows"]


def _scan_many(ops, r, c, lams):
    """:func:`_scan` at several multipliers, reading each block once."""
    parts = [[] for _ in lams]
    for a, b in ops.blocks(r.shape[0]):
        rt, ct = ops.load(r, c, a, b)
        for i, lam in enumerate(lams):
            parts[i].append(ops.choose(rt, ct, lam))
    out = []
    for p in parts:
        if len(p) == 1:
            out.append(p[0])
        else:
            out.append(tuple(ops.concat([q[i] for q in p]) for i in range(3)))
    return out


def _scan(ops, r, c, lam, values=True):
    """:meth:`choose` over all rows of (small, row-major) ``r`` and ``c``."""
    parts = [ops.choose(*ops.load(r, c, a, b), lam, values) for a, b in ops.blocks(r.shape[0])]
    if not parts:
        empty = ops.zeros_int(0)
        return empty, r[:0, 0], c[:0, 0]
    if len(parts) == 1:
        return parts[0]
    cat = (lambda i: ops.concat([p[i] for p in parts]) if values or i == 0 else None)
    return cat(0), cat(1), cat(2)


def pass_rows(ops, r, c, lo, hi, exact_lo=False, offset=0, arm_out=None):
    """One full pass over rows of ``r`` and ``c`` (see :meth:`_Solver.full_pass`).

    Returns the total revenue and cost of the choices at ``hi`` and the parts
    of the users whose choice changes in ``(lo, hi]``: their ids (plus
    ``offset``), choices and chosen values at both ends, and their rows.
    The choices at ``hi`` are written to ``arm_out`` when given. A pure
    function of its rows, so blocks of a larger (or chunked) input can be
    passed separately and their results concatenated.
    """
    tot_c = tot_r = 0.0
    parts = []
    for a, b in ops.blocks(r.shape[0]):
        rt, ct = ops.load(r, c, a, b)
        if exact_lo or math.isinf(hi):
            arm_lo = ops.choose(rt, ct, lo, values=False)[0]
            arm_hi, r_hi, c_hi = ops.choose(rt, ct, hi)
            d = ops.nonzero(arm_lo != arm_hi)
            al = arm_lo[d]
            r_lo, c_lo = ops.pick(rt, ct, al, d)
        else:
            arm_hi, r_hi, c_hi, d, al, r_lo, c_lo = ops.pass_block(rt, ct, lo, hi)
        tot_c = tot_c + ops.sum64(c_hi)
        tot_r = tot_r + ops.sum64(r_hi)
        if arm_out is not None:
            arm_out[a:b] = arm_hi
        if d.shape[0]:
            # the active users' rows, copied while the block is in cache
            parts.append((d + (a + offset), al, arm_hi[d], r_lo, c_lo, r_hi[d], c_hi[d],
                          r[a:b][d], c[a:b][d]))
    return tot_c, tot_r, parts


def choices_at(ops, r, c, lam):
    """Each row's choice at ``lam``, block by block (an array of the kind ``ops`` holds).

    A score ``r - lam * c`` that overflows is +-inf, beyond every finite score as its
    exact value is (so numpy's warning is not shown); ties among those go to the first.
    A finite ``lam`` beyond float32's range scores float32 rows in float64.
    """
    if math.isfinite(lam) and lam > ops.max_value:  # -lam would be -inf, -inf * 0 NaN
        r, c, ops = ops.widened(r, c)
    out = ops.zeros_int(r.shape[0])
    with np.errstate(over="ignore"):
        for a, b in ops.blocks(r.shape[0]):
            out[a:b] = ops.choose(*ops.load(r, c, a, b), lam, values=False)[0]
    return out


def upgrades_of_rows(ops, r, c, arm, left, lam_ref, offset=0):
    """Candidate upgrades of rows holding ``arm``: one part per block (see :meth:`_Solver.greedy`).

    Each part is ``(user, level, gain, extra)`` with user ids plus
    ``offset``, or None where the block has none. A pure function of its
    rows, like :func:`pass_rows`.
    """
    parts = []
    for a, b in ops.blocks(r.shape[0]):
        got = ops.upgrades(*ops.load(r, c, a, b), arm[a:b], left, lam_ref)
        parts.append(None if got is None else (got[0] + (a + offset),) + tuple(got[1:]))
    return parts
