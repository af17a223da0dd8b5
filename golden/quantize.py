"""Float Generator -> quantized model (docs/NUMERICS.md, "Formats of every tensor").

The quantizer core works on a plain parameter dict (``{"w1": (IC,OC,4,4), "b1": (OC,), ...}``)
and ``v`` (2, nz), so it does not depend on the checkpoint reader. Choices it makes, and nothing
else:

* ``Fw_l``: of ``F0`` (the largest fraction with ``max|w_l| * 2^F0 <= 127``, so that nothing
  saturates; 7 if all weights are zero), ``F0 + 1`` and ``F0 + 2``, the one whose codes
  ``clip(q_float(w, F), -127, 127)`` give the smallest squared weight error (ties: the smaller
  ``F``). A few outlier weights may thus saturate to +-127 in exchange for one more bit for all
  others; the counts are reported (``stats["w_saturated"]``). Measured: +2.6 dB PSNR on a
  He-scaled random Generator (docs/NUMERICS.md, "Fidelity");
* ``Fa_l = min(Fc_l - 1, floor(log2((2^16 - 1) / (m_l * 1.25))))`` with ``m_l`` the largest
  post-ReLU float activation of layer ``l`` over the calibration z (all three passes z, z+v1,
  z+v2); ``Fa_l = Fc_l - 1`` if ``m_l = 0``.

Everything else (bias scale, accumulator widths, shifts) is derived by the rules.
"""

from __future__ import annotations

import math

import numpy as np

from base.errors import UserError
from base.fileio import sha256_file
from golden.checkpoint import load_generator
from golden.fixed import convt_phase
from base.contract import ACT_BITS, BIAS_BITS, GEOMETRY, KERNEL, TANH_INDEX, WEIGHT_BITS, Z_FMT
from golden.qmodel import (build_header, float_to_pixel, fmt, make_qmodel, q_float, saturate, tanh_table)

#: Calibration headroom above the largest observed activation.
MARGIN = 1.25
#: Weight code bound: the quantizer uses [-127, 127] so nothing saturates.
WMAX_CODE = (1 << (WEIGHT_BITS - 1)) - 1


# --------------------------------------------------------------------------- the float Generator

def _convt_float(x, w, stride, pad, out_size):
    return convt_phase(x, np.asarray(w, dtype=np.float64), stride, pad, out_size)


class FloatGenerator:
    """The float Generator in float64 NumPy, with the interface of ``golden.checkpoint`` generators.

    Parameters
    ----------
    params : dict
        ``w1..w4``, ``b1..b4`` (any float dtype).
    v : numpy.ndarray
        ``(2, nz)``.
    """

    def __init__(self, params, v):
        self.params = {k: np.asarray(params[k], dtype=np.float64) for k in
                       [f"{p}{l}" for l in range(1, 5) for p in "wb"]}
        self.v = np.asarray(v, dtype=np.float64)
        self.channels = [self.params["w1"].shape[0]] + [self.params[f"w{l}"].shape[1] for l in range(1, 5)]

    def layers(self, u):
        """The 4 pre-activation outputs (N, C, H, W) float64 of pass inputs ``u`` (N, nz)."""
        u = np.asarray(u, dtype=np.float64)
        x = u.reshape(u.shape[0], 1, 1, u.shape[1])
        outs = []
        for l in range(1, 5):
            stride, pad, _, n_out = GEOMETRY[l - 1]
            y = _convt_float(x, self.params[f"w{l}"], stride, pad, n_out) + self.params[f"b{l}"]
            outs.append(y.transpose(0, 3, 1, 2))
            x = np.maximum(y, 0.0)
        return outs

    def plane(self, u):
        """Tanh output (N, 32, 32) in [-1, 1] of pass inputs ``u``."""
        return np.tanh(self.layers(u)[-1][:, 0])

    def rgb(self, z):
        """(N, 3, 32, 32) planes of z, z+v1, z+v2."""
        z = np.asarray(z, dtype=np.float64)
        n = z.shape[0]
        u = np.concatenate([z, z + self.v[0], z + self.v[1]])
        return self.plane(u).reshape(3, n, 32, 32).transpose(1, 0, 2, 3)


def float_rgb_pixels(gen, z) -> np.ndarray:
    """uint8 (N, 3, 32, 32) pixels of a float generator by NUMERICS rule 5."""
    return float_to_pixel(np.asarray(gen.rgb(np.asarray(z, dtype=np.float32)), dtype=np.float64))


# --------------------------------------------------------------------------- the quantizer

#: The weight rule (docs/NUMERICS.md): ``"max"`` keeps every weight unsaturated (what codebook
#: models need too); ``"mse"``, least squared weight error, may saturate outliers.
WEIGHT_RULE = "max"

def weight_frac(w) -> int:
    """Largest ``F`` with ``max|w| * 2^F <= 127`` (7 if ``w`` is all zero)."""
    m = float(np.max(np.abs(np.asarray(w, dtype=np.float64)))) if np.size(w) else 0.0
    if m == 0.0:
        return WEIGHT_BITS - 1
    f = math.floor(math.log2(WMAX_CODE / m))
    while math.ldexp(m, f) > WMAX_CODE:
        f -= 1
    while math.ldexp(m, f + 1) <= WMAX_CODE:
        f += 1
    return f


def weight_frac_mse(w) -> int:
    """Fraction ``F`` in ``{F0, F0+1, F0+2}`` (``F0 = weight_frac(w)``) of least squared error of the
    saturated codes ``clip(q_float(w, F), -127, 127) * 2^-F``; ties go to the smaller ``F``."""
    w = np.asarray(w, dtype=np.float64)
    f0 = weight_frac(w)
    best_f, best_e = f0, None
    for f in (f0, f0 + 1, f0 + 2):
        q = np.clip(q_float(w, f), -WMAX_CODE, WMAX_CODE)
        e = float(np.sum((np.ldexp(q.astype(np.float64), -f) - w) ** 2))
        if best_e is None or e < best_e:
            best_f, best_e = f, e
    return best_f


def act_frac(m: float, fc: int) -> int:
    """``Fa = min(Fc - 1, floor(log2((2^16 - 1) / (m * MARGIN))))``; ``Fc - 1`` if ``m == 0``."""
    if m <= 0.0:
        return fc - 1
    top = (1 << ACT_BITS) - 1
    f = math.floor(math.log2(top / (m * MARGIN)))
    while math.ldexp(m * MARGIN, f) > top:
        f -= 1
    while math.ldexp(m * MARGIN, f + 1) <= top:
        f += 1
    return min(fc - 1, f)


def calibration_maxima(gen, calib_z) -> list[float]:
    """Largest post-ReLU activation of layers 1..3 over all three passes of ``calib_z``."""
    z = np.asarray(calib_z, dtype=np.float64)
    v = np.asarray(gen.v, dtype=np.float64)
    u = np.concatenate([z, z + v[0], z + v[1]])
    maxima = [0.0, 0.0, 0.0]
    for i in range(0, u.shape[0], 768):
        outs = gen.layers(u[i:i + 768])
        for l in range(3):
            maxima[l] = max(maxima[l], float(np.max(outs[l])))
    return maxima


def quantize_params(params, v, calib_z, source=None, extra=None, gen=None, weight_rule: str = WEIGHT_RULE):
    """Quantize a float Generator into a validated :class:`golden.qmodel.QModel`.

    Parameters
    ----------
    params : dict
        Float ``w1..w4`` ``(IC, OC, 4, 4)``, ``b1..b4`` ``(OC,)``.
    v : array_like
        Float ``(2, nz)``.
    calib_z : array_like
        ``(N, nz)`` calibration z (all three passes are used).
    source : dict, optional
        ``{"sha256", "path"}`` of the float checkpoint.
    extra : dict, optional
        More header keys.
    gen : object, optional
        A float generator with ``layers(u)`` and ``v`` for calibration; default: a
        :class:`FloatGenerator` of ``params``.
    weight_rule : {"max", "mse"}
        ``"max"`` (the rule, docs/NUMERICS.md): :func:`weight_frac`, no weight saturates (what
        codebook models need too: their codes must stay the codebook's); ``"mse"``:
        :func:`weight_frac_mse`, least squared weight error, which may saturate outliers (more
        PSNR, but on two of three trained models a larger SWD difference: docs/NUMERICS.md).

    Returns
    -------
    qm : QModel
    stats : dict
        ``{"w_saturated": [4 ints], "bias_saturated": [4 ints], "v_saturated": int, "act_max": [3 floats], "w_frac": [...],
        "a_frac": [...]}``.

    Raises
    ------
    UserError
        Non-finite parameters, inconsistent shapes, or a model whose layer-4 accumulator has fewer
        than 9 fraction bits (the Tanh index shift would be < 1).
    """
    keys = [f"{p}{l}" for l in range(1, 5) for p in "wb"]
    missing = [k for k in keys if k not in params]
    if missing:
        raise UserError(f"float parameters lack {missing[0]!r}")
    p64 = {k: np.asarray(params[k], dtype=np.float64) for k in keys}
    v64 = np.asarray(v, dtype=np.float64)
    for k, a in list(p64.items()) + [("v", v64)]:
        if not np.all(np.isfinite(a)):
            raise UserError(f"float parameter {k!r} has non-finite values")
    channels = [p64["w1"].shape[0]] + [p64[f"w{l}"].shape[1] for l in range(1, 5)]
    for l in range(1, 5):
        if p64[f"w{l}"].shape != (channels[l - 1], channels[l], KERNEL, KERNEL) or p64[f"b{l}"].shape != (channels[l],):
            raise UserError(f"float layer {l} has weight {p64[f'w{l}'].shape} / bias {p64[f'b{l}'].shape}, "
                            f"inconsistent with channels {channels}")
    if channels[-1] != 1 or v64.shape != (2, channels[0]):
        raise UserError(f"float model must end in 1 channel and have v of shape (2, nz); got channels {channels}, "
                        f"v {v64.shape}")
    calib_z = np.asarray(calib_z, dtype=np.float64)
    if calib_z.ndim != 2 or calib_z.shape[1] != channels[0] or calib_z.shape[0] < 1:
        raise UserError(f"calibration z must have shape (N>=1, {channels[0]}), got {calib_z.shape}")

    if gen is None:
        gen = FloatGenerator(p64, v64)
    act_max = calibration_maxima(gen, calib_z)

    if weight_rule not in ("mse", "max"):
        raise ValueError(f"weight_rule must be 'mse' or 'max', got {weight_rule!r}")
    pick = weight_frac_mse if weight_rule == "mse" else weight_frac
    w_frac = [pick(p64[f"w{l}"]) for l in range(1, 5)]
    a_frac = []
    f_in = Z_FMT["frac"]
    for l in range(1, 4):
        fc = f_in + w_frac[l - 1]
        a_frac.append(act_frac(act_max[l - 1], fc))
        f_in = a_frac[-1]
    fc4 = f_in + w_frac[3]
    if fc4 - TANH_INDEX["frac"] < 1:
        raise UserError(f"cannot quantize: the layer-4 accumulator has {fc4} fraction bits (< "
                        f"{TANH_INDEX['frac'] + 1} needed for the Tanh index); activations or weights are too large")

    header = build_header(channels, w_frac, a_frac, source=source,
                          extra={"calibration": {"n_z": int(calib_z.shape[0]), "margin": MARGIN,
                                                 "weight_rule": weight_rule,
                                                 "act_max": act_max}, **(extra or {})})
    arrays = {}
    bias_sat, w_sat = [], []
    for l in range(1, 5):
        rec = header["layers"][l - 1]
        wq = q_float(p64[f"w{l}"], w_frac[l - 1])
        wq = np.clip(wq, -WMAX_CODE, WMAX_CODE)  # symmetric: -128 is never produced
        arrays[f"w{l}"] = wq.astype(np.int8)
        w_sat.append(int(np.count_nonzero(np.abs(q_float(p64[f"w{l}"], w_frac[l - 1])) > WMAX_CODE)))
        bq, nsat = saturate(q_float(p64[f"b{l}"], rec["bias"]["frac"]), fmt(True, BIAS_BITS, 0))
        arrays[f"b{l}"] = bq.astype(np.int64)
        bias_sat.append(nsat)
    vq, v_sat = saturate(q_float(v64, Z_FMT["frac"]), Z_FMT)
    arrays["v"] = vq.astype(np.int16)
    arrays["tanh_lut"] = tanh_table()
    qm = make_qmodel(header, arrays)
    stats = {"w_saturated": w_sat, "bias_saturated": bias_sat, "v_saturated": v_sat, "act_max": act_max, "w_frac": w_frac,
             "a_frac": a_frac}
    return qm, stats


# --------------------------------------------------------------------------- checkpoint -> model

#: Seed of the calibration z (the profiling report uses a different one: out-of-sample ranges).
CALIB_SEED = 20240101


def calibration_z(n: int, nz: int, seed: int = CALIB_SEED) -> np.ndarray:
    """``n`` standard-normal calibration z (float64 ``(n, nz)``), reproducible from ``seed``."""
    return np.random.default_rng(seed).standard_normal((n, nz))


def quantize_checkpoint(path, n_calib: int = 1000, seed: int = CALIB_SEED, weight_rule: str = WEIGHT_RULE):
    """Load a float checkpoint and quantize its Generator.

    Parameters
    ----------
    path : path-like
        Float checkpoint (``avatargan train``), read with :func:`golden.checkpoint.load_generator`.
    n_calib : int
        Number of random z for calibration (each gives three passes).
    seed : int
        Seed of the calibration z.
    weight_rule : {"max", "mse"}
        As :func:`quantize_params`.

    Returns
    -------
    qm : QModel
    stats : dict
        As :func:`quantize_params`.
    gen : object
        The loaded float generator.
    """
    if n_calib < 1:
        raise UserError(f"--calib must be >= 1, got {n_calib}")
    gen = load_generator(path)
    params = {k: np.asarray(a) for k, a in gen.params.items()}
    z = calibration_z(n_calib, int(gen.channels[0]), seed)
    source = {"sha256": sha256_file(path), "path": str(path)}
    extra = {"float_source": {"iteration": getattr(gen, "meta", {}).get("iteration"),
                              "preset": getattr(gen, "meta", {}).get("preset")},
             "calibration_seed": int(seed)}
    qm, stats = quantize_params(params, gen.v, z, source=source, extra=extra, weight_rule=weight_rule)
    return qm, stats, gen
