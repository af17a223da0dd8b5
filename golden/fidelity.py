"""Fidelity of the integer model against the float model on the same z.

Float pixels follow NUMERICS.md rule 5 (``clip(floor(127.5 * (y + 1) + 0.5), 0, 255)``), so both
sides are uint8 in the same units. Used by ``avatargan evaluate --fixed`` and by the figures in
docs/NUMERICS.md.
"""

from __future__ import annotations

import math

import numpy as np

from golden.fixed import fixed_rgb, quantize_z
from golden.qmodel import QModel, float_to_pixel


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays of the same shape, in dB.

    ``10 * log10(255^2 / MSE)`` with the MSE over every element; ``inf`` when equal.

    Raises
    ------
    ValueError
        Different shapes or a non-uint8 input.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"psnr wants uint8 pixels, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"psnr wants equal shapes, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 ** 2 / mse)


def float_pixels(gen, z) -> np.ndarray:
    """uint8 ``(N, 3, 32, 32)`` pixels of a float generator (``gen.rgb``) by rule 5."""
    y = np.asarray(gen.rgb(np.asarray(z, dtype=np.float32)), dtype=np.float64)
    return float_to_pixel(y)


def matched_avatars(gen, qm: QModel, z, batch: int = 500):
    """Float and fixed-point RGB avatars of the same z.

    Parameters
    ----------
    gen : object
        Float generator with ``rgb(z) -> (N, 3, 32, 32)`` in [-1, 1] (``golden.checkpoint.load_generator``).
    qm : QModel
        Its quantized model.
    z : array_like
        Float ``(N, nz)``; the fixed side uses its S(16,12) codes (rule 6).
    batch : int
        Avatars per step (memory).

    Returns
    -------
    float_rgb, fixed_rgb : numpy.ndarray
        uint8 ``(N, 3, 32, 32)`` each.
    n_saturated : int
        z elements saturated by rule 6.
    """
    z = np.asarray(z, dtype=np.float64)
    zq, n_sat = quantize_z(z, qm.nz)
    fl, fx = [], []
    for i in range(0, z.shape[0], batch):
        fl.append(float_pixels(gen, z[i:i + batch]))
        fx.append(fixed_rgb(qm, zq[i:i + batch]))
    return np.concatenate(fl), np.concatenate(fx), n_sat


def fidelity(gen, qm: QModel, n: int = 1000, seed: int = 12345) -> dict:
    """PSNR of fixed vs float RGB avatars over ``n`` standard-normal z.

    Returns
    -------
    dict
        ``{"n_z", "seed", "psnr_db" (over all pixels), "psnr_min_db" (worst avatar),
        "max_abs_diff", "frac_pixels_equal", "z_saturated"}``.
    """
    z = np.random.default_rng(seed).standard_normal((n, qm.nz))
    a, b, n_sat = matched_avatars(gen, qm, z)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    per = [psnr(a[i], b[i]) for i in range(n)]
    return {"n_z": n, "seed": seed, "psnr_db": psnr(a, b), "psnr_min_db": min(per),
            "max_abs_diff": int(d.max()), "frac_pixels_equal": float(np.mean(d == 0)), "z_saturated": n_sat}
