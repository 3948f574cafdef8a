"""Budget solver, completion: spend the budget left at ``lam*`` on upgrades.

Step 4 of the method in :mod:`sklearn_budget._solver`. At ``lam*`` every user
holds an option that maximises ``r - lam* c``; the budget left over is spent
by the classical greedy of the multiple-choice knapsack: each user's upgrades
are reduced to their *chain*, the upper convex hull of the user's
(extra cost, extra revenue) points seen from the current option (the
LP-efficient upgrades, with falling revenue per cost along the chain; collinear
points are skipped, so a tie jumps to its farthest point), and the chain
segments of all users are taken best revenue per cost first, each whole, while
they fit. A user whose next segment does not fit stops there; afterwards every
user may still take the one option that fits best (revenue per cost) from
where they stand. The prefix of segments taken before the first one that did
not fit is the LP relaxation's solution rounded down, so the result is within
one segment's revenue of the LP optimum (the classical bound).

The functions here are pure numpy over the candidate upgrades (a few per user
near the threshold), whatever the array library of the problem.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

__all__ = ["complete_greedily"]

# Segments ranked per round (partial selection; a full sort of every candidate
# is wasted when the budget left is used up by the first few).
_GREEDY_BATCH = 1_024


def _dense(user, level, gain, extra, n_levels):
    """Candidates as dense per-user rows: ``(users, G, E)``, missing = -inf / nan.

    Column ``k`` holds level ``k`` (0-based) and the last column control
    (``level = -1``).
    """
    top = int(user.max()) + 1
    if user.shape[0] * 8 < top:  # few candidates among many users: sort them
        users, row = np.unique(user, return_inverse=True)
    else:  # a map over the user ids, no sort
        present = np.zeros(top, dtype=bool)
        present[user] = True
        users = np.flatnonzero(present)
        row = (np.cumsum(present) - 1)[user]
    G = np.full((users.shape[0], n_levels + 1), -np.inf)
    E = np.full((users.shape[0], n_levels + 1), np.nan)
    G[row, level] = gain
    E[row, level] = extra
    return users, G, E


def _steps(G, E, g0=None, e0=None, fits=None):
    """Best next point of every row from ``(g0, e0)``: ``(has, pick, dg, de, slope)``.

    The best point gains revenue and has the largest revenue per extra cost;
    a point that costs no more is taken first (slope ``inf``, most revenue
    first); ties go to the farthest point (most extra cost). ``fits``
    restricts to points whose extra cost is at most that. ``g0 = e0 = None``
    is the origin (each row's current option).
    """
    dg = G if g0 is None else G - g0[:, None]
    de = E if e0 is None else E - e0[:, None]
    ok = dg > 0  # missing points have dg = -inf
    if fits is not None:
        ok &= de <= fits
    up = ok & (de > 0)
    slope = np.full(G.shape, -np.inf)
    np.divide(dg, de, out=slope, where=up)
    slope[ok & ~up] = np.inf
    best = slope.max(axis=1)
    has = best > -np.inf
    far = np.where(slope == best[:, None], de, -np.inf)
    free = np.flatnonzero(best == np.inf)
    if free.shape[0]:  # a point that costs no more: the most revenue
        far[free] = np.where(slope[free] == np.inf, dg[free], -np.inf)
    pick = far.argmax(axis=1)
    rows = np.arange(G.shape[0])
    return has, pick, dg[rows, pick], de[rows, pick], best


def _walk_chains(G, E, g0, e0, final, left):
    """Take chain segments best revenue per cost first while they fit.

    Every row's first segment is found at once and walked in batches (partial
    selection); a row that takes its segment gets its next one (found then,
    from its new point) in a small heap merged into the walk, since its revenue
    per cost is at most the one just taken. A segment that does not fit stops
    its row's chain. Updates ``g0``, ``e0`` (each row's point) and ``final``
    (its column) in place; returns ``(left, spent, gained)``.
    """
    has, pick, dg, de, slope = _steps(G, E)
    idx = np.flatnonzero(has)
    heap = []  # (-slope, seq, row, col, dg, de): follow-up segments
    seq = 0
    spent = 0.0
    gained = []

    def take(u, col, du, eu, s_u):
        nonlocal left, spent, seq
        if eu > left:  # the chain stops here; the row may still fall back
            return
        left -= eu
        spent += eu
        gained.append(du)
        g0[u] += du
        e0[u] += eu
        final[u] = col
        h, p, d, e, s = _steps(G[u:u + 1], E[u:u + 1], g0[u:u + 1], e0[u:u + 1])
        if h[0]:  # revenue per cost falls along a chain; keep it so under rounding
            heapq.heappush(heap, (-min(float(s[0]), s_u), seq, u, int(p[0]), float(d[0]),
                                  float(e[0])))
            seq += 1

    def drain(key=math.inf):
        """Take the heap's segments ranked before ``key`` (all by default)."""
        while heap and heap[0][0] < key:
            item = heapq.heappop(heap)
            take(item[2], item[3], item[4], item[5], -item[0])

    for u, rest_min in _best_first(slope, de, idx):
        drain(-slope[u])
        if left < min(rest_min, min((h[5] for h in heap), default=math.inf)):
            return left, spent, math.fsum(gained)
        take(u, int(pick[u]), float(dg[u]), float(de[u]), float(slope[u]))
    drain()
    return left, spent, math.fsum(gained)


def _best_first(key, cost, idx=None):
    """Yield ``(i, rest_min)``: items by best ``key`` first (ties: lower index first).

    ``rest_min`` is the smallest cost among item ``i`` and the items after it,
    so a walk can stop once the budget left is below it. Items are ranked
    ``_GREEDY_BATCH`` at a time by partial selection: a full sort of every
    candidate is wasted when the first few use up the budget.
    """
    idx = np.arange(key.shape[0]) if idx is None else idx
    while idx.shape[0]:
        t = min(idx.shape[0], _GREEDY_BATCH)
        cut = np.partition(key[idx], idx.shape[0] - t)[idx.shape[0] - t]
        in_batch = key[idx] >= cut
        batch, idx = idx[in_batch], idx[~in_batch]
        batch = batch[np.lexsort((batch, -key[batch]))]
        rest_min = float(cost[idx].min()) if idx.shape[0] else math.inf
        tail_min = np.minimum(np.minimum.accumulate(cost[batch][::-1])[::-1], rest_min)
        yield from zip(batch.tolist(), tail_min.tolist())


def _take_in_order(key, cost, admit, left):
    """Walk items best ``key`` first while some still fit (see :func:`_best_first`).

    ``admit(i, fits)`` is called in the walk's order with whether item ``i``'s
    cost fits the budget left; it records the choice and says whether the item
    was taken. Returns ``(left, spent)``.
    """
    spent = 0.0
    for i, rest_min in _best_first(key, cost):
        if left < rest_min:
            break
        if admit(i, cost[i] <= left):
            left -= float(cost[i])
            spent += float(cost[i])
    return left, spent


def complete_greedily(user, level, gain, extra, n_levels, left):
    """Upgrades to take with the budget ``left``.

    Parameters
    ----------
    user, level, gain, extra : ndarray of shape (n_candidates,)
        Candidate upgrades: user id, level (column, 0-based; -1 = back to
        control, an upgrade only where a negative-cost level is held at a
        loss), revenue gain (> 0) and extra cost against the user's current
        option; at most one per (user, level).
    n_levels : int
        Number of levels (columns).
    left : float
        Budget left (>= 0).

    Returns
    -------
    users, arms : ndarray
        The users upgraded and their new arm (0 = control, ``k`` = column
        ``k - 1``).
    spent, gained : float
        Extra cost and revenue of the upgrades (``spent <= left``).
    """
    users, G, E = _dense(user, level, gain, extra, n_levels)
    n_rows = users.shape[0]
    g0, e0 = np.zeros(n_rows), np.zeros(n_rows)
    final = np.full(n_rows, -1, dtype=np.int64)
    left, spent, gained = _walk_chains(G, E, g0, e0, final, left)
    gains = [gained]
    # fallback: from where each user stands, the one option that fits best
    rows = np.flatnonzero(((E - e0[:, None] <= left) & (G > g0[:, None])).any(axis=1))
    has, pick, fdg, fde, fslope = _steps(G[rows], E[rows], g0[rows], e0[rows], fits=left)
    rows = rows[has]
    if rows.shape[0]:
        pick, fdg, fde, fslope = pick[has], fdg[has], fde[has], fslope[has]

        def admit_fallback(i, fits):
            if not fits:
                return False
            final[rows[i]] = pick[i]
            gains.append(float(fdg[i]))
            return True

        left, more = _take_in_order(fslope, fde, admit_fallback, left)
        spent += more
    moved = final >= 0
    # column k -> arm k + 1; the last column (control) -> arm 0
    return users[moved], (final[moved] + 1) % (n_levels + 1), spent, math.fsum(gains)
