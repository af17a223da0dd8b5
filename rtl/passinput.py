"""Pass inputs u_p of NUMERICS.md rule 1: z RAM, v ROM and the saturating add."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import ACT_BITS
from rtl.hdlutil import eq_const


class PassInput(wiring.Component):
    """Holds z and forms ``u_0 = z``, ``u_1 = sat_S16(z + v1)``, ``u_2 = sat_S16(z + v2)`` on the fly.

    z is written one element at a time; it is read ``lanes`` elements (one word) at a time.

    Parameters
    ----------
    nz : int
        Length of z.
    lanes : int
        Elements per read word (``icp`` of layer 1); must divide ``nz``.
    v_rom : list of int
        ``2 · nz / lanes`` words (v1 words, then v2 words), ``lanes × 16`` bits, two's complement lanes.

    Members
    -------
    w_en : In(1)
        Write ``w_data`` into element ``w_index`` of z, one cycle later: the three are registered
        in front of the RAM (the source of z, e.g. the board's z buffer, may be anywhere on the
        die; the engine reads z no earlier than three cycles after its start, which follows the
        last z word).
    w_index : In(range(nz))
    w_data : In(signed(16))
    r_addr : In(range(nz // lanes))
        Word to read.
    r_pass : In(2)
        Pass 0, 1 or 2 (sampled with ``r_addr``).
    r_data : Out(unsigned(lanes × 16))
        ``u_p`` lanes (two's complement, element ``r_addr·lanes + i`` in bits ``[16i, 16i+16)``),
        :attr:`latency` cycles after ``r_addr``.

    The z and v words are registered after their reads (z: the DP16KD's output register after
    synthesis; v: a ROM in logic, read through its address register), the 17-bit sum is
    registered, and the saturation and the pass's choice (z or the saturated sum) are registered
    into ``r_data``: the carry chain and the choice are a stage each (the two in one stage, from
    the RAMs' output registers, were a 99.8 MHz run's critical path, 10.0 ns).
    """

    def __init__(self, nz: int, lanes: int, v_rom: list):
        if not isinstance(nz, int) or nz < 1:
            raise ValueError(f"nz must be a positive integer, got {nz!r}")
        if not isinstance(lanes, int) or lanes < 1 or nz % lanes:
            raise ValueError(f"lanes must be a positive divisor of nz={nz}, got {lanes!r}")
        if len(v_rom) != 2 * (nz // lanes):
            raise ValueError(f"v_rom must have {2 * (nz // lanes)} words, got {len(v_rom)}")
        self.nz, self.lanes, self.v_rom = nz, lanes, list(v_rom)
        self.words = nz // lanes
        super().__init__({
            "w_en": In(1),
            "w_index": In(range(nz)),
            "w_data": In(signed(ACT_BITS)),
            "r_addr": In(range(max(2, self.words))),
            "r_pass": In(2),
            "r_data": Out(unsigned(lanes * ACT_BITS)),
        })

    @property
    def latency(self) -> int:
        """4 cycles from ``r_addr`` to ``r_data``: synchronous RAM/ROM read, z/v registers, the sum
        register, then saturation and the pass's choice into the output register (``r_data`` is a
        register)."""
        return 4

    def elaborate(self, platform):
        m = Module()
        L, W = self.lanes, ACT_BITS
        abits = max(1, ceil_log2(self.words))
        pad = [0] * ((1 << abits) - self.words)
        # z is written only while the engine is idle, when the data read is not used: no_rw_check
        # stops yosys from adding read-during-write bypass logic after the block RAM.
        m.submodules.zram = zram = Memory(shape=unsigned(L * W), depth=self.words, init=[],
                                          attrs={"no_rw_check": 1})
        # v ROM: v1 words at 0, v2 words at 2**abits, so the address is (pass == 2, r_addr): no adder.
        v_init = self.v_rom[:self.words] + pad + self.v_rom[self.words:] + pad
        # In logic, not a block RAM: a read-only DP16KD in the 36-bit shape has no write clock, so
        # its output register cannot be used (gen/bramreg.py), and its 5.8 ns clock-to-output plus
        # the hop to v_r was a 128-lane run's critical path (8.4 ns, 119 MHz). A few hundred LUTs.
        m.submodules.vrom = vrom = Memory(shape=unsigned(L * W), depth=len(v_init), init=v_init,
                                          attrs={"rom_style": "logic"})
        wp = zram.write_port(granularity=W)
        zr = zram.read_port()
        w_en = Signal(name="w_en_r")
        w_index = Signal.like(self.w_index, name="w_index_r", reset_less=True)
        w_data = Signal.like(self.w_data, name="w_data_r", reset_less=True)
        m.d.sync += [w_en.eq(self.w_en), w_index.eq(self.w_index), w_data.eq(self.w_data)]
        vr = vrom.read_port()
        lane_bits = ceil_log2(L)
        if L > 1:
            m.d.comb += wp.addr.eq(w_index >> lane_bits) if L & (L - 1) == 0 else wp.addr.eq(w_index // L)
            sel = w_index[:lane_bits] if L & (L - 1) == 0 else w_index % L
            for i in range(L):
                m.d.comb += wp.en[i].eq(w_en & eq_const(sel, i))
        else:
            m.d.comb += [wp.addr.eq(w_index), wp.en.eq(w_en)]
        m.d.comb += wp.data.eq(w_data.as_unsigned().replicate(L))

        pass_1 = Signal(2, reset_less=True)
        pass_2 = Signal(2, reset_less=True)
        pass_3 = Signal(2, reset_less=True)
        z_r = Signal(L * W, reset_less=True)
        v_r = Signal(L * W, reset_less=True)
        m.d.comb += [zr.addr.eq(self.r_addr), vr.addr.eq(Cat(self.r_addr[:abits], self.r_pass == 2))]
        m.d.sync += [pass_1.eq(self.r_pass), pass_2.eq(pass_1), pass_3.eq(pass_2), z_r.eq(zr.data),
                     v_r.eq(vr.data)]
        out = Signal(L * W, reset_less=True)
        m.d.comb += self.r_data.eq(out)
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
        for i in range(L):
            z = z_r[i * W:(i + 1) * W].as_signed()
            v = v_r[i * W:(i + 1) * W].as_signed()
            s = Signal(signed(W + 1), name=f"sum{i}", reset_less=True)
            z_3 = Signal(signed(W), name=f"z{i}", reset_less=True)
            m.d.sync += [s.eq(z + v), z_3.eq(z)]
            # Overflow of a 16-bit sum shows in its top two bits: one carry chain, no comparators.
            sat = Mux(s[W] == s[W - 1], s[:W], Mux(s[W], lo, hi))
            m.d.sync += out[i * W:(i + 1) * W].eq(Mux(eq_const(pass_3, 0), z_3, sat))
        return m
