"""PSNR and matched float/fixed avatars."""

import math

import numpy as np
import pytest

from golden.fidelity import fidelity, matched_avatars, psnr
from golden.fixed import fixed_rgb, quantize_z
from golden.quantize import FloatGenerator, quantize_params
from golden.random_models import random_float_params


def test_psnr_by_hand():
    a = np.zeros(10, dtype=np.uint8)
    b = a.copy()
    assert psnr(a, b) == math.inf
    b[3] = 255                      # MSE = 255^2 / 10 -> 10 log10(10) = 10 dB
    assert psnr(a, b) == pytest.approx(10.0, abs=1e-12)
    c = np.full(4, 100, dtype=np.uint8)
    d = np.array([101, 99, 100, 100], dtype=np.uint8)   # MSE 0.5 -> 10 log10(130050) = 51.14 dB
    assert psnr(c, d) == pytest.approx(10 * math.log10(255 ** 2 / 0.5), abs=1e-12)
    with pytest.raises(ValueError):
        psnr(a, np.zeros(9, dtype=np.uint8))
    with pytest.raises(ValueError):
        psnr(a.astype(np.int16), a)


class _Const:
    """A float 'generator' whose planes are a known constant per pass."""
    v = np.zeros((2, 8))

    def rgb(self, z):
        out = np.empty((len(z), 3, 32, 32), dtype=np.float32)
        out[:, 0], out[:, 1], out[:, 2] = -1.0, 0.0, 0.5
        return out


def test_matched_avatars_float_side_is_rule_5():
    params, v = random_float_params([8, 8, 4, 4, 1], seed=0)
    qm, _ = quantize_params(params, v, np.zeros((2, 8)))
    z = np.random.default_rng(0).standard_normal((3, 8))
    fl, fx, n_sat = matched_avatars(_Const(), qm, z)
    # y = -1 -> 0; y = 0 -> floor(128.0) = 128; y = 0.5 -> floor(127.5 * 1.5 + 0.5) = floor(191.75) = 191
    assert fl[:, 0].max() == 0 and np.all(fl[:, 1] == 128) and np.all(fl[:, 2] == 191)
    assert np.array_equal(fx, fixed_rgb(qm, quantize_z(z)[0])) and n_sat == 0


def test_fidelity_high_for_own_model_low_for_a_wrong_one():
    channels = [8, 16, 8, 8, 1]
    params, v = random_float_params(channels, seed=2, std=0.25, bias_std=0.05)
    qm, _ = quantize_params(params, v, np.random.default_rng(3).standard_normal((64, 8)))
    gen = FloatGenerator(params, v)
    good = fidelity(gen, qm, n=40)
    assert good["psnr_db"] > 35 and good["n_z"] == 40
    wrong = dict(params, w4=-params["w4"])    # the comparison must notice a different network
    bad = fidelity(FloatGenerator(wrong, v), qm, n=40)
    assert bad["psnr_db"] < good["psnr_db"] - 10


def test_scaled_random_generator_spans_the_pixel_range():
    from golden.random_models import scaled_random_params
    params, v = scaled_random_params((8, 16, 8, 8, 1), seed=0)
    pix = matched_avatars(FloatGenerator(params, v), quantize_params(params, v, np.zeros((2, 8)))[0],
                          np.random.default_rng(0).standard_normal((8, 8)))[0]
    assert pix.min() < 40 and pix.max() > 215


def test_golden_pool_equals_fixed_rgb():
    from golden.bench_golden import GoldenPool
    params, v = random_float_params([8, 8, 4, 4, 1], seed=0, std=0.3)
    qm, _ = quantize_params(params, v, np.random.default_rng(0).standard_normal((8, 8)))
    z, _ = quantize_z(np.random.default_rng(1).standard_normal((9, 8)))
    with GoldenPool(qm, 2) as pool:
        assert np.array_equal(pool.rgb(z), fixed_rgb(qm, z))


def test_bench_golden_command(tmp_path, capsys):
    import json

    from avatargan import cli
    from golden.qmodel import save_qmodel
    params, v = random_float_params([8, 8, 4, 4, 1], seed=0, std=0.3)
    qm, _ = quantize_params(params, v, np.zeros((2, 8)))
    m = save_qmodel(qm, tmp_path / "m.npz")
    assert cli.main(["bench", "golden", "--model", str(m), "--batch", "8", "--repeat", "1", "--workers", "1",
                     "--json", str(tmp_path / "b.json")]) == 0
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["batch"] == 8 and res["avatars_per_s"] > 0 and "RGB avatars/s" in capsys.readouterr().out
    assert cli.main(["bench", "golden", "--batch", "0"]) == 2
