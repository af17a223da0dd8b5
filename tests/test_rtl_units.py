"""Block-level tests of the RTL in amaranth.sim, bit-exact against the integer golden model."""

import dataclasses

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from golden.fixed import pass_inputs, requantize_relu, tanh_index
from golden.qmodel import tanh_table
from golden.random_models import random_qmodel
from rtl.config import pack_words
from rtl.mult import Multiplier, check_mult_kind
from rtl.passinput import PassInput
from rtl.requant import Requantiser, TanhIndex


def _edge_accs(width, shift, rng, n=300):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    half = 1 << (shift - 1)
    edges = [lo, lo + 1, hi, hi - 1, 0, 1, -1, half, half - 1, -half, -half - 1,
             (65535 << shift) - half - 1, (65535 << shift) - half, (65535 << shift) + half,
             (1023 << shift) - half, (1023 << shift) - half - 1, (-1024 << shift) - half, (-1024 << shift) - half - 1]
    edges = [e for e in edges if lo <= e <= hi]
    return np.array(edges + list(rng.integers(lo, hi, n, endpoint=True)), dtype=np.int64)


def _run_comb(dut, inp, outp, values):
    got = []

    async def tb(ctx):
        for v in values:
            ctx.set(inp, int(v))
            got.append(ctx.get(outp))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, dtype=np.int64)


@pytest.mark.parametrize("width,shift", [(33, 10), (34, 13), (33, 1), (40, 20), (8, 1), (12, 5)])
@pytest.mark.parametrize("rounded", [False, True], ids=["plain", "rounded"])
def test_requantiser_matches_golden(width, shift, rounded):
    """``rounded``: the input carries the rounding constant (one bit wider), as the engine feeds it."""
    accs = _edge_accs(width, shift, np.random.default_rng(width + shift))
    dut = Requantiser(width + 1, shift, rounded=True) if rounded else Requantiser(width, shift)
    got = _run_comb(dut, dut.acc, dut.out, accs + (1 << (shift - 1)) if rounded else accs)
    assert np.array_equal(got, requantize_relu(accs, shift))


def test_requantiser_check_catches_wrong_shift():
    """The comparison used above fails on a wrong answer (the requantiser built with shift + 1)."""
    accs = _edge_accs(33, 10, np.random.default_rng(1))
    dut = Requantiser(33, 11)
    got = _run_comb(dut, dut.acc, dut.out, accs)
    assert not np.array_equal(got, requantize_relu(accs, 10))


@pytest.mark.parametrize("width,shift", [(33, 13), (33, 1), (35, 20), (8, 1), (14, 5)])
@pytest.mark.parametrize("rounded", [False, True], ids=["plain", "rounded"])
def test_tanh_index_matches_golden(width, shift, rounded):
    accs = _edge_accs(width, shift, np.random.default_rng(shift))
    dut = TanhIndex(width + 1, shift, rounded=True) if rounded else TanhIndex(width, shift)
    got = _run_comb(dut, dut.acc, dut.index, accs + (1 << (shift - 1)) if rounded else accs)
    assert np.array_equal(got, tanh_index(accs, shift) + 1024)


def test_tanh_table_in_plan_is_rule_5():
    from rtl.config import plan_engine

    qm = random_qmodel((8, 8, 4, 4, 1), seed=0, n_calib=4)
    plan = plan_engine(qm, 16)
    assert plan.tanh_lut == [int(x) for x in tanh_table()]


@pytest.mark.parametrize("bad", [dict(width=1, shift=1), dict(width=33, shift=0), dict(width=33, shift=33)])
def test_requantiser_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        Requantiser(bad["width"], bad["shift"])


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_pass_input_three_passes_saturate(lanes):
    """u_0 = z, u_1 = sat(z + v1), u_2 = sat(z + v2), including saturation at both ends."""
    nz = 8
    qm = random_qmodel((nz, 8, 4, 4, 1), seed=2, n_calib=4)
    v = np.array([[32767, -32768, 20000, -20000, 5, -5, 0, 100],
                  [-32768, 32767, -20000, 20000, -7, 7, 1, -100]], dtype=np.int16)
    qm = dataclasses.replace(qm, v=v)
    zq = np.array([[32767, -32768, 20000, -20000, 32767, -32768, -1, 0]], dtype=np.int64)
    want = pass_inputs(qm, zq)[0]                      # (3, nz)
    v_rom = [pack_words(v[p, c * lanes:(c + 1) * lanes], 16) for p in range(2) for c in range(nz // lanes)]
    dut = PassInput(nz, lanes, v_rom)
    got = np.zeros((3, nz), dtype=np.int64)

    async def tb(ctx):
        for i in range(nz):
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_index, i)
            ctx.set(dut.w_data, int(zq[0, i]))
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        for p in range(3):
            for a in range(nz // lanes):
                ctx.set(dut.r_addr, a)
                ctx.set(dut.r_pass, p)
                await ctx.tick().repeat(dut.latency)
                word = ctx.get(dut.r_data)
                for i in range(lanes):
                    x = (word >> (16 * i)) & 0xFFFF
                    got[p, a * lanes + i] = x - 0x10000 if x & 0x8000 else x

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert np.array_equal(got, want)
    assert (np.abs(want[1:]) == 32768).any() or (want[1:] == 32767).any()   # saturation was exercised


def test_multiplier_latency_and_enable():
    dut = Multiplier(17, 8)
    assert dut.latency == 2
    out = []

    async def tb(ctx):
        seq = [(-65536, -128), (65535, 127), (-3, 5), (7, -1)]
        for a, b in seq:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            await ctx.tick()
            out.append(ctx.get(dut.p))
        ctx.set(dut.en, 0)
        ctx.set(dut.a, 1)
        await ctx.tick()
        await ctx.tick()
        out.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    # out[i] is observed after i+1 edges: the product of step i-1 (latency 2).
    assert out[1] == -65536 * -128 and out[2] == 65535 * 127 and out[3] == -15
    assert out[4] == out[3] == -15   # the product register holds while en is low


def test_multiplier_ecp5_instantiates_dsp():
    text = rtlil.convert(Multiplier(17, 8, "ecp5"), name="m")
    assert "MULT18X18D" in text and "REG_OUTPUT_CLK" in text and "REG_INPUTA_CLK" in text
    with pytest.raises(ValueError):
        check_mult_kind("dsp48")



@pytest.mark.parametrize("width,shift", [(33, 10), (40, 20), (36, 13)])
def test_requant_bits_flags_are_rule_3s_cases(width, shift):
    """The first half alone (the drain registers it beside the accumulator): ``neg`` where the
    shifted value is negative, ``over`` where it does not fit 16 bits, ``r`` its low 16 bits.
    (The two halves composed are :class:`Requantiser`, checked against rule 3 above.)"""
    from rtl.requant import RequantBits

    accs = _edge_accs(width, shift, np.random.default_rng(width * shift))
    shifted = accs >> shift                      # rshift_rnd without the constant: ``rounded`` input
    dut = RequantBits(width, shift, rounded=True)
    neg = _run_comb(dut, dut.acc, dut.out.neg, accs).astype(bool)
    over = _run_comb(dut, dut.acc, dut.out.over, accs).astype(bool)
    r = _run_comb(dut, dut.acc, dut.out.r, accs)
    assert neg.any() and (~neg & over).any() and (~neg & ~over).any()   # the cases all occur
    assert np.array_equal(neg, shifted < 0)
    assert np.array_equal(over[~neg], shifted[~neg] >= 1 << 16)
    assert np.array_equal(r, shifted & 0xFFFF)


def test_mac_array_levels_arrive_after_level_delay():
    """Each tree level a layer reads arrives ``latency + level_delay(k)`` edges after its operands:
    the cycle the engine's metadata pipeline and the cycle model assume (``D(k) = 2k - 1``). Counted
    in simulation from all-zero operands to the first non-zero node, for every layer of a plan."""
    from rtl.config import plan_engine
    from rtl.mac import MacArray, level_delay

    plan = plan_engine(random_qmodel((8, 32, 8, 4, 1), seed=5, n_calib=4), 16)
    assert [level_delay(k) for k in range(4)] == [0, 1, 3, 5]
    with pytest.raises(ValueError, match="k must be"):
        level_delay(-1)
    arrived, expected = {}, {}
    for l, lp in enumerate(plan.layers):
        dut = MacArray(plan)
        expected[l] = dut.latency + level_delay(lp.level)
        node = getattr(dut, f"level{lp.level}")[0]

        async def tb(ctx, l=l, node=node, dut=dut):
            ctx.set(dut.layer, l)
            for n in range(40):
                await ctx.tick()
                if n == 2:                    # operands: every activation bit set, every weight code 1
                    ctx.set(dut.x.as_value(), (1 << len(dut.x.as_value())) - 1)
                    ctx.set(dut.w, sum(1 << (plan.w_bits * j) for j in range(plan.lanes)))
                if ctx.get(node) != 0:
                    arrived[l] = n - 2
                    return

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(tb)
        sim.run()
    assert arrived == expected and len({lp.level for lp in plan.layers}) > 1
