"""The deconvolution engine: sequencer, weight ROM, activation buffers, P-lane MAC array, drain.

Dataflow (one cycle per schedule step, see :mod:`rtl.config`)::

    c0  sequencer registers (loop counters, per-layer constants) -> tap decode -> addresses
    c1  address registers (weight ROM banks, input buffer of the layer); z RAM + v ROM read
    c2  memory data -> raw registers (x words of every source, each bank's P-weight word);
        z and v registers
    c3  x lanes selected for the layer (layer 1: the registered sat(z + v)), weight bank selected
        -> operand registers, one pair per lane (placed next to the lane's DSP)
    c4  multiplier input registers
    c5  multiplier output registers
    c6+j  adder-tree level j registered (j = 1 .. log2 P)
    c6+k  the layer's tree level k = log2(ICP_l) selected into a register (SEL)
    c7+k  accumulate (bias preloads on a pixel's first step); on a pixel's last step the sums are
          captured into the hold bank
    then  drain: OCP/ICP_next words, one a cycle, shifted out of the hold bank (d0), requantise /
          Tanh ROM (d1), write into the next layer's input buffer or emit a pixel

A layer starts when the previous one has left the pipeline (see :attr:`Engine.layer_gap`).
Backpressure stalls only the sequencer (``issue_en`` low: no new step is issued); every later stage
runs freely and carries a valid bit, so no enable fans out across the design.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.accum import AccumulatorBank
from rtl.config import ACT_BITS, KERNEL, PROD_BITS, TANH_BITS, W_BITS, X_BITS, XY_BITS, EnginePlan, ceil_log2
from rtl.hdlutil import eq_const
from rtl.mult import Multiplier, check_mult_kind
from rtl.passinput import PassInput
from rtl.requant import Requantiser, TanhIndex

#: Pixel word: bits 0-7 pixel, 8-12 x, 13-17 y, 18-19 plane, 20 last (ARCHITECTURE.md).
PIXEL_BITS = 8 + 2 * XY_BITS + 2 + 1
#: Passes per avatar (R, G, B).
PASSES = 3
#: Words per weight-ROM bank: the depth of a DP16KD in its 1024 × 18 shape.
BANK_DEPTH = 1024
#: Bits per weight-ROM slice: eight DP16KD in their 1024 × 18 shape share one address register.
SLICE_BITS = 8 * 18
#: Multiplier lanes served by one copy of the layer number.
LANE_GROUP = 16
#: Cycles from a step's issue (c0) to tree level 0 (c9): tap-decode registers, weight-table
#: registers, address registers, memory read, raw x/w registers, distribution registers, operand
#: registers, multiplier (2).
FRONT = 9
#: Cycles of the register that selects the layer's adder-tree level before the accumulators.
SEL = 1


def meta_depth(plan: EnginePlan) -> int:
    """Stages of the step-metadata pipeline: ``FRONT + log2(P)`` (cycles c1 .. c6+log2 P). The
    accumulators' metadata register (``SEL`` after the layer's tree level ``k``) is never later than
    the pipeline's end plus the drain, so it does not enter :func:`gap_after`."""
    return FRONT + plan.tree_levels


def gap_after(lp, tree_levels: int) -> int:
    """Cycles between the last step of layer ``lp`` (a :class:`rtl.config.LayerPlan`) and the next
    layer's first step, with ``tree_levels = log2 P``; also the cycle model's (:mod:`gen.cycles`).

    ``2 + max(FRONT + log2 P, FRONT + SEL + k_l + NW_l + 2)``: the last step leaves the metadata
    pipeline (``FRONT + log2 P`` stages), or its drain completes (capture at ``c7 + k_l``, ``NW_l``
    drain words, then the d0 and requantise stages), whichever is later; one cycle sees the pipeline
    empty and one more starts the next layer.
    """
    return 2 + max(FRONT + tree_levels, FRONT + SEL + lp.level + lp.drain_words + 2)


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
    weight_banks : list of list of Memory
        The weight ROM, ``P × 8``-bit words in :func:`rtl.config.plan_engine` order, cut into banks of
        :data:`BANK_DEPTH` words (word ``a`` is word ``a mod BANK_DEPTH`` of bank ``a // BANK_DEPTH``)
        and each bank into slices of :data:`SLICE_BITS` bits (``weight_banks[b][s]`` holds bits
        ``[s·SLICE_BITS, (s+1)·SLICE_BITS)``). Every slice is read each step from its own copy of the
        address register and its word registered; the bank is chosen after the registers, so each
        block RAM output drives exactly one flip-flop (a DP16KD output register after synthesis) and
        each address register drives the address pins of a few block RAMs, not all of them.
    buffers : dict of int to Memory
        Input buffer of layer ``l ≥ 1`` (0-based): word ``((iy·in_size + ix) << icg_bits) | c`` holds
        channels ``c·icp .. c·icp + icp − 1``, 16 bits each.
    tanh_rom : Memory
        The 2048-entry Tanh table.

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
    pix_data : Out(21)
        The pixel word (ARCHITECTURE.md payload layout).
    """

    def __init__(self, plan: EnginePlan, mult: str = "generic"):
        if not isinstance(plan, EnginePlan):
            raise TypeError("plan must be an EnginePlan")
        self.plan, self.mult = plan, mult
        check_mult_kind(mult)
        words = list(plan.weight_rom)
        if len(words) > BANK_DEPTH:            # every bank full depth: no bank is read out of range
            words += [0] * (-len(words) % BANK_DEPTH)
        width = plan.lanes * W_BITS
        self.weight_banks = [
            [Memory(shape=unsigned(min(SLICE_BITS, width - lo)), depth=len(words[b:b + BANK_DEPTH]),
                    init=[(w >> lo) & ((1 << SLICE_BITS) - 1) for w in words[b:b + BANK_DEPTH]])
             for lo in range(0, width, SLICE_BITS)]
            for b in range(0, len(words), BANK_DEPTH)]
        self.buffers = {}
        for l in range(1, len(plan.layers)):
            width, depth = plan.buffer_shape(l)
            # Layer l's buffer is written only while layer l-1 runs and its data is used only while
            # layer l runs, so no read that matters meets a write: no_rw_check keeps yosys from adding
            # read-during-write bypass logic after the block RAM.
            self.buffers[l] = Memory(shape=unsigned(width), depth=depth, init=[],
                                     attrs={"no_rw_check": 1})
        self.tanh_rom = Memory(shape=unsigned(8), depth=1 << TANH_BITS, init=plan.tanh_lut)
        super().__init__({
            "issue_en": In(1, init=1),
            "start": In(1),
            "z_en": In(1),
            "z_index": In(range(plan.nz)),
            "z_data": In(signed(ACT_BITS)),
            "busy": Out(1),
            "pix_valid": Out(1),
            "pix_data": Out(PIXEL_BITS),
        })

    # ----------------------------------------------------------------------------------- latencies
    @property
    def front_latency(self) -> int:
        """Cycles from a step's issue to adder-tree level 0: ``FRONT = 1 (address registers) + 1 (memory
        read) + 1 (raw x/w registers) + 1 (operand registers) + Multiplier.latency (2) = 6``."""
        return FRONT

    @property
    def pixel_latency(self) -> int:
        """Cycles from the issue of a pixel's last step to ``pix_valid``: ``FRONT + SEL + k_L + NW_L + 2``
        (tree level ``k_L`` selected, accumulated, ``NW_L`` drain words, select and Tanh stages)."""
        last = self.plan.layers[-1]
        return FRONT + SEL + last.level + last.drain_words + 2

    @property
    def pixels_in_flight(self) -> int:
        """Most pixels that can still appear on ``pix_valid`` after ``issue_en`` goes low:
        ``pixel_latency + 1`` (every step of the last layer can be a pixel's last step)."""
        return self.pixel_latency + 1

    def accumulate_latency(self, l: int) -> int:
        """Cycles from a step's issue to its accumulation in layer ``l``: ``FRONT + log2(ICP_l) + SEL``."""
        return FRONT + self.plan.layers[l].level + SEL

    @property
    def meta_depth(self) -> int:
        """Stages of the step-metadata pipeline: ``FRONT + log2(P)`` (c1 .. c6+log2 P)."""
        return meta_depth(self.plan)

    def layer_gap(self, l: int) -> int:
        """Cycles between layer ``l``'s last step and the next layer's first step (:func:`layer_gap`)."""
        return layer_gap(self.plan, l)

    # ----------------------------------------------------------------------------------- hardware
    def elaborate(self, platform):
        plan = self.plan
        layers = plan.layers
        L, P, K = len(layers), plan.lanes, plan.tree_levels
        A = plan.acc_bits + 1                  # accumulators also hold the rounding constant (below)
        m = Module()

        # z RAM, v ROM and the pass-input adder; the z write side comes from the top.
        m.submodules.pin = pin = PassInput(plan.nz, layers[0].icp, plan.v_rom)
        m.d.comb += [pin.w_en.eq(self.z_en), pin.w_index.eq(self.z_index), pin.w_data.eq(self.z_data)]

        # ---------------------------------------------------------------- sequencer state
        max_ocg = max(lp.ocg for lp in layers)
        max_icg = max(lp.icg for lp in layers)
        max_gw = max(lp.ocg * lp.drain_words for lp in layers)
        running = Signal()
        waiting = Signal()
        pass_ = Signal(2)
        layer = Signal(range(max(2, L)))
        layer_nxt = Signal.like(layer)     # the value ``layer`` takes at the next edge
        oy = Signal(XY_BITS + 1)
        ox = Signal(XY_BITS + 1)
        g = Signal(range(max(2, max_ocg)))
        gw = Signal(range(max(2, max_gw)))
        ty = Signal()
        tx = Signal()
        c = Signal(range(max(2, max_icg)))
        m.d.comb += [self.busy.eq(running | waiting), layer_nxt.eq(layer)]
        m.d.sync += layer.eq(layer_nxt)

        def layer_copy(name):
            """A register copy of ``layer`` (one cycle late) for a later stage, to split its fan-out.

            Safe because ``layer`` changes only while the pipeline is empty, and a step needs more than
            one cycle to reach any stage that reads a copy. Copies are marked ``keep`` so that yosys
            does not merge them back into one (:func:`gen.ilpatch.keep_registers`)."""
            r = Signal.like(layer, name=name, attrs={"keep": 1})
            m.d.sync += r.eq(layer)
            return r

        def const_reg(values, shape, name):
            """A register holding ``values[layer]``, loaded together with ``layer`` (no lag)."""
            r = Signal(shape, name=name, init=values[0])
            with m.Switch(layer_nxt):
                for l, v in enumerate(values):
                    with m.Case(l):
                        m.d.sync += r.eq(v)
            return r

        icg_last = const_reg([lp.icg - 1 for lp in layers], range(max(2, max_icg)), "k_icg_last")
        ocg_last = const_reg([lp.ocg - 1 for lp in layers], range(max(2, max_ocg)), "k_ocg_last")
        out_last = const_reg([lp.out_size - 1 for lp in layers], XY_BITS + 1, "k_out_last")
        in_last = const_reg([lp.in_size - 1 for lp in layers], XY_BITS + 1, "k_in_last")
        nw = const_reg([lp.drain_words for lp in layers], range(max(2, max_gw + 1)), "k_nw")
        dense = const_reg([int(l == 0) for l in range(L)], 1, "k_dense")

        def taps(o, t):
            """Kernel index, input index and second-tap validity for output coordinate ``o``, tap ``t``."""
            mo, ph = o >> 1, o[0]
            k = Signal(2)
            i = Signal(XY_BITS)
            v1 = Signal()
            m.d.comb += [
                k.eq(Mux(dense, o[:2], Mux(ph, Mux(t, 0, 2), Mux(t, 3, 1)))),
                i.eq(Mux(ph, mo + t, mo - t)),
                # (mo + 1 < in_size) is (mo != in_size - 1), as mo < in_size: no carry chain here.
                v1.eq(~dense & Mux(ph, mo != in_last, mo != 0)),
            ]
            return k, i, v1

        ky, iy, vy1 = taps(oy, ty)
        kx, ix, vx1 = taps(ox, tx)
        last_c = c == icg_last
        last_tx = tx | ~vx1
        last_ty = ty | ~vy1
        step_first = eq_const(c, 0) & ~tx & ~ty
        step_last = last_c & last_tx & last_ty
        issue = Signal()
        m.d.comb += issue.eq(running & self.issue_en)

        with m.If(issue):
            with m.If(~last_c):
                m.d.sync += c.eq(c + 1)
            with m.Else():
                m.d.sync += c.eq(0)
                with m.If(~last_tx):
                    m.d.sync += tx.eq(1)
                with m.Else():
                    m.d.sync += tx.eq(0)
                    with m.If(~last_ty):
                        m.d.sync += ty.eq(1)
                    with m.Else():
                        m.d.sync += ty.eq(0)
                        with m.If(g != ocg_last):
                            m.d.sync += [g.eq(g + 1), gw.eq(gw + nw)]
                        with m.Else():
                            m.d.sync += [g.eq(0), gw.eq(0)]
                            with m.If(ox != out_last):
                                m.d.sync += ox.eq(ox + 1)
                            with m.Else():
                                m.d.sync += ox.eq(0)
                                with m.If(oy != out_last):
                                    m.d.sync += oy.eq(oy + 1)
                                with m.Else():
                                    m.d.sync += [oy.eq(0), running.eq(0), waiting.eq(1)]

        # ---------------------------------------------------------------- c0 -> c1: tap-decode registers
        # The sequencer's decoded step (taps, coordinates, channel group) is registered before any
        # table or adder, so the counters' next-state logic and the address logic do not share a cycle.
        kx_1, ky_1, ix_1, iy_1 = (Signal.like(v, name=f"{n}_1", reset_less=True)
                                  for v, n in ((kx, "kx"), (ky, "ky"), (ix, "ix"), (iy, "iy")))
        g_1 = Signal.like(g, name="g_1", reset_less=True)
        c_1 = Signal.like(c, name="c_1", reset_less=True)
        m.d.sync += [kx_1.eq(kx), ky_1.eq(ky), ix_1.eq(ix), iy_1.eq(iy), g_1.eq(g), c_1.eq(c)]

        # ---------------------------------------------------------------- c1 -> c2: weight-table registers
        # The weight address is a constant per (layer, group, tap) plus c: the constant is looked up
        # and registered here, the addition happens in each address copy (c2 -> c3).
        n_banks, n_slices = len(self.weight_banks), len(self.weight_banks[0])
        rom_words = max(2, len(plan.weight_rom))
        t_base = Signal(range(rom_words), name="w_base", reset_less=True)
        c_2 = Signal.like(c, name="c_2", reset_less=True)
        ix_2 = Signal.like(ix, name="ix_2", reset_less=True)
        iy_2 = Signal.like(iy, name="iy_2", reset_less=True)
        m.d.sync += [c_2.eq(c_1), ix_2.eq(ix_1), iy_2.eq(iy_1)]
        tapidx = Cat(kx_1, ky_1, g_1)
        with m.Switch(layer):
            for l, lp in enumerate(layers):
                with m.Case(l):
                    with m.Switch(tapidx):
                        for t in range(lp.ocg * KERNEL * KERNEL):
                            with m.Case(t):
                                m.d.sync += t_base.eq(lp.weight_base + t * lp.icg)

        # ---------------------------------------------------------------- c2 -> c3: address registers
        wrs = []                                # wrs[b][s]: read port of bank b, slice s
        for b, bank in enumerate(self.weight_banks):
            for sl, mem in enumerate(bank):
                m.submodules[f"wrom{b}_{sl}"] = mem
            wrs.append([mem.read_port() for mem in bank])
        # One address register per slice, each with its own adder (kept apart in yosys:
        # gen/ilpatch.py keep_registers), so no adder output fans out across the die.
        w_addrs = [Signal(range(rom_words), name=f"w_addr{sl}", reset_less=True, attrs={"keep": 1})
                   for sl in range(n_slices)]
        m.d.sync += [a.eq(t_base + c_2) for a in w_addrs]
        c_a = Signal.like(c, reset_less=True)
        ix_a = Signal.like(ix, reset_less=True)
        iy_a = Signal.like(iy, reset_less=True)
        m.d.sync += [c_a.eq(c_2), ix_a.eq(ix_2), iy_a.eq(iy_2)]
        bank_bits = ceil_log2(BANK_DEPTH)
        for bank in wrs:
            for sl, wr in enumerate(bank):
                m.d.comb += wr.addr.eq(w_addrs[sl][:bank_bits])
        # The pass input is one stage longer (its sum is registered), so it is addressed one cycle
        # earlier, from the c2 register: its data arrives at c5 like the memories'.
        assert pin.latency == 3
        m.d.comb += [pin.r_addr.eq(c_2), pin.r_pass.eq(pass_)]

        bufs = {}
        for l in range(1, L):
            lp = layers[l]
            mem = self.buffers[l]
            m.submodules[f"buf{l}"] = mem
            rp = mem.read_port()
            wp = mem.write_port()
            m.d.comb += rp.addr.eq(Cat(c_a[:lp.icg_bits], ix_a[:lp.in_bits], iy_a[:lp.in_bits]))
            bufs[l] = (rp, wp)

        # ---------------------------------------------------------------- metadata pipeline
        meta_layout = data.StructLayout({
            "valid": 1, "first": 1, "last": 1,
            "g": range(max(2, max_ocg)), "gw": range(max(2, max_gw)),
            "oy": XY_BITS + 1, "ox": XY_BITS + 1,
        })
        meta = [Signal(meta_layout, name=f"meta{i}") for i in range(self.meta_depth + 1)]
        m.d.comb += [meta[0].valid.eq(issue), meta[0].first.eq(step_first), meta[0].last.eq(step_last),
                     meta[0].g.eq(g), meta[0].gw.eq(gw), meta[0].oy.eq(oy), meta[0].ox.eq(ox)]
        for i in range(1, len(meta)):
            m.d.sync += meta[i].eq(meta[i - 1])

        # ---------------------------------------------------------------- c4 -> c5: raw x and w words
        w_raw = [Signal(P * W_BITS, name=f"w_raw{b}", reset_less=True) for b in range(n_banks)]
        for b, bank in enumerate(wrs):
            m.d.sync += w_raw[b].eq(Cat(*[wr.data for wr in bank]))
        w_r = Signal(P * W_BITS)                 # c5: the addressed bank's word (combinational)
        if n_banks == 1:
            m.d.comb += w_r.eq(w_raw[0])
        else:
            # Bank number of the word read at c4 (from each slice's address copy), then at c5.
            for sl in range(n_slices):
                bank_4 = Signal(range(n_banks), name=f"bank_4_{sl}", reset_less=True, attrs={"keep": 1})
                bank_5 = Signal(range(n_banks), name=f"bank_5_{sl}", reset_less=True, attrs={"keep": 1})
                m.d.sync += [bank_4.eq(w_addrs[sl][bank_bits:]), bank_5.eq(bank_4)]
                lo, hi = sl * SLICE_BITS, min(P * W_BITS, (sl + 1) * SLICE_BITS)
                with m.Switch(bank_5):
                    for b in range(n_banks):
                        with m.Case(b):
                            m.d.comb += w_r[lo:hi].eq(w_raw[b][lo:hi])
        raw = {0: pin.r_data}                   # layer 1 reads sat(z + v) from the pass input, also at c5
        for l in range(1, L):
            raw[l] = Signal(len(bufs[l][0].data), name=f"x_raw{l}", reset_less=True)
            m.d.sync += raw[l].eq(bufs[l][0].data)

        def x_word(l, i):
            """Activation ``i`` of layer ``l``'s input word as a multiplier operand (S16 or U16 -> 17 bits)."""
            w = raw[l][i * ACT_BITS:(i + 1) * ACT_BITS]
            return w.as_signed() if l == 0 else w

        # ---------------------------------------------------------------- c5 -> c6: distribution registers
        # Each group of LANE_GROUP lanes gets its own copy of the input activations its lanes use
        # (for the layer in progress) and the weight word is registered after the bank selection, so
        # no memory output drives sinks all over the die in one cycle: a register tree, one level.
        groups = range(0, P, LANE_GROUP)
        layer_xs = [layer_copy(f"layer_x{grp}") for grp in groups]

        def lane_src(l, j):
            """Activation index that lane ``j`` multiplies in layer ``l``, or None for an idle lane."""
            lp = layers[l]
            return j % lp.icp if j < lp.ocp * lp.icp else None

        slots = {}                              # slots[grp][l]: activation indices held by the group copy
        for grp in groups:
            lanes_g = range(grp, min(P, grp + LANE_GROUP))
            slots[grp] = [sorted({lane_src(l, j) for j in lanes_g} - {None}) for l in range(L)]
        x_grp = {}
        for grp in groups:
            width = max(1, max(len(sl) for sl in slots[grp]))
            x_grp[grp] = [Signal(signed(X_BITS), name=f"x_g{grp}_{t}", reset_less=True, attrs={"keep": 1})
                          for t in range(width)]
            with m.Switch(layer_xs[grp // LANE_GROUP]):
                for l in range(L):
                    with m.Case(l):
                        for t, r in enumerate(x_grp[grp]):
                            idx = slots[grp][l]
                            m.d.sync += r.eq(x_word(l, idx[t]) if t < len(idx) else 0)
        w_mid = Signal(P * W_BITS, name="w_mid", reset_less=True)
        m.d.sync += w_mid.eq(w_r)

        # ---------------------------------------------------------------- c6 -> c7: operand registers
        # One x/w register pair per lane, placed next to the lane's DSP; ``keep`` stops yosys from
        # merging the x registers of lanes that select the same words (gen/ilpatch.py keep_registers).
        x_op = [Signal(signed(X_BITS), name=f"x_op{j}", reset_less=True, attrs={"keep": 1}) for j in range(P)]
        w_op = [Signal(signed(W_BITS), name=f"w_op{j}", reset_less=True, attrs={"keep": 1}) for j in range(P)]
        for j in range(P):
            grp = j - j % LANE_GROUP
            m.d.sync += w_op[j].eq(w_mid[j * W_BITS:(j + 1) * W_BITS].as_signed())
            with m.Switch(layer_xs[grp // LANE_GROUP]):
                for l in range(L):
                    with m.Case(l):
                        i = lane_src(l, j)
                        m.d.sync += x_op[j].eq(0 if i is None else x_grp[grp][slots[grp][l].index(i)])

        # ---------------------------------------------------------------- c7 -> c8 -> c9: multipliers
        prods = []
        for j in range(P):
            mul = Multiplier(X_BITS, W_BITS, self.mult)
            m.submodules[f"mul{j}"] = mul
            m.d.comb += [mul.a.eq(x_op[j]), mul.b.eq(w_op[j])]
            prods.append(mul.p)

        # ---------------------------------------------------------------- c9..: adder tree
        levels = [prods]
        for j in range(1, K + 1):
            prev = levels[-1]
            cur = [Signal(signed(PROD_BITS + j), name=f"t{j}_{n}", reset_less=True)
                   for n in range(len(prev) // 2)]
            for n, s in enumerate(cur):
                m.d.sync += s.eq(prev[2 * n] + prev[2 * n + 1])
            levels.append(cur)

        # ---------------------------------------------------------------- accumulators, bias, hold
        # One bank per adder-tree level that some layer uses: accumulator o of level k is wired to
        # tree node o of that level for every layer, so nothing selects among tree levels (the
        # levels' nodes lie over the lanes 2**k apart) and the drain shift is local.
        icpn = [layers[l + 1].icp if l + 1 < L else 1 for l in range(L)]     # lanes of a drain word
        banks = {}
        for k in sorted({lp.level for lp in layers}):
            served = {l: lp for l, lp in enumerate(layers) if lp.level == k}
            n = max(lp.ocp for lp in served.values())
            pre = {}
            for l, lp in served.items():
                # bias + 2**(shift-1): the requantiser's rounding constant folded into the preload
                pre[l] = ([int(plan.bias[l][gg * lp.ocp + o]) + (1 << (lp.shift - 1)) if o < lp.ocp else 0
                           for gg in range(lp.ocg) for o in range(n)], icpn[l])
            bank = AccumulatorBank(n, A, PROD_BITS + k, pre, meta_layout, L)
            m.submodules[f"acc_l{k}"] = bank
            m.d.comb += [bank.step.eq(meta[FRONT + k]), bank.layer.eq(layer)]
            m.d.comb += [bank.tree[o].eq(levels[k][o]) for o in range(n)]
            banks[k] = bank
        hmeta = Signal(meta_layout, reset_less=True)
        cap = Signal()
        m.d.comb += cap.eq(Cat(*[bank.cap for bank in banks.values()]).any())
        for bank in banks.values():
            with m.If(bank.cap):
                m.d.sync += hmeta.eq(bank.cap_step)

        # ---------------------------------------------------------------- drain
        layer_d = layer_copy("layer_d")
        d_active = Signal()
        d_j = Signal(range(max(2, max(lp.drain_words for lp in layers))))
        with m.If(cap):
            m.d.sync += [d_active.eq(1), d_j.eq(0)]
        with m.Elif(d_active):
            with m.If(d_j == nw - 1):
                m.d.sync += d_active.eq(0)
            with m.Else():
                m.d.sync += d_j.eq(d_j + 1)

        lanes_out = max(icpn)
        addr_w = max(ceil_log2(plan.buffer_shape(l)[1]) for l in range(1, L))
        d0_valid = Signal()
        d0_val = [Signal(signed(A), name=f"d0v{i}", reset_less=True) for i in range(lanes_out)]
        d0_addr = Signal(max(1, addr_w), reset_less=True)
        d0_oy = Signal(XY_BITS, reset_less=True)
        d0_ox = Signal(XY_BITS, reset_less=True)
        m.d.sync += [d0_valid.eq(d_active), d0_oy.eq(hmeta.oy), d0_ox.eq(hmeta.ox)]
        with m.Switch(layer_d):
            for l, lp in enumerate(layers):
                with m.Case(l):
                    hold = banks[lp.level].hold                         # word d_j (the hold bank shifts)
                    m.d.sync += [d0_val[i].eq(hold[i]) for i in range(icpn[l])]
                    if l + 1 < L:
                        nx = layers[l + 1]
                        word = (hmeta.gw + d_j)[:nx.icg_bits]
                        m.d.sync += d0_addr.eq(Cat(word, hmeta.ox[:nx.in_bits], hmeta.oy[:nx.in_bits]))

        d1_valid = Signal()
        d1_addr = Signal.like(d0_addr)
        d1_oy = Signal(XY_BITS, reset_less=True)
        d1_ox = Signal(XY_BITS, reset_less=True)
        d1_q = [Signal(ACT_BITS, name=f"q{i}", reset_less=True) for i in range(lanes_out)]
        m.d.sync += [d1_valid.eq(d0_valid), d1_addr.eq(d0_addr), d1_oy.eq(d0_oy), d1_ox.eq(d0_ox)]
        with m.Switch(layer_d):
            for l in range(L - 1):
                with m.Case(l):
                    for i in range(icpn[l]):
                        rq = Requantiser(A, layers[l].shift, rounded=True)
                        m.submodules[f"rq{l}_{i}"] = rq
                        m.d.comb += rq.acc.eq(d0_val[i])
                        m.d.sync += d1_q[i].eq(rq.out)
        # Tanh: the last layer drains one word (NW_L = 1, hold[0]) in the cycle after the capture, so the
        # table is addressed from hold[0] directly, one stage before d0, and its word is registered
        # (the DP16KD output register after synthesis); it reaches d1 like the requantised words.
        m.submodules.tidx = tidx = TanhIndex(A, layers[-1].shift, rounded=True)
        m.submodules.trom = trom = self.tanh_rom
        tr = trom.read_port()
        t_word = Signal(8, reset_less=True)
        m.d.comb += [tidx.acc.eq(banks[layers[-1].level].hold[0]), tr.addr.eq(tidx.index)]
        m.d.sync += t_word.eq(tr.data)

        # ---------------------------------------------------------------- d1: write / emit
        for l in range(1, L):
            rp, wp = bufs[l]
            nx = layers[l]
            m.d.comb += [
                wp.addr.eq(d1_addr[:len(wp.addr)]),
                wp.data.eq(Cat(*d1_q[:nx.icp])),
                wp.en.eq(d1_valid & eq_const(layer_d, l - 1)),
            ]
        out_max = layers[-1].out_size - 1
        is_last = (pass_ == PASSES - 1) & (d1_oy == out_max) & (d1_ox == out_max)
        m.d.comb += [
            self.pix_valid.eq(d1_valid & (layer_d == L - 1)),
            self.pix_data.eq(Cat(t_word, d1_ox, d1_oy, pass_, is_last)),
        ]

        # ---------------------------------------------------------------- layer / pass control
        in_flight = Cat(*[mt.valid for mt in meta[1:]], cap, d_active, d0_valid, d1_valid).any()
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
