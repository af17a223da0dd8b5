"""The bit-exact integer golden model of the hardware Generator (docs/NUMERICS.md).

Given a quantized model (:mod:`golden.qmodel`) and integer z codes ``S(16,12)``, it computes every
pixel of the three planes exactly as the hardware must. It is pure NumPy and vectorised over the
batch.

Exactness. Codes are multiplied and summed in float64 BLAS: every product is an integer of at
most 24 bits and NUMERICS.md proves every (partial) sum of a layer is an integer of magnitude
below ``2^34 < 2^53``, so float64 represents every intermediate exactly whatever the summation
order; the sums are converted to int64 exactly and everything after (bias, rounding shifts, ReLU,
saturation, table look-up) is int64.

Structure. The transposed convolutions use the phase decomposition of NUMERICS.md, the same one
the engine uses: for stride ``s`` each output phase ``(py, px)`` (``oy = s*m + py``) receives the
kernel taps ``k`` with ``k ≡ py + pad (mod s)``, reading input row ``m + d`` with
``d = (py + pad - k) / s``; for each phase and each tap one matmul over the input channels is done
on the shifted input region, and taps that fall outside the input are skipped (never computed as
zero multiplies). :func:`phase_taps` gives that schedule.

Layout: public tensors are NCHW (``(N, C, H, W)``); internally NHWC so each tap is one matmul.
"""

from __future__ import annotations

import numpy as np

from base.errors import UserError
from base.contract import ACT_BITS, KERNEL, TANH_ENTRIES, TANH_INDEX, Z_FMT
from golden.qmodel import QModel, code_range, q_float

#: Avatars per internal chunk of :func:`fixed_rgb` (bounds memory to ~100 MB for the default model).
CHUNK = 128


# --------------------------------------------------------------------------- the rules

def rshift_rnd(q: np.ndarray, s: int) -> np.ndarray:
    """``floor((q + 2^(s-1)) / 2^s)`` for ``s >= 1`` (round half up), on int64; ``s = 0``: ``q``."""
    if s < 0:
        raise ValueError(f"shift {s} < 0")
    q = np.asarray(q, dtype=np.int64)
    if s == 0:
        return q
    return (q + (1 << (s - 1))) >> s


def requantize_relu(acc: np.ndarray, shift: int) -> np.ndarray:
    """Rule 3: ``sat_U(16)(max(rshift_rnd(acc, shift), 0))``."""
    return np.clip(rshift_rnd(acc, shift), 0, (1 << ACT_BITS) - 1)


def tanh_index(acc: np.ndarray, shift: int) -> np.ndarray:
    """Rule 4, first half: ``t = sat_S(11)(rshift_rnd(acc, shift))``."""
    lo, hi = code_range(TANH_INDEX)
    return np.clip(rshift_rnd(acc, shift), lo, hi)


def pass_inputs(qm: QModel, zq: np.ndarray) -> np.ndarray:
    """Rule 1: ``u_0 = z``, ``u_1 = sat_S(16)(z + v1)``, ``u_2 = sat_S(16)(z + v2)``.

    Parameters
    ----------
    qm : QModel
    zq : numpy.ndarray
        int ``(N, nz)`` S(16,12) codes (checked).

    Returns
    -------
    numpy.ndarray
        int64 ``(N, 3, nz)``.
    """
    zq = check_zq(qm, zq)
    lo, hi = code_range(Z_FMT)
    v = qm.v.astype(np.int64)
    u = np.empty((zq.shape[0], 3, zq.shape[1]), dtype=np.int64)
    u[:, 0] = zq
    u[:, 1] = np.clip(zq + v[0], lo, hi)
    u[:, 2] = np.clip(zq + v[1], lo, hi)
    return u


def check_zq(qm: QModel, zq) -> np.ndarray:
    """Return ``zq`` as int64 ``(N, nz)`` or raise :class:`UserError` (wrong shape, dtype, range)."""
    zq = np.asarray(zq)
    if zq.ndim != 2 or zq.shape[1] != qm.nz:
        raise UserError(f"z codes must have shape (N, {qm.nz}), got {zq.shape}")
    if not np.issubdtype(zq.dtype, np.integer):
        raise UserError(f"z codes must be integers (S(16,12) codes), got dtype {zq.dtype}; "
                        f"use quantize_z for float z")
    lo, hi = code_range(Z_FMT)
    if zq.size:  # range first, in the stored dtype (Python ints are exact): a cast could wrap
        zmin, zmax = int(zq.min()), int(zq.max())
        if zmin < lo or zmax > hi:
            raise UserError(f"z codes must lie in [{lo}, {hi}] (S(16,12)), got [{zmin}, {zmax}]")
    return zq.astype(np.int64)


def quantize_z(z, nz: int | None = None) -> tuple[np.ndarray, int]:
    """Rule 6: float z -> S(16,12) codes ``sat_S(16)(floor(z * 4096 + 0.5))``.

    Parameters
    ----------
    z : array_like
        Float z, shape ``(N, nz)`` (or ``(nz,)``, returned as such).
    nz : int, optional
        Required length of the last axis.

    Returns
    -------
    codes : numpy.ndarray
        int64, same shape as ``z``.
    n_saturated : int
        How many elements were outside [-8, 8) and saturated.

    Raises
    ------
    UserError
        Non-finite values, non-numeric input or a wrong length.
    """
    try:
        z = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError("z must be an array of numbers") from None
    if z.ndim not in (1, 2):
        raise UserError(f"z must have shape (N, nz) or (nz,), got {z.shape}")
    if nz is not None and z.shape[-1] != nz:
        raise UserError(f"z must have {nz} elements per vector, got {z.shape[-1]}")
    if not np.all(np.isfinite(z)):
        raise UserError(f"z has {int(np.count_nonzero(~np.isfinite(z)))} non-finite value(s) (NaN or inf)")
    lo, hi = code_range(Z_FMT)
    q = q_float(z, Z_FMT["frac"])
    n_sat = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi), n_sat


# --------------------------------------------------------------------------- the phase decomposition

def phase_taps(stride: int, pad: int, kernel: int = KERNEL) -> list[list[tuple[int, int]]]:
    """Tap schedule of a transposed convolution, per output phase.

    Returns
    -------
    list of list of (int, int)
        ``taps[ph]`` lists ``(k, d)`` for output phase ``ph`` (``o = stride*m + ph``): kernel index
        ``k`` reads input index ``m + d``. For stride 2, pad 1, kernel 4:
        ``[[(1, 0), (3, -1)], [(0, 1), (2, 0)]]``.
    """
    taps = []
    for ph in range(stride):
        taps.append([(k, (ph + pad - k) // stride) for k in range(kernel) if (ph + pad - k) % stride == 0])
    return taps


def convt_phase(x: np.ndarray, w: np.ndarray, stride: int, pad: int, out_size: int) -> np.ndarray:
    """Transposed convolution without bias by phase decomposition, NHWC, float64.

    Parameters
    ----------
    x : numpy.ndarray
        float64 ``(N, H, W, IC)``.
    w : numpy.ndarray
        float64 ``(IC, OC, k, k)`` (PyTorch ConvTranspose2d layout).
    stride, pad, out_size : int

    Returns
    -------
    numpy.ndarray
        float64 ``(N, out_size, out_size, OC)``: for integer inputs, the exact integer sums over the
        valid taps (NUMERICS.md bounds them below 2^53).
    """
    n, h, wd, ic = x.shape
    oc, k = w.shape[1], w.shape[2]
    taps = phase_taps(stride, pad, k)
    wk = [[np.ascontiguousarray(w[:, :, ky, kx]) for kx in range(k)] for ky in range(k)]
    out = np.empty((n, out_size, out_size, oc), dtype=np.float64)
    for py in range(stride):
        hp = len(range(py, out_size, stride))
        for px in range(stride):
            wp = len(range(px, out_size, stride))
            buf = np.zeros((n, hp, wp, oc), dtype=np.float64)
            for ky, dy in taps[py]:
                m0, m1 = max(0, -dy), min(hp, h - dy)
                if m0 >= m1:
                    continue
                for kx, dx in taps[px]:
                    n0, n1 = max(0, -dx), min(wp, wd - dx)
                    if n0 >= n1:
                        continue
                    region = x[:, m0 + dy:m1 + dy, n0 + dx:n1 + dx, :].reshape(-1, ic)
                    buf[:, m0:m1, n0:n1, :] += (region @ wk[ky][kx]).reshape(n, m1 - m0, n1 - n0, oc)
            out[:, py::stride, px::stride, :] = buf
    return out


def region_groups(stride: int, pad: int, n_in: int, out_size: int, kernel: int = KERNEL) -> list:
    """The valid taps of a layer grouped by the input region they read.

    The taps of the phase decomposition (:func:`phase_taps`) that read the same shifted input
    region (for stride 2: the 3 x 3 shifts -1, 0, +1 per axis) share one copy of that region.
    Same products, same skipped edge taps. Used by :func:`fixed_rgb` through :func:`convt_grouped`.

    Returns
    -------
    list of ((i0, i1, j0, j1), [(py, px, m0, m1, n0, n1, ky, kx), ...])
        Input rows ``i0:i1`` and columns ``j0:j1``; each tap adds its product into output phase
        ``(py, px)`` at phase rows ``m0:m1`` and columns ``n0:n1``.
    """
    taps = phase_taps(stride, pad, kernel)
    per_axis = []  # (ph, m0, m1, k, i0, i1)
    for ph in range(stride):
        hp = len(range(ph, out_size, stride))
        for k, d in taps[ph]:
            m0, m1 = max(0, -d), min(hp, n_in - d)
            if m0 < m1:
                per_axis.append((ph, m0, m1, k, m0 + d, m1 + d))
    groups: dict = {}
    for py, m0, m1, ky, i0, i1 in per_axis:
        for px, n0, n1, kx, j0, j1 in per_axis:
            groups.setdefault((i0, i1, j0, j1), []).append((py, px, m0, m1, n0, n1, ky, kx))
    return list(groups.items())


def convt_grouped(x: np.ndarray, w: np.ndarray, stride: int, pad: int, out_size: int) -> np.ndarray:
    """Same result as :func:`convt_phase` (NHWC float64), faster.

    Each shifted input region is copied once and serves every valid tap that reads it (one
    matmul per tap, as in :func:`convt_phase`); each output phase is accumulated in its own
    contiguous buffer, started by a tap that covers it whole (no zero fill), and the phases are
    interleaved into the output at the end.
    """
    n, h, wd, ic = x.shape
    oc = w.shape[1]
    phases = {}
    groups = sorted(region_groups(stride, pad, h, out_size, w.shape[2]),
                    key=lambda g: -(g[0][1] - g[0][0]) * (g[0][3] - g[0][2]))
    for (i0, i1, j0, j1), taps in groups:
        region = x[:, i0:i1, j0:j1, :].reshape(-1, ic)
        for py, px, m0, m1, n0, n1, ky, kx in taps:
            y = (region @ w[:, :, ky, kx]).reshape(n, i1 - i0, j1 - j0, oc)
            hp, wp = len(range(py, out_size, stride)), len(range(px, out_size, stride))
            if (py, px) not in phases:
                if (m0, m1, n0, n1) == (0, hp, 0, wp):
                    phases[(py, px)] = y   # the first tap covers the whole phase
                    continue
                phases[(py, px)] = np.zeros((n, hp, wp, oc), dtype=np.float64)
            phases[(py, px)][:, m0:m1, n0:n1, :] += y
    out = np.zeros((n, out_size, out_size, oc), dtype=np.float64) if len(phases) < stride * stride else \
        np.empty((n, out_size, out_size, oc), dtype=np.float64)
    for (py, px), buf in phases.items():
        out[:, py::stride, px::stride, :] = buf
    return out


def _exact_int(s: np.ndarray) -> np.ndarray:
    """float64 integer sums -> int64 (exact: the values are integers below 2^53)."""
    return s.astype(np.int64)


# --------------------------------------------------------------------------- the model

def _forward(qm: QModel, uq: np.ndarray, keep: bool):
    """Run one plane per row of ``uq`` (int64 ``(M, nz)``); NHWC intermediates if ``keep``."""
    m = uq.shape[0]
    x = uq.astype(np.float64).reshape(m, 1, 1, qm.nz)
    inter = []
    for l in range(1, 5):
        rec = qm.layers[l - 1]
        s = convt_phase(x, qm.w[l].astype(np.float64), rec["stride"], rec["pad"], rec["out_size"])
        acc = _exact_int(s)
        acc += qm.b[l]
        if l < 4:
            a = requantize_relu(acc, rec["shift"])
            if keep:
                inter.append({"acc": acc, "out": a})
            x = a.astype(np.float64)
        else:
            t = tanh_index(acc, rec["shift"])
            pix = qm.tanh_lut[t[..., 0] - code_range(TANH_INDEX)[0]]
            if keep:
                inter.append({"acc": acc, "out": t, "pixel": pix.astype(np.int64)[..., None]})
    return pix, inter


def _forward_fast(qm: QModel, uq: np.ndarray) -> np.ndarray:
    """Pixels ``(M, 32, 32)`` of pass inputs ``uq``, all in float64 and exact.

    Besides the sums (exact as in the module docstring), the rules are evaluated in float64 on
    integer-valued arrays: ``acc + b + 2^(s-1)`` is an integer below 2^53 (``|acc| < 2^39`` for
    up to 4096 channels, ``|b| <= 2^31``, ``s <= 48`` by the reader's checks), scaling by ``2^-s``
    is exact (a change of exponent), and ``floor`` and ``clip`` of such values are exact, so
    ``floor((acc + 2^(s-1)) * 2^-s)`` equals ``rshift_rnd(acc, s)`` to the bit. Tested equal to the
    int64 path and to the direct definition.
    """
    m = uq.shape[0]
    x = uq.astype(np.float64).reshape(m, 1, 1, qm.nz)
    for l in range(1, 5):
        rec = qm.layers[l - 1]
        sh = rec["shift"]
        acc = convt_grouped(x, qm.w[l].astype(np.float64), rec["stride"], rec["pad"], rec["out_size"])
        acc += qm.b[l].astype(np.float64) + float(1 << (sh - 1))
        acc *= 2.0 ** -sh
        np.floor(acc, out=acc)
        if l < 4:
            np.clip(acc, 0.0, float((1 << ACT_BITS) - 1), out=acc)
            x = acc
        else:
            lo, hi = code_range(TANH_INDEX)
            t = np.clip(acc[..., 0], lo, hi).astype(np.int64)
            return qm.tanh_lut[t - lo]


def fixed_plane(qm: QModel, uq) -> np.ndarray:
    """Planes of pass inputs ``uq`` (int ``(M, nz)`` S(16,12) codes) -> uint8 ``(M, 32, 32)``."""
    uq = check_zq(qm, uq)
    outs = [_forward_fast(qm, uq[i:i + 3 * CHUNK]) for i in range(0, uq.shape[0], 3 * CHUNK)]
    if not outs:
        return np.zeros((0, 32, 32), dtype=np.uint8)
    return np.concatenate(outs).astype(np.uint8)


def fixed_layers(qm: QModel, uq) -> list[dict]:
    """Every intermediate tensor of the planes of pass inputs ``uq``, as int64 NCHW.

    Parameters
    ----------
    qm : QModel
    uq : array_like
        int ``(M, nz)`` S(16,12) pass-input codes (``u_p`` of rule 1, one plane per row).

    Returns
    -------
    list of dict
        One dict per layer 1..4 (index 0 is layer 1) with

        ``input``  the layer input codes ``(M, IC, H, W)`` (layer 1: ``(M, nz, 1, 1)``);
        ``acc``    the accumulators ``S(A_l, Fc_l)`` including the bias, ``(M, OC, H', W')``;
        ``out``    layers 1-3: activations ``U(16, Fa_l)``; layer 4: Tanh indices ``S(11, 8)``;
        ``pixel``  layer 4 only: the pixels ``(M, 1, 32, 32)`` (0..255).
    """
    uq = check_zq(qm, uq)
    _, inter = _forward(qm, uq, keep=True)
    res = []
    x = uq.reshape(uq.shape[0], qm.nz, 1, 1)
    for d in inter:
        e = {"input": x}
        for k, val in d.items():
            e[k] = np.ascontiguousarray(val.transpose(0, 3, 1, 2))
        res.append(e)
        x = e["out"]
    return res


def fixed_rgb(qm: QModel, zq) -> np.ndarray:
    """The three planes of each z, exactly as the hardware computes them.

    Parameters
    ----------
    qm : QModel
    zq : array_like
        int ``(N, nz)`` z codes ``S(16,12)`` (see :func:`quantize_z` for float z).

    Returns
    -------
    numpy.ndarray
        uint8 ``(N, 3, 32, 32)``: planes R (z), G (z+v1), B (z+v2).
    """
    u = pass_inputs(qm, zq)
    n = u.shape[0]
    planes = fixed_plane(qm, u.reshape(3 * n, qm.nz))
    return planes.reshape(n, 3, 32, 32)


__all__ = ["fixed_rgb", "fixed_plane", "fixed_layers", "quantize_z", "pass_inputs", "check_zq", "phase_taps",
           "convt_phase", "rshift_rnd", "requantize_relu", "tanh_index", "TANH_ENTRIES"]
