"""The drain: a pixel's sums, one word a cycle, requantised into the next layer's buffer or Tanh'd into a pixel."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from base.contract import PIXEL_BITS
from rtl.config import ACT_BITS, TANH_BITS, XY_BITS, EnginePlan
from rtl.layouts import pixel_layout
from rtl.hdlutil import case_or_default, eq_const
from rtl.requant import RequantBits, Saturate, TanhIndex, requant_layout
from rtl.sequencer import PASSES, step_layout

class Drain(wiring.Component):
    """Drains the hold bank of the layer in progress after each pixel's last step.

    Layer ``l`` drains ``NW_l = OCP_l / ICP_(l+1)`` words per (pixel, group), one per cycle, from
    ``hold[0 .. ICP_(l+1))`` of its accumulator bank (the bank shifts itself): dh registers, for
    every layer and front word, the first half of rule 3 (:class:`rtl.requant.RequantBits`: the
    shifted bits and the saturation flags; rounding constant already in the bias) where the words
    are, d0 the layer's word and its buffer address, d1 the requantised activations (the second
    half, :class:`rtl.requant.Saturate`: ReLU and saturation), which are written into layer
    ``l+1``'s input buffer. The last
    layer's single word goes through the Tanh index (rule 4) from its front register into the
    Tanh ROM, whose registered output meets d1: a pixel word.

    Parameters
    ----------
    plan : EnginePlan
    width : int
        Accumulator width.
    banks : dict of int to int
        Accumulators of each tree level's bank.

    Attributes
    ----------
    tanh_rom : Memory
        The 2048-entry Tanh table.

    Members
    -------
    layer : In(range(L)), pass_index : In(2)
        The layer and pass in progress.
    cap : In(1)
        A pixel's sums are captured into its bank's hold registers this cycle.
    cap_step : In(step_layout(plan))
        That pixel's step metadata (``gw``, ``oy``, ``ox``).
    hold<k> : In(ArrayLayout(signed(width), n_k))
        The hold bank of tree level ``k``.
    write_en : Out(L)
        Bit ``l``: write ``write_addr``/``write_data`` into the input buffer of layer ``l`` (``l ≥ 1``).
    write_addr : Out(ArrayLayout(unsigned(addr_w), L))
        Element ``l``: the word address ``((iy·in + ix) << icg_bits) | c`` for the buffer of layer
        ``l`` (``l ≥ 1``; a register per buffer, element 0 unused).
    write_data : Out(ICP × 16)
        The activations.
    pix_valid : Out(1), pix_data : Out(pixel_layout())
        A pixel word of the last layer.
    busy : Out(1)
        Drain words are in progress (the pipeline is not empty).
    """

    def __init__(self, plan: EnginePlan, width: int, banks: dict):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        for lp in plan.layers:
            if lp.level not in banks or banks[lp.level] < lp.ocp:
                self._MustUse__silence = True
                raise ValueError(f"banks: level {lp.level} needs at least {lp.ocp} accumulators for layer {lp.index + 1}")
        self.plan, self.width, self.banks = plan, width, dict(banks)
        layers = plan.layers
        L = len(layers)
        self.tanh_rom = Memory(shape=unsigned(PIXEL_BITS), depth=1 << TANH_BITS, init=plan.tanh_lut)
        addr_w = max(1, max(ceil_log2(plan.buffer_shape(l)[1]) for l in range(1, L)))
        super().__init__({
            "layer": In(range(max(2, L))),
            "pass_index": In(2),
            "cap": In(1),
            "cap_step": In(step_layout(plan)),
            **{f"hold{k}": In(data.ArrayLayout(signed(width), n)) for k, n in sorted(self.banks.items())},
            "write_en": Out(L),
            "write_addr": Out(data.ArrayLayout(unsigned(addr_w), L)),
            "write_data": Out(max(lp.icp for lp in layers[1:]) * ACT_BITS),
            "pix_valid": Out(1),
            "pix_data": Out(pixel_layout()),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from a word's turn at the front of the hold bank to its write or pixel: ``3`` (the
        front registers dh, then d0 and d1); a pixel's ``NW`` words take ``NW + 3`` cycles after ``cap``."""
        return 3

    def elaborate(self, platform):
        plan, layers = self.plan, self.plan.layers
        L, A = len(layers), self.width
        icpn = [layers[l + 1].icp if l + 1 < L else 1 for l in range(L)]     # lanes of a drain word
        m = Module()

        # The drain's copy of the layer (one cycle late: safe, the layer only changes while idle).
        layer_d = Signal.like(self.layer, name="layer_d", attrs={"keep": 1})
        m.d.sync += layer_d.eq(self.layer)
        nw_last = Signal(range(max(2, max(lp.drain_words for lp in layers))))
        with m.Switch(layer_d):
            for l, lp in enumerate(layers):
                with m.Case(l):
                    m.d.comb += nw_last.eq(lp.drain_words - 1)

        hmeta = Signal.like(self.cap_step, reset_less=True)
        with m.If(self.cap):
            m.d.sync += hmeta.eq(self.cap_step)
        d_active = Signal()
        d_j = Signal.like(nw_last)
        with m.If(self.cap):
            m.d.sync += [d_active.eq(1), d_j.eq(0)]
        with m.Elif(d_active):
            with m.If(d_j == nw_last):
                m.d.sync += d_active.eq(0)
            with m.Else():
                m.d.sync += d_j.eq(d_j + 1)

        # dh: for every layer but the last and each of its drain words, the requantiser's first half
        # (the shifted bits and the saturation flags, RequantBits) from the word's hold register,
        # registered where it is: the wide OR of the upper bits is done beside the accumulator and
        # the route to the drain's one place is a pure register hop of 18 bits, not 35 followed by
        # the OR and the layer's select (a 96.3 MHz run's late family, 9.8 ns). The last layer's
        # word is registered as its Tanh index, computed the same way (below).
        lanes_out = max(icpn)
        bits = {}
        for l in range(L - 1):
            hold = getattr(self, f"hold{layers[l].level}")
            for i in range(icpn[l]):
                rb = RequantBits(A, layers[l].shift, rounded=True)
                m.submodules[f"rb{l}_{i}"] = rb
                bits[(l, i)] = Signal(requant_layout(), name=f"rbits{l}_{i}", reset_less=True)
                m.d.comb += rb.acc.eq(hold[i])
                m.d.sync += bits[(l, i)].eq(rb.out)
        # The last layer's word: its Tanh index (rule 4), computed beside the hold register and
        # registered, so the hop to the table's address pins is a register's (the index logic in
        # front of those pins, 4 LUT levels and 7.5 ns of routing, was a 107.8 MHz run's critical path).
        m.submodules.tidx = tidx = TanhIndex(A, layers[-1].shift, rounded=True)
        t_index = Signal(TANH_BITS, name="t_index", reset_less=True)
        m.d.comb += tidx.acc.eq(getattr(self, f"hold{layers[-1].level}")[0])
        m.d.sync += t_index.eq(tidx.index)
        dh_valid = Signal()
        dh_j = Signal.like(d_j)
        dh_meta = Signal.like(hmeta, reset_less=True)       # the next pixel may already be captured
        m.d.sync += [dh_valid.eq(d_active), dh_j.eq(d_j), dh_meta.eq(hmeta)]

        # d0: the layer's word and its buffer address.
        d0_valid = Signal()
        d0_bits = [Signal(requant_layout(), name=f"d0b{i}", reset_less=True) for i in range(lanes_out)]
        d0_addr = Signal(len(self.write_addr[0]), name="d0_addr", reset_less=True)
        d0_oy = Signal(XY_BITS, reset_less=True)
        d0_ox = Signal(XY_BITS, reset_less=True)
        m.d.sync += [d0_valid.eq(dh_valid), d0_oy.eq(dh_meta.oy), d0_ox.eq(dh_meta.ox)]
        # One copy of the layer per drain word selects that word: a single select would steer
        # 32 × 18 flip-flops from one net.
        layer_w = [Signal.like(self.layer, name=f"layer_w{i}", reset_less=True, attrs={"keep": 1})
                   for i in range(lanes_out)]
        m.d.sync += [lw.eq(self.layer) for lw in layer_w]
        # The last layer that uses word i is the default (no case holds the register: a clock
        # enable from the select onto every bit was a 100.3 MHz run's critical path).
        for i in range(lanes_out):
            users = [l for l in range(L - 1) if i < icpn[l]]
            with m.Switch(layer_w[i]):
                for l in users:
                    with case_or_default(m, l, l == users[-1]):
                        m.d.sync += d0_bits[i].eq(bits[(l, i)])
        with m.Switch(layer_d):
            for l, lp in enumerate(layers):
                with m.Case(l):
                    if l + 1 < L:
                        nx = layers[l + 1]
                        word = (dh_meta.gw + dh_j)[:nx.icg_bits]
                        m.d.sync += d0_addr.eq(Cat(word, dh_meta.ox[:nx.in_bits], dh_meta.oy[:nx.in_bits]))

        # d1: the requantiser's second half (Saturate: one LUT level), then written / emitted.
        d1_valid = Signal()
        d1_oy = Signal(XY_BITS, reset_less=True)
        d1_ox = Signal(XY_BITS, reset_less=True)
        d1_q = [Signal(ACT_BITS, name=f"q{i}", reset_less=True) for i in range(lanes_out)]
        m.d.sync += [d1_valid.eq(d0_valid), d1_oy.eq(d0_oy), d1_ox.eq(d0_ox)]
        # The address registered per buffer (one flip-flop set drove the address pins of every
        # buffer's block RAMs, a 105 MHz run's late family: 8.9 ns).
        for l in range(1, L):
            d1_addr = Signal.like(d0_addr, name=f"d1_addr{l}", reset_less=True, attrs={"keep": 1})
            m.d.sync += d1_addr.eq(d0_addr)
            m.d.comb += self.write_addr[l].eq(d1_addr)
        for i in range(lanes_out):
            sat = Saturate()
            m.submodules[f"sat{i}"] = sat
            m.d.comb += sat.inp.eq(d0_bits[i])
            m.d.sync += d1_q[i].eq(sat.out)
        # Tanh: the last layer drains one word (NW_L = 1), so the table is addressed from its index
        # register directly, one stage before d0, and its word is registered (the DP16KD output
        # register after synthesis); it reaches d1 like the requantised words.
        m.submodules.trom = trom = self.tanh_rom
        tr = trom.read_port()
        t_word = Signal(PIXEL_BITS, reset_less=True)
        m.d.comb += tr.addr.eq(t_index)
        m.d.sync += t_word.eq(tr.data)

        # The write enables registered, one per buffer, from d0 (the layer does not change during a
        # drain): a flip-flop drives the buffer's block-RAM pins, not a LUT (a 78.8 MHz run's
        # critical path: d1_valid through a LUT to a buffer RAM 32 columns away).
        for l in range(1, L):
            we = Signal(name=f"we{l}", attrs={"keep": 1})
            m.d.sync += we.eq(d0_valid & eq_const(layer_d, l - 1))
            m.d.comb += self.write_en[l].eq(we)
        m.d.comb += self.write_data.eq(Cat(*d1_q))
        out_max = layers[-1].out_size - 1
        is_last = (self.pass_index == PASSES - 1) & (d1_oy == out_max) & (d1_ox == out_max)
        m.d.comb += [
            self.pix_valid.eq(d1_valid & (layer_d == L - 1)),
            self.pix_data.pixel.eq(t_word),
            self.pix_data.x.eq(d1_ox),
            self.pix_data.y.eq(d1_oy),
            self.pix_data.plane.eq(self.pass_index),
            self.pix_data.last.eq(is_last),
            self.busy.eq(d_active | dh_valid | d0_valid | d1_valid),
        ]
        return m
