"""The weight store: one ``P × 8``-bit ROM word per step, addressed by (layer, group, tap) and c."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.config import KERNEL, W_BITS, EnginePlan, ceil_log2

#: Words per weight-ROM bank: the depth of a DP16KD in its 1024 × 18 shape.
BANK_DEPTH = 1024
#: Bits of one weight-ROM column: one DP16KD in its 1024 × 18 shape, with its own address register.
COLUMN_BITS = 18
#: Bits per weight-ROM slice: eight columns share one address adder.
SLICE_BITS = 8 * COLUMN_BITS


def tap_layout(plan: EnginePlan) -> data.StructLayout:
    """A decoded step as the weight store and the activation buffers take it: kernel indices
    ``kx``/``ky``, input coordinates ``ix``/``iy``, output-channel group ``g``, input-channel group ``c``."""
    from rtl.config import XY_BITS

    layers = plan.layers
    return data.StructLayout({
        "kx": 2, "ky": 2, "ix": XY_BITS, "iy": XY_BITS,
        "g": range(max(2, max(lp.ocg for lp in layers))),
        "c": range(max(2, max(lp.icg for lp in layers))),
    })


class WeightStore(wiring.Component):
    """The weight ROM of every layer and the pipeline that reads it.

    Word ``base_l + ((g·4 + ky)·4 + kx)·ICG_l + c`` holds the ``P`` weights of one step
    (:func:`rtl.config.plan_engine`). The ROM is cut into banks of :data:`BANK_DEPTH` words (the
    last one padded with zero words) and each bank into columns of :data:`COLUMN_BITS` bits, one
    block RAM each. Every column has its own address register next to it, fed by one adder per
    slice of :data:`SLICE_BITS` bits, so no net drives address pins spread over the die. Every
    column of every bank is read each step and its word registered (the DP16KD output register
    after synthesis, :mod:`gen.bramreg`), registered once more on its way to the bank multiplexer
    (the three banks of a bit may sit far apart), then the bank is chosen.

    Pipeline (:attr:`latency` = 6 cycles from ``tap`` to ``word``):

    1. the (layer, group, tap) constant ``base_l + ((g·4 + ky)·4 + kx)·ICG_l`` from a table, registered;
    2. per slice: ``constant + c`` (its own adder);
    3. per column: the address register, a copy of its slice's (a register tree);
    4. block-RAM read;
    5. the words registered (DP16KD output registers);
    6. the words registered again; ``word`` is the addressed bank's word (a multiplexer after the
       registers, selected by a per-slice copy of the bank number).

    Parameters
    ----------
    plan : EnginePlan

    Attributes
    ----------
    banks : list of list of Memory
        ``banks[b][k]``: bank ``b``, column ``k`` (bits ``[k·COLUMN_BITS, (k+1)·COLUMN_BITS)``).

    Members
    -------
    layer : In(range(L))
        The layer in progress (constant while its steps are in flight).
    tap : In(tap_layout(plan))
        The decoded step.
    word : Out(P × 8)
        Its weights, lane ``j`` in bits ``[8j, 8j+8)``, :attr:`latency` cycles later.
    """

    def __init__(self, plan: EnginePlan):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        self.plan = plan
        words = list(plan.weight_rom)
        if len(words) > BANK_DEPTH:            # every bank full depth: no bank is read out of range
            words += [0] * (-len(words) % BANK_DEPTH)
        width = plan.lanes * W_BITS
        self.banks = [
            [Memory(shape=unsigned(min(COLUMN_BITS, width - lo)), depth=len(words[b:b + BANK_DEPTH]),
                    init=[(w >> lo) & ((1 << COLUMN_BITS) - 1) for w in words[b:b + BANK_DEPTH]])
             for lo in range(0, width, COLUMN_BITS)]
            for b in range(0, len(words), BANK_DEPTH)]
        super().__init__({
            "layer": In(range(max(2, len(plan.layers)))),
            "tap": In(tap_layout(plan)),
            "word": Out(width),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``tap`` to ``word``: ``1 (table) + 1 (slice adders) + 1 (column addresses) + 1 (read)
        + 1 (word registers) + 1 (registers before the bank multiplexer) = 6``."""
        return 6

    def elaborate(self, platform):
        plan, layers = self.plan, self.plan.layers
        P = plan.lanes
        width = P * W_BITS
        m = Module()
        n_banks, n_cols = len(self.banks), len(self.banks[0])
        n_slices = -(-width // SLICE_BITS)
        per_slice = SLICE_BITS // COLUMN_BITS
        rom_words = max(2, len(plan.weight_rom))
        bank_bits = ceil_log2(BANK_DEPTH)

        # 1: the (layer, group, tap) constant; c follows it one stage later.
        base = Signal(range(rom_words), name="w_base", reset_less=True)
        c_1 = Signal.like(self.tap.c, name="c_1", reset_less=True)
        m.d.sync += c_1.eq(self.tap.c)
        tapidx = Cat(self.tap.kx, self.tap.ky, self.tap.g)
        with m.Switch(self.layer):
            for l, lp in enumerate(layers):
                with m.Case(l):
                    with m.Switch(tapidx):
                        for t in range(lp.ocg * KERNEL * KERNEL):
                            with m.Case(t):
                                m.d.sync += base.eq(lp.weight_base + t * lp.icg)

        # 2: one adder per slice; 3: one address register per column (all kept apart in yosys by
        # gen/ilpatch.py keep_registers, which would otherwise merge the equal copies).
        sums = [Signal(range(rom_words), name=f"w_sum{sl}", reset_less=True, attrs={"keep": 1})
                for sl in range(n_slices)]
        m.d.sync += [sm.eq(base + c_1) for sm in sums]
        raw = []
        for b, bank in enumerate(self.banks):
            data_b = []
            for k, mem in enumerate(bank):
                m.submodules[f"wrom{b}_{k}"] = mem
                addr = Signal(bank_bits, name=f"w_addr{b}_{k}", reset_less=True, attrs={"keep": 1})
                m.d.sync += addr.eq(sums[k // per_slice][:bank_bits])
                rp = mem.read_port()
                m.d.comb += rp.addr.eq(addr)
                data_b.append(rp.data)
            # 4, 5: read, then the registered word (absorbed into the DP16KD output registers).
            r = Signal(width, name=f"w_raw{b}", reset_less=True)
            m.d.sync += r.eq(Cat(*data_b))
            # 6: registered again before the bank multiplexer.
            r2 = Signal(width, name=f"w_pre{b}", reset_less=True)
            m.d.sync += r2.eq(r)
            raw.append(r2)
        if n_banks == 1:
            m.d.comb += self.word.eq(raw[0])
        else:
            # The bank number of the word read, per slice, one register per stage, so that it
            # arrives with the registered words.
            for sl in range(n_slices):
                stages = [Signal(range(n_banks), name=f"bank{i}_{sl}", reset_less=True, attrs={"keep": 1})
                          for i in range(4)]
                m.d.sync += stages[0].eq(sums[sl][bank_bits:])
                m.d.sync += [stages[i].eq(stages[i - 1]) for i in range(1, 4)]
                lo, hi = sl * SLICE_BITS, min(width, (sl + 1) * SLICE_BITS)
                with m.Switch(stages[-1]):
                    for b in range(n_banks):
                        with m.Case(b):
                            m.d.comb += self.word[lo:hi].eq(raw[b][lo:hi])
        return m
