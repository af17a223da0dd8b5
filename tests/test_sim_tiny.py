"""cocotb on Verilator, tiny Generator: every stream/reset case, a lane/format sweep, a failing ROM.

Each configuration is verilated once (cached under build/sim/); the tiny builds take seconds.
Set ``AVATARGAN_SIM_WAVES=1`` to record waves; a failing test names the run folder and wave file.
"""

import os

import numpy as np
import pytest

from golden.qmodel import load_qmodel, save_qmodel
from golden.random_models import random_qmodel
from sim import flow, runner

#: A tiny network: nz 8, channels 8 -> 4 -> 4 -> 1 (the real layer shapes 1->4->8->16->32).
TINY = (8, 8, 4, 4, 1)
#: Lanes for the tiny cases (the sweep below uses others).
LANES = 4
#: Seed of the random z (override with AVATARGAN_TEST_SEED to explore).
SEED = int(os.environ.get("AVATARGAN_TEST_SEED", "20261123"))


def random_z(n: int, nz: int, seed: int) -> np.ndarray:
    """S(16,12) codes of N(0, 2^2) z: wide enough that some elements saturate the sums."""
    print(f"random z: seed {seed}")
    return np.clip(np.floor(np.random.default_rng(seed).standard_normal((n, nz)) * 2 * 4096 + 0.5),
                   -32768, 32767).astype(np.int64)


def check(result: runner.SimResult) -> runner.SimResult:
    assert result.passed, result.message
    assert result.mismatches == 0
    assert np.array_equal(result.pixels, result.expected)
    return result


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    save_qmodel(random_qmodel(TINY, seed=1, std=0.3), path)
    return path


def test_random_z_back_to_back(tiny):
    """Four random avatars sent with no gap; cycles per avatar equal the design's own counter and
    the analytic cycle model (gen/cycles.py) within 1 %."""
    from gen.cycles import cycles_per_avatar

    zq = random_z(4, TINY[0], SEED)
    res = check(flow.simulate(tiny, zq, lanes=LANES))
    assert len(res.cycles) == 4 and res.dut_cycles == res.cycles
    model = cycles_per_avatar(load_qmodel(tiny).header, LANES)
    print(f"cycles per avatar: measured {res.cycles}, analytic {model}")
    assert all(abs(c - model) <= 0.01 * model for c in res.cycles)
    assert len(np.unique(res.pixels)) > 8            # the reference is not a flat picture


def test_extreme_z_saturation(tiny):
    """All maximum, all minimum, alternating: the saturating z+v adds and the accumulators."""
    nz = TINY[0]
    alt = np.where(np.arange(nz) % 2 == 0, 32767, -32768)
    zq = np.stack([np.full(nz, 32767), np.full(nz, -32768), alt, -alt - 1])
    check(flow.simulate(tiny, zq, lanes=LANES))


@pytest.mark.parametrize("stall", [0.0, 0.5, 0.9])
def test_gaps_and_backpressure(tiny, stall):
    """Random idle cycles on z (30 %) and ready low on the pixels 0/50/90 % of the time."""
    zq = random_z(2, TINY[0], SEED + 1)
    res = check(flow.simulate(tiny, zq, lanes=LANES, input_pause=0.3, output_stall=stall, seed=SEED))
    assert res.dut_cycles == res.cycles


@pytest.mark.parametrize("after", [1, 1500])
def test_reset_in_the_middle_of_a_pass(tiny, after):
    """rst after the first pixel / in plane G of avatar 0; the next avatar must be clean."""
    zq = random_z(2, TINY[0], SEED + 2)
    res = check(flow.simulate(tiny, zq, lanes=LANES, reset_after_pixels=after))
    assert res.raw["avatars"] == 1


@pytest.mark.parametrize("lanes,seed,std", [(1, 3, 0.6), (16, 5, 0.15)])
def test_sweep_lanes_and_formats(tmp_path, lanes, seed, std):
    """Other lane counts, and other weight/activation formats (different scales quantize differently)."""
    path = tmp_path / "m.npz"
    save_qmodel(random_qmodel(TINY, seed=seed, std=std), path)
    print("formats:", [(l["weight"]["frac"], l["output"]["frac"], l["shift"]) for l in load_qmodel(path).layers])
    check(flow.simulate(path, random_z(2, TINY[0], SEED + seed), lanes=lanes))


def test_corrupted_rom_word_fails(tiny, tmp_path):
    """One weight code changed in the Verilog's model only: the bit-exact check must fail."""
    bad = tmp_path / "corrupt.npz"
    old, new = flow.corrupt_weight(tiny, bad, layer=4, index=(0, 0, 1, 1), delta=5)
    assert old != new
    res = flow.simulate(bad, random_z(1, TINY[0], SEED), lanes=LANES, golden_model=tiny)
    assert not res.passed
    assert res.mismatches > 0
    assert "first mismatch: avatar 0, plane" in res.message
    assert res.raw["first_mismatch"]["plane"] == 0
    assert "log:" in res.message and "waves:" in res.message      # the failure says where to look


def test_build_is_cached_and_warning_clean(tiny):
    """A second build of the same Verilog reuses the folder; -Wall is on and WIDTH is not waived."""
    v = flow.generate_verilog(tiny, LANES)
    first = runner.build(v)
    again = runner.build(v)
    assert not again.compiled and again.build_dir == first.build_dir
    args = runner.build_args()
    assert "-Wall" in args and "-Wno-WIDTH" not in args and "-Wno-WIDTHTRUNC" not in args
    log = (first.build_dir / "build.log").read_text()
    assert "%Warning" not in log
