"""The hardware contract: the facts the golden model, the RTL, the testbenches and the board share.

Each fact is defined here once and imported by everyone who needs it (docs/NUMERICS.md for the
formats, docs/ARCHITECTURE.md for the ports). Plain Python and NumPy only: the golden model imports
this module and stays free of Amaranth; the Amaranth shape of the pixel word is built from
:data:`PIXEL_WORD_FIELDS` in :mod:`rtl.layouts`.

``tests/test_contract.py`` greps the source for the literal copies these facts once had.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- numeric formats

#: Kernel size of every transposed convolution.
KERNEL = 4
#: Input format of z, v1, v2 and the pass inputs u_p: S(16, 12).
Z_FMT = {"signed": True, "bits": 16, "frac": 12}
#: Post-ReLU activation width (U(16, Fa_l)); also the width of one z word on the ``z`` stream.
ACT_BITS = 16
#: Weight code width, S(8, Fw_l).
WEIGHT_BITS = 8
#: Bias code width, S(32, Fc_l).
BIAS_BITS = 32
#: Tanh-table index format S(11, 8) and table size (2 ** bits).
TANH_INDEX = {"signed": True, "bits": 11, "frac": 8}
TANH_ENTRIES = 1 << TANH_INDEX["bits"]
#: Width of one pixel value U(8, 0): a Tanh-table entry, one colour plane's sample.
PIXEL_BITS = 8
#: Geometry of the four layers: (stride, pad, in_size, out_size).
GEOMETRY = [(1, 0, 1, 4), (2, 1, 4, 8), (2, 1, 8, 16), (2, 1, 16, 32)]

# --------------------------------------------------------------------------- the pixel word

#: Width of the x and y fields: output planes are at most 2 ** XY_BITS pixels on a side.
XY_BITS = 5
#: The ``pixel`` stream's payload, least significant field first: (name, width).
PIXEL_WORD_FIELDS = (("pixel", PIXEL_BITS), ("x", XY_BITS), ("y", XY_BITS), ("plane", 2), ("last", 1))
#: Bit offset of each field of the pixel word.
PIXEL_WORD_OFFSETS = {name: sum(w for _, w in PIXEL_WORD_FIELDS[:i]) for i, (name, _) in enumerate(PIXEL_WORD_FIELDS)}
#: Width of the pixel word (21).
PIXEL_WORD_BITS = sum(w for _, w in PIXEL_WORD_FIELDS)


def decode_pixel_words(words) -> dict[str, np.ndarray]:
    """Split pixel words (ints or an integer array) into their fields, as int64 arrays of the same shape."""
    p = np.asarray(words, dtype=np.int64)
    return {name: (p >> PIXEL_WORD_OFFSETS[name]) & ((1 << w) - 1) for name, w in PIXEL_WORD_FIELDS}


def decode_pixel_word(word: int) -> dict[str, int]:
    """One pixel word's fields as Python ints."""
    return {name: (int(word) >> PIXEL_WORD_OFFSETS[name]) & ((1 << w) - 1) for name, w in PIXEL_WORD_FIELDS}


def encode_pixel_word(**fields) -> int:
    """The pixel word of the given fields (missing fields are 0); each must fit its width."""
    unknown = set(fields) - set(PIXEL_WORD_OFFSETS)
    if unknown:
        raise ValueError(f"unknown pixel-word fields {sorted(unknown)}")
    word = 0
    for name, w in PIXEL_WORD_FIELDS:
        v = int(fields.get(name, 0))
        if not 0 <= v < 1 << w:
            raise ValueError(f"pixel-word field {name} = {v} does not fit {w} bits")
        word |= v << PIXEL_WORD_OFFSETS[name]
    return word


# --------------------------------------------------------------------------- targets

#: The default Generator widths nz -> c1 -> c2 -> c3 -> 1 (training's default, the shipped model's, the
#: one the 85F build is sized for): 369 152 weights, 2.95 Mbit as int8, inside the ECP5 ROM budget.
DEFAULT_CHANNELS = (100, 128, 64, 32, 1)

#: The board the defaults are for: the ULX3S with an LFE5U-85F.
DEFAULT_DEVICE = "85F"
#: Multiply lanes P of a build per device: the 85F has the DSPs for 128 (156 MULT18X18D), the 45F
#: 72 MULT18X18D (docs/SYNTH.md, docs/RESULTS.md).
DEVICE_LANES = {"85F": 128, "45F": 64}
#: The lanes of the default design: what ``avatargan verilog``, ``simulate``, ``demo`` and the
#: benches build when not told otherwise (the default device's build).
DEFAULT_LANES = DEVICE_LANES[DEFAULT_DEVICE]

__all__ = ["KERNEL", "Z_FMT", "ACT_BITS", "WEIGHT_BITS", "BIAS_BITS", "TANH_INDEX", "TANH_ENTRIES", "PIXEL_BITS",
           "GEOMETRY", "XY_BITS", "PIXEL_WORD_FIELDS", "PIXEL_WORD_OFFSETS", "PIXEL_WORD_BITS",
           "decode_pixel_words", "decode_pixel_word", "encode_pixel_word", "DEFAULT_DEVICE", "DEVICE_LANES",
           "DEFAULT_LANES", "DEFAULT_CHANNELS"]
