"""The fast path of the simulation harness (sim/soak.cpp through sim.runner.soak) on a tiny Generator.

It must agree with the cocotb testbench (same build folder, options and waivers) and must find a
wrong pixel as the testbench does: these tests are what let the fast path stand in for soaks.
"""

import json
import subprocess

import numpy as np
import pytest

from base.errors import UserError
from golden.fixed import fixed_rgb
from golden.qmodel import load_qmodel, save_qmodel
from golden.random_models import random_qmodel
from sim import flow, runner

TINY = (8, 8, 4, 4, 1)
LANES = 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "tiny.npz"
    save_qmodel(random_qmodel(TINY, seed=1, std=0.3), path)
    qm = load_qmodel(path)
    verilog = flow.generate_verilog(path, LANES)
    built = runner.build_soak(verilog)
    zq = np.clip(np.floor(np.random.default_rng(5).standard_normal((5, TINY[0])) * 8192 + 0.5),
                 -32768, 32767).astype(np.int64)
    return path, qm, verilog, built, zq


def test_fast_path_is_bit_exact_and_agrees_with_cocotb(setup):
    path, qm, verilog, built, zq = setup
    ref = fixed_rgb(qm, zq)
    fast = runner.soak(built, zq, ref)
    assert fast.passed, fast.message
    assert fast.message.startswith("bit-exact: 5 avatar(s)")
    assert np.array_equal(fast.pixels, ref) and fast.mismatches == 0
    slow = flow.simulate(path, zq, lanes=LANES)
    assert slow.passed, slow.message
    assert fast.cycles == slow.cycles == fast.dut_cycles == slow.dut_cycles
    # The same build folder as the cocotb build of this Verilog.
    assert built.build_dir.parent == runner.build(verilog).build_dir
    assert not runner.build_soak(verilog).compiled              # cached


def test_processes_and_backpressure_change_nothing_but_time(setup):
    _, qm, _, built, zq = setup
    ref = fixed_rgb(qm, zq)
    plain = runner.soak(built, zq, ref)
    split = runner.soak(built, zq, ref, jobs=2, input_pause=0.3, output_stall=0.6, seed=3)
    assert split.passed, split.message
    assert np.array_equal(split.pixels, plain.pixels)
    assert len(split.raw["parts"]) == 2 and [p["avatars"] for p in split.raw["parts"]] == [3, 2]
    assert all(c > p for c, p in zip(split.cycles, plain.cycles))  # the stalls cost cycles


def test_a_wrong_pixel_is_found_and_located(setup):
    _, qm, _, built, zq = setup
    ref = fixed_rgb(qm, zq)
    bad = ref.copy()
    bad[3, 2, 7, 11] ^= 1                                       # avatar 3, plane B, y 7, x 11
    res = runner.soak(built, zq, bad, jobs=2)
    assert not res.passed and res.mismatches == 1
    assert "first mismatch: avatar 3, plane B (2), x 11, y 7" in res.message
    assert res.raw["first_mismatch"]["avatar"] == 3
    assert json.loads((res.run_dir / "result.json").read_text())["passed"] is False


def test_a_short_time_out_is_a_failed_check(setup):
    _, qm, _, built, zq = setup
    res = runner.soak(built, zq[:1], fixed_rgb(qm, zq[:1]), max_cycles=50)
    assert not res.passed
    assert "only 0 of 1 avatars received" in res.message and "time-out after 50 cycles" in res.message


def test_bad_expected_shape(setup):
    _, _, _, built, zq = setup
    with pytest.raises(runner.SimulationError, match="expected pixels have shape"):
        runner.soak(built, zq, np.zeros((1, 3, 32, 32), np.uint8))


def test_training_run_drives_one_avatar(setup):
    # `soak --train`: the profile-feedback run of the g++ build (sim/runner.py build_soak), no model needed.
    _, _, _, built, _ = setup
    out = subprocess.run([str(built.build_dir / "obj" / "soak"), "--train"], capture_output=True, text=True,
                         check=False, cwd=built.build_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3072 pixel transfers" in out.stdout
    short = subprocess.run([str(built.build_dir / "obj" / "soak"), "--train", "50"], capture_output=True,
                           text=True, check=False, cwd=built.build_dir)
    assert short.returncode == 3 and "50 cycles, 0 pixel transfers" in short.stdout   # a partial profile


def test_compiler_choice(monkeypatch):
    monkeypatch.setenv(runner.SOAK_COMPILER_ENV, "gcc")
    assert runner.soak_compiler() == ("gcc", None)
    assert runner.soak_toolchain().startswith("g++ ")
    monkeypatch.setattr(runner, "_zig_binary", lambda: None)
    monkeypatch.setenv(runner.SOAK_COMPILER_ENV, "auto")
    assert runner.soak_compiler() == ("gcc", None)              # no ziglang: g++
    monkeypatch.setenv(runner.SOAK_COMPILER_ENV, "zig")
    with pytest.raises(runner.SimulationError, match="ziglang"):
        runner.soak_compiler()
    monkeypatch.setenv(runner.SOAK_COMPILER_ENV, "icc")
    with pytest.raises(UserError, match="auto, gcc or zig"):
        runner.soak_compiler()
