"""The hardware top ``generator`` (ARCHITECTURE.md): z stream in, pixel stream out, status."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from base.contract import DEFAULT_LANES, PIXEL_WORD_BITS
from rtl.config import EnginePlan, plan_engine
from rtl.engine import Engine
from rtl.hdlutil import eq_const
from rtl.layouts import pixel_layout, z_shape

#: Depth of the output pixel FIFO.
FIFO_DEPTH = 48
#: Cycles from the engine's ``pix_valid`` to the word on the ``pixel`` stream: ``1`` (the write
#: register beside the FIFO) ``+ 2`` (SyncFIFOBuffered: its memory, then its output register).
OUTPUT_LATENCY = 3


class Generator(wiring.Component):
    """The Generator core: 100 z words in, 3 × 1024 pixels out (R, G, B planes, raster order).

    Parameters
    ----------
    plan : EnginePlan
        From :func:`rtl.config.plan_engine` (or use :meth:`from_model`).
    mult : str
        ``"generic"`` (``*``, for simulation and Verilator) or ``"ecp5"`` (MULT18X18D instances with
        input and output registers, for yosys/nextpnr); the cycle timing is identical.
    fifo_depth : int
        Depth of the output FIFO; at least ``Engine.pixels_in_flight + 5`` (39 for the default model at 128 lanes).

    Members
    -------
    z : In(stream.Signature(signed(16)))  (:func:`rtl.layouts.z_shape`)
        z elements, ``S(16,12)``, element 0 first; accepted while no avatar is in progress.
    pixel : Out(stream.Signature(pixel_layout()))
        Pixel words with fields ``pixel``, ``x``, ``y``, ``plane``, ``last`` (:func:`rtl.layouts.pixel_layout`).
    busy : Out(1)
        From the cycle after the first z word is taken to the cycle after the last pixel is taken.
    done : Out(1)
        One-cycle pulse two cycles after the last pixel of an avatar is taken (with ``cycles``).
    cycles : Out(32)
        Cycles of the last finished avatar, first z word taken to last pixel taken, inclusive.

    Backpressure: the engine issues new steps only while a registered flag says the FIFO holds at
    most ``fifo_depth - pixels_in_flight - 4`` words. Steps already issued finish and write their
    pixels (at most ``pixels_in_flight`` of them, one per cycle, each through the write register),
    so the FIFO never holds more than
    ``fifo_depth - 2`` words (one is kept for the buffered FIFO's output-register refill), a write
    always finds room and no pixel is ever dropped or repeated; nothing but the sequencer stalls.
    """

    def __init__(self, plan: EnginePlan, mult: str = "generic", fifo_depth: int = FIFO_DEPTH):
        self.engine = Engine(plan, mult)
        need = self.engine.pixels_in_flight + 5
        if not isinstance(fifo_depth, int) or fifo_depth < need:
            raise ValueError(f"fifo_depth must be an integer >= {need} for this plan, got {fifo_depth!r}")
        self.plan, self.mult, self.fifo_depth = plan, mult, fifo_depth
        super().__init__({
            "z": In(stream.Signature(z_shape())),
            "pixel": Out(stream.Signature(pixel_layout())),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
        })

    @classmethod
    def from_model(cls, model, lanes: int = DEFAULT_LANES, mult: str = "generic", fifo_depth: int = FIFO_DEPTH):
        """Build the top for a quantized model (``golden.qmodel.QModel``) on ``lanes`` multipliers."""
        return cls(plan_engine(model, lanes), mult=mult, fifo_depth=fifo_depth)

    def elaborate(self, platform):
        m = Module()
        nz = self.plan.nz
        m.submodules.engine = eng = self.engine
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=PIXEL_WORD_BITS, depth=self.fifo_depth)

        # Output side: registered issue enable from the FIFO level (see class docstring). The engine's
        # pixels have no ready (room is guaranteed by the issue enable), so the write side is a plain
        # write, through a register beside the FIFO (the drain and the FIFO's memory need not be
        # neighbours: the write data was a 126 MHz run's second-latest endpoint, 7.5 ns); the read
        # side is the FIFO's stream, connected to the pixel port.
        room = Signal(init=1)
        m.d.sync += room.eq(fifo.w_level <= self.fifo_depth - eng.pixels_in_flight - 4)
        w_en = Signal(name="pix_w_en")
        w_data = Signal(PIXEL_WORD_BITS, name="pix_w_data", reset_less=True)
        m.d.sync += [w_en.eq(eng.pix_valid), w_data.eq(eng.pix_data)]
        m.d.comb += [
            eng.issue_en.eq(room),
            fifo.w_en.eq(w_en),
            fifo.w_data.eq(w_data),
        ]
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.pixel))

        # Input side: load nz words, then start the engine. The words are registered here, before
        # the pass input's own write registers: the z source (the board's buffer at the die's
        # edge) and the pass input need not be neighbours (a 105 MHz run's late family: 8.5 ns).
        zcount = Signal(range(nz + 1))
        take = Signal()
        go = Signal()
        ready = Signal(init=1)        # zcount != nz, kept in a flip-flop: it leaves for the board
        m.d.comb += [
            self.z.ready.eq(ready),
            take.eq(self.z.valid & self.z.ready),
            eng.start.eq(go),
        ]
        z_en = Signal(name="z_en_r")
        z_index = Signal.like(zcount, name="z_index_r", reset_less=True)
        z_data = Signal.like(self.z.payload, name="z_data_r", reset_less=True)
        m.d.sync += [z_en.eq(take), z_index.eq(zcount), z_data.eq(self.z.payload)]
        m.d.comb += [eng.z_en.eq(z_en), eng.z_index.eq(z_index), eng.z_data.eq(z_data)]
        with m.If(take):
            m.d.sync += zcount.eq(zcount + 1)
            with m.If(zcount == nz - 1):
                m.d.sync += [go.eq(1), ready.eq(0)]
        with m.If(go & eng.busy):
            m.d.sync += go.eq(0)

        # Status: the first take and the last pixel's take are registered (``first``, ``fin``), so
        # the counter's enable and the resets come from flip-flops, not from the handshakes of the
        # streams (a 105 MHz run's late family: 8.6 ns). ``cycles`` stays "first take to last take,
        # inclusive": the counter is loaded with 2 one cycle after the first take (the count it
        # would have had), and read one cycle after the last take, when it has counted that cycle.
        busy = Signal()
        cnt = Signal(32)
        first = Signal()
        fin = Signal()
        m.d.comb += self.busy.eq(busy)
        m.d.sync += [first.eq(take & eq_const(zcount, 0)),
                     fin.eq(self.pixel.valid & self.pixel.ready & self.pixel.payload.last)]
        with m.If(first):
            m.d.sync += [busy.eq(1), cnt.eq(2)]
        with m.Elif(busy):
            m.d.sync += cnt.eq(cnt + 1)
        m.d.sync += self.done.eq(0)
        with m.If(fin):
            m.d.sync += [self.done.eq(1), self.cycles.eq(cnt), busy.eq(0), zcount.eq(0), ready.eq(1)]
        return m
