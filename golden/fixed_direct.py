"""A plain direct-definition reference of the integer Generator, for tests only.

Written straight from the definition in docs/NUMERICS.md, independently of :mod:`golden.fixed`:
scatter loops over every input pixel and every kernel tap on int64 (no phase decomposition, no
float64), and the rules spelled with floor division instead of shifts. Slow; use small batches.
"""

from __future__ import annotations

import numpy as np


def convt_direct(x: np.ndarray, w: np.ndarray, stride: int, pad: int, out_size: int) -> np.ndarray:
    """``acc[n, oc, oy, ox] = Σ_ic Σ_(ky,kx) x[n, ic, iy, ix] * w[ic, oc, ky, kx]`` over valid taps.

    Parameters
    ----------
    x : numpy.ndarray
        int ``(N, IC, H, W)``.
    w : numpy.ndarray
        int ``(IC, OC, k, k)``.

    Returns
    -------
    numpy.ndarray
        int64 ``(N, OC, out_size, out_size)``, with ``oy = iy*stride - pad + ky``; taps outside the
        output are dropped.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, _, h, wd = x.shape
    oc, k = w.shape[1], w.shape[2]
    acc = np.zeros((n, oc, out_size, out_size), dtype=np.int64)
    for iy in range(h):
        for ix in range(wd):
            for ky in range(k):
                oy = iy * stride - pad + ky
                if not 0 <= oy < out_size:
                    continue
                for kx in range(k):
                    ox = ix * stride - pad + kx
                    if not 0 <= ox < out_size:
                        continue
                    acc[:, :, oy, ox] += x[:, :, iy, ix] @ w[:, :, ky, kx]
    return acc


def _round_shift(q, s):
    return np.floor_divide(q + 2 ** (s - 1), 2 ** s)


def direct_plane(qm, uq) -> np.ndarray:
    """Pixels ``(M, 32, 32)`` int64 of pass inputs ``uq`` (int ``(M, nz)``), by the direct definition."""
    x = np.asarray(uq, dtype=np.int64).reshape(len(uq), -1, 1, 1)
    for l in range(1, 5):
        rec = qm.layers[l - 1]
        acc = convt_direct(x, qm.w[l], rec["stride"], rec["pad"], rec["out_size"]) + qm.b[l][None, :, None, None]
        r = _round_shift(acc, rec["shift"])
        if l < 4:
            x = np.minimum(np.maximum(r, 0), 65535)
        else:
            t = np.minimum(np.maximum(r, -1024), 1023)
            return qm.tanh_lut[t[:, 0] + 1024].astype(np.int64)


def direct_rgb(qm, zq) -> np.ndarray:
    """Pixels ``(N, 3, 32, 32)`` int64 of z codes by the direct definition (rule 1 spelled out)."""
    zq = np.asarray(zq, dtype=np.int64)
    v = qm.v.astype(np.int64)
    planes = [direct_plane(qm, zq)]
    for p in range(2):
        planes.append(direct_plane(qm, np.minimum(np.maximum(zq + v[p], -32768), 32767)))
    return np.stack(planes, axis=1)
