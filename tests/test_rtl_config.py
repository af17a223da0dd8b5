"""The engine plan: lane split, schedule, ROM layout, validation, cycle model (no simulation)."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

import gen.cycles
import rtl.engine
from gen.cycles import cycle_model
from golden.random_models import random_qmodel
from rtl.config import KERNEL, plan_engine, plan_layers, valid_taps
from romcheck import expected_words


@pytest.fixture(scope="module")
def default_qm():
    return random_qmodel((100, 128, 64, 32, 1), seed=0, n_calib=4)


def test_default_plan_fills_128_lanes(default_qm):
    layers = plan_layers(default_qm.header, 128)
    # Layer 1 takes layer 2's split (64 output channels, 2 input channels a step): the same 128
    # lanes busy, one adder-tree level (and accumulator bank) for both.
    assert [(lp.ocp, lp.icp) for lp in layers] == [(64, 2), (64, 2), (32, 4), (1, 32)]
    assert layers[0].level == layers[1].level == 1 and layers[0].drain_words == 32
    assert [lp.taps for lp in layers] == [16, 196, 900, 3844]          # NUMERICS.md
    assert sum(lp.useful_macs for lp in layers) == 3_776_640           # NUMERICS.md
    # The last layer runs its four taps in one step: one step per pixel, and 4 read-ahead steps.
    assert [lp.tp for lp in layers] == [1, 1, 1, 4] and layers[-1].level == 7
    assert sum(lp.steps for lp in layers) == 16 * 100 + 196 * 64 + 900 * 16 + (32 * 32 + 4)
    one_tap = plan_layers(default_qm.header, 128, tap_parallel=False)
    assert [lp.tp for lp in one_tap] == [1, 1, 1, 1] and one_tap[-1].level == 5
    assert sum(lp.steps for lp in one_tap) == 16 * 100 + 196 * 64 + 900 * 16 + 3844
    # 64 lanes: 4 x 32 lanes do not fit, so layer 4 keeps one tap per step.
    assert [lp.tp for lp in plan_layers(default_qm.header, 64)] == [1, 1, 1, 1]


def test_default_utilization_goal(default_qm):
    r = cycle_model(default_qm.header, 128)
    assert r["useful_macs_per_avatar"] == 11_329_920
    assert r["utilization"] >= 0.90
    assert r["cycles_per_avatar"] >= r["mac_bound_cycles"]


def test_valid_taps_match_the_definition():
    """Every (k, i) pair with o = 2i - 1 + k, 0 <= i < H, and nothing else."""
    for n in (4, 8, 16):
        for o in range(2 * n):
            want = {(k, i) for k in range(KERNEL) for i in range(n) if 2 * i - 1 + k == o}
            got = valid_taps(2, 1, n, 2 * n, o)
            assert set(got) == want and len(got) == len(want)


def test_weight_rom_words_hold_the_weights():
    qm = random_qmodel((8, 32, 8, 4, 1), seed=5, n_calib=4)
    plan = plan_engine(qm, 16)
    assert [lp.tp for lp in plan.layers] == [1, 1, 1, 4]
    for lp in plan.layers:
        words = expected_words(qm.w[lp.index + 1], lp, plan.lanes)
        assert len(words) == lp.weight_words
        for addr, want in words.items():
            word = plan.weight_rom[addr]
            got = [((word >> (8 * j)) & 0xFF) - (256 if (word >> (8 * j)) & 0x80 else 0) for j in range(plan.lanes)]
            assert got == want, f"layer {lp.index + 1}, word {addr}"


def test_plan_rejects_bad_lanes_and_slow_drain():
    qm = random_qmodel((8, 8, 4, 4, 1), seed=0, n_calib=4)
    for bad in (0, 3, 12, -4, 2.0):
        with pytest.raises(ValueError):
            plan_layers(qm.header, bad)
    with pytest.raises(ValueError, match="drain"):
        plan_layers(random_qmodel((4, 16, 8, 4, 1), seed=0, n_calib=4).header, 8)


def test_cycle_model_constants_match_the_engine():
    assert gen.cycles.FRONT == rtl.engine.FRONT and gen.cycles.PASSES == rtl.engine.PASSES
    assert gen.cycles.SEL == rtl.engine.SEL
    qm = random_qmodel((8, 32, 8, 4, 1), seed=5, n_calib=4)
    plan = plan_engine(qm, 16)
    rows = cycle_model(qm.header, 16)["layers"]
    assert [r["gap"] for r in rows] == [rtl.engine.layer_gap(plan, l) for l in range(len(plan.layers))]


def test_front_is_the_sum_of_the_component_latencies():
    """FRONT (used by the cycle model) = Sequencer + WeightStore + MacArray latencies; SEL = the banks'."""
    from rtl.accum import AccumulatorBank
    from rtl.sequencer import step_layout

    plan = plan_engine(random_qmodel((8, 32, 8, 4, 1), seed=5, n_calib=4), 16)
    for mult in ("generic", "ecp5"):
        eng = rtl.engine.Engine(plan, mult)
        assert eng.front_latency == eng.sequencer.latency + eng.weights.latency + eng.mac.latency
        assert eng.front_latency == rtl.engine.FRONT == gen.cycles.FRONT
        assert eng.drain.latency == rtl.engine.DRAIN == gen.cycles.DRAIN
        Fragment.get(eng, None)                # elaborate it (the components are used, and it builds)
    bank = AccumulatorBank(4, 20, 12, {0: ([1, 2, 3, 4], 1)}, step_layout(plan), 4)
    assert bank.latency == rtl.engine.SEL
    Fragment.get(bank, None)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be"),
    ({"width": 1}, "width must be"),
    ({"layers": {}}, "at least one layer"),
    ({"layers": {7: ([0] * 4, 1)}}, "outside"),
    ({"layers": {0: ([0] * 3, 1)}}, "multiple of n"),
    ({"layers": {0: ([0] * 4, 5)}}, "drain shift"),
    ({"layers": {0: ([1 << 19] * 4, 1)}}, "does not fit"),
])
def test_accumulator_bank_rejects_bad_parameters(kwargs, match):
    from rtl.accum import AccumulatorBank
    from rtl.sequencer import step_layout

    plan = plan_engine(random_qmodel((8, 32, 8, 4, 1), seed=5, n_calib=4), 16)
    args = {"n": 4, "width": 20, "tree_width": 12, "layers": {0: ([0] * 4, 1)},
            "step_layout": step_layout(plan), "n_layers": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        AccumulatorBank(**args)


def _extreme_sums(w, b, shift, in_size, stride, pad, signed_input):
    """Largest and smallest accumulator sums of a transposed convolution, by direct enumeration of
    every output pixel's taps (oy = iy·stride − pad + ky) and the input that drives each product to
    its extreme: the reference for rtl.config.sum_bits, written without its per-phase shortcut."""
    ic, oc, k, _ = w.shape
    out = (in_size - 1) * stride - 2 * pad + k
    lo_x, hi_x = (-(1 << 15), (1 << 15) - 1) if signed_input else (0, (1 << 16) - 1)
    top, bottom = [], []
    for oy in range(out):
        for ox in range(out):
            taps = [(ky, kx) for ky in range(k) for kx in range(k)
                    if (oy + pad - ky) % stride == 0 and 0 <= (oy + pad - ky) // stride < in_size
                    and (ox + pad - kx) % stride == 0 and 0 <= (ox + pad - kx) // stride < in_size]
            wt = np.stack([w[:, :, ky, kx] for ky, kx in taps]).astype(np.int64)     # (taps, ic, oc)
            big = np.where(wt > 0, wt * hi_x, wt * lo_x).sum(axis=(0, 1))
            small = np.where(wt > 0, wt * lo_x, wt * hi_x).sum(axis=(0, 1))
            top.append(b + (1 << (shift - 1)) + big)
            bottom.append(b + (1 << (shift - 1)) + small)
    return int(np.max(top)), int(np.min(bottom))


@pytest.mark.parametrize("seed", [0, 3])
def test_sum_bits_hold_every_sum_and_are_tight(seed):
    """The accumulators' widths (rtl.config.sum_bits) hold the extreme sums of each layer, found by
    enumeration, and are at most one bit wider than those need; narrower than the header's bound."""
    qm = random_qmodel((16, 32, 16, 8, 1), seed=seed, n_calib=4)
    plan = plan_engine(qm, 16)
    for lp in plan.layers:
        w = np.asarray(qm.w[lp.index + 1]).astype(np.int64)
        hi, lo = _extreme_sums(w, plan.bias[lp.index], lp.shift, lp.in_size, lp.stride, lp.pad, lp.index == 0)
        need = max(hi.bit_length(), (-lo - 1).bit_length()) + 1     # signed width of [lo, hi]
        got = plan.sum_bits[lp.index]
        assert need <= got <= need + 1, (lp.index, need, got)
        assert got <= lp.acc_bits + 1


def test_sum_bits_check_fails_on_a_narrower_width():
    """The enumeration above rejects a width one bit short of what a layer needs (so the check can fail)."""
    qm = random_qmodel((16, 32, 16, 8, 1), seed=0, n_calib=4)
    plan = plan_engine(qm, 16)
    lp = plan.layers[1]
    w = np.asarray(qm.w[2]).astype(np.int64)
    hi, lo = _extreme_sums(w, plan.bias[1], lp.shift, lp.in_size, lp.stride, lp.pad, False)
    short = plan.sum_bits[1] - 2
    assert not (-(1 << (short - 1)) <= lo and hi < (1 << (short - 1)))


def test_buffer_parts_cover_the_word():
    from rtl.engine import BUFFER_PART_BITS, buffer_parts
    for width in (1, 32, 64, BUFFER_PART_BITS, BUFFER_PART_BITS + 1, 512):
        parts = buffer_parts(width)
        assert parts[0][0] == 0 and parts[-1][1] == width
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert all(0 < hi - lo <= BUFFER_PART_BITS for lo, hi in parts)
    assert buffer_parts(512) == [(0, 180), (180, 360), (360, 512)]
    with pytest.raises(ValueError, match="width"):
        buffer_parts(0)
