"""Array backends of the budget solver: blocked scans over numpy arrays and torch tensors.

A pass of the solver over the (n, K) uplift matrices goes through one of these
"ops" objects, so the same search in :mod:`sklearn_budget._solver_search` runs on
numpy (blocks transposed to (K, rows) so the max over levels is a contiguous
reduction) and on torch tensors on their own device (CPU or CUDA), never
copying tensors to numpy.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

# Bytes of one block of the blocked passes: numpy (fits in L2) and torch on
# CPU (larger blocks: torch's per-call overhead is higher, and it splits
# large operations between threads).
_BLOCK_BYTES = 1 << 19
_TORCH_CPU_BLOCK_BYTES = 1 << 22
# Elements of one block on a CUDA device (large: kernels are launched per block).
_CUDA_BLOCK_ELEMENTS = 1 << 24


def _back_to_control(r_cur, c_cur, left, lam_ref):
    """Users for whom going back to control is an upgrade (any array library).

    Only a level with negative cost can be held at a loss of revenue; leaving
    it gains ``-r_cur`` for the extra cost ``-c_cur``.
    """
    back = (r_cur < 0) & (-c_cur <= left)
    if lam_ref > 0:
        back = back & (-r_cur >= -c_cur * lam_ref)
    return back


class _NumpyOps:
    """Blocked kernels on numpy arrays (work buffers reused across blocks)."""

    is_numpy = True

    def __init__(self, dtype, k):
        self.dtype, self.k = np.dtype(dtype), k
        self.max_value = float(np.finfo(self.dtype).max)  # (see choices_at)
        self.block_rows = max(256, _BLOCK_BYTES // (max(k, 1) * self.dtype.itemsize))
        self.weights = np.arange(k, 0, -1, dtype=np.min_scalar_type(max(k, 1)))[:, None]
        self._buffers = {}
        self._cols = np.arange(self.block_rows)
        self._base = self._cols + k * self.block_rows  # (see pass_block)

    def widened(self, r, c):
        """``r``, ``c`` and the ops in float64."""
        return r.astype(np.float64), c.astype(np.float64), _NumpyOps(np.float64, self.k)

    # buffers and blocks
    def _buf(self, name, m, dtype):
        buf = self._buffers.get(name)
        if buf is None:
            buf = self._buffers[name] = np.empty(self.k * self.block_rows, dtype=dtype)
        return buf[: self.k * m].reshape(self.k, m)

    def blocks(self, n):
        step = self.block_rows
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    def load(self, r, c, a, b):
        """Rows ``a:b`` of ``r`` and ``c`` transposed into the work buffers."""
        rt, ct = self._buf("rt", b - a, self.dtype), self._buf("ct", b - a, self.dtype)
        np.copyto(rt, r[a:b].T)
        np.copyto(ct, c[a:b].T)
        return rt, ct

    def _first_max(self, s, best):
        eq = np.equal(s, best, out=self._buf("eq", s.shape[1], bool))
        w = np.multiply(eq, self.weights, out=self._buf("w", s.shape[1], self.weights.dtype))
        return self.k - w.max(axis=0).astype(np.intp)

    def choose(self, rt, ct, lam, values=True):
        """``(arm, chosen r, chosen c)`` of a transposed block at multiplier ``lam``.

        Ties go to the first level, and between a level and control to control;
        ``lam = inf`` takes the cheapest option (highest revenue among equally
        cheap ones).
        """
        k, m = rt.shape
        s = self._buf("s", m, self.dtype)
        if math.isinf(lam):
            cmin = ct.min(axis=0)
            s.fill(-np.inf)
            np.copyto(s, rt, where=ct == cmin)
            best = s.max(axis=0)
            take = (cmin < 0) | ((cmin == 0) & (best > 0))
        else:
            np.multiply(ct, -lam, out=s)
            s += rt
            best = s.max(axis=0)
            take = best > 0
        idx = self._first_max(s, best)
        arm = np.where(take, idx + 1, 0)
        if not values:
            return arm, None, None
        flat = idx * m + self._cols[:m]
        rv = np.where(take, rt.reshape(-1)[flat], 0)
        cv = np.where(take, ct.reshape(-1)[flat], 0)
        return arm, rv, cv

    def pass_block(self, rt, ct, lo, hi):
        """One block of the full pass: choices at ``hi``, and the users they do not settle.

        Returns ``(arm_hi, r_hi, c_hi, d, arm_lo, r_lo, c_lo)`` where ``d``
        lists the columns whose choice at ``hi`` does not attain the maximum
        at ``lo`` (with the values at ``lo`` of those columns only). A choice
        that attains the maximum at both ends is the choice on all of
        ``(lo, hi]`` (scores are linear in the multiplier), so only the
        maximum at ``lo`` is needed, not its first maximising level. Written
        for few calls per block: per-call overhead, not the (K, m) arithmetic,
        is what a block of a few thousand users costs.
        """
        k, m = rt.shape
        s = self._buf("s", m, self.dtype)
        np.multiply(ct, -hi, out=s)
        s += rt
        best = s.max(axis=0)
        take = best > 0
        eq = np.equal(s, best, out=self._buf("eq", m, bool))
        w = np.multiply(eq, self.weights, out=self._buf("w", m, self.weights.dtype))
        wmax = w.max(axis=0)  # K - first maximising level
        flat = wmax.astype(np.intp)
        flat *= -m
        flat += self._base if m == self.block_rows else self._cols[:m] + k * m
        # flat = (K - wmax) * m + column: the first maximising level's entry
        r_hi = rt.reshape(-1).take(flat)
        r_hi *= take
        c_hi = ct.reshape(-1).take(flat)
        c_hi *= take
        arm_hi = np.subtract(k + 1, wmax, dtype=np.int64)
        arm_hi *= take
        # at lo: the best score, and the score of the choice at hi, which is
        # c_hi * -lo + r_hi exactly (control: +-0)
        np.multiply(ct, -lo, out=s)
        s += rt
        best = s.max(axis=0)
        at = c_hi * -lo
        at += r_hi
        d = np.flatnonzero(at != np.maximum(best, 0))
        if d.shape[0] == 0:
            return arm_hi, r_hi, c_hi, d, None, None, None
        sd, bd = s[:, d], best[d]
        idx = self._first_max(sd, bd)
        take = bd > 0
        flat = idx * m + d
        return (arm_hi, r_hi, c_hi, d, np.where(take, idx + 1, 0),
                np.where(take, rt.reshape(-1)[flat], 0), np.where(take, ct.reshape(-1)[flat], 0))

    def pick(self, rt, ct, arm, cols=None):
        """Revenue and cost of option ``arm`` (0 = control) of block columns ``cols``."""
        m = rt.shape[1]
        cols = self._cols[:m] if cols is None else cols
        on = arm > 0
        flat = np.maximum(arm - 1, 0) * m + cols
        return (np.where(on, rt.reshape(-1)[flat], 0), np.where(on, ct.reshape(-1)[flat], 0))

    def upgrades(self, rt, ct, arm, left, lam_ref):
        """Upgrades that gain revenue, cost at most ``left`` and earn ``lam_ref`` per cost.

        Returns ``(row, level, gain, extra)`` of the block, or None.
        """
        r_cur, c_cur = self.pick(rt, ct, arm)
        dr = rt - r_cur
        dc = ct - c_cur
        ok = (dr > 0) & (dc <= left)
        back = _back_to_control(r_cur, c_cur, left, lam_ref)
        if lam_ref > 0:
            ok &= dr >= dc * lam_ref
        if not (ok.any() or back.any()):
            return None
        level, row = ok.nonzero()
        # gain and extra cost in float64 from the stored values (exact for float32)
        r64, c64 = r_cur.astype(np.float64), c_cur.astype(np.float64)
        home = back.nonzero()[0]
        return (np.concatenate([row, home]),
                np.concatenate([level, np.full(home.shape[0], -1)]),
                np.concatenate([rt[ok] - r64[row], -r64[home]]),
                np.concatenate([ct[ok] - c64[row], -c64[home]]))

    # small helpers
    @staticmethod
    def sum64(x):
        return x.sum(dtype=np.float64)

    @staticmethod
    def std64(x):
        return x.std(dtype=np.float64)

    @staticmethod
    def to_float(x):
        return float(x)

    @staticmethod
    def nonzero(mask):
        return np.flatnonzero(mask)

    @staticmethod
    def concat(parts):
        return np.concatenate(parts)

    @staticmethod
    def take_rows(x, rows):
        return x[rows]

    @staticmethod
    def median(x):
        h = x.shape[0] // 2
        return float(np.partition(x, h)[h])

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    def asarray(self, x, dtype=None):
        return np.asarray(x, dtype=dtype)

    def zeros_int(self, n):
        return np.zeros(n, dtype=np.int64)

    def arange(self, n):
        return np.arange(n)


class _TorchOps:
    """The same kernels in torch, on the tensors' device.

    Torch vectorises reductions over a short trailing dimension, so its
    blocks stay row-major (m, K) views of the input: no transposed copies.
    """

    is_numpy = False

    def __init__(self, torch, dtype, k, device):
        self.torch, self.dtype, self.k, self.device = torch, dtype, k, device
        self.max_value = float(torch.finfo(dtype).max)
        item = torch.empty((), dtype=dtype).element_size()
        if device.type == "cpu":
            rows = _TORCH_CPU_BLOCK_BYTES // (max(k, 1) * item)
        else:
            rows = _CUDA_BLOCK_ELEMENTS // max(k, 1)
        self.block_rows = max(256, rows)
        wdtype = torch.uint8 if k < 256 else torch.int32
        self.weights = torch.arange(k, 0, -1, device=device).to(wdtype)
        self._buffers = {}

    def widened(self, r, c):
        """``r``, ``c`` and the ops in float64, on their device."""
        f64 = self.torch.float64
        return r.to(f64), c.to(f64), _TorchOps(self.torch, f64, self.k, self.device)

    def _buf(self, name, m, dtype):
        buf = self._buffers.get(name)
        if buf is None:
            buf = self._buffers[name] = self.torch.empty(self.k * self.block_rows, dtype=dtype,
                                                         device=self.device)
        return buf[: self.k * m].view(m, self.k)

    def blocks(self, n):
        step = self.block_rows
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    @staticmethod
    def load(r, c, a, b):
        return r[a:b], c[a:b]

    def _first_max(self, s, best):
        t = self.torch
        m = s.shape[0]
        eq = t.eq(s, best[:, None], out=self._buf("eq", m, t.bool))
        w = t.mul(eq, self.weights, out=self._buf("w", m, self.weights.dtype))
        return self.k - t.amax(w, dim=1).long()

    def choose(self, rb, cb, lam, values=True):
        """See :meth:`_NumpyOps.choose` (blocks are row-major here)."""
        t = self.torch
        m = rb.shape[0]
        s = self._buf("s", m, self.dtype)
        if math.isinf(lam):
            cmin = t.amin(cb, dim=1)
            s.copy_(t.where(cb == cmin[:, None], rb, t.full((), -math.inf, dtype=self.dtype,
                                                              device=self.device)))
            best = t.amax(s, dim=1)
            take = (cmin < 0) | ((cmin == 0) & (best > 0))
        else:
            t.mul(cb, -lam, out=s)
            s.add_(rb)
            best = t.amax(s, dim=1)
            take = best > 0
        idx = self._first_max(s, best)
        arm = (idx + 1) * take
        if not values:
            return arm, None, None
        col = idx[:, None]
        return arm, t.gather(rb, 1, col)[:, 0] * take, t.gather(cb, 1, col)[:, 0] * take

    def pass_block(self, rb, cb, lo, hi):
        """See :meth:`_NumpyOps.pass_block`."""
        t = self.torch
        arm_hi, r_hi, c_hi = self.choose(rb, cb, hi)
        s = self._buf("s", rb.shape[0], self.dtype)
        t.mul(cb, -lo, out=s)
        s.add_(rb)
        best = t.amax(s, dim=1)
        at = c_hi * -lo
        at += r_hi
        d = t.nonzero(at != t.clamp(best, min=0))[:, 0]
        if d.shape[0] == 0:
            return arm_hi, r_hi, c_hi, d, None, None, None
        bd = best[d]
        idx = self._first_max(s[d], bd)
        take = bd > 0
        return (arm_hi, r_hi, c_hi, d, (idx + 1) * take, rb[d, idx] * take, cb[d, idx] * take)

    def pick(self, rb, cb, arm, rows=None):
        """Revenue and cost of option ``arm`` (0 = control) of block rows ``rows``."""
        t = self.torch
        on = arm > 0
        lvl = t.clamp(arm - 1, min=0)
        if rows is None:
            return (t.gather(rb, 1, lvl[:, None])[:, 0] * on,
                    t.gather(cb, 1, lvl[:, None])[:, 0] * on)
        return rb[rows, lvl] * on, cb[rows, lvl] * on

    def upgrades(self, rb, cb, arm, left, lam_ref):
        """Upgrades that gain revenue, cost at most ``left`` and earn ``lam_ref`` per cost.

        Returns numpy ``(row, level, gain, extra)`` of the block, or None.
        """
        r_cur, c_cur = self.pick(rb, cb, arm)
        dr = rb - r_cur[:, None]
        dc = cb - c_cur[:, None]
        ok = (dr > 0) & (dc <= left)
        back = _back_to_control(r_cur, c_cur, left, lam_ref)
        if lam_ref > 0:
            ok &= dr >= dc * lam_ref
        if not bool(ok.any() | back.any()):
            return None
        row, level = ok.nonzero().T
        # gain and extra cost in float64 from the stored values (exact for float32)
        f64 = self.torch.float64
        r64, c64 = r_cur.to(f64), c_cur.to(f64)
        home = back.nonzero()[:, 0]
        cat = self.torch.cat
        return (self.to_numpy(cat([row, home])),
                self.to_numpy(cat([level, self.torch.full_like(home, -1)])),
                self.to_numpy(cat([rb[ok].to(f64) - r64[row], -r64[home]])),
                self.to_numpy(cat([cb[ok].to(f64) - c64[row], -c64[home]])))

    def sum64(self, x):
        return x.sum(dtype=self.torch.float64)

    def std64(self, x):
        return x.to(self.torch.float64).std(correction=0)

    @staticmethod
    def to_float(x):
        return float(x)

    def nonzero(self, mask):
        return self.torch.nonzero(mask)[:, 0]

    def concat(self, parts):
        return self.torch.cat(parts)

    @staticmethod
    def take_rows(x, rows):
        return x[rows]

    @staticmethod
    def median(x):
        h = x.shape[0] // 2
        return float(x.kthvalue(h + 1).values)

    @staticmethod
    def to_numpy(x):
        return x.cpu().numpy()

    def asarray(self, x, dtype=None):
        return self.torch.as_tensor(x, dtype=dtype, device=self.device)

    def zeros_int(self, n):
        return self.torch.zeros(n, dtype=self.torch.int64, device=self.device)

    def arange(self, n):
        return self.torch.arange(n, device=self.device)


def _ops_for(r):
    if array_api_compat.is_torch_array(r):
        import torch

        return _TorchOps(torch, r.dtype, r.shape[1], r.device)
    return _NumpyOps(r.dtype, r.shape[1])
