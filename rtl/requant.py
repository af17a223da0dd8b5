"""Requantisers of NUMERICS.md rules 3 and 4 (combinational)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.config import ACT_BITS, TANH_BITS


def _check(acc_width, shift):
    if not isinstance(acc_width, int) or acc_width < 2:
        raise ValueError(f"acc_width must be an integer >= 2, got {acc_width!r}")
    if not isinstance(shift, int) or not 1 <= shift < acc_width:
        raise ValueError(f"shift must be an integer in 1..acc_width-1, got {shift!r}")


def rshift_rnd(value, shift: int):
    """Amaranth expression ``(value + 2**(shift-1)) >> shift`` (round half up), one bit wider than needed."""
    return (value + (1 << (shift - 1))) >> shift


class Requantiser(wiring.Component):
    """Rule 3: ``a = sat_U(16)(max(rshift_rnd(acc, shift), 0))``.

    Parameters
    ----------
    acc_width : int
        Accumulator width (signed).
    shift : int
        Right shift ``s_l ≥ 1``.

    Members
    -------
    acc : In(signed(acc_width))
    out : Out(unsigned(16))
        Combinational: latency 0.
    """

    def __init__(self, acc_width: int, shift: int, out_bits: int = ACT_BITS):
        try:
            _check(acc_width, shift)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self.acc_width, self.shift, self.out_bits = acc_width, shift, out_bits
        super().__init__({"acc": In(signed(acc_width)), "out": Out(unsigned(out_bits))})

    @property
    def latency(self) -> int:
        """0: the requantiser is combinational; the engine registers its output."""
        return 0

    def elaborate(self, platform):
        m = Module()
        r = rshift_rnd(self.acc, self.shift)
        top = (1 << self.out_bits) - 1
        m.d.comb += self.out.eq(Mux(r < 0, 0, Mux(r > top, top, r)))
        return m


class TanhIndex(wiring.Component):
    """Rule 4: ``t = sat_S(11)(rshift_rnd(acc, shift))``; ``index = t + 1024`` (address of the Tanh table).

    Members
    -------
    acc : In(signed(acc_width))
    index : Out(unsigned(11))
        Combinational: latency 0.
    """

    def __init__(self, acc_width: int, shift: int):
        try:
            _check(acc_width, shift)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self.acc_width, self.shift = acc_width, shift
        super().__init__({"acc": In(signed(acc_width)), "index": Out(unsigned(TANH_BITS))})

    @property
    def latency(self) -> int:
        """0: combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        r = rshift_rnd(self.acc, self.shift)
        lo, hi = -(1 << (TANH_BITS - 1)), (1 << (TANH_BITS - 1)) - 1
        t = Mux(r < lo, lo, Mux(r > hi, hi, r))
        m.d.comb += self.index.eq(t + (1 << (TANH_BITS - 1)))
        return m
