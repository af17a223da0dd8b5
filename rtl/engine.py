"""The deconvolution engine: sequencer, weight store, activation buffers, MAC array, accumulators, drain.

Dataflow (one cycle per schedule step, see :mod:`rtl.config`); each block is a component with its
latency as a property, and the stage numbers below follow from them::

    c0      Sequencer: loop counters, per-layer constants -> the step and its metadata
    c1      Sequencer.tap: the decoded step registered (Sequencer.latency = 1)
    c1..c8  WeightStore: step copies, per-layer table constants, per-slice picks, per-slice address
            registers, block-RAM read, word registers, bank-multiplexer registers
            (WeightStore.latency = 7); in parallel the activation side: c2, c3, c4 delay and
            buffer address, c5 read, c6 x-word registers, c7 a copy per half of the array, c8 a
            second register or, in a tap-parallel layer, the tap window (layer 1: the pass
            input's registered sat(z + v), addressed at c3, copied per half and DSP row at c8)
    c8..c14 MacArray: distribution registers per lane group (a select, then a copy), operand
            registers per lane, the multiplier's two registers, the product's register beside it
            (MacArray.latency = 6) -> tree level 0 at c14 = FRONT
    c14+D   adder-tree level k registered, D = level_delay(k) = 2k - 1 (k = 1 .. log2 P: each level's
            sums, then below the root a copy of them, which the next level adds)
    c14+D   AccumulatorBank of level k = log2(TP_l·ICP_l): node, bias and flags registered, then
            accumulate (bias preloaded on a pixel's first step); the cycle after a pixel's last
            step the accumulators are copied into the hold bank (SEL = 2 from the node to the capture)
    then    Drain: NW_l = OCP_l / ICP_(l+1) words, one a cycle, from the front of the hold bank
            (dh: registered in place; d0: the layer's word), requantised / Tanh ROM (d1), written
            into the next layer's buffer or emitted as pixels (DRAIN = 3)

A layer starts when the previous one has left the pipeline (see :func:`gap_after`).
Backpressure stalls only the sequencer (``issue_en`` low: no new step is issued); every later stage
runs freely and carries a valid bit, so no enable fans out across the design.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.accum import AccumulatorBank
from rtl.config import ACT_BITS, PROD_BITS, EnginePlan
from rtl.drain import Drain
from rtl.hdlutil import eq_const
from rtl.layouts import pixel_layout
from rtl.mac import X_COPIES, MacArray, lane_groups, lane_position, level_delay
from rtl.mult import check_mult_kind
from rtl.passinput import PassInput
from rtl.sequencer import PASSES, Sequencer, step_layout
from rtl.weights import BANK_DEPTH, SLICE_BITS, WeightStore

__all__ = ["Engine", "FRONT", "SEL", "DRAIN", "PASSES", "BANK_DEPTH", "SLICE_BITS", "BUFFER_PART_BITS",
           "buffer_parts", "gap_after", "layer_gap", "meta_depth"]

#: Cycles from a step's issue (c0) to adder-tree level 0: ``Sequencer.latency (1) + WeightStore.latency (7)
#: + MacArray.latency (6)``. The components' ``latency`` properties say the same (tests check it).
FRONT = 1 + 7 + 6
#: Cycles from a tree node to its capture into the hold bank (:attr:`AccumulatorBank.latency`): the
#: register stage in front of the accumulators, then the accumulators.
SEL = 2
#: Cycles from a word's turn at the front of a hold bank to its write or pixel (:attr:`Drain.latency`).
DRAIN = 3


def meta_depth(plan: EnginePlan) -> int:
    """Stages of the step-metadata pipeline: ``FRONT + D(log2 P)`` (cycles c1 .. c12+D(log2 P)), with
    ``D`` = :func:`rtl.mac.level_delay`, the cycles from tree level 0 to the root. The accumulators'
    metadata register (``SEL`` after the layer's tree level ``k``) is never later than the
    pipeline's end plus the drain, so it does not enter :func:`gap_after`."""
    return FRONT + level_delay(plan.tree_levels)


def gap_after(lp, tree_levels: int) -> int:
    """Cycles between the last step of layer ``lp`` (a :class:`rtl.config.LayerPlan`) and the next
    layer's first step, with ``tree_levels = log2 P``; also the cycle model's (:mod:`gen.cycles`).

    ``3 + max(FRONT + D(log2 P), FRONT + SEL + D(k_l) + NW_l + DRAIN)`` with ``D`` =
    :func:`rtl.mac.level_delay` (``D(k) = 2k − 1``, ``D(0) = 0``): the last step leaves the metadata
    pipeline (``FRONT + D(log2 P)`` stages), or its drain completes (capture ``FRONT + SEL + D(k_l)``
    cycles after issue, ``NW_l`` drain words, then the dh, d0 and d1 stages, ``DRAIN = 3``),
    whichever is later; one cycle sees the pipeline empty, the sequencer registers it in the next,
    and one more starts the next layer.
    """
    return 3 + max(FRONT + level_delay(tree_levels),
                   FRONT + SEL + level_delay(lp.level) + lp.drain_words + DRAIN)


#: Bits of an activation buffer's word per part: five 36-bit block RAMs (DP16KD, depth ≤ 512). Each
#: part has its own read-address, write-address, write-enable and write-data registers beside its
#: RAMs: one address register for the 15 RAMs of a 512-bit buffer, spread over the centre columns,
#: was the late family of 128-lane runs (7.0–8.2 ns, r39–r41).
BUFFER_PART_BITS = 5 * 36


def buffer_parts(width: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: the bit ranges of a ``width``-bit buffer word, :data:`BUFFER_PART_BITS`
    each (the last may be narrower)."""
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    return [(lo, min(width, lo + BUFFER_PART_BITS)) for lo in range(0, width, BUFFER_PART_BITS)]


def layer_gap(plan: EnginePlan, l: int) -> int:
    """Cycles between layer ``l``'s last step and the next layer's first step (:func:`gap_after`)."""
    return gap_after(plan.layers[l], plan.tree_levels)


class Engine(wiring.Component):
    """Runs the three passes of one avatar through all layers; emits pixels in NUMERICS.md order.

    Parameters
    ----------
    plan : EnginePlan
        From :func:`rtl.config.plan_engine`.
    mult : str
        Multiplier implementation, ``"generic"`` (simulation, Verilator) or ``"ecp5"`` (MULT18X18D
        instances for synthesis); the timing is identical.

    Attributes
    ----------
    weights : WeightStore
        The weight ROM (``weights.banks``) and its read pipeline.
    buffers : dict of int to list of (int, Memory)
        Input buffer of layer ``l ≥ 1`` (0-based): word ``((iy·in_size + ix) << icg_bits) | c`` holds
        channels ``c·icp .. c·icp + icp − 1``, 16 bits each; kept as parts of at most
        :data:`BUFFER_PART_BITS` bits, each ``(lowest bit, Memory)`` (:func:`buffer_parts`).
    drain : Drain
        The drain (``drain.tanh_rom``: the 2048-entry Tanh table).

    Members
    -------
    issue_en : In(1)
        Issue enable (init 1). While low the sequencer issues no step; steps already issued run on
        and still produce their pixels (at most :attr:`pixels_in_flight` of them).
    start : In(1)
        Starts an avatar when the engine is idle (z must be complete).
    z_en, z_index, z_data : In
        Write element ``z_index`` of z (independent of ``en``).
    busy : Out(1)
        The engine is running an avatar.
    pix_valid : Out(1)
        A pixel word is produced this cycle (the consumer must take it: see :attr:`pixels_in_flight`).
    pix_data : Out(pixel_layout())
        The pixel word (ARCHITECTURE.md payload layout).
    """

    def __init__(self, plan: EnginePlan, mult: str = "generic"):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        self.plan, self.mult = plan, check_mult_kind(mult)
        layers = plan.layers
        #: Width of the drain's hold words: the widest layer's sums (:attr:`EnginePlan.sum_bits`, the
        #: rounding constant in the bias included); each bank is as wide as its own layers' sums.
        self.acc_width = max(plan.sum_bits)
        self.bank_sizes = {k: max(lp.ocp for lp in layers if lp.level == k) for k in {lp.level for lp in layers}}
        self.sequencer = Sequencer(plan)
        self.weights = WeightStore(plan)
        self.mac = MacArray(plan, mult)
        self.drain = Drain(plan, self.acc_width, self.bank_sizes)
        self.buffers = {}
        for l in range(1, len(layers)):
            width, depth = plan.buffer_shape(l)
            # Layer l's buffer is written only while layer l-1 runs and its data is used only while
            # layer l runs, so no read that matters meets a write: no_rw_check keeps yosys from adding
            # read-during-write bypass logic after the block RAM.
            self.buffers[l] = [(lo, Memory(shape=unsigned(hi - lo), depth=depth, init=[], attrs={"no_rw_check": 1}))
                               for lo, hi in buffer_parts(width)]
        super().__init__({
            "issue_en": In(1, init=1),
            "start": In(1),
            "z_en": In(1),
            "z_index": In(range(plan.nz)),
            "z_data": In(signed(ACT_BITS)),
            "busy": Out(1),
            "pix_valid": Out(1),
            "pix_data": Out(pixel_layout()),
        })

    # ----------------------------------------------------------------------------------- latencies
    @property
    def front_latency(self) -> int:
        """Cycles from a step's issue to adder-tree level 0:
        ``FRONT = Sequencer.latency + WeightStore.latency + MacArray.latency = 1 + 7 + 6 = 14``."""
        return self.sequencer.latency + self.weights.latency + self.mac.latency

    @property
    def pixel_latency(self) -> int:
        """Cycles from the issue of a pixel's last step to ``pix_valid``: ``FRONT + SEL + D(k_L) + NW_L +
        DRAIN`` (tree level ``k_L``, :func:`rtl.mac.level_delay` ``D(k_L)`` cycles after level 0,
        registered into its bank, accumulated, captured, ``NW_L`` drain words, dh, d0, d1)."""
        last = self.plan.layers[-1]
        return FRONT + SEL + level_delay(last.level) + last.drain_words + DRAIN

    @property
    def pixels_in_flight(self) -> int:
        """Most pixels that can still appear on ``pix_valid`` after ``issue_en`` goes low:
        ``pixel_latency + 1`` (every step of the last layer can be a pixel's last step)."""
        return self.pixel_latency + 1

    def accumulate_latency(self, l: int) -> int:
        """Cycles from a step's issue to its accumulation in layer ``l``: ``FRONT + D(k_l) + 1`` with
        ``k_l = log2(TP_l·ICP_l)`` and ``D`` = :func:`rtl.mac.level_delay` (the bank's register stage;
        the capture into the hold bank is one cycle later, ``SEL = 2``)."""
        return FRONT + level_delay(self.plan.layers[l].level) + 1

    @property
    def meta_depth(self) -> int:
        """Stages of the step-metadata pipeline: :func:`meta_depth`."""
        return meta_depth(self.plan)

    def layer_gap(self, l: int) -> int:
        """Cycles between layer ``l``'s last step and the next layer's first step (:func:`layer_gap`)."""
        return layer_gap(self.plan, l)

    # ----------------------------------------------------------------------------------- hardware
    #: Activations per copy of a tap window's control: each copy (events, queue count) steers the
    #: flip-flops of at most ``TP_CHUNK`` activations (48 per activation: its window word and its
    #: queue's two words), all of whose lanes lie in one lane group, so no control net spans the
    #: window. One: the queue enables of two (96 flip-flops) were late endpoints of 128-lane runs
    #: (7.2–8.6 ns).
    TP_CHUNK = 1

    def _window_chunks(self, l, t):
        """Tap-parallel layer ``l``, slot ``t``: its activations ``i`` (lane ``t·ICP + i``) cut into
        chunks of at most :attr:`TP_CHUNK` whose lanes lie in one group of
        :func:`rtl.mac.lane_groups` (neighbouring DSP columns of one DSP row), in group order."""
        icp = self.plan.layers[l].icp
        chunks = []
        for grp in lane_groups(self.plan.lanes):
            acts = [j - t * icp for j in grp if t * icp <= j < (t + 1) * icp]
            chunks += [acts[c:c + self.TP_CHUNK] for c in range(0, len(acts), self.TP_CHUNK)]
        return chunks

    def _chunk_place(self, l, t, acts):
        """``(half, row)`` of the lanes of a chunk of :meth:`_window_chunks` (:func:`rtl.mac.lane_position`)."""
        half, _, row = lane_position(self.plan.lanes, t * self.plan.layers[l].icp + acts[0])
        return half, row

    def _tap_window(self, m, l, x_raw, push, rs, rz, step, active):
        """The tap window of tap-parallel layer ``l``: its c7 input word (four slot words, slot
        ``t = 2a + b`` at activations ``t·ICP ..``), from the c5 read word ``x_raw`` through c6
        copies, one per row slot and per half and DSP row of the upper chunks that take it (so the
        queues' data, like their events, comes from a register in their own DSP row); ``push``,
        ``rs``, ``rz`` and ``step`` are the read's flags and the step's metadata at c4, ``active``
        the registered test ``layer == l``.

        Per input row slot ``a``: a queue of up to two column words filled by the reads (``push``
        with ``rs == a``; zeros where ``rz``: the row lies outside the input) and a window of two
        column words, lower ``b = 0`` and upper ``b = 1``. A pixel step with ``ox = 0`` loads
        (zeros, head), one with odd ``ox`` shifts (upper, head), or (upper, zeros) at the row's
        last pixel (its upper column lies outside the input); a head taken is popped. The reads run
        ``TP_LEAD`` steps ahead, so every column is in its queue at least one step before it is
        taken, and a queue never holds more than two (:mod:`rtl.config`).

        The window word ``b`` of activation ``i`` feeds lane ``(2a + b)·ICP + i`` only, so the
        registers are cut into chunks by where their lanes lie (:meth:`_window_chunks`): the upper
        word with the queue under the chunks of slot ``2a + 1``, the lower word under those of slot
        ``2a``. The events are decoded at c4 (``push``, ``rs``, ``rz``, ``step``), registered into
        one copy per row slot, word, half of the array and DSP row (c5) and from it into one copy
        per chunk (c6; all ``keep``), each upper chunk with its own copy of the queue count, so
        every control net stays inside a lane group or one DSP row of a half, and the decoded
        events reach the chunks through a register tree."""
        lp = self.plan.layers[l]
        out_last = lp.out_size - 1
        ev_first, ev_shift, ev_last = Signal(name=f"tp_first{l}"), Signal(name=f"tp_shift{l}"), Signal(name=f"tp_last{l}")
        m.d.comb += [ev_first.eq(eq_const(step.ox, 0)), ev_last.eq(step.ox == out_last),
                     ev_shift.eq(active & step.valid & (ev_first | step.ox[0]))]
        kw = {"reset_less": True, "attrs": {"keep": 1}}
        W = ACT_BITS
        words = {}                              # words[(b, a, i)]: window word b of activation i

        x_copies = {}

        def x_copy(a, place):
            """Row slot ``a``'s c6 copy of the read word for the chunks of one half and DSP row."""
            if (a, place) not in x_copies:
                x_copies[(a, place)] = Signal(len(x_raw), name=f"x_tp{l}_{a}_{place[0]}{place[1]}", **kw)
                m.d.sync += x_copies[(a, place)].eq(x_raw)
            return x_copies[(a, place)]

        def place_copy(copies, place, tag, events):
            """The registered copy of ``events`` (``{name: value}``) for the chunks of one half and
            DSP row ``place``, made on first use."""
            if place not in copies:
                copies[place] = [Signal(name=f"tp_{n}{tag}_{place[0]}{place[1]}", **kw) for n in events]
                m.d.sync += [r.eq(v) for r, v in zip(copies[place], events.values())]
            return copies[place]

        # The events as the registers use them, decoded at c4: ``take`` (shift in the queue's head,
        # which is popped) and ``blank`` (shift in zeros: the row's last pixel) for the upper word,
        # ``load`` (shift in the upper word) and ``clr`` (shift in zeros: the row's first pixel) for
        # the lower one. So a window register's enable and synchronous reset each come straight
        # from a flip-flop, not through a LUT shared by the chunk (a 109.7 MHz run's late family).
        ev_take, ev_blank = ev_shift & ~ev_last, ev_shift & ev_last
        ev_load, ev_clr = ev_shift & ~ev_first, ev_shift & ev_first
        for a in range(2):
            # upper word and queue: take, blank, push, zero, clear; one copy per half and DSP row
            ups, up_events = {}, {"ta": ev_take, "bl": ev_blank, "pu": active & push & (rs == a), "ze": rz,
                                  "cl": ~active}
            for ch, acts in enumerate(self._window_chunks(l, 2 * a + 1)):
                tag = f"{l}_{a}u{ch}"
                place = self._chunk_place(l, 2 * a + 1, acts)
                up = place_copy(ups, place, f"{l}_{a}u", up_events)
                x_in = x_copy(a, place)
                take, blank, psh, zero, clear = (Signal(name=f"tp_{n}{tag}", **kw)
                                                 for n in ("ta", "bl", "pu", "ze", "cl"))
                m.d.sync += [take.eq(up[0]), blank.eq(up[1]), psh.eq(up[2]), zero.eq(up[3]), clear.eq(up[4])]
                # No reset (a reset net to these copies was once the critical path): the count is
                # cleared while the layer is not in progress, which a reset leads to.
                n = Signal(range(3), name=f"tp_n{tag}", **kw)
                width = len(acts) * W
                new = Signal(width, name=f"tp_new{tag}")
                m.d.comb += new.eq(Mux(zero, 0, Cat(*[x_in[i * W:(i + 1) * W] for i in acts])))
                q = [Signal(width, name=f"tp_q{e}_{tag}", reset_less=True) for e in range(2)]
                win = Signal(width, name=f"tp_w1_{tag}", reset_less=True)
                with m.If(take):
                    m.d.sync += win.eq(q[0])
                with m.Elif(blank):
                    m.d.sync += win.eq(0)
                with m.If(take & psh):
                    with m.If(n == 1):
                        m.d.sync += q[0].eq(new)
                    with m.Else():
                        m.d.sync += [q[0].eq(q[1]), q[1].eq(new)]
                with m.Elif(take):
                    m.d.sync += [q[0].eq(q[1]), n.eq(n - 1)]
                with m.Elif(psh):
                    with m.If(eq_const(n, 0)):
                        m.d.sync += q[0].eq(new)
                    with m.Else():
                        m.d.sync += q[1].eq(new)
                    m.d.sync += n.eq(n + 1)
                with m.If(clear):
                    m.d.sync += n.eq(0)
                for k, i in enumerate(acts):
                    words[(1, a, i)] = win[k * W:(k + 1) * W]
            # lower word: load, clr; one copy per half and DSP row
            los = {}
            for ch, acts in enumerate(self._window_chunks(l, 2 * a)):
                tag = f"{l}_{a}l{ch}"
                lo = place_copy(los, self._chunk_place(l, 2 * a, acts), f"{l}_{a}l", {"ld": ev_load, "cr": ev_clr})
                load, clr = (Signal(name=f"tp_{n}{tag}", **kw) for n in ("ld", "cr"))
                m.d.sync += [load.eq(lo[0]), clr.eq(lo[1])]
                win = Signal(len(acts) * W, name=f"tp_w0_{tag}", reset_less=True)
                with m.If(load):
                    m.d.sync += win.eq(Cat(*[words[(1, a, i)] for i in acts]))
                with m.Elif(clr):
                    m.d.sync += win.eq(0)
                for k, i in enumerate(acts):
                    words[(0, a, i)] = win[k * W:(k + 1) * W]
        # slot t = 2a + b: window word b of row slot a, in activation order
        return Cat(*[words[(b, a, i)] for a in range(2) for b in range(2) for i in range(lp.icp)])

    def elaborate(self, platform):
        plan = self.plan
        layers = plan.layers
        L = len(layers)
        m = Module()
        m.submodules.seq = seq = self.sequencer
        m.submodules.weights = ws = self.weights
        m.submodules.mac = mac = self.mac
        m.submodules.drain = drain = self.drain
        m.d.comb += [seq.issue_en.eq(self.issue_en), seq.start.eq(self.start), self.busy.eq(seq.busy)]

        # z RAM, v ROM and the pass-input adder; the z write side comes from the top.
        m.submodules.pin = pin = PassInput(plan.nz, layers[0].icp, plan.v_rom)
        m.d.comb += [pin.w_en.eq(self.z_en), pin.w_index.eq(self.z_index), pin.w_data.eq(self.z_data)]

        # ---------------------------------------------------------------- step metadata, c0 .. c13+D(log2 P)
        # Only the valid bits have a reset (the reset net reaches 22 flip-flops here, not 22 × 20).
        meta = [Signal(step_layout(plan), name=f"meta{i}") for i in range(self.meta_depth + 1)]
        m.d.comb += meta[0].eq(seq.step)
        for i in range(1, len(meta)):
            data_r = Signal(step_layout(plan), name=f"meta{i}_r", reset_less=True)
            valid_r = Signal(name=f"meta{i}_valid")
            m.d.sync += [data_r.eq(meta[i - 1]), valid_r.eq(meta[i - 1].valid)]
            m.d.comb += [meta[i].eq(data_r), meta[i].valid.eq(valid_r)]

        # ---------------------------------------------------------------- weights: c1 -> c8
        m.d.comb += [ws.layer.eq(seq.layer), ws.tap.eq(seq.tap)]

        # ---------------------------------------------------------------- activations: c1 -> c8
        # c2, c3, c4: the decoded step delayed like the weight store's copy, table and pick stages;
        # the buffers are addressed from the c4 register (read c5), their words registered at c6
        # (the DP16KD output registers), copied at c7 once per half of the array (``keep``: the
        # lanes left and right of the centre each get their own) and at c8 once per half and DSP
        # row, or, in a tap-parallel layer, copied at c7 per row slot, half and DSP row and taken
        # into the tap window. The pass input (address, read, registered z and v, sum,
        # saturation) is addressed from c2 and copied per half at c7 and per half and DSP row at
        # c8. So every x word crosses from the centre to its lanes through a register tree: per
        # half, per DSP row, per lane group (MacArray), per lane.
        tap_2 = Signal.like(seq.tap, name="tap_2", reset_less=True)
        tap_3 = Signal.like(seq.tap, name="tap_3", reset_less=True)
        tap_4 = Signal.like(seq.tap, name="tap_4", reset_less=True)
        tap_5 = Signal.like(seq.tap, name="tap_5", reset_less=True)
        m.d.sync += [tap_2.eq(seq.tap), tap_3.eq(tap_2), tap_4.eq(tap_3), tap_5.eq(tap_4)]
        # A tap-parallel read's push flag (with reset), to c5: the window decodes its events there,
        # with the row slot / zero flags of tap_5, two stages before the read word arrives.
        push = {1: seq.read_push}
        for i in range(2, 6):
            push[i] = Signal(name=f"push_{i}")
            m.d.sync += push[i].eq(push[i - 1])
        assert pin.latency == 4 and ws.latency == 7
        # The pass input addressed from c2, its word at c6 copied per half at c7 and per half, DSP
        # row and column block at c8 (one copy level from the pass input straight to the half-row
        # copies was an 8.8 ns hop in a 110 MHz run).
        pass_2 = Signal.like(seq.pass_index, name="pass_2", reset_less=True)
        m.d.sync += pass_2.eq(seq.pass_index)
        m.d.comb += [pin.r_addr.eq(tap_2.c), pin.r_pass.eq(pass_2)]
        copies = X_COPIES                     # per half of the array, DSP row and column block (MacArray.x)
        per_side = X_COPIES // 2
        u_half = [Signal.like(pin.r_data, name=f"u_half{side}", reset_less=True, attrs={"keep": 1})
                  for side in range(2)]
        m.d.sync += [uh.eq(pin.r_data) for uh in u_half]
        for cp in range(copies):
            u = Signal.like(pin.r_data, name=f"u_copy{cp}", reset_less=True, attrs={"keep": 1})
            m.d.sync += u.eq(u_half[cp // per_side])
            m.d.comb += mac.x[cp].layer1.eq(u)
        for l in range(1, L):
            lp = layers[l]
            raws = []
            for p, (lo, mem) in enumerate(self.buffers[l]):
                m.submodules[f"buf{l}_{p}"] = mem
                rp = mem.read_port()
                wp = mem.write_port()
                # The part's own copy of the read address (in step with tap_4): one register beside
                # its block RAMs rather than tap_4 for every buffer (a 7.8 ns net to a layer-4 buffer
                # RAM 38 columns away was a 118 MHz run's critical path), and one per part.
                addr = Signal(len(rp.addr), name=f"buf_addr{l}_{p}", reset_less=True, attrs={"keep": 1})
                m.d.sync += addr.eq(Cat(tap_3.c[:lp.icg_bits], tap_3.ix[:lp.in_bits], tap_3.iy[:lp.in_bits]))
                m.d.comb += rp.addr.eq(addr)
                raw = Signal(len(rp.data), name=f"x_raw{l}_{p}", reset_less=True)
                m.d.sync += raw.eq(rp.data)
                raws.append(raw)
                # Written by the drain while layer l-1 runs, through registers of the part's own a
                # cycle later (the next layer reads the buffer no earlier than gap_after's three
                # spare cycles plus its first three stages after the drain's last write).
                w_addr = Signal(len(wp.addr), name=f"buf_waddr{l}_{p}", reset_less=True, attrs={"keep": 1})
                w_en = Signal(name=f"buf_we{l}_{p}", attrs={"keep": 1})
                w_data = Signal(len(wp.data), name=f"buf_wdata{l}_{p}", reset_less=True)
                m.d.sync += [w_addr.eq(drain.write_addr[l][:len(wp.addr)]),
                             w_data.eq(drain.write_data[lo:lo + len(wp.data)]), w_en.eq(drain.write_en[l])]
                m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en)]
            x_raw = Cat(*raws)
            if lp.tp > 1:
                active = Signal(name=f"tp_active{l}")
                m.d.sync += active.eq(seq.layer == l)
                x_word = self._tap_window(m, l, x_raw, push[5], tap_5.rs, tap_5.rz, meta[5], active)
                m.d.comb += [mac.x[cp][f"layer{l + 1}"].eq(x_word) for cp in range(copies)]
            else:
                x_half = [Signal(len(rp.data), name=f"x_half{l}_{side}", reset_less=True, attrs={"keep": 1})
                          for side in range(2)]
                m.d.sync += [xh.eq(x_raw) for xh in x_half]
                for cp in range(copies):
                    x_word = Signal(len(rp.data), name=f"x_word{l}_{cp}", reset_less=True, attrs={"keep": 1})
                    m.d.sync += x_word.eq(x_half[cp // per_side])
                    m.d.comb += mac.x[cp][f"layer{l + 1}"].eq(x_word)

        # ---------------------------------------------------------------- MAC array: c8 -> c13 + D(k)
        # The layer number through a register per consumer (MAC array, each bank, drain) before
        # their own copies: safe, as it changes only while no step is in flight, and every
        # consumer sees a layer's first step many cycles after it changes (the broadcast from the
        # one layer register to the MAC's group copies was a 61.95 MHz run's critical path, 15.6 ns
        # of routing on one net).
        def layer_copy(name):
            r = Signal.like(seq.layer, name=name, reset_less=True, attrs={"keep": 1})
            m.d.sync += r.eq(seq.layer)
            return r
        m.d.comb += [mac.layer.eq(layer_copy("layer_mac")), mac.w.eq(ws.word)]
        assert self.front_latency == FRONT

        # ---------------------------------------------------------------- accumulators
        # One bank per adder-tree level that some layer uses: accumulator o of level k is wired to
        # tree node o of that level for every layer, so nothing selects among tree levels (the
        # levels' nodes lie over the lanes 2**k apart) and the drain shift is local.
        icpn = [layers[l + 1].icp if l + 1 < L else 1 for l in range(L)]     # lanes of a drain word
        banks = {}
        for k, n in sorted(self.bank_sizes.items()):
            pre = {}
            for l, lp in enumerate(layers):
                if lp.level == k:
                    # bias + 2**(shift-1): the requantiser's rounding constant folded into the preload
                    pre[l] = ([int(plan.bias[l][gg * lp.ocp + o]) + (1 << (lp.shift - 1)) if o < lp.ocp else 0
                               for gg in range(lp.ocg) for o in range(n)], icpn[l])
            width = max(plan.sum_bits[l] for l in pre)
            bank = AccumulatorBank(n, width, PROD_BITS + k, pre, step_layout(plan), L)
            assert bank.latency == SEL
            m.submodules[f"acc_l{k}"] = bank
            level = getattr(mac, f"level{k}")
            m.d.comb += [bank.step.eq(meta[FRONT + level_delay(k) - bank.step_lead]), bank.layer.eq(layer_copy(f"layer_acc{k}"))]
            m.d.comb += [bank.tree[o].eq(level[o]) for o in range(n)]
            m.d.comb += [getattr(drain, f"hold{k}")[o].eq(bank.hold[o]) for o in range(n)]   # sign-extended
            banks[k] = bank

        # ---------------------------------------------------------------- drain
        cap = Signal()
        m.d.comb += [cap.eq(Cat(*[b.cap for b in banks.values()]).any()), drain.cap.eq(cap),
                     drain.layer.eq(layer_copy("layer_drain")), drain.pass_index.eq(seq.pass_index)]
        for b in banks.values():               # at most one bank captures at a time
            with m.If(b.cap):
                m.d.comb += drain.cap_step.eq(b.cap_step)
        m.d.comb += [self.pix_valid.eq(drain.pix_valid), self.pix_data.eq(drain.pix_data)]

        # ---------------------------------------------------------------- layer / pass control
        m.d.comb += seq.in_flight.eq(Cat(*[mt.valid for mt in meta[1:]], *[b.pending for b in banks.values()],
                                         cap, drain.busy).any())
        return m
