"""Randomly initialised Generators, float and quantized, for tests, benchmarks and the fidelity study.

They sit above the quantizer (:mod:`golden.quantize`) and the file format (:mod:`golden.qmodel`), so
that those two import only downwards (docs/ARCHITECTURE.md, "Rooms and import directions").
"""

from __future__ import annotations

import numpy as np

from base.contract import DEFAULT_CHANNELS, KERNEL
from golden.qmodel import QModel
from golden.quantize import quantize_params


def random_float_params(channels, seed: int = 0, std: float = 0.02, bias_std: float = 0.0):
    """A randomly initialised float Generator: weights N(0, std), biases N(0, bias_std), v N(0, 1).

    Returns
    -------
    params : dict
        float32 ``w1..w4`` ``(IC, OC, 4, 4)`` and ``b1..b4`` ``(OC,)``.
    v : numpy.ndarray
        float32 ``(2, nz)``.
    """
    channels = [int(c) for c in channels]
    if len(channels) != 5 or channels[-1] != 1 or min(channels) < 1:
        raise ValueError(f"channels must be (nz, c1, c2, c3, 1), got {channels}")
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, 5):
        ic, oc = channels[l - 1], channels[l]
        params[f"w{l}"] = (rng.standard_normal((ic, oc, KERNEL, KERNEL)) * std).astype(np.float32)
        params[f"b{l}"] = (rng.standard_normal(oc) * bias_std).astype(np.float32)
    v = rng.standard_normal((2, channels[0])).astype(np.float32)
    return params, v


def scaled_random_params(channels=DEFAULT_CHANNELS, seed: int = 0):
    """A random Generator whose layers keep unit-scale signals (a stand-in for a trained one).

    Weights N(0, sqrt(2 / fan_in)) (fan_in = IC for layer 1, 4 IC for the stride-2 layers, the
    taps per output), biases N(0, 0.1), v N(0, 1): pre-activations are O(1) and the Tanh output
    spans its range, unlike the DCGAN initialisation N(0, 0.02) whose planes are nearly flat grey.
    """
    params, v = random_float_params(channels, seed=seed, std=1.0, bias_std=0.1)
    for l in range(1, 5):
        fan = channels[l - 1] * (1 if l == 1 else 4)
        params[f"w{l}"] = (params[f"w{l}"] * np.sqrt(2.0 / fan)).astype(np.float32)
    return params, v


def random_qmodel(channels=DEFAULT_CHANNELS, seed: int = 0, std: float = 0.02, bias_std: float = 0.01,
                  n_calib: int = 64, unit_scale: bool = False) -> QModel:
    """A valid quantized model of a randomly initialised float Generator, for tests of any size.

    The float weights are drawn from N(0, ``std``) (the DCGAN initialisation), biases from
    N(0, ``bias_std``), v1, v2 from N(0, 1); the model is then quantized with the project's quantizer
    (:func:`golden.quantize.quantize_params`) calibrated on ``n_calib`` random z, so activations use
    their formats sensibly rather than all saturating.

    Parameters
    ----------
    channels : sequence of 5 int
        ``(nz, c1, c2, c3, 1)``; e.g. ``(8, 8, 4, 4, 1)`` for a tiny model.
    seed : int
        Seed of everything random (same seed, same model, bit for bit).
    std, bias_std : float
        Standard deviations of the float weights and biases.
    n_calib : int
        Number of random z used for calibration.
    unit_scale : bool
        Instead of ``std``/``bias_std``: weights N(0, sqrt(2 / fan_in)) and biases N(0, 0.1)
        (:func:`scaled_random_params`), so the planes span 0..255 and tests exercise
        the whole Tanh table; the DCGAN initialisation gives nearly flat grey planes.

    Returns
    -------
    QModel
    """
    if unit_scale:
        params, v = scaled_random_params(tuple(channels), seed=seed)
    else:
        params, v = random_float_params(channels, seed=seed, std=std, bias_std=bias_std)
    calib = np.random.default_rng(seed + 1).standard_normal((n_calib, channels[0]))
    qm, _ = quantize_params(params, v, calib, source={"sha256": None, "path": f"random seed {seed}"},
                            weight_rule="max")    # stand-ins as they have always been drawn
    return qm


__all__ = ["random_float_params", "scaled_random_params", "random_qmodel"]
