"""The float checkpoint file (docs/ARCHITECTURE.md) and :func:`load_generator`.

One ``.npz`` without pickles:

``meta``
    uint8 array holding UTF-8 JSON: ``{"format": "avatargan-checkpoint", "format_version": 1,
    "iteration": int, "channels": [nz, c1, c2, c3, 1], "preset": str, ...}`` (training adds its
    configuration, RNG state and discriminator widths).
``G.w1 … G.w4``
    float32 ``(IC, OC, 4, 4)`` (PyTorch ``ConvTranspose2d`` layout); ``G.b1 … G.b4`` float32 ``(OC,)``.
``v``
    float32 ``(2, nz)``: v1, v2.
``D_grey.*``, ``D_color.*``, ``opt.*``
    discriminator parameters/BatchNorm buffers and optimiser state (needed only to resume).

Everything is written atomically through :mod:`base.fileio`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from base.errors import UserError
from base.fileio import atomic_path
from golden.models import Generator
from golden.npzfile import read_npz

FORMAT = "avatargan-checkpoint"
FORMAT_VERSION = 1


def generator_shapes(channels) -> dict[str, tuple]:
    """Expected ``G.*`` shapes for Generator widths ``channels``."""
    out = {}
    for i in range(4):
        out[f"G.w{i + 1}"] = (channels[i], channels[i + 1], 4, 4)
        out[f"G.b{i + 1}"] = (channels[i + 1],)
    return out


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``meta`` and ``arrays`` to ``path`` atomically (temp file + rename).

    ``meta`` must contain at least ``iteration``, ``channels`` and ``preset``; ``format`` and
    ``format_version`` are filled in.
    """
    meta = dict(meta, format=FORMAT, format_version=FORMAT_VERSION)
    for key in ("iteration", "channels", "preset"):
        if key not in meta:
            raise ValueError(f"checkpoint meta lacks {key!r}")
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    payload = {"meta": blob}
    for key, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind not in "fiub":
            raise ValueError(f"checkpoint array {key!r} has dtype {a.dtype}; only numbers are stored")
        payload[key] = a
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, allow_pickle=False, **payload)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def read_checkpoint(path, need_all: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and validate a checkpoint; return ``(meta, arrays)``.

    Raises :class:`UserError` for a missing or unreadable file, a file that is not an ``.npz``,
    a wrong ``format``/``format_version``, missing keys, wrong shapes or non-finite values.
    ``need_all`` also requires the discriminator and optimiser state (for ``--resume``).
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"checkpoint {p} does not exist or is not a file")
    arrays = read_npz(p, "checkpoint")
    if "meta" not in arrays:
        raise UserError(f"{p} is not an avatargan checkpoint (no 'meta' entry)")
    blob = arrays.pop("meta")
    try:
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError("meta is not a uint8 vector")
        meta = json.loads(blob.tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: unreadable checkpoint meta ({e})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{p}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{p}: format_version {meta.get('format_version')!r} is not supported "
                        f"(this version reads {FORMAT_VERSION})")
    ch = meta.get("channels")
    if (not isinstance(ch, list) or len(ch) != 5 or not all(isinstance(c, int) and c >= 1 for c in ch)
            or ch[-1] != 1):
        raise UserError(f"{p}: meta channels must be [nz, c1, c2, c3, 1], got {ch!r}")
    if not isinstance(meta.get("iteration"), int) or meta["iteration"] < 0:
        raise UserError(f"{p}: meta iteration must be a non-negative integer")
    expected = generator_shapes(ch)
    expected["v"] = (2, ch[0])
    for key, shape in expected.items():
        if key not in arrays:
            raise UserError(f"{p}: missing array {key!r}")
        a = arrays[key]
        if a.shape != shape:
            raise UserError(f"{p}: {key} has shape {a.shape}, expected {shape}")
        if a.dtype != np.float32:
            raise UserError(f"{p}: {key} has dtype {a.dtype}, expected float32")
    if need_all:
        for prefix in ("D_grey.", "D_color.", "opt."):
            if not any(k.startswith(prefix) for k in arrays):
                raise UserError(f"{p}: no {prefix}* arrays; it cannot be resumed from "
                                "(a generator-only file?)")
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise UserError(f"{p}: {key} contains NaN or Inf")
    return meta, arrays


def load_generator(path) -> Generator:
    """Load the Generator of a checkpoint (docs/ARCHITECTURE.md interface).

    Returns
    -------
    Generator
        with ``channels``, ``v`` (2, nz) float32, ``params`` (``w1..w4`` (IC, OC, 4, 4),
        ``b1..b4``), ``plane(u)``, ``layers(u)`` and ``rgb(z)``; also ``meta`` (the checkpoint's
        meta dict).
    """
    meta, arrays = read_checkpoint(path)
    gen = Generator(meta["channels"])
    for name, a in gen.params.items():
        a[...] = arrays[f"G.{name}"]
    gen.v[...] = arrays["v"]
    gen.meta = meta
    return gen


def generator_arrays(gen: Generator) -> dict[str, np.ndarray]:
    """``G.*`` and ``v`` arrays of ``gen`` for :func:`save_checkpoint`."""
    out = {f"G.{k}": np.asarray(a, np.float32) for k, a in gen.params.items()}
    out["v"] = np.asarray(gen.v, np.float32)
    return out


def save_generator(path, gen: Generator, meta: dict | None = None) -> Path:
    """Write a generator-only checkpoint (no discriminators or optimiser state)."""
    meta = dict(meta or {})
    meta.setdefault("iteration", 0)
    meta.setdefault("preset", "unknown")
    meta["channels"] = list(gen.channels)
    return save_checkpoint(path, generator_arrays(gen), meta)


__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "read_checkpoint", "load_generator",
           "generator_arrays", "save_generator", "generator_shapes"]
