"""The sequencer: passes, layers and the loop nest of one layer, one step per cycle."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import TP_LEAD, XY_BITS, EnginePlan
from rtl.hdlutil import eq_const
from rtl.weights import tap_layout

#: Passes per avatar (R, G, B).
PASSES = 3


def step_layout(plan: EnginePlan) -> data.StructLayout:
    """The metadata that travels with a step down the pipeline: ``valid``, ``first``/``last`` step of
    its (pixel, group), output-channel group ``g``, its first drain word ``gw = g · NW``, pixel
    ``oy``/``ox``."""
    layers = plan.layers
    return data.StructLayout({
        "valid": 1, "first": 1, "last": 1,
        "g": range(max(2, max(lp.ocg for lp in layers))),
        "gw": range(max(2, max(lp.ocg * lp.drain_words for lp in layers))),
        "oy": XY_BITS + 1, "ox": XY_BITS + 1,
    })


class Sequencer(wiring.Component):
    """Issues the steps of three passes of every layer (loop nest of :mod:`rtl.config`).

    A layer starts when the previous one has left the pipeline (``in_flight`` low, seen through a
    register), so every later stage sees one layer at a time and may read a register copy of
    ``layer``. Per-layer loop limits sit in registers loaded together with ``layer``; loop ends and
    second-tap validity are flags registered with their counters (equality tests on the counter's
    next value), so a layer's last step is an AND of flip-flops and the next-state logic has no
    carry chain besides the increments.

    A tap-parallel layer (:mod:`rtl.config`) issues one step per pixel; a second pair of counters
    walks the input-buffer reads (two rows of each column, row by row of output) :data:`TP_LEAD`
    steps ahead, so the layer starts with that many read-only cycles (``step.valid`` low).

    Members
    -------
    issue_en : In(1)
        Issue enable (init 1): while low no step is issued.
    start : In(1)
        Starts an avatar when idle.
    in_flight : In(1)
        Some issued step has not left the pipeline (metadata stages, accumulators or drain).
    busy : Out(1)
        An avatar is in progress.
    layer : Out(range(L))
        The layer in progress (a register, changes only while ``in_flight`` is low).
    pass_index : Out(2)
        The pass in progress (0 = R, 1 = G, 2 = B).
    step : Out(step_layout(plan))
        The step issued this cycle (``valid`` high) and its metadata.
    tap : Out(tap_layout(plan))
        The same step decoded (kernel taps, input coordinates, channel groups), :attr:`latency`
        cycles later.
    read_push : Out(1)
        With ``tap``: it carries a tap-parallel read whose word (or zeros, ``tap.rz``) enters the
        window queue of row slot ``tap.rs``.
    """

    def __init__(self, plan: EnginePlan):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        self.plan = plan
        super().__init__({
            "issue_en": In(1, init=1),
            "start": In(1),
            "in_flight": In(1),
            "busy": Out(1),
            "layer": Out(range(max(2, len(plan.layers)))),
            "pass_index": Out(2),
            "step": Out(step_layout(plan)),
            "tap": Out(tap_layout(plan)),
            "read_push": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``step`` to ``tap``: 1 (the decoded step is registered before any table or adder)."""
        return 1

    def elaborate(self, platform):
        layers = self.plan.layers
        L = len(layers)
        m = Module()
        max_ocg = max(lp.ocg for lp in layers)
        max_icg = max(lp.icg for lp in layers)
        max_gw = max(lp.ocg * lp.drain_words for lp in layers)
        running = Signal()
        waiting = Signal()
        pass_ = self.pass_index
        layer = Signal.like(self.layer, name="layer_r")
        layer_nxt = Signal.like(layer)     # the value ``layer`` takes at the next edge
        oy = Signal(XY_BITS + 1)
        ox = Signal(XY_BITS + 1)
        g = Signal(range(max(2, max_ocg)))
        gw = Signal(range(max(2, max_gw)))
        ty = Signal()
        tx = Signal()
        c = Signal(range(max(2, max_icg)))
        m.d.comb += [self.busy.eq(running | waiting), layer_nxt.eq(layer), self.layer.eq(layer)]
        m.d.sync += layer.eq(layer_nxt)

        def const_reg(values, shape, name):
            """A register holding ``values[layer]``, loaded together with ``layer`` (no lag)."""
            r = Signal(shape, name=name, init=values[0])
            with m.Switch(layer_nxt):
                for l, v in enumerate(values):
                    with m.Case(l):
                        m.d.sync += r.eq(v)
            return r

        out_last = const_reg([lp.out_size - 1 for lp in layers], XY_BITS + 1, "k_out_last")
        in_last = const_reg([lp.in_size - 1 for lp in layers], XY_BITS + 1, "k_in_last")
        nw = const_reg([lp.drain_words for lp in layers], range(max(2, max_gw + 1)), "k_nw")
        # For the loop-end flags: the value before the last (a counter that steps from it reaches
        # the last: ``counter == pen`` instead of ``counter + 1 == last``, no carry chain in front
        # of the flag, which was a 128-lane run's late family, 7.5 ns) and whether the loop has one
        # value (the flag after a wrap to 0).
        icg_pen = const_reg([max(lp.icg - 2, 0) for lp in layers], range(max(2, max_icg)), "k_icg_pen")
        ocg_pen = const_reg([max(lp.ocg - 2, 0) for lp in layers], range(max(2, max_ocg)), "k_ocg_pen")
        out_pen = const_reg([max(lp.out_size - 2, 0) for lp in layers], XY_BITS + 1, "k_out_pen")
        icg_one = const_reg([int(lp.icg == 1) for lp in layers], 1, "k_icg_one")
        ocg_one = const_reg([int(lp.ocg == 1) for lp in layers], 1, "k_ocg_one")
        out_one = const_reg([int(lp.out_size == 1) for lp in layers], 1, "k_out_one")
        dense = const_reg([int(l == 0) for l in range(L)], 1, "k_dense")
        tpar = const_reg([int(lp.tp > 1) for lp in layers], 1, "k_tp")
        single = Signal()                  # one step per (pixel, group, c): dense or tap-parallel
        m.d.comb += single.eq(dense | tpar)

        def taps(o, t):
            """Kernel index and input index for output coordinate ``o``, tap ``t``."""
            mo, ph = o >> 1, o[0]
            k = Signal(2)
            i = Signal(XY_BITS)
            m.d.comb += [
                k.eq(Mux(dense, o[:2], Mux(ph, Mux(t, 0, 2), Mux(t, 3, 1)))),
                i.eq(Mux(ph, mo + t, mo - t)),
            ]
            return k, i

        def second_tap(o):
            """Whether output coordinate ``o`` has a second tap (``mo + 1 < in_size`` is
            ``mo != in_size - 1``, as ``mo < in_size``: no carry chain)."""
            mo, ph = o >> 1, o[0]
            return ~single & Mux(ph, mo != in_last, mo != 0)

        ky, iy = taps(oy, ty)
        kx, ix = taps(ox, tx)
        # Loop ends as flags registered with their counters (each is ``counter == last``, or for
        # vx1/vy1 the second-tap test of ox/oy), updated from the counter's present value when it
        # steps and reloaded from the next layer's limits while no layer runs: the layer's last
        # step is an AND of flip-flops, not of comparators in series (the chain into ``waiting``,
        # 5 LUT levels and 7 ns of routing, was a 113.4 MHz run's critical path).
        c_end, g_end, ox_end, oy_end = (Signal(name=f"{n}_end") for n in ("c", "g", "ox", "oy"))
        vx1, vy1 = Signal(name="vx1"), Signal(name="vy1")
        last_c = c_end
        last_tx = tx | ~vx1
        last_ty = ty | ~vy1
        # Tap-parallel reads: read rk of output row ry (rk = 2·column + row slot), TP_LEAD steps ahead.
        rk = Signal(XY_BITS + 1)
        ry = Signal(XY_BITS + 1)
        r_end = Signal()                   # every read of the layer issued
        pro = Signal(range(TP_LEAD + 1))   # read-only steps issued at the layer's start
        r_m, r_a = ry >> 1, rk[0]
        r_iy = Signal(XY_BITS)
        r_zero = Signal()
        m.d.comb += [r_iy.eq(Mux(r_a, Mux(ry[0], r_m + 1, r_m - 1), r_m)),
                     r_zero.eq(r_a & Mux(ry[0], r_m == in_last, eq_const(r_m, 0)))]
        issue = Signal()
        # ``tpar & (pro != TP_LEAD)`` as a flag registered with ``pro``: the comparison sat in
        # front of the step-advance chain that enables every loop counter (4 LUT levels, 7.9 ns in
        # a 128-lane run).
        prologue = Signal(name="prologue")
        m.d.comb += issue.eq(running & self.issue_en)
        m.d.comb += [self.step.valid.eq(issue & ~prologue), self.step.first.eq(eq_const(c, 0) & ~tx & ~ty),
                     self.step.last.eq(last_c & last_tx & last_ty),
                     self.step.g.eq(g), self.step.gw.eq(gw), self.step.oy.eq(oy), self.step.ox.eq(ox)]
        # The decoded step, registered (reset-less: data path).
        tap = Signal.like(self.tap, reset_less=True)
        m.d.sync += [tap.g.eq(g), tap.c.eq(c)]
        with m.If(tpar):
            m.d.sync += [tap.kx.eq(ox[0]), tap.ky.eq(oy[0]), tap.ix.eq(rk >> 1), tap.iy.eq(r_iy),
                         tap.rs.eq(r_a), tap.rz.eq(r_zero)]
        with m.Else():
            m.d.sync += [tap.kx.eq(kx), tap.ky.eq(ky), tap.ix.eq(ix), tap.iy.eq(iy), tap.rs.eq(0), tap.rz.eq(0)]
        m.d.comb += self.tap.eq(tap)
        # A read to be pushed into the window queue (with reset: a stale push would misalign it).
        push = Signal()
        m.d.sync += push.eq(issue & tpar & ~r_end)
        m.d.comb += self.read_push.eq(push)

        with m.If(issue & tpar):
            with m.If(rk != out_last):
                m.d.sync += rk.eq(rk + 1)
            with m.Else():
                m.d.sync += [rk.eq(0), ry.eq(ry + 1)]
                with m.If(ry == out_last):
                    m.d.sync += r_end.eq(1)
            with m.If(prologue):
                m.d.sync += [pro.eq(pro + 1), prologue.eq(pro != TP_LEAD - 1)]

        def step_to(counter, flag, value, pen, one):
            """``counter`` takes ``value`` (its successor, or 0) and ``flag`` whether that is the loop's
            last value: ``counter == pen`` for the successor (the last is ``pen + 1`` whenever the
            counter can step, i.e. the loop has two or more values), ``one`` for 0."""
            m.d.sync += [counter.eq(value), flag.eq(one if isinstance(value, int) else counter == pen)]

        with m.If(issue & ~prologue):
            with m.If(~last_c):
                step_to(c, c_end, c + 1, icg_pen, icg_one)
            with m.Else():
                step_to(c, c_end, 0, icg_pen, icg_one)
                with m.If(~last_tx):
                    m.d.sync += tx.eq(1)
                with m.Else():
                    m.d.sync += tx.eq(0)
                    with m.If(~last_ty):
                        m.d.sync += ty.eq(1)
                    with m.Else():
                        m.d.sync += ty.eq(0)
                        with m.If(~g_end):
                            step_to(g, g_end, g + 1, ocg_pen, ocg_one)
                            m.d.sync += gw.eq(gw + nw)
                        with m.Else():
                            step_to(g, g_end, 0, ocg_pen, ocg_one)
                            m.d.sync += gw.eq(0)
                            with m.If(~ox_end):
                                step_to(ox, ox_end, ox + 1, out_pen, out_one)
                                m.d.sync += vx1.eq(second_tap((ox + 1)[:len(ox)]))
                            with m.Else():
                                step_to(ox, ox_end, 0, out_pen, out_one)
                                m.d.sync += vx1.eq(0)
                                with m.If(~oy_end):
                                    step_to(oy, oy_end, oy + 1, out_pen, out_one)
                                    m.d.sync += vy1.eq(second_tap((oy + 1)[:len(oy)]))
                                with m.Else():
                                    step_to(oy, oy_end, 0, out_pen, out_one)
                                    m.d.sync += [vy1.eq(0), running.eq(0), waiting.eq(1)]

        # Layer / pass control: the next layer (or pass) starts once the pipeline is empty, seen
        # through a register (``in_flight`` gathers valid bits from all over the engine; running
        # keeps it high until the last step's own bit is among them): one cycle later than the
        # combinational test, so gap_after counts it.
        in_flight = Signal(name="in_flight_r")
        m.d.sync += in_flight.eq(self.in_flight | running)
        with m.If(~running):
            m.d.sync += [rk.eq(0), ry.eq(0), r_end.eq(0), pro.eq(0)]
            # Every counter is 0 between layers: the flags of the layer about to start.
            with m.Switch(layer_nxt):
                for l, lp in enumerate(layers):
                    with m.Case(l):
                        m.d.sync += [c_end.eq(lp.icg == 1), g_end.eq(lp.ocg == 1), ox_end.eq(lp.out_size == 1),
                                     oy_end.eq(lp.out_size == 1), vx1.eq(0), vy1.eq(0),
                                     prologue.eq(lp.tp > 1 and TP_LEAD > 0)]
        with m.If(waiting & ~in_flight):
            m.d.sync += waiting.eq(0)
            with m.If(layer == L - 1):
                m.d.comb += layer_nxt.eq(0)
                with m.If(pass_ == PASSES - 1):
                    m.d.sync += pass_.eq(0)
                with m.Else():
                    m.d.sync += [pass_.eq(pass_ + 1), running.eq(1)]
            with m.Else():
                m.d.comb += layer_nxt.eq(layer + 1)
                m.d.sync += running.eq(1)
        with m.Elif(~running & ~waiting & self.start):
            m.d.comb += layer_nxt.eq(0)
            m.d.sync += [running.eq(1), pass_.eq(0)]
        return m
