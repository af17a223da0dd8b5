"""The standalone mode's parts in amaranth.sim and NumPy: z source, latent walk, TMDS, serializer, buttons.

The Gaussian source and the walk are compared word for word with their golden twin
(golden/noise.py); the TMDS encoder with golden/tmds.py, written from the DVI 1.0 flowchart, and
decoded back; each reference is itself checked against the definitions (statistics, DC balance,
transition counts).
"""

import random

import numpy as np
import pytest
from amaranth.hdl import DomainRenamer
from amaranth.sim import Simulator

from golden import noise, tmds
from rtl.noise import GaussianSource, LatentWalk
from rtl.standalone import Buttons, Serializer
from rtl.tmds import TMDSEncoder


# --------------------------------------------------------------------------- golden z source

def test_xorshift32_known_sequence():
    """Marsaglia's xorshift32 (13, 17, 5) from state 1: the first three states (worked by hand for the first:
    1 ^ 1<<13 = 8193, ^ >>17 unchanged, ^ 8193<<5 = 270369; the others as commonly tabulated)."""
    x, seq = 1, []
    for _ in range(3):
        x = noise.xorshift32(x)
        seq.append(x)
    assert seq == [270369, 67634689, 2647435461]


def test_gaussian_code_is_the_sum_of_twelve_uniforms():
    g = noise.Gaussian(12345)
    x, acc = 12345, 0
    for _ in range(12):
        x = noise.xorshift32(x)
        acc += x >> 20
    assert g.draw() == acc - 24570
    assert noise.OFFSET == 24570


def test_gaussian_statistics():
    """20 000 draws: mean, standard deviation, kurtosis of Irwin-Hall(12), KS to N(0,1) below the 1 % bound."""
    x = noise.Gaussian(7).draws(20_000) / 4096.0
    assert abs(x.mean()) < 0.03
    assert abs(x.std() - 1.0) < 0.02
    k = np.mean((x - x.mean()) ** 4) / x.var() ** 2
    assert 2.8 < k < 3.0          # Irwin-Hall(12): 2.9
    assert np.abs(x).max() <= 6.0
    assert noise.ks_normal(x) < 1.63 / np.sqrt(x.size)


def test_ks_statistics_detect_a_wrong_distribution():
    """The KS helpers reject a uniform sample and a shifted normal (so the measured figure means something)."""
    rng = np.random.default_rng(0)
    assert noise.ks_normal(rng.uniform(-1.7, 1.7, 20_000)) > 0.03
    assert noise.ks_two_sample(rng.standard_normal(20_000), rng.standard_normal(20_000) + 0.1) > 0.03


def test_seed_zero_and_bad_seeds():
    assert noise.seed_state(0) == noise.DEFAULT_SEED
    for bad in (-1, 1 << 32, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            noise.seed_state(bad)


def test_walk_definition():
    """z(k) between z1 and z2, z(0) = z1, and after 2^s steps the old z2 is the new z1."""
    w = noise.LatentWalk(16, 3, steps_log2=3)
    z1, z2 = w.z1.copy(), w.z2.copy()
    zs = [w.next() for _ in range(8)]
    assert np.array_equal(zs[0], z1)
    lo, hi = np.minimum(z1, z2), np.maximum(z1, z2)
    for k, z in enumerate(zs):
        assert np.all((lo <= z) & (z <= hi))
        exact = z1 + k * (z2 - z1) / 8.0
        assert np.all(np.abs(z - exact) <= 0.5)
    assert np.array_equal(w.z1, z2) and np.array_equal(w.next(), z2)
    with pytest.raises(ValueError, match="steps_log2"):
        noise.LatentWalk(4, 1, steps_log2=0)


# --------------------------------------------------------------------------- RTL vs golden

def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_gaussian_source_equals_golden():
    dut = GaussianSource()
    got = []

    async def bench(ctx):
        ctx.set(dut.seed, 99)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        while len(got) < 20:
            ctx.set(dut.draw, 1)
            await ctx.tick()
            if ctx.get(dut.code_valid):
                got.append(ctx.get(dut.code))
    _run(dut, bench)
    assert got == list(noise.Gaussian(99).draws(20))


def _collect_walk(dut, nz, n_avatars, actions=None, ready_rate=1.0):
    """z vectors from the walk; ``actions[i]`` is called before avatar i is collected."""
    got = []
    rng = random.Random(3)

    async def bench(ctx):
        ctx.set(dut.run, 1)
        cur = []
        while len(got) < n_avatars:
            if actions and len(got) in actions and not cur:
                await actions.pop(len(got))(ctx)
            ctx.set(dut.z.ready, int(rng.random() < ready_rate))
            v, r, p = ctx.get(dut.z.valid), ctx.get(dut.z.ready), ctx.get(dut.z.payload)
            await ctx.tick()
            if v and r:
                cur.append(p)
                if len(cur) == nz:
                    got.append(cur)
                    cur = []
    _run(dut, bench)
    return np.array(got)


def test_walk_equals_golden_with_backpressure():
    """12 avatars (three wraps of k at s = 2), the consumer ready 60 % of cycles."""
    nz, s, seed = 5, 2, 7
    dut = LatentWalk(nz, s, seed)
    got = _collect_walk(dut, nz, 12, ready_rate=0.6)
    assert np.array_equal(got, noise.walk_z(nz, seed, s, 12))


def test_walk_reseed():
    nz, s = 4, 2
    dut = LatentWalk(nz, s, 1)

    async def reseed(ctx):
        ctx.set(dut.seed_in, 4242)
        ctx.set(dut.reseed, 1)
        await ctx.tick()
        ctx.set(dut.reseed, 0)
    got = _collect_walk(dut, nz, 9, actions={5: reseed})
    exp = np.concatenate([noise.walk_z(nz, 1, s, 5), noise.walk_z(nz, 4242, s, 4)])
    assert np.array_equal(got, exp)


def test_walk_pause_and_step():
    """With run low no word comes out; a step pulse gives exactly one avatar."""
    nz = 3
    dut = LatentWalk(nz, 2, 11)
    words = []

    async def bench(ctx):
        ctx.set(dut.z.ready, 1)
        for _ in range(300):
            await ctx.tick()
            words.append(ctx.get(dut.z.valid))
        assert sum(words) == 0
        ctx.set(dut.step, 1)
        await ctx.tick()
        ctx.set(dut.step, 0)
        for _ in range(50):
            if ctx.get(dut.z.valid):
                words.append(ctx.get(dut.z.payload))
            await ctx.tick()
    _run(dut, bench)
    assert words[300:] == list(noise.walk_z(nz, 11, 2, 1)[0])


def test_walk_parameters_refused():
    with pytest.raises(ValueError, match="nz"):
        LatentWalk(0)
    with pytest.raises(ValueError, match="steps_log2"):
        LatentWalk(4, 16)
    with pytest.raises(ValueError, match="seed"):
        LatentWalk(4, 2, -1)


# --------------------------------------------------------------------------- TMDS

def test_tmds_reference_properties():
    """Every byte at every disparity: decodes back, at most 4 transitions in the 8 data bits (5 in
    the word with bit 8), and the running disparity stays within ±(8+2) over a long random stream."""
    for b in range(256):
        for cnt in range(-8, 9, 2):
            sym, _ = tmds.encode(b, 1, 0, cnt)
            assert tmds.decode(sym) == ("data", b)
            assert tmds.transitions(sym, 8) <= 4
    for c in range(4):
        assert tmds.decode(tmds.encode(0, 0, c, 6)[0]) == ("ctrl", c)
        assert tmds.transitions(tmds.CTRL[c]) >= 7     # control symbols: many transitions
    enc, rng = tmds.Encoder(), random.Random(5)
    worst = 0
    for _ in range(20_000):
        sym = enc(rng.choice([0, 255, 1, 0x7F, rng.randrange(256)]), 1)
        worst = max(worst, abs(enc.cnt))
        ones = bin(sym).count("1")
        assert ones - (10 - ones) in range(-10, 11)
    assert worst <= 10


def test_tmds_reference_dc_balance_over_a_line():
    """A line of a constant byte sends as many ones as zeros, to within one symbol's disparity."""
    for b in (0, 0x10, 0xEF, 0xFF):
        enc = tmds.Encoder()
        syms = [enc(b, 1) for _ in range(640)]
        ones = sum(bin(s).count("1") for s in syms)
        assert abs(2 * ones - 6400) <= 10


def test_tmds_decode_fails_on_a_wrong_symbol():
    """A symbol with one bit flipped decodes to another byte (so the video decode check can fail)."""
    sym, _ = tmds.encode(0x5A, 1, 0, 0)
    assert tmds.decode(sym ^ 0x4) != ("data", 0x5A)
    with pytest.raises(ValueError):
        tmds.decode(1024)


def test_tmds_encoder_equals_reference():
    """4 000 pixel clocks of data (edge bytes and random) and blanking with all four control values."""
    dut = TMDSEncoder()
    rng = random.Random(1)
    ins = []
    for _ in range(4000):
        if rng.random() < 0.15:
            ins.append((rng.randrange(256), 0, rng.randrange(4)))
        else:
            ins.append((rng.choice([rng.randrange(256), 0, 255, 0x10, 0xEF, 0x55, 0xAA]), 1, 0))
    got = []

    async def bench(ctx):
        for d, de, c in ins + [(0, 0, 0)] * dut.latency:
            ctx.set(dut.inp.data, d)
            ctx.set(dut.inp.de, de)
            ctx.set(dut.inp.c, c)
            await ctx.tick()
            got.append(ctx.get(dut.sym))
    _run(dut, bench)
    enc = tmds.Encoder()
    exp = [enc(d, de, c) for d, de, c in ins]
    got = got[dut.latency - 1:dut.latency - 1 + len(exp)]
    assert got == exp
    assert [tmds.decode(s) for s in got] == [("data", d) if de else ("ctrl", c) for d, de, c in ins]


def test_serializer_sends_each_symbol_lsb_first():
    """Four lanes, ten bits in five shift clocks: bits rebuilt from the DDR pairs equal the symbols."""
    ser = Serializer()
    dut = DomainRenamer({"shift": "sync"})(ser)
    syms = [random.Random(i).randrange(1 << 40) for i in range(6)]
    stream = []

    async def bench(ctx):
        for s in syms:
            ctx.set(ser.sym, s)
            for _ in range(5):
                await ctx.tick()
                stream.append(ctx.get(ser.ddr))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # Symbol i is loaded on its fifth clock edge and sent from then on, five pairs.
    for i, s in enumerate(syms[:-1]):
        pairs = stream[5 * i + 4:5 * i + 9]
        for lane in range(4):
            bits = 0
            for j, p in enumerate(pairs):
                bits |= ((p >> (2 * lane)) & 3) << (2 * j)
            assert bits == (s >> (10 * lane)) & 0x3FF, (i, lane)


def test_buttons_debounce_and_edge():
    dut = Buttons(2, debounce=3)
    pulses = []

    async def bench(ctx):
        pattern = [1, 0, 1, 1, 0] + [1] * 10 + [0] * 10     # glitches, then a press and a release
        for v in pattern:
            ctx.set(dut.raw, v)
            await ctx.tick()
            pulses.append(ctx.get(dut.pressed))
    _run(dut, bench)
    assert sum(1 for p in pulses if p & 1) == 1
    assert not any(p & 2 for p in pulses)
    with pytest.raises(ValueError, match="debounce"):
        Buttons(1, 0)
