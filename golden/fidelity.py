"""Fidelity of the integer model against the float model on the same z.

Float pixels follow NUMERICS.md rule 5 (``clip(floor(127.5 * (y + 1) + 0.5), 0, 255)``), so both
sides are uint8 in the same units. Used by ``avatargan evaluate --fixed`` and by the figures in
docs/NUMERICS.md.
"""

from __future__ import annotations

import math

import numpy as np

from base.contract import DEFAULT_CHANNELS
from golden.checkpoint import load_generator
from golden.fixed import fixed_rgb, quantize_z
from golden.qmodel import QModel, float_to_pixel, q_float
from golden.quantize import WMAX_CODE, FloatGenerator, calibration_z, quantize_params, weight_frac, weight_frac_mse
from golden.random_models import random_float_params, scaled_random_params


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


# --------------------------------------------------------------------------- the study in NUMERICS.md

def _weights_only_psnr(params, v, z, per_channel: bool, rule: str) -> float:
    """PSNR of the float model with only its weights quantized (power-of-two scales)."""
    pick = weight_frac_mse if rule == "mse" else weight_frac

    def quant(w):
        f = pick(w)
        return np.ldexp(np.clip(q_float(w, f), -WMAX_CODE, WMAX_CODE).astype(np.float64), -f)

    q = dict(params)
    for l in range(1, 5):
        w = np.asarray(params[f"w{l}"], dtype=np.float64)
        if per_channel:
            q[f"w{l}"] = np.stack([quant(w[:, oc]) for oc in range(w.shape[1])], axis=1)
        else:
            q[f"w{l}"] = quant(w)
    return psnr(float_pixels(FloatGenerator(params, v), z), float_pixels(FloatGenerator(q, v), z))


def study(n: int = 1000, seed: int = 12345, n_calib: int = 1000, checkpoint=None) -> list[dict]:
    """The fidelity figures of docs/NUMERICS.md: two random Generators, weight-scale choices.

    With ``checkpoint`` (a float checkpoint file) its Generator is measured too (first).

    Returns
    -------
    list of dict
        One row per (generator, variant) with ``psnr_db``.
    """
    rows = []
    gens = {"DCGAN init N(0,0.02)": random_float_params(DEFAULT_CHANNELS, seed=0, std=0.02),
            "scaled random (unit-scale signals)": scaled_random_params(seed=0)}
    z = np.random.default_rng(seed).standard_normal((n, 100))
    items = [(name, FloatGenerator(params, v), params, v) for name, (params, v) in gens.items()]
    if checkpoint is not None:
        g = load_generator(checkpoint)
        items.insert(0, (f"checkpoint {checkpoint}", g, {k: np.asarray(a) for k, a in g.params.items()}, g.v))
    for name, gen, params, v in items:
        for rule in ("mse", "max"):
            qm, st = quantize_params(params, v, calibration_z(n_calib, 100), weight_rule=rule)
            fid = fidelity(gen, qm, n=n, seed=seed)
            rows.append({"generator": name, "variant": f"integer model, per-layer scales, rule {rule}",
                         "psnr_db": fid["psnr_db"], "psnr_min_db": fid["psnr_min_db"],
                         "max_abs_diff": fid["max_abs_diff"], "w_saturated": sum(st["w_saturated"])})
        for per_channel in (False, True):
            for rule in ("mse", "max"):
                rows.append({"generator": name,
                             "variant": f"float model, weights only, per-{'channel' if per_channel else 'layer'} "
                                        f"scales, rule {rule}",
                             "psnr_db": _weights_only_psnr(params, v, z[: min(n, 300)], per_channel, rule)})
    return rows


if __name__ == "__main__":  # python -m golden.fidelity [N [CHECKPOINT]]
    import sys

    n_z = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for row in study(n=n_z, checkpoint=sys.argv[2] if len(sys.argv) > 2 else None):
        extra = "".join(f"  {k} {row[k]}" for k in ("psnr_min_db", "max_abs_diff", "w_saturated") if k in row)
        print(f"{row['generator']:36s} {row['variant']:58s} {row['psnr_db']:6.2f} dB{extra}")
