"""What ``sample``, ``interpolate``, ``augment`` and ``evaluate`` share: where avatars come from.

An avatar source is either the float Generator of a checkpoint or, with ``--fixed MODEL``, the
bit-exact integer golden model of a quantized model (z quantised by NUMERICS.md rule 6). Either
way it maps float z ``(N, nz)`` to uint8 RGB avatars ``(N, 3, 32, 32)`` in the same 0..255 units
(rule 5 for the float model, the Tanh table for the fixed one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from base.errors import UserError

#: Avatars per model call (bounds memory; progress bars advance per batch).
BATCH = 250


#: The shipped default model (a Generator-only float checkpoint written by ``avatargan train``):
#: every command that takes a model uses it when none is given.
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default.npz"

#: Most pixels in one picture: Pillow's own bomb limit (``Image.MAX_IMAGE_PIXELS``), which
#: viewers and Pillow itself refuse to open; beyond it a grid would also need gigabytes of memory.
MAX_PICTURE_PIXELS = 89_478_485


def add_source_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``CHECKPOINT`` (default: the shipped model unless ``--fixed`` is given), ``--fixed MODEL``, ``--seed``."""
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="float checkpoint (.npz from `avatargan train`; default: the shipped "
                             "models/default.npz, or none when --fixed is given)")
    parser.add_argument("--fixed", metavar="MODEL",
                        help=f"{what} with the bit-exact integer golden model of this quantized model "
                             "(.npz from `avatargan quantize`); z is quantised to S(16,12)")
    parser.add_argument("--seed", default="0", metavar="S",
                        help="seed of the random z (default 0); same seed, same avatars")


def int_arg(value, name: str, minimum: int = 1, maximum: int | None = None, why: str = "") -> int:
    """Parse an integer option; raise a one-line :class:`UserError` if it is not one or out of range.

    ``why`` says in a few words why the limit is what it is; it ends the message.
    """
    try:
        n = int(str(value), 10)
    except ValueError:
        raise UserError(f"{name} must be an integer, got {value!r}") from None
    if n < minimum or (maximum is not None and n > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise UserError(f"{name} must be {bound}, got {n}" + (f" ({why})" if why else ""))
    return n


#: Why the grid options have their limits (sample, interpolate).
GRID_WHY = "one picture; larger ones exceed Pillow's image-size limit"
SCALE_WHY = "each avatar pixel becomes K x K picture pixels"


def png_out(path, inputs=()) -> Path:
    """Check an output picture name before any work: ends in ``.png``, not a folder, not an input."""
    from base.fileio import check_output_file

    if not str(path).lower().endswith(".png"):
        raise UserError(f"--out {path}: pictures are written as PNG; give a file name ending in .png")
    return check_output_file(path, inputs)


def check_picture(rows: int, cols: int, scale: int, label_px: int = 0) -> None:
    """Refuse a grid whose picture would exceed :data:`MAX_PICTURE_PIXELS`, before drawing it."""
    side = 32 * scale
    px = (rows * side + label_px) * (cols * side + label_px)
    if px > MAX_PICTURE_PIXELS:
        raise UserError(f"the picture would have {px:,} pixels ({rows} x {cols} avatars at --scale {scale}); "
                        f"the limit is {MAX_PICTURE_PIXELS:,} (Pillow's image-bomb limit): lower the counts "
                        "or --scale")


def seed_arg(args) -> int:
    """The ``--seed`` value as a non-negative integer."""
    return int_arg(args.seed, "--seed", minimum=0)


def random_z(nz: int, shape: tuple, seed: int) -> np.ndarray:
    """z ~ N(0, I) of shape ``shape + (nz,)``, float64, from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).standard_normal(tuple(shape) + (nz,))


class FloatSource:
    """Avatars of the float Generator of a checkpoint (rule 5 pixels)."""

    kind = "float"

    def __init__(self, path: str):
        from golden.checkpoint import load_generator

        self.path = path
        self.gen = load_generator(path)
        self.nz = int(self.gen.channels[0])

    def describe(self) -> str:
        return f"float Generator of {self.path}"

    def draw(self, z: np.ndarray) -> np.ndarray:
        """float z (N, nz) → uint8 (N, 3, 32, 32)."""
        from golden.images import to_uint8

        return to_uint8(self.gen.rgb(np.asarray(z, dtype=np.float32)))


class FixedSource:
    """Avatars of the integer golden model of a quantized model (rule 6 z, Tanh-table pixels)."""

    kind = "fixed"

    def __init__(self, path: str):
        from golden.qmodel import load_qmodel

        self.path = path
        self.qm = load_qmodel(path)
        self.nz = int(self.qm.nz)
        self.saturated = 0  # z elements saturated by rule 6 so far

    def describe(self) -> str:
        return f"integer golden model of {self.path}"

    def quantize(self, z: np.ndarray) -> np.ndarray:
        """Rule 6: float z → S(16,12) codes; counts saturations in :attr:`saturated`."""
        from golden.fixed import quantize_z

        zq, n_sat = quantize_z(z, nz=self.nz)
        self.saturated += n_sat
        return zq

    def draw(self, z: np.ndarray) -> np.ndarray:
        """float z (N, nz) → uint8 (N, 3, 32, 32), bit-exact as the hardware draws them."""
        from golden.fixed import fixed_rgb

        return fixed_rgb(self.qm, self.quantize(z))

    def report_saturation(self, command: str) -> None:
        """Rule 6: say how many z elements saturated (on stderr), if any."""
        if self.saturated:
            print(f"avatargan {command}: note: {self.saturated} z element(s) outside [-8, 8) "
                  "saturated to S(16,12)", file=sys.stderr)


def open_sources(args) -> tuple[FloatSource | None, FixedSource | None]:
    """Load the checkpoint and/or quantized model named by the arguments (neither: the shipped model)."""
    if not args.checkpoint and not args.fixed:
        args.checkpoint = str(SHIPPED_MODEL)
    for label, p in (("checkpoint", args.checkpoint), ("quantized model", args.fixed)):
        if p and not Path(p).is_file():
            raise UserError(f"{label} {p} does not exist or is not a file")
    flt = FloatSource(args.checkpoint) if args.checkpoint else None
    fix = FixedSource(args.fixed) if args.fixed else None
    if flt and fix and flt.nz != fix.nz:
        raise UserError(f"checkpoint {args.checkpoint} has nz={flt.nz} but quantized model {args.fixed} "
                        f"has nz={fix.nz}: they are not the same Generator")
    return flt, fix


def draw_many(source, z: np.ndarray, desc: str, quiet: bool = False) -> np.ndarray:
    """Draw avatars for every z in batches of :data:`BATCH`, with a tqdm bar on stderr."""
    from tqdm import tqdm

    out = np.empty((len(z), 3, 32, 32), np.uint8)
    with tqdm(total=len(z), desc=desc, unit="avatar", file=sys.stderr, disable=quiet or len(z) <= BATCH,
              leave=False) as bar:
        for i in range(0, len(z), BATCH):
            out[i : i + BATCH] = source.draw(z[i : i + BATCH])
            bar.update(len(z[i : i + BATCH]))
    return out


# --------------------------------------------------------------------------- hardware commands' model

#: Where ``verilog``, ``simulate`` and ``synth`` keep the quantized models of float checkpoints.
QUANT_CACHE = Path("build") / "cache" / "quantized"
#: Calibration z for those models (``avatargan quantize``'s and ``demo``'s default).
CACHE_CALIB = 1000
#: Most multiply lanes: 256 is already over the 156 MULT18X18D of the largest ECP5 (LFE5U-85F),
#: and elaboration time and memory grow with the lanes (2^20 lanes ran for minutes past 770 MB).
MAX_LANES = 256


def lanes_arg(lanes: int | None) -> int | None:
    """``--lanes``: ``None`` (the command's default) or a power of two from 1 to :data:`MAX_LANES`."""
    if lanes is not None and (lanes < 1 or lanes & (lanes - 1) or lanes > MAX_LANES):
        raise UserError(f"--lanes must be a power of two from 1 to {MAX_LANES} ({MAX_LANES} already exceeds the "
                        f"156 multipliers of the largest ECP5, the LFE5U-85F), got {lanes}")
    return lanes


def quantized_model(path, command: str) -> Path:
    """The quantized model to build hardware from: ``path`` itself, or that of a float checkpoint.

    ``path`` may be a quantized model (``avatargan quantize``), a float checkpoint (quantized here
    with :data:`CACHE_CALIB` calibration z, as ``avatargan demo`` does, and cached under
    :data:`QUANT_CACHE` by the checkpoint's SHA-256), or ``None`` for the shipped model. A float
    checkpoint is reported in one line on stderr.
    """
    from golden.npzfile import npz_members

    p = Path(path) if path else SHIPPED_MODEL
    names = npz_members(p, "model")
    if "header" in names:
        return p
    if "meta" not in names:
        raise UserError(f"model {p} is neither a quantized model (no 'header') nor a float checkpoint (no 'meta')")
    from golden.qmodel import save_qmodel
    from base.fileio import sha256_file
    from golden.quantize import quantize_checkpoint

    cached = QUANT_CACHE / f"{p.stem}-{sha256_file(p)[:16]}-calib{CACHE_CALIB}.npz"
    made = not cached.is_file()
    if made:
        qm, _, _ = quantize_checkpoint(p, n_calib=CACHE_CALIB)
        save_qmodel(qm, cached)
    print(f"avatargan {command}: {p} is a float checkpoint; using its quantized model {cached} "
          f"({CACHE_CALIB} calibration z, {'made now' if made else 'cached'})", file=sys.stderr)
    return cached
