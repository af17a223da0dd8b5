"""The whole Generator top in amaranth.sim on tiny networks, bit-exact against golden.fixed."""

import numpy as np
import pytest

from gen.cycles import cycles_per_avatar
from sim.rtlsim import StreamRuleError, simulate
from golden.fixed import fixed_layers, fixed_rgb, pass_inputs
from golden.random_models import random_qmodel
from rtl.config import plan_engine
from rtl.top import Generator

TINY = (8, 8, 4, 4, 1)
LANES = 16


@pytest.fixture(scope="module")
def tiny_run():
    """Two avatars (one with extreme z, so z + v saturates) under random backpressure and z gaps."""
    qm = random_qmodel(TINY, seed=3, n_calib=8, std=0.3)     # weights wide enough that the avatars vary
    rng = np.random.default_rng(7)
    zq = np.stack([rng.integers(-2 ** 15, 2 ** 15, TINY[0]),
                   np.where(np.arange(TINY[0]) % 2, 32767, -32768)]).astype(np.int64)
    dut = Generator.from_model(qm, lanes=LANES)
    res = simulate(dut, zq, ready_prob=0.4, seed=11, z_gap_prob=0.3, peek_buffers=True)
    return qm, zq, res


def test_top_rgb_bit_exact_with_backpressure(tiny_run):
    qm, zq, res = tiny_run
    assert plan_engine(qm, LANES).layers[-1].tp == 4       # the last layer runs through the tap window
    assert len(np.unique(res.rgb)) > 100                   # not a flat image that anything would match
    assert np.array_equal(res.rgb, fixed_rgb(qm, zq).astype(np.int64))


def test_a_tap_window_mismatch_is_caught(monkeypatch):
    """Weights paired with the wrong window column (lower and upper swapped): the avatars differ."""
    import rtl.config

    qm = random_qmodel(TINY, seed=3, n_calib=8, std=0.3)
    zq = np.random.default_rng(7).integers(-2 ** 15, 2 ** 15, (1, TINY[0]))
    right = rtl.config.tap_slot_kernel
    monkeypatch.setattr(rtl.config, "tap_slot_kernel", lambda a, b, py, px: right(a, 1 - b, py, px))
    res = simulate(Generator.from_model(qm, lanes=LANES), zq)
    assert not np.array_equal(res.rgb, fixed_rgb(qm, zq).astype(np.int64))


def test_pass_inputs_saturated(tiny_run):
    """The second z makes z + v saturate on chip; its G and B planes above are then exact too."""
    qm, zq, _ = tiny_run
    u = pass_inputs(qm, zq)
    assert ((u[1, 1:] == 32767) | (u[1, 1:] == -32768)).any()
    assert not np.array_equal(u[1, 1:], zq[1] + qm.v.astype(np.int64))


@pytest.mark.parametrize("layer", [1, 2, 3], ids=["dense-layer1", "stride2-layer2", "stride2-layer3"])
def test_layer_outputs_bit_exact(tiny_run, layer):
    """Activation buffers after an avatar hold the last pass's layer outputs; compare each layer."""
    qm, zq, res = tiny_run
    u = pass_inputs(qm, zq)
    for a in range(zq.shape[0]):
        want = fixed_layers(qm, u[a, 2:3])[layer - 1]["out"][0]
        assert np.array_equal(res.buffers[a][layer + 1], want)


def test_last_layer_order_and_markers(tiny_run):
    _, zq, res = tiny_run
    per = 3 * 32 * 32
    assert len(res.order) == zq.shape[0] * per
    expect = [(p, y, x) for p in range(3) for y in range(32) for x in range(32)]
    for a in range(zq.shape[0]):
        chunk = res.order[a * per:(a + 1) * per]
        assert [t[:3] for t in chunk] == expect
        assert [t[3] for t in chunk] == [0] * (per - 1) + [1]
    assert len(res.cycles) == zq.shape[0]


def test_cycles_match_the_model_exactly():
    """Several output-channel groups (OCG = 4 in layer 1), always-ready consumer: cycles == model."""
    ch = (8, 32, 8, 4, 1)
    qm = random_qmodel(ch, seed=4, n_calib=8, std=0.3)
    zq = np.random.default_rng(2).integers(-2 ** 15, 2 ** 15, (1, ch[0]))
    dut = Generator.from_model(qm, lanes=LANES)
    assert dut.plan.layers[0].ocg >= 2 and dut.plan.layers[-1].tp == 4
    res = simulate(dut, zq)
    assert np.array_equal(res.rgb, fixed_rgb(qm, zq).astype(np.int64))
    assert res.cycles == [cycles_per_avatar(qm.header, LANES)]


def test_stream_checker_catches_a_dropped_valid():
    """The driver's stream-rule check fails on a consumer-visible violation (a fake top that drops valid)."""
    from amaranth.hdl import Module, Signal
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    class Broken(wiring.Component):
        z: In(stream.Signature(16))
        pixel: Out(stream.Signature(21))
        done: Out(1)
        cycles: Out(32)

        def elaborate(self, platform):
            m = Module()
            t = Signal(4)
            m.d.sync += t.eq(t + 1)
            m.d.comb += [self.z.ready.eq(1), self.pixel.valid.eq(t[0]), self.pixel.payload.eq(t)]
            return m

    dut = Broken()
    dut.plan = plan_engine(random_qmodel(TINY, seed=0, n_calib=4), LANES)
    with pytest.raises(StreamRuleError):
        simulate(dut, np.zeros((1, TINY[0]), dtype=np.int64), ready_prob=0.5, max_cycles=2000)
