"""The quantized-model file: write, load and validate (docs/NUMERICS.md, "Quantized-model file").

The file is the single source of truth of the hardware Generator: the integer golden model
(:mod:`golden.fixed`) and the Verilog generator (``gen/``) read it and nothing else. It is one
``.npz`` without pickles:

``header``   uint8 UTF-8 JSON (format, format_version 1, channels, every tensor format, shifts, ...)
``w1..w4``   int8 ``(IC, OC, 4, 4)`` weight codes ``S(8, Fw_l)``
``b1..b4``   int64 ``(OC,)`` bias codes ``S(32, Fc_l)``
``v``        int16 ``(2, nz)`` v1, v2 codes ``S(16, 12)``
``tanh_lut`` uint8 ``(2048,)`` the Tanh table (rule 5)

:func:`load_qmodel` refuses (with :class:`base.errors.UserError`, one line) every file that does
not follow the contract: truncated, another format or version, missing/extra arrays, wrong shapes
or dtypes, codes outside the declared formats, formats that differ from the ones the rules derive,
shifts < 1, or a Tanh table that differs from rule 5.

Layer numbers ``l`` are 1..4 as in NUMERICS.md: ``qm.w[1]`` is layer 1. ``qm.layers`` is the
header's list of layer records (index 0 is layer 1).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from base import __version__
from base.contract import (ACT_BITS, BIAS_BITS, GEOMETRY, KERNEL, PIXEL_BITS, TANH_ENTRIES, TANH_INDEX, WEIGHT_BITS,
                           Z_FMT)
from base.errors import UserError
from base.fileio import atomic_path
from golden.npzfile import read_npz

FORMAT = "avatargan-qmodel"
FORMAT_VERSION = 1
#: The largest shift a model may declare: keeps ``acc + 2^(s-1)`` below 2^53 (acc < 2^39 for up
#: to 4096 channels), so the float64 evaluation of rules 3-4 in :mod:`golden.fixed` stays exact.
MAX_SHIFT = 48


# --------------------------------------------------------------------------- format helpers

def fmt(signed: bool, bits: int, frac: int) -> dict:
    """A tensor format record ``{"signed", "bits", "frac"}`` as stored in the header."""
    return {"signed": bool(signed), "bits": int(bits), "frac": int(frac)}


def code_range(f: dict) -> tuple[int, int]:
    """Smallest and largest integer code of format ``f`` (``S(W,F)`` or ``U(W,F)``)."""
    w = f["bits"]
    if f["signed"]:
        return -(1 << (w - 1)), (1 << (w - 1)) - 1
    return 0, (1 << w) - 1


def fmt_name(f: dict) -> str:
    """``S(16,12)`` / ``U(16,11)`` notation of NUMERICS.md."""
    return f"{'S' if f['signed'] else 'U'}({f['bits']},{f['frac']})"


def acc_bits(layer_index: int, ic: int, input_signed: bool) -> int:
    """Derived accumulator width ``A_l = 1 + ceil(log2(N_l * Pmax_l + Bmax + 1))`` (NUMERICS.md).

    Parameters
    ----------
    layer_index : int
        Layer number 1..4 (layer 1 has one tap per output, the others up to four).
    ic : int
        Input channels of the layer.
    input_signed : bool
        True for the signed S(16,12) layer-1 input, False for zero-extended U(16) activations.

    Returns
    -------
    int
        Accumulator width in bits. For an integer ``X >= 1``, ``ceil(log2(X + 1)) == X.bit_length()``.
    """
    fan_in = ic if layer_index == 1 else 4 * ic
    wmax = 1 << (WEIGHT_BITS - 1)  # |-128|
    xmax = (1 << (Z_FMT["bits"] - 1)) if input_signed else (1 << ACT_BITS) - 1
    bmax = 1 << (BIAS_BITS - 1)
    return 1 + (fan_in * xmax * wmax + bmax).bit_length()


def tanh_table() -> np.ndarray:
    """The Tanh table of rule 5: ``LUT[i] = clip(floor(127.5*(tanh((i-1024)/256)+1)+0.5), 0, 255)``.

    Returns
    -------
    numpy.ndarray
        uint8 ``(2048,)``, computed in float64.
    """
    i = np.arange(TANH_ENTRIES, dtype=np.float64)
    y = np.tanh((i - TANH_ENTRIES // 2) / float(1 << TANH_INDEX["frac"]))
    return float_to_pixel(y)


def float_to_pixel(y: np.ndarray) -> np.ndarray:
    """Float Tanh output ``y`` in [-1, 1] -> uint8 pixel by rule 5 (same rule as the table)."""
    y = np.asarray(y, dtype=np.float64)
    return np.clip(np.floor(127.5 * (y + 1.0) + 0.5), 0, 255).astype(np.uint8)


def q_float(x: np.ndarray, frac: int) -> np.ndarray:
    """Float -> integer code ``floor(x * 2^frac + 0.5)`` (round half up) in float64, as int64.

    Callers saturate to their format; codes beyond +-2^62 are first clipped to +-2^62 (in
    float64, before the cast) so that the cast cannot wrap a huge value to the wrong sign and
    the callers' saturation still sees it as too large. ``x`` must be finite.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.clip(np.floor(np.ldexp(x, frac) + 0.5), -Q_FLOAT_LIMIT, Q_FLOAT_LIMIT).astype(np.int64)


#: :func:`q_float` clips its codes to +-2^62, far beyond every format and exact in float64 and int64.
Q_FLOAT_LIMIT = float(2 ** 62)


def saturate(q: np.ndarray, f: dict) -> tuple[np.ndarray, int]:
    """Saturate int64 codes to format ``f``; return ``(codes, number_saturated)``."""
    lo, hi = code_range(f)
    q = np.asarray(q, dtype=np.int64)
    n = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi), n


# --------------------------------------------------------------------------- the model object

@dataclass
class QModel:
    """A validated quantized model (see module docstring).

    Attributes
    ----------
    header : dict
        The JSON header.
    w, b : dict[int, numpy.ndarray]
        Weight codes int8 ``(IC, OC, 4, 4)`` and bias codes int64 ``(OC,)``, keyed by layer 1..4.
    v : numpy.ndarray
        int16 ``(2, nz)``: v1, v2 codes ``S(16,12)``.
    tanh_lut : numpy.ndarray
        uint8 ``(2048,)``.
    """

    header: dict
    w: dict
    b: dict
    v: np.ndarray
    tanh_lut: np.ndarray
    path: str | None = field(default=None, compare=False)

    @property
    def channels(self) -> list[int]:
        return list(self.header["channels"])

    @property
    def nz(self) -> int:
        return int(self.header["nz"])

    @property
    def layers(self) -> list[dict]:
        """Header layer records; index 0 is layer 1."""
        return self.header["layers"]

    def shift(self, l: int) -> int:
        """Right shift of layer ``l`` (1..4): requantisation (1-3) or Tanh index (4)."""
        return int(self.header["layers"][l - 1]["shift"])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the file, keyed as stored (without ``header``)."""
        out = {}
        for l in range(1, 5):
            out[f"w{l}"] = self.w[l]
            out[f"b{l}"] = self.b[l]
        out["v"] = self.v
        out["tanh_lut"] = self.tanh_lut
        return out


# --------------------------------------------------------------------------- header construction

def build_header(channels, w_frac, a_frac, source: dict | None = None, extra: dict | None = None) -> dict:
    """Header of a model with the given channel widths and chosen fraction bits.

    Parameters
    ----------
    channels : sequence of int
        ``[nz, c1, c2, c3, 1]``.
    w_frac : sequence of 4 int
        ``Fw_l``, weight fraction bits per layer.
    a_frac : sequence of 3 int
        ``Fa_l``, activation fraction bits after layers 1..3.
    source : dict, optional
        ``{"sha256": ..., "path": ...}`` of the float checkpoint.
    extra : dict, optional
        More top-level keys (calibration details); never the contract keys.

    Returns
    -------
    dict
        The header; every derived field (accumulator formats, shifts) follows NUMERICS.md.
    """
    channels = [int(c) for c in channels]
    layers = []
    in_fmt = dict(Z_FMT)
    for l in range(1, 5):
        stride, pad, n_in, n_out = GEOMETRY[l - 1]
        ic, oc = channels[l - 1], channels[l]
        fw = int(w_frac[l - 1])
        fc = in_fmt["frac"] + fw
        if l < 4:
            out_fmt = fmt(False, ACT_BITS, int(a_frac[l - 1]))
            act = "relu"
        else:
            out_fmt = dict(TANH_INDEX)
            act = "tanh_lut"
        layers.append({
            "ic": ic, "oc": oc, "in_size": n_in, "out_size": n_out, "stride": stride, "pad": pad,
            "input": dict(in_fmt),
            "weight": fmt(True, WEIGHT_BITS, fw),
            "bias": fmt(True, BIAS_BITS, fc),
            "acc": fmt(True, acc_bits(l, ic, in_fmt["signed"]), fc),
            "output": out_fmt,
            "shift": fc - out_fmt["frac"],
            "activation": act,
        })
        in_fmt = out_fmt
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "nz": channels[0], "channels": channels, "kernel": KERNEL,
        "z": dict(Z_FMT),
        "layers": layers,
        "tanh": {"index": dict(TANH_INDEX), "entries": TANH_ENTRIES, "pixel_bits": PIXEL_BITS},
        "source": source or {"sha256": None, "path": None},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"avatargan {__version__}",
    }
    for k, val in (extra or {}).items():
        if k in header:
            raise ValueError(f"extra header key {k!r} would overwrite a contract key")
        header[k] = val
    return header


# --------------------------------------------------------------------------- validation

def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_fmt(where: str, f, signed=None, bits=None, frac=None) -> dict:
    if not isinstance(f, dict) or set(f) != {"signed", "bits", "frac"}:
        raise UserError(f"{where}: expected a format record with keys signed, bits, frac")
    if not isinstance(f["signed"], bool) or not _is_int(f["bits"]) or not _is_int(f["frac"]):
        raise UserError(f"{where}: signed must be true/false and bits, frac integers")
    want = {"signed": signed, "bits": bits, "frac": frac}
    for k, val in want.items():
        if val is not None and f[k] != val:
            raise UserError(f"{where}: {k} is {f[k]!r}, format version {FORMAT_VERSION} requires {val!r}")
    if not -64 <= f["frac"] <= 64:
        raise UserError(f"{where}: frac {f['frac']} is outside -64..64")
    return f


def validate_header(h) -> None:
    """Check that header ``h`` follows NUMERICS.md exactly; raise :class:`UserError` if not."""
    if not isinstance(h, dict):
        raise UserError("header is not a JSON object")
    if h.get("format") != FORMAT:
        raise UserError(f"not an avatargan quantized model (format is {h.get('format')!r}, expected {FORMAT!r})")
    if h.get("format_version") != FORMAT_VERSION:
        raise UserError(f"quantized-model format_version {h.get('format_version')!r} is not supported "
                        f"(this avatargan reads version {FORMAT_VERSION}); re-run avatargan quantize")
    for key in ("nz", "channels", "kernel", "z", "layers", "tanh", "source"):
        if key not in h:
            raise UserError(f"header has no {key!r}")
    ch = h["channels"]
    if not (isinstance(ch, list) and len(ch) == 5 and all(_is_int(c) and 1 <= c <= 4096 for c in ch)):
        raise UserError(f"header channels {ch!r} must be 5 integers in 1..4096")
    if ch[-1] != 1:
        raise UserError(f"header channels {ch!r}: the last layer must have 1 output channel")
    if h["nz"] != ch[0]:
        raise UserError(f"header nz {h['nz']!r} differs from channels[0] {ch[0]}")
    if h["kernel"] != KERNEL:
        raise UserError(f"header kernel {h['kernel']!r}, expected {KERNEL}")
    _check_fmt("header z", h["z"], **Z_FMT)
    t = h["tanh"]
    if not isinstance(t, dict) or t.get("entries") != TANH_ENTRIES or t.get("pixel_bits") != PIXEL_BITS:
        raise UserError(f"header tanh must have entries {TANH_ENTRIES} and pixel_bits {PIXEL_BITS}")
    _check_fmt("header tanh index", t.get("index"), **TANH_INDEX)
    layers = h["layers"]
    if not isinstance(layers, list) or len(layers) != 4:
        raise UserError("header layers must be a list of 4 layer records")
    in_fmt = Z_FMT
    for l, rec in enumerate(layers, start=1):
        where = f"header layer {l}"
        if not isinstance(rec, dict):
            raise UserError(f"{where} is not an object")
        stride, pad, n_in, n_out = GEOMETRY[l - 1]
        want = {"ic": ch[l - 1], "oc": ch[l], "in_size": n_in, "out_size": n_out, "stride": stride, "pad": pad,
                "activation": "relu" if l < 4 else "tanh_lut"}
        for k, val in want.items():
            if rec.get(k) != val:
                raise UserError(f"{where}: {k} is {rec.get(k)!r}, expected {val!r}")
        _check_fmt(f"{where} input", rec.get("input"), **in_fmt)
        wf = _check_fmt(f"{where} weight", rec.get("weight"), signed=True, bits=WEIGHT_BITS)
        fc = in_fmt["frac"] + wf["frac"]
        _check_fmt(f"{where} bias", rec.get("bias"), signed=True, bits=BIAS_BITS, frac=fc)
        _check_fmt(f"{where} acc", rec.get("acc"), signed=True, bits=acc_bits(l, ch[l - 1], in_fmt["signed"]),
                   frac=fc)
        if l < 4:
            of = _check_fmt(f"{where} output", rec.get("output"), signed=False, bits=ACT_BITS)
        else:
            of = _check_fmt(f"{where} output", rec.get("output"), **TANH_INDEX)
        shift = rec.get("shift")
        if not _is_int(shift):
            raise UserError(f"{where}: shift {shift!r} is not an integer")
        if shift != fc - of["frac"]:
            raise UserError(f"{where}: shift {shift} differs from acc frac - output frac = {fc - of['frac']}")
        if not 1 <= shift <= MAX_SHIFT:
            raise UserError(f"{where}: shift {shift} is outside 1..{MAX_SHIFT} (rules 3 and 4 need a shift >= 1)")
        in_fmt = of


def _expected_arrays(h) -> dict:
    ch = h["channels"]
    exp = {}
    for l in range(1, 5):
        rec = h["layers"][l - 1]
        exp[f"w{l}"] = (np.int8, (ch[l - 1], ch[l], KERNEL, KERNEL), rec["weight"])
        exp[f"b{l}"] = (np.int64, (ch[l],), rec["bias"])
    exp["v"] = (np.int16, (2, ch[0]), h["z"])
    exp["tanh_lut"] = (np.uint8, (TANH_ENTRIES,), fmt(False, PIXEL_BITS, 0))
    return exp


def validate_arrays(h: dict, arrays: dict) -> None:
    """Check names, dtypes, shapes and code ranges of the arrays against header ``h``."""
    exp = _expected_arrays(h)
    missing = sorted(set(exp) - set(arrays))
    if missing:
        raise UserError(f"array {missing[0]!r} is missing")
    extra = sorted(set(arrays) - set(exp))
    if extra:
        raise UserError(f"unexpected array {extra[0]!r}")
    for name, (dtype, shape, f) in exp.items():
        a = arrays[name]
        if a.dtype != np.dtype(dtype):
            raise UserError(f"array {name!r} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if a.shape != shape:
            raise UserError(f"array {name!r} has shape {a.shape}, expected {shape}")
        lo, hi = code_range(f)
        if a.size and (int(a.min()) < lo or int(a.max()) > hi):
            raise UserError(f"array {name!r} has codes in [{int(a.min())}, {int(a.max())}], "
                            f"outside its declared format {fmt_name(f)} [{lo}, {hi}]")
    if not np.array_equal(arrays["tanh_lut"], tanh_table()):
        raise UserError("array 'tanh_lut' differs from the Tanh table of NUMERICS.md rule 5")


def make_qmodel(header: dict, arrays: dict, path=None) -> QModel:
    """Validate ``header`` + ``arrays`` and wrap them in a :class:`QModel` (arrays are copied)."""
    validate_header(header)
    validate_arrays(header, arrays)
    return QModel(
        header=header,
        w={l: np.array(arrays[f"w{l}"]) for l in range(1, 5)},
        b={l: np.array(arrays[f"b{l}"]) for l in range(1, 5)},
        v=np.array(arrays["v"]),
        tanh_lut=np.array(arrays["tanh_lut"]),
        path=None if path is None else str(path),
    )


# --------------------------------------------------------------------------- file I/O

def save_qmodel(qm: QModel, path: str | os.PathLike) -> Path:
    """Validate ``qm`` and write it atomically to ``path`` (npz, no pickles)."""
    arrays = qm.arrays()
    validate_header(qm.header)
    validate_arrays(qm.header, arrays)
    blob = json.dumps(qm.header, indent=1, sort_keys=False).encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, header=np.frombuffer(blob, dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def load_qmodel(path: str | os.PathLike) -> QModel:
    """Load and validate a quantized-model file.

    Parameters
    ----------
    path : path-like
        The ``.npz`` written by ``avatargan quantize``.

    Returns
    -------
    QModel

    Raises
    ------
    base.errors.UserError
        One line naming ``path`` and what is wrong (truncated, other version, shapes, codes, ...).
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"quantized model {p}: no such file")
    arrays = read_npz(p, "quantized model")
    try:
        return _from_arrays(arrays, p)
    except UserError as e:
        raise UserError(f"quantized model {p}: {e}") from None


def _from_arrays(arrays: dict, path) -> QModel:
    if "header" not in arrays:
        raise UserError("no 'header' array: not an avatargan quantized model")
    hb = arrays.pop("header")
    if hb.dtype != np.uint8 or hb.ndim != 1:
        raise UserError("'header' must be a 1-D uint8 array of UTF-8 JSON")
    try:
        header = json.loads(hb.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"header is not UTF-8 JSON ({e})") from None
    return make_qmodel(header, arrays, path=path)


__all__ = ["QModel", "load_qmodel", "save_qmodel", "make_qmodel", "build_header", "validate_header",
           "validate_arrays", "tanh_table", "float_to_pixel", "q_float", "saturate",
           "code_range", "fmt", "fmt_name", "acc_bits", "FORMAT_VERSION"]
