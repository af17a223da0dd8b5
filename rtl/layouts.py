"""The contract's Amaranth shapes: the pixel word and the z word (:mod:`base.contract` holds the facts)."""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data

from base.contract import ACT_BITS, PIXEL_WORD_BITS, PIXEL_WORD_FIELDS

__all__ = ["pixel_layout", "z_shape", "PIXEL_WORD_BITS"]


def pixel_layout() -> data.StructLayout:
    """The Generator's pixel word as named fields: ``pixel``, ``x``, ``y``, ``plane``, ``last``, from bit 0 up
    (:data:`base.contract.PIXEL_WORD_FIELDS`; decoded in NumPy by :func:`base.contract.decode_pixel_words`)."""
    return data.StructLayout(dict(PIXEL_WORD_FIELDS))


def z_shape():
    """One element of z on the ``z`` stream, ``S(16, 12)``."""
    return signed(ACT_BITS)
