"""The weight store: one ``P × b``-bit ROM word per step (``b`` = 8, or a codebook index width), addressed by (layer, group, tap) and c."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import KERNEL, EnginePlan
from rtl.hdlutil import case_or_default
from rtl.mac import LANES_PER_COLUMN, lane_position

#: Words per weight-ROM bank: the depth of a DP16KD in its 1024 × 18 shape.
BANK_DEPTH = 1024
#: Bits per DP16KD in the 1024 × 18 shape: slices are cut at multiples of it.
RAM_BITS = 18
#: Bits per weight-ROM slice: two DP16KD in their 1024 × 18 shape share one address register. With
#: eight, a slice's RAMs served lanes in two DSP rows, placed 24 tile rows apart, and its address
#: register reached them through one 7.9 ns net (a late family at 128 lanes).
SLICE_BITS = 2 * RAM_BITS


def slice_ranges(width: int) -> list[tuple[int, int]]:
    """The bit ranges ``[lo, hi)`` of the weight ROM's slices for a ``width``-bit word.

    The word is cut at the block-RAM boundary nearest its middle, and each half into slices of
    :data:`SLICE_BITS` (the last one of a half shorter), so that no slice's block RAMs serve lanes of both halves of the array (the floorplan,
    :mod:`gen.floorplan`, puts the two halves on either side of the die's centre, and a slice has
    one address register). The cut costs no block RAM: it falls on a RAM boundary.
    """
    mid = width // 2
    base = mid - mid % SLICE_BITS
    cut = base + RAM_BITS * round((mid - base) / RAM_BITS)
    halves = [(0, cut), (cut, width)] if 0 < cut < width else [(0, width)]
    return [(lo, min(lo + SLICE_BITS, end)) for start, end in halves for lo in range(start, end, SLICE_BITS)]


def storage_order(lanes: int) -> list[int]:
    """The lanes in the order the weight ROM stores their weights: by half of the array, then by DSP
    row, a row's lanes in column order (:func:`rtl.mac.lane_position`), snaking so that consecutive
    lanes are neighbours on the die: the first half's rows top to bottom, ending at the centre
    (edge → centre, centre → edge, edge → centre), the second half's bottom to top, starting there
    (centre → edge, edge → centre, centre → edge).
    A block RAM then holds the weights of lanes in one DSP row (or in two neighbouring rows at a
    turn, or the two rows beside the centre at the word's middle), and the floorplan puts it in the
    block-RAM row next to that DSP row, 12 tiles away on the 85F, where lanes in plain order would
    give every RAM lanes in all three DSP rows, up to 72 tiles away (:mod:`gen.floorplan`; a tile
    row costs about 0.18 ns of routing against 0.10 ns per column, docs/RESULTS.md).
    """
    def key(j):
        half, col, row = lane_position(lanes, j)
        r = row if half == 0 else LANES_PER_COLUMN - 1 - row      # the row's turn within its half
        # centre -> edge or edge -> centre: the first half ends, the second starts, at the centre
        outward = (LANES_PER_COLUMN - r) % 2 == 0 if half == 0 else r % 2 == 0
        return half, r, col if outward else -col
    return sorted(range(lanes), key=key)


def tap_layout(plan: EnginePlan) -> data.StructLayout:
    """A decoded step as the weight store and the activation buffers take it: kernel indices
    ``kx``/``ky``, input coordinates ``ix``/``iy``, output-channel group ``g``, input-channel group ``c``;
    in a tap-parallel layer ``kx``/``ky`` are the pixel's phases ``px``/``py`` (its weight word), ``ix``/``iy`` the
    input position read ahead (:data:`rtl.config.TP_LEAD`), ``rs`` its row slot and ``rz`` high when
    that row lies outside the input (the window gets zeros)."""
    from rtl.config import XY_BITS

    layers = plan.layers
    return data.StructLayout({
        "kx": 2, "ky": 2, "ix": XY_BITS, "iy": XY_BITS,
        "g": range(max(2, max(lp.ocg for lp in layers))),
        "c": range(max(2, max(lp.icg for lp in layers))),
        "rs": 1, "rz": 1,
    })


class WeightStore(wiring.Component):
    """The weight ROM of every layer and the pipeline that reads it.

    Word ``base_l + ((g·4 + ky)·4 + kx)·ICG_l + c`` holds the ``P`` weights of one step
    (:func:`rtl.config.plan_engine`); a tap-parallel layer's word is ``base_l + py·2 + px``. The ROM is cut into banks of :data:`BANK_DEPTH` words (the
    last one padded with zero words) and each bank into slices of at most :data:`SLICE_BITS` bits
    (:func:`slice_ranges`), every slice with its own address register, so one register drives the address pins of a few block
    RAMs, not all of them. Every slice of every bank is read each step and its word registered (the
    DP16KD output register after synthesis, :mod:`gen.bramreg`); the bank is chosen after those
    registers.

    Pipeline (:attr:`latency` = 7 cycles from ``tap`` to ``word``):

    0. the step's tap index, ``c`` and the layer copied once per half of the array and DSP row of
       the slices' lanes (a pure register hop from the sequencer: with the tables fed straight
       from it, a table sat between the sequencer and its slices and reached them through a
       6.6 ns net, a 125 MHz run's critical path);
    1. the (group, tap) constant ``base_l + ((g·4 + ky)·4 + kx)·ICG_l`` of every layer ``l`` from
       its own table, registered, with ``c`` and the layer beside them: one set of tables per half
       of the array and DSP row of the slices' lanes;
    2. per slice, the layer's constant picked from those registers (a 4:1 multiplexer) and
       registered, and a copy of ``c``: a table is a function of the tap alone, and the layer's
       choice is one multiplexer level after a register (one table of (layer, group, tap) was
       four LUT levels after the sequencer's registers, a 126 MHz run's critical path: 7.9 ns);
    3. one address register per slice and bank, each with its own adder ``constant + c``;
    4. block-RAM read;
    5. the words registered (the DP16KD output registers);
    6. the addressed bank's word registered (a bank multiplexer after the registers, selected by a
       per-slice copy of the bank number, then a register beside the slice's lanes): no memory
       output and no multiplexer drives a long wire in the same cycle.

    Parameters
    ----------
    plan : EnginePlan

    Attributes
    ----------
    banks : list of list of Memory
        ``banks[b][s]``: bank ``b``, slice ``s`` (bits ``slice_ranges(P · b)[s]`` of the stored word,
        whose lane ``order[i]`` is in bits ``[b·i, b·(i+1))``).
    order : list of int
        :func:`storage_order`.

    Members
    -------
    layer : In(range(L))
        The layer in progress (constant while its steps are in flight).
    tap : In(tap_layout(plan))
        The decoded step.
    word : Out(P × plan.w_bits)
        Its weights, lane ``j`` in bits ``[b·j, b·(j+1))`` (``b = plan.w_bits``: 8-bit codes, or
        codebook indices that the MAC array looks up), :attr:`latency` cycles later.
    """

    def __init__(self, plan: EnginePlan):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        self.plan = plan
        self.order = storage_order(plan.lanes)
        b, mask = plan.w_bits, (1 << plan.w_bits) - 1
        words = [sum(((w >> (b * j)) & mask) << (b * i) for i, j in enumerate(self.order)) for w in plan.weight_rom]
        if len(words) > BANK_DEPTH:            # every bank full depth: no bank is read out of range
            words += [0] * (-len(words) % BANK_DEPTH)
        width = plan.lanes * plan.w_bits
        self.slices = slice_ranges(width)
        self.banks = [
            [Memory(shape=unsigned(hi - lo), depth=len(words[b:b + BANK_DEPTH]),
                    init=[(w >> lo) & ((1 << (hi - lo)) - 1) for w in words[b:b + BANK_DEPTH]])
             for lo, hi in self.slices]
            for b in range(0, len(words), BANK_DEPTH)]
        super().__init__({
            "layer": In(range(max(2, len(plan.layers)))),
            "tap": In(tap_layout(plan)),
            "word": Out(width),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``tap`` to ``word``: ``1 (step copies) + 1 (tables) + 1 (layer pick) + 1 (address)
        + 1 (read) + 1 (word register) + 1 (bank-multiplexer register) = 7``."""
        return 7

    def elaborate(self, platform):
        plan, layers = self.plan, self.plan.layers
        P = plan.lanes
        m = Module()
        n_banks, n_slices = len(self.banks), len(self.banks[0])
        rom_words = max(2, len(plan.weight_rom))

        # 0, 1: the step copied per half of the array and DSP row of the lanes whose slices it feeds,
        # then every layer's (group, tap) constant from its own table, with c and the layer
        # registered beside them (a single table output reaching every slice's copy across the die
        # was a 99.8 MHz run's late family, 8.9 ns on one net).
        def table(tag):
            # 0: this set's copy of the step (``keep``: yosys would merge the copies of equal inputs)
            kw = {"reset_less": True, "attrs": {"keep": 1}}
            tapidx_0 = Signal(len(self.tap.kx) + len(self.tap.ky) + len(self.tap.g), name=f"w_tap_{tag}", **kw)
            c_0 = Signal.like(self.tap.c, name=f"c_0_{tag}", **kw)
            layer_0 = Signal.like(self.layer, name=f"w_layer0_{tag}", **kw)
            m.d.sync += [tapidx_0.eq(Cat(self.tap.kx, self.tap.ky, self.tap.g)), c_0.eq(self.tap.c),
                         layer_0.eq(self.layer)]
            bases = []
            for l, lp in enumerate(layers):
                base = Signal(range(rom_words), name=f"w_base_t{tag}_{l}", reset_less=True, attrs={"keep": 1})
                if lp.tp > 1:                          # one word per output phase (kx, ky = px, py)
                    words = [((ph >> 1) * KERNEL + (ph & 1), lp.weight_base + ph) for ph in range(4)]
                else:
                    words = [(t, lp.weight_base + t * lp.icg) for t in range(lp.ocg * KERNEL * KERNEL)]
                # The last case is the default: a tap that never occurs in the layer loads some word
                # instead of holding the register (a hold is a clock enable on every bit).
                with m.Switch(tapidx_0):
                    for i, (t, word) in enumerate(words):
                        with case_or_default(m, t, i == len(words) - 1):
                            m.d.sync += base.eq(word)
                bases.append(base)
            c_1 = Signal.like(self.tap.c, name=f"c_1_{tag}", reset_less=True, attrs={"keep": 1})
            layer_1 = Signal.like(self.layer, name=f"w_layer_{tag}", reset_less=True, attrs={"keep": 1})
            m.d.sync += [c_1.eq(c_0), layer_1.eq(layer_0)]
            return bases, layer_1, c_1

        tables = {}
        wb = plan.w_bits
        for sl, (lo, hi) in enumerate(self.slices):
            half, _, row = lane_position(P, self.order[lo // wb])
            if (half, row) not in tables:
                tables[(half, row)] = table(f"{half}{row}")

        # 2, 3: per slice, the layer's constant and a copy of c, then the address register with its own
        # adder (all kept apart in yosys by gen/ilpatch.py keep_registers).
        # The address register is copied per bank (each copy with its own adder): one copy drives
        # the address pins of the slice's RAMs in one bank (two), not of all its banks, which
        # the floorplan stacks in block-RAM rows up to 60 rows apart.
        addrs, bank_addrs = [], []
        for sl, (lo, hi) in enumerate(self.slices):
            half, _, row = lane_position(P, self.order[lo // wb])
            bases, layer_1, c_1 = tables[(half, row)]
            base_s = Signal.like(bases[0], name=f"w_base{sl}", reset_less=True, attrs={"keep": 1})
            c_s = Signal.like(c_1, name=f"w_c{sl}", reset_less=True, attrs={"keep": 1})
            m.d.sync += c_s.eq(c_1)
            # The last layer as the default: no hold, so no clock enable on the copy's bits.
            with m.Switch(layer_1):
                for l, base in enumerate(bases):
                    with case_or_default(m, l, l == len(bases) - 1):
                        m.d.sync += base_s.eq(base)
            per_bank = []
            for b in range(n_banks):
                a = Signal(range(rom_words), name=f"w_addr{sl}_{b}", reset_less=True, attrs={"keep": 1})
                m.d.sync += a.eq(base_s + c_s)
                per_bank.append(a)
            addrs.append(per_bank[0])
            bank_addrs.append(per_bank)
        bank_bits = ceil_log2(BANK_DEPTH)

        # 4, 5: read every slice of every bank, register the words.
        raw = []
        for b, bank in enumerate(self.banks):
            ports = []
            for sl, mem in enumerate(bank):
                m.submodules[f"wrom{b}_{sl}"] = mem
                rp = mem.read_port()
                m.d.comb += rp.addr.eq(bank_addrs[sl][b][:bank_bits])
                ports.append(rp)
            r = Signal(P * plan.w_bits, name=f"w_raw{b}", reset_less=True)
            m.d.sync += r.eq(Cat(*[rp.data for rp in ports]))
            raw.append(r)
        word = Signal(P * plan.w_bits, name="w_word", reset_less=True)      # in storage order
        pos = {j: i for i, j in enumerate(self.order)}
        m.d.comb += self.word.eq(Cat(*[word[wb * pos[j]:wb * (pos[j] + 1)] for j in range(P)]))
        if n_banks == 1:
            m.d.sync += word.eq(raw[0])
        else:
            # The bank number of the word read (from each slice's address copy), one register per
            # stage, so that it arrives with the registered words.
            for sl in range(n_slices):
                bank_r = Signal(range(n_banks), name=f"bank_r{sl}", reset_less=True, attrs={"keep": 1})
                bank_w = Signal(range(n_banks), name=f"bank_w{sl}", reset_less=True, attrs={"keep": 1})
                m.d.sync += [bank_r.eq(addrs[sl][bank_bits:]), bank_w.eq(bank_r)]
                lo, hi = self.slices[sl]
                # The last bank as the default: a bank number that is no bank (never read) would
                # otherwise hold the register, a clock enable on every bit of the slice.
                with m.Switch(bank_w):
                    for b in range(n_banks - 1):
                        with m.Case(b):
                            m.d.sync += word[lo:hi].eq(raw[b][lo:hi])
                    with m.Default():
                        m.d.sync += word[lo:hi].eq(raw[n_banks - 1][lo:hi])
        return m
