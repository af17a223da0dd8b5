"""Requantisers of NUMERICS.md rules 3 and 4 (combinational).

Both decide saturation from the upper bits of ``r``, not with comparators. With ``rounded=True`` the
input already contains the rounding constant ``2**(shift-1)`` (the engine folds it into the bias), so
``r`` is a plain bit slice and the requantiser has no adder at all: an adder followed by comparators
was the engine's critical path.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import ACT_BITS, TANH_BITS


def _check(acc_width, shift):
    if not isinstance(acc_width, int) or acc_width < 2:
        raise ValueError(f"acc_width must be an integer >= 2, got {acc_width!r}")
    if not isinstance(shift, int) or not 1 <= shift < acc_width:
        raise ValueError(f"shift must be an integer in 1..acc_width-1, got {shift!r}")


def requant_layout(out_bits: int = ACT_BITS) -> data.StructLayout:
    """Rule 3 cut in two: what :class:`RequantBits` takes from an accumulator and
    :class:`Saturate` turns into an activation. ``r``: the low ``out_bits`` bits of
    ``rshift_rnd(acc, shift)``; ``neg``: it is negative; ``over``: it does not fit ``out_bits``
    unsigned bits (meaningful when not ``neg``)."""
    return data.StructLayout({"r": out_bits, "neg": 1, "over": 1})


class RequantBits(wiring.Component):
    """The first half of rule 3: the shifted bits and the two saturation flags (:func:`requant_layout`).

    Parameters
    ----------
    acc_width, shift, rounded, out_bits
        As for :class:`Requantiser`.

    Members
    -------
    acc : In(signed(acc_width))
    out : Out(requant_layout(out_bits))
        Combinational: latency 0. The engine registers it beside the accumulator it reads, so the
        wide OR of the upper bits is done there and only ``out_bits + 2`` bits travel.
    """

    def __init__(self, acc_width: int, shift: int, out_bits: int = ACT_BITS, rounded: bool = False):
        _init_from_acc(self, acc_width, shift, out_bits, rounded, requant_layout(out_bits))

    @property
    def latency(self) -> int:
        """0: combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        n = self.out_bits
        r = _rounded(m, self.acc, self.shift, n + 1, self.rounded)
        m.d.comb += [self.out.r.eq(r[:n]), self.out.neg.eq(r[-1]),
                     self.out.over.eq(r[n:].any())]          # r >= 2**n (or negative: neg decides)
        return m


class Saturate(wiring.Component):
    """The second half of rule 3: ``0`` if ``neg``, ``2**out_bits - 1`` if ``over``, else ``r``.

    Members
    -------
    inp : In(requant_layout(out_bits))
    out : Out(unsigned(out_bits))
        Combinational: latency 0 (one LUT level: three inputs per bit).
    """

    def __init__(self, out_bits: int = ACT_BITS):
        if not isinstance(out_bits, int) or out_bits < 1:
            self._MustUse__silence = True
            raise ValueError(f"out_bits must be a positive integer, got {out_bits!r}")
        self.out_bits = out_bits
        super().__init__({"inp": In(requant_layout(out_bits)), "out": Out(unsigned(out_bits))})

    @property
    def latency(self) -> int:
        """0: combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        top = (1 << self.out_bits) - 1
        m.d.comb += self.out.eq(Mux(self.inp.neg, 0, Mux(self.inp.over, top, self.inp.r)))
        return m


class Requantiser(wiring.Component):
    """Rule 3: ``a = sat_U(16)(max(rshift_rnd(acc, shift), 0))``: :class:`RequantBits` then :class:`Saturate`.

    Parameters
    ----------
    acc_width : int
        Accumulator width (signed).
    shift : int
        Right shift ``s_l ≥ 1``.
    rounded : bool
        ``acc`` already includes ``2**(shift-1)``: no adder.

    Members
    -------
    acc : In(signed(acc_width))
    out : Out(unsigned(16))
        Combinational: latency 0.
    """

    def __init__(self, acc_width: int, shift: int, out_bits: int = ACT_BITS, rounded: bool = False):
        _init_from_acc(self, acc_width, shift, out_bits, rounded, unsigned(out_bits))

    @property
    def latency(self) -> int:
        """0: the requantiser is combinational; the engine registers its output."""
        return 0

    def elaborate(self, platform):
        m = Module()
        m.submodules.bits = bits = RequantBits(self.acc_width, self.shift, self.out_bits, self.rounded)
        m.submodules.sat = sat = Saturate(self.out_bits)
        m.d.comb += [bits.acc.eq(self.acc), sat.inp.eq(bits.out), self.out.eq(sat.out)]
        return m


class TanhIndex(wiring.Component):
    """Rule 4: ``t = sat_S(11)(rshift_rnd(acc, shift))``; ``index = t + 1024`` (address of the Tanh table).

    Parameters
    ----------
    acc_width, shift, rounded
        As for :class:`Requantiser`.

    Members
    -------
    acc : In(signed(acc_width))
    index : Out(unsigned(11))
        Combinational: latency 0.
    """

    def __init__(self, acc_width: int, shift: int, rounded: bool = False):
        try:
            _check(acc_width, shift)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self.acc_width, self.shift, self.rounded = acc_width, shift, rounded
        super().__init__({"acc": In(signed(acc_width)), "index": Out(unsigned(TANH_BITS))})

    @property
    def latency(self) -> int:
        """0: combinational."""
        return 0

    def elaborate(self, platform):
        m = Module()
        s, n = self.shift, TANH_BITS
        r = _rounded(m, self.acc, s, n + 1, self.rounded)
        up = r[n - 1:]                                       # bits of r from the S(11) sign bit up
        fits = up.all() | ~up.any()                          # r in [-1024, 1023]
        t = Signal(n)
        lo, hi = 1 << (n - 1), (1 << (n - 1)) - 1            # codes of -1024 and 1023
        m.d.comb += t.eq(Mux(fits, r[:n], Mux(r[-1], lo, hi)))
        m.d.comb += self.index.eq(Cat(t[:n - 1], ~t[n - 1]))  # t + 1024 for t in S(11)
        return m


def _init_from_acc(component, acc_width, shift, out_bits, rounded, out_shape):
    """The parameters and signature of a component reading an accumulator (``acc``) into ``out``:
    checked (ValueError naming the parameter), stored, ``wiring.Component.__init__`` called."""
    try:
        _check(acc_width, shift)
    except ValueError:
        component._MustUse__silence = True  # a refused component is not an unused one
        raise
    component.acc_width, component.shift, component.out_bits, component.rounded = acc_width, shift, out_bits, rounded
    wiring.Component.__init__(component, {"acc": In(signed(acc_width)), "out": Out(out_shape)})


def _rounded(m, acc, shift: int, min_bits: int, rounded: bool):
    """``r = (acc + 2**(shift-1)) >> shift`` (NUMERICS.md ``rshift_rnd``), at least ``min_bits`` wide.

    With ``rounded`` the constant is already in ``acc``: ``r = acc >> shift``."""
    total = acc if rounded else acc + (1 << (shift - 1))
    r = Signal(signed(max(len(acc) + 1 - shift, min_bits)))
    m.d.comb += r.eq(total >> shift)
    return r
