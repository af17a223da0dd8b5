"""cocotb on Verilator, the full default Generator (100 -> 128 -> 64 -> 32 -> 1, P = 128).

The Verilator build of the full model is the expensive step (about a minute); it happens once and
is cached under build/sim/ for every later run. The model is the shipped one (models/default.npz,
quantized as ``avatargan quantize`` and ``avatargan demo`` do, so the demo shares the cached build), or
``AVATARGAN_SIM_MODEL`` (a quantized model) if set.
"""

import os

import numpy as np
import pytest

from golden.fixed import quantize_z
from golden.qmodel import load_qmodel, save_qmodel
from golden.quantize import quantize_checkpoint
from sim import flow

pytestmark = pytest.mark.slow

DEFAULT = (100, 128, 64, 32, 1)
LANES = 128
SEED = int(os.environ.get("AVATARGAN_TEST_SEED", "1123"))


@pytest.fixture(scope="module")
def full_model(tmp_path_factory):
    given = os.environ.get("AVATARGAN_SIM_MODEL")
    if given:
        return given
    from avatargan.commands.demo import SHIPPED_MODEL

    path = tmp_path_factory.mktemp("full") / "default_q.npz"
    qm, _, _ = quantize_checkpoint(SHIPPED_MODEL, n_calib=1000)
    assert tuple(qm.channels) == DEFAULT
    save_qmodel(qm, path)
    return path


def z_codes(n: int, seed: int) -> np.ndarray:
    print(f"random z: N(0, 1), seed {seed}")
    zq, _ = quantize_z(np.random.default_rng(seed).standard_normal((n, DEFAULT[0])), DEFAULT[0])
    return zq


def test_full_model_20_random_avatars(full_model):
    """20 random avatars back to back: every pixel equal; cycles = design counter = cycle model, exactly."""
    from gen.cycles import cycles_per_avatar

    res = flow.simulate(full_model, z_codes(20, SEED), lanes=LANES)
    assert res.passed, res.message
    assert np.array_equal(res.pixels, res.expected) and res.pixels.shape == (20, 3, 32, 32)
    model = cycles_per_avatar(load_qmodel(full_model).header, LANES)
    print(f"cycles per avatar: measured {sorted(set(res.cycles))}, analytic {model}; "
          f"{20 / res.sim_wall_s:.2f} avatars/s in the simulation loop")
    assert res.dut_cycles == res.cycles
    assert res.cycles == [model] * 20


def test_full_model_stalls_gaps_and_reset(full_model):
    """50 % output stall with 30 % input gaps, then a reset in plane R of a pass and a clean avatar."""
    res = flow.simulate(full_model, z_codes(1, SEED + 1), lanes=LANES, input_pause=0.3, output_stall=0.5,
                        seed=SEED)
    assert res.passed, res.message
    res = flow.simulate(full_model, z_codes(2, SEED + 2), lanes=LANES, reset_after_pixels=100)
    assert res.passed, res.message
