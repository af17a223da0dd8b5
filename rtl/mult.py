"""One signed multiplier lane with a fixed two-register pipeline (generic ``*`` or ECP5 MULT18X18D)."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: Multiplier implementations accepted by :class:`Multiplier` (and by the whole design's ``mult`` parameter).
MULT_KINDS = ("generic", "ecp5")


def check_mult_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`MULT_KINDS`, else raise :class:`ValueError`."""
    if kind not in MULT_KINDS:
        raise ValueError(f"multiplier kind must be one of {MULT_KINDS}, got {kind!r}")
    return kind


class Multiplier(wiring.Component):
    """``p = a · b``, signed, registered twice: inputs, then product.

    ``kind="generic"`` uses Amaranth's ``*`` on registers (simulation, Verilator); ``kind="ecp5"``
    instantiates one Lattice ``MULT18X18D`` with its input registers (``REG_INPUTA_CLK``,
    ``REG_INPUTB_CLK``) and output register (``REG_OUTPUT_CLK``) on ``CLK0``/``CE0`` so that nextpnr
    times the real DSP pipeline. Both kinds have the same :attr:`latency`, so a design is cycle-exact
    in either mode.

    Parameters
    ----------
    a_width, b_width : int
        Widths of the signed operands (each ≤ 18).
    kind : str
        ``"generic"`` or ``"ecp5"``.

    Members
    -------
    a : In(signed(a_width))
    b : In(signed(b_width))
    en : In(1)
        Clock enable of both register stages (init 1).
    p : Out(signed(a_width + b_width))
        The product, :attr:`latency` cycles after ``a`` and ``b`` were presented with ``en`` high.
    """

    def __init__(self, a_width: int, b_width: int, kind: str = "generic"):
        check_mult_kind(kind)
        for name, w in (("a_width", a_width), ("b_width", b_width)):
            if not isinstance(w, int) or not 1 <= w <= 18:
                raise ValueError(f"{name} must be an integer in 1..18, got {w!r}")
        self.a_width, self.b_width, self.kind = a_width, b_width, kind
        super().__init__({
            "a": In(signed(a_width)),
            "b": In(signed(b_width)),
            "en": In(1, init=1),
            "p": Out(signed(a_width + b_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from operands to product: 2 (input register + output register) in both kinds."""
        return 2

    def elaborate(self, platform):
        m = Module()
        if self.kind == "generic":
            a_r = Signal(signed(self.a_width), reset_less=True)
            b_r = Signal(signed(self.b_width), reset_less=True)
            p_r = Signal(signed(self.a_width + self.b_width), reset_less=True)
            with m.If(self.en):
                m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), p_r.eq(a_r * b_r)]
            m.d.comb += self.p.eq(p_r)
            return m
        a18 = Signal(signed(18))
        b18 = Signal(signed(18))
        p36 = Signal(signed(36))
        m.d.comb += [a18.eq(self.a), b18.eq(self.b), self.p.eq(p36)]
        ports = {}
        for i in range(18):
            ports[f"i_A{i}"] = a18[i]
            ports[f"i_B{i}"] = b18[i]
            ports[f"i_C{i}"] = Const(0, 1)
            # SRIA/SRIB (cascade from the neighbour DSP) stay unconnected: nextpnr cannot route GND there.
        for i in range(36):
            ports[f"o_P{i}"] = p36[i]
        for i in range(4):
            ports[f"i_CLK{i}"] = ClockSignal("sync") if i == 0 else Const(0, 1)
            ports[f"i_CE{i}"] = self.en if i == 0 else Const(1, 1)
            ports[f"i_RST{i}"] = Const(0, 1)
        m.submodules.dsp = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
            p_REG_PIPELINE_CLK="NONE", p_REG_INPUTC_CLK="NONE",
            p_CLK0_DIV="ENABLED", p_GSR="DISABLED", p_RESETMODE="SYNC",
            p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            **ports)
        return m
