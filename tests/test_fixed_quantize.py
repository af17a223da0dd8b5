"""The quantizer (rules for Fw, Fa), `avatargan quantize` and its --report."""

import json

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from base.errors import UserError
from golden.checkpoint import generator_arrays, save_checkpoint
from golden.models import Generator
from golden.qmodel import load_qmodel
from base.fileio import sha256_file
from golden.quantize import FloatGenerator, act_frac, quantize_params, weight_frac, weight_frac_mse
from golden.random_models import random_float_params

TINY = [8, 8, 4, 4, 1]


def test_weight_frac_rule():
    # largest F with max|w| * 2^F <= 127: 0.5 * 2^7 = 64 <= 127 but 0.5 * 2^8 = 128 > 127 -> 7
    assert weight_frac(np.array([0.5, -0.1])) == 7
    # exactly 127 * 2^-9 fits at F = 9 (code 127), not at 10
    assert weight_frac(np.array([-127 / 512])) == 9
    assert weight_frac(np.array([0.0, 0.0])) == 7
    assert weight_frac(np.array([300.0])) == -2   # 300 / 4 = 75 <= 127, 300 / 2 = 150 > 127


def test_weight_frac_mse_trades_an_outlier_for_a_bit():
    # 10 000 N(0, 1) weights and one outlier 20: F0 = floor(log2(127 / 20)) = 2 (LSB 1/4, error
    # sum ~ 10 000 / 16 / 12 = 52); F = 3 clips the outlier to 127/8 = 15.875 (error 4.125^2 = 17)
    # but halves the LSB (~ 13 for the rest): 30 < 52; F = 4 clips it to 7.94 (error 144): F = 3.
    w = np.concatenate([np.random.default_rng(0).standard_normal(10000), [20.0]])
    assert weight_frac(w) == 2 and weight_frac_mse(w) == 3
    # a lone weight is exact at F0 (code 64 for 1.0 at F0 = 6): no reason to saturate it
    assert weight_frac_mse(np.array([1.0])) == weight_frac(np.array([1.0])) == 6
    params, v = random_float_params(TINY, seed=0)
    # 511 weights uniform in (-0.1, 0.1) and one at 0.13: F0 = 9 (0.13 * 512 = 66.6); F = 10 clips
    # 0.13 to 127/1024 = 0.1240 (squared error 3.6e-5) and saves ~511 * 2^-20 * 3/12 = 1.2e-4
    params["w2"] = np.random.default_rng(1).uniform(-0.1, 0.1, params["w2"].shape).astype(np.float32)
    params["w2"].flat[0] = 0.13
    qm, stats = quantize_params(params, v, np.zeros((2, 8)), weight_rule="mse")
    assert qm.layers[1]["weight"]["frac"] == 10
    assert qm.w[2].flat[0] == 127 and stats["w_saturated"][1] == 1
    assert qm.header["calibration"]["weight_rule"] == "mse"
    # the max rule (the default) keeps the outlier: F0 = 9, nothing saturates
    qm, stats = quantize_params(params, v, np.zeros((2, 8)))
    assert qm.layers[1]["weight"]["frac"] == 9 and stats["w_saturated"] == [0, 0, 0, 0]
    assert qm.header["calibration"]["weight_rule"] == "max"


def test_act_frac_rule():
    # m = 1, margin 1.25: (2^16 - 1) / 1.25 = 52428 -> floor(log2) = 15
    assert act_frac(1.0, 40) == 15
    assert act_frac(1.0, 10) == 9          # capped at Fc - 1 (shift >= 1)
    assert act_frac(0.0, 20) == 19         # dead layer


@pytest.mark.parametrize("rule, pick", [("max", weight_frac), ("mse", weight_frac_mse)])
def test_weight_codes_are_rounded_and_saturated_weights(rule, pick):
    params, v = random_float_params(TINY, seed=0, std=0.5)
    qm, stats = quantize_params(params, v, np.random.default_rng(0).standard_normal((8, 8)), weight_rule=rule)
    for l in range(1, 5):
        fw = qm.layers[l - 1]["weight"]["frac"]
        assert fw == pick(params[f"w{l}"])
        # each code is the float weight rounded half up, then saturated to [-127, 127]
        want = np.clip(np.floor(params[f"w{l}"].astype(np.float64) * 2.0 ** fw + 0.5), -127, 127)
        assert np.array_equal(qm.w[l], want)
        assert stats["w_saturated"][l - 1] == np.count_nonzero(
            np.abs(np.floor(params[f"w{l}"].astype(np.float64) * 2.0 ** fw + 0.5)) > 127)
    assert stats["v_saturated"] == 0 and stats["bias_saturated"] == [0, 0, 0, 0]


def test_calibration_uses_all_three_passes():
    params, v = random_float_params(TINY, seed=1, std=0.3)
    z = np.random.default_rng(2).standard_normal((4, 8))
    _, stats = quantize_params(params, v, z)
    g = FloatGenerator(params, v)
    m1 = max(float(np.max(g.layers(u)[0])) for u in (z, z + v[0], z + v[1]))
    assert stats["act_max"][0] == pytest.approx(m1, rel=1e-12)


def test_quantizer_refuses_bad_params():
    params, v = random_float_params(TINY, seed=0)
    bad = dict(params, w2=params["w2"].copy())
    bad["w2"][0, 0, 0, 0] = np.nan
    with pytest.raises(UserError, match="non-finite"):
        quantize_params(bad, v, np.zeros((2, 8)))
    with pytest.raises(UserError, match="calibration z"):
        quantize_params(params, v, np.zeros((2, 7)))
    with pytest.raises(UserError, match="lack 'b3'"):
        quantize_params({k: a for k, a in params.items() if k != "b3"}, v, np.zeros((2, 8)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    g = Generator(TINY, rng=np.random.default_rng(0))
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    save_checkpoint(path, generator_arrays(g), {"iteration": 5, "channels": TINY, "preset": "test"})
    return path


def test_quantize_command_writes_valid_model_and_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "q.npz"
    rep = tmp_path / "rep"
    assert cli.main(["quantize", str(checkpoint), "-o", str(out), "--calib", "20", "--report", str(rep)]) == 0
    qm = load_qmodel(out)
    assert qm.header["source"]["sha256"] == sha256_file(checkpoint)
    assert qm.header["calibration"]["n_z"] == 20 and qm.channels == TINY
    text = capsys.readouterr().out
    assert "tanh index" in text and "saturated" in text
    prof = json.loads((rep / "report.json").read_text())
    assert [lay["layer"] for lay in prof["layers"]] == [1, 2, 3, 4]
    assert prof["layers"][0]["acc"]["count"] == 20 * 3 * 8 * 16
    for l in range(1, 5):
        with Image.open(rep / f"layer{l}.png") as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "layer1.png" in (rep / "report.md").read_text()
    # the same checkpoint quantizes to the same codes
    out2 = tmp_path / "q2.npz"
    assert cli.main(["quantize", str(checkpoint), "-o", str(out2), "--calib", "20"]) == 0
    assert all(np.array_equal(a, load_qmodel(out2).arrays()[k]) for k, a in qm.arrays().items())
    assert qm.header["calibration"]["weight_rule"] == "max"


def test_quantize_command_weight_rule_option(checkpoint, tmp_path):
    out = tmp_path / "q.npz"
    assert cli.main(["quantize", str(checkpoint), "-o", str(out), "--calib", "5", "--weight-rule", "mse"]) == 0
    qm = load_qmodel(out)
    assert qm.header["calibration"]["weight_rule"] == "mse"
    g = Generator(TINY, rng=np.random.default_rng(0))
    assert [r["weight"]["frac"] for r in qm.layers] == [weight_frac_mse(g.params[f"w{l}"]) for l in range(1, 5)]
    with pytest.raises(SystemExit):
        cli.main(["quantize", str(checkpoint), "-o", str(out), "--weight-rule", "median"])


def test_report_counts_saturation(checkpoint, tmp_path):
    # a model calibrated on tiny z but profiled on ordinary z must show saturated activations
    from golden.profile import profile
    g = Generator(TINY, rng=np.random.default_rng(0))
    qm, _ = quantize_params({k: np.asarray(a) for k, a in g.params.items()}, g.v * 0,
                            np.random.default_rng(0).standard_normal((4, 8)) * 1e-3)
    prof = profile(qm, n=10)
    assert prof["layers"][0]["output"]["saturated"] > 0


def test_quantize_command_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    out = tmp_path / "q.npz"
    assert cli.main(["quantize", str(bad), "-o", str(out)]) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["quantize", str(tmp_path / "none.npz"), "-o", str(out)]) == 2
    assert not out.exists()
