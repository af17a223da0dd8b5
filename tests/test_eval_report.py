"""`avatargan evaluate`: the metrics it reports detect bad samples; report files; bad input."""

import json

import numpy as np
import pytest

from avatargan import cli
from avatargan.commands.evaluate import evaluate_images, fixed_vs_float, markdown
from eval_synth import blur, synthetic_avatars
from golden.checkpoint import save_generator
from golden.models import Generator
from golden.qmodel import save_qmodel
from golden.quantize import quantize_params

CHANNELS = [16, 16, 8, 8, 1]


@pytest.fixture(scope="module")
def real():
    return synthetic_avatars(120, seed=11)


@pytest.fixture(scope="module")
def files(tmp_path_factory, real):
    d = tmp_path_factory.mktemp("eval")
    gen = Generator(CHANNELS, np.random.default_rng(3))
    for name, a in gen.params.items():
        if name.startswith("w"):
            a *= 6.0
    ckpt = save_generator(d / "g.npz", gen)
    qm, _ = quantize_params(gen.params, gen.v, np.random.default_rng(4).standard_normal((64, CHANNELS[0])))
    save_qmodel(qm, d / "q.npz")
    np.savez(d / "avatars.npz", images=real)
    np.savez(d / "tiny.npz", images=real[:3])
    np.savez(d / "noimages.npz", pictures=real)
    return {"ckpt": str(ckpt), "model": str(d / "q.npz"), "data": str(d / "avatars.npz"),
            "tiny": str(d / "tiny.npz"), "noimages": str(d / "noimages.npz"), "dir": d}


def nchw(x):
    return x.transpose(0, 3, 1, 2)


def test_metrics_accept_good_and_flag_bad_samples(real):
    good = evaluate_images(nchw(synthetic_avatars(60, seed=12)), real, seed=0)
    assert good["swd_over_floor"] < 2.0
    assert 0.85 < good["diversity_ratio"] < 1.15
    assert good["near_duplicates"]["share"] < 0.2
    assert 0.85 < good["diversity_ratio_real_halves"] < 1.15

    blurred = evaluate_images(nchw(blur(synthetic_avatars(60, seed=12))), real, seed=0)
    assert blurred["swd_over_floor"] > 3.0

    collapsed = evaluate_images(nchw(np.repeat(real[:2], 30, axis=0)), real, seed=0)
    assert collapsed["diversity_ratio"] < 0.8
    assert collapsed["near_duplicates"]["share"] == 1.0  # copies of training avatars


def test_fidelity_checker_passes_equal_and_fails_wrong(real):
    flt = nchw(synthetic_avatars(40, seed=13))
    base = evaluate_images(flt, real, seed=0)["swd"]
    same = fixed_vs_float(flt.copy(), flt, real, 0, base)
    assert same["psnr_db"] == float("inf") and same["psnr_ok"]
    assert same["swd_rel_diff"] == 0.0 and same["swd_rel_ok"] and same["pixels_equal_share"] == 1.0
    off_by_one = np.clip(flt.astype(int) + np.random.default_rng(0).integers(-1, 2, flt.shape), 0, 255)
    near = fixed_vs_float(off_by_one.astype(np.uint8), flt, real, 0, base)
    assert near["psnr_ok"] and near["psnr_db"] > 48 and near["max_abs_pixel_diff"] == 1
    wrong = np.clip(flt.astype(int) + 40, 0, 255).astype(np.uint8)  # a broken fixed-point model
    bad = fixed_vs_float(wrong, flt, real, 0, base)
    assert not bad["psnr_ok"] and bad["psnr_db"] < 40
    assert not bad["swd_rel_ok"] and bad["swd_rel_diff"] > 0.02


def test_evaluate_float_and_fixed_writes_reports(files, tmp_path, capsys):
    out = tmp_path / "rep"
    status = cli.main(["evaluate", files["ckpt"], "--fixed", files["model"], "--data", files["data"],
                       "--count", "40", "--out", str(out)])
    cap = capsys.readouterr()
    assert status == 0, cap.err
    rep = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert md in cap.out
    m = rep["metrics"]
    assert m["swd"]["levels"] == [32, 16] and len(m["swd"]["per_level_x1e3"]) == 2
    assert m["swd_floor"]["avg_x1e3"] > 0 and m["swd"]["avg_x1e3"] > m["swd_floor"]["avg_x1e3"]
    assert rep["real_count"] == 120 and m["real_half_size"] == 60
    fx = rep["fixed"]
    assert fx["z_count"] == 40 and fx["psnr_db"] > 30
    assert fx["swd_float"] == m["swd"]
    assert "PSNR fixed vs float" in md and "floor" in md
    for name in ("samples.png", "samples_fixed.png"):
        assert (out / name).stat().st_size > 0
    # deterministic: the same command gives the same figures
    cli.main(["evaluate", files["ckpt"], "--fixed", files["model"], "--data", files["data"],
              "--count", "40", "--out", str(tmp_path / "rep2")])
    rep2 = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert rep2["metrics"] == rep["metrics"] and rep2["fixed"]["psnr_db"] == fx["psnr_db"]


def test_evaluate_fixed_only(files, tmp_path, capsys):
    out = tmp_path / "fx"
    assert cli.main(["evaluate", "--fixed", files["model"], "--data", str(files["dir"]),
                     "--count", "20", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert "integer golden model" in rep["source"] and "note" in rep["fixed"] and "psnr_db" not in rep["fixed"]
    assert "no CHECKPOINT" in markdown(rep)


def test_evaluate_bad_input(files, tmp_path, capsys):
    def one_line(argv, needle):
        status = cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and needle in err[0], err

    out = str(tmp_path / "o")
    one_line(["evaluate", files["ckpt"], "--data", str(tmp_path / "none.npz"), "--out", out], "does not exist")
    one_line(["evaluate", files["ckpt"], "--data", files["tiny"], "--out", out], "at least 4")
    one_line(["evaluate", files["ckpt"], "--data", files["noimages"], "--out", out], "images")
    one_line(["evaluate", files["ckpt"], "--data", files["data"], "--count", "1", "--out", out], "--count")
    one_line(["evaluate", str(tmp_path / "nock.npz"), "--data", files["data"], "--out", out], "does not exist")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    one_line(["evaluate", files["ckpt"], "--data", files["data"], "--out", str(a_file)], "not a folder")
    assert not (tmp_path / "o").exists()
