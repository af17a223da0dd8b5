"""TMDS encoder of DVI 1.0 (transition minimisation and DC balance), one channel, two pipeline stages.

The algorithm is the specification's (written out in :mod:`golden.tmds`, the test's reference);
this is an independent hardware description of it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TMDSEncoder", "video_layout", "CTRL_SYMBOLS"]

#: Control symbols for (C1, C0) = 00, 01, 10, 11 (DVI 1.0, q_out[9:0]).
CTRL_SYMBOLS = (0b1101010100, 0b0010101011, 0b0101010100, 0b1010101011)


def video_layout() -> data.StructLayout:
    """One channel's input per pixel clock: ``data`` (8), ``de``, ``c`` (C1, C0)."""
    return data.StructLayout({"data": 8, "de": 1, "c": 2})


def _popcount(v, n):
    return sum((v[i] for i in range(n)), Const(0, range(n + 1)))


class TMDSEncoder(wiring.Component):
    """``sym`` = the TMDS symbol of ``inp``, :attr:`latency` cycles later (domain ``sync``; rename it
    with ``DomainRenamer`` for the pixel clock).

    Members
    -------
    inp : In(video_layout())
    sym : Out(10)
        Bit 0 is sent first.
    """

    def __init__(self):
        super().__init__({"inp": In(video_layout()), "sym": Out(10)})

    #: Cycles from ``inp`` to ``sym``: transition minimisation (1), DC balance (1) = 2.
    LATENCY = 2

    @property
    def latency(self) -> int:
        """Cycles from ``inp`` to ``sym``: :data:`LATENCY` (transition minimisation 1, DC balance 1)."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        d = self.inp.data
        # Stage 1: q_m (transition minimisation), its ones count, DE and control registered.
        n1d = Signal(range(9))
        m.d.comb += n1d.eq(_popcount(d, 8))
        xnor = Signal()
        m.d.comb += xnor.eq((n1d > 4) | ((n1d == 4) & ~d[0]))
        qm = [d[0]]
        for i in range(1, 8):
            qm.append(Mux(xnor, ~(qm[i - 1] ^ d[i]), qm[i - 1] ^ d[i]))
        q_m = Signal(9, reset_less=True)
        n1 = Signal(range(9), reset_less=True)
        de_1 = Signal()
        c_1 = Signal(2, reset_less=True)
        qm_v = Signal(8)
        m.d.comb += qm_v.eq(Cat(*qm))
        m.d.sync += [q_m.eq(Cat(qm_v, ~xnor)), n1.eq(_popcount(qm_v, 8)), de_1.eq(self.inp.de), c_1.eq(self.inp.c)]

        # Stage 2: DC balance against the running disparity (ones minus zeros), or a control symbol.
        cnt = Signal(signed(6))
        diff = Signal(signed(6))            # N1 - N0 of q_m[0:8]
        m.d.comb += diff.eq((n1 << 1) - 8)
        q8 = q_m[8]
        low = q_m[:8]
        with m.If(~de_1):
            m.d.sync += [cnt.eq(0), self.sym.eq(Mux(c_1 == 0, CTRL_SYMBOLS[0],
                                                     Mux(c_1 == 1, CTRL_SYMBOLS[1],
                                                         Mux(c_1 == 2, CTRL_SYMBOLS[2], CTRL_SYMBOLS[3]))))]
        with m.Elif((cnt == 0) | (diff == 0)):
            m.d.sync += [self.sym.eq(Cat(Mux(q8, low, ~low), q8, ~q8)),
                         cnt.eq(Mux(q8, cnt + diff, cnt - diff))]
        with m.Elif((~cnt[-1] & ~diff[-1]) | (cnt[-1] & diff[-1])):
            # cnt > 0 and more ones, or cnt < 0 and more zeros (neither is 0 here): invert.
            m.d.sync += [self.sym.eq(Cat(~low, q8, Const(1, 1))),
                         cnt.eq(cnt + Cat(Const(0, 1), q8).as_unsigned() - diff)]
        with m.Else():
            m.d.sync += [self.sym.eq(Cat(low, q8, Const(0, 1))),
                         cnt.eq(cnt - Cat(Const(0, 1), ~q8).as_unsigned() + diff)]
        return m
