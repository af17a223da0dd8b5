"""`avatargan evaluate`: the protocol's report, the comparison of models, held-out references, bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from avatargan.commands.evaluate import fixed_vs_float, markdown, swd_section
from eval_synth import synthetic_avatars
from golden.checkpoint import load_generator, save_generator
from golden.evalproto import run_protocol
from golden.images import to_uint8
from golden.models import Generator
from golden.qmodel import save_qmodel
from golden.quantize import quantize_params

CHANNELS = [16, 16, 8, 8, 1]
FAST = ["--count", "16", "--repeats", "3"]


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
    # the same Generator with its last layer's weights scaled down: washed-out, flatter avatars
    gen.params["w4"] *= 0.3
    dull = save_generator(d / "dull.npz", gen)
    gen.params["w4"] /= 0.3
    qm, _ = quantize_params(gen.params, gen.v, np.random.default_rng(4).standard_normal((64, CHANNELS[0])))
    save_qmodel(qm, d / "q.npz")
    np.savez(d / "avatars.npz", images=real)
    np.savez(d / "small.npz", images=real[:15])
    np.savez(d / "noimages.npz", pictures=real)
    heldout = synthetic_avatars(70, seed=12)
    np.savez(d / "heldout.npz", images=np.concatenate([heldout, real[:5]]))  # 5 training copies inside
    return {"ckpt": str(ckpt), "dull": str(dull), "model": str(d / "q.npz"), "data": str(d / "avatars.npz"),
            "small": str(d / "small.npz"), "noimages": str(d / "noimages.npz"),
            "heldout": str(d / "heldout.npz"), "dir": d}


def nchw(x):
    return x.transpose(0, 3, 1, 2)


def test_fidelity_checker_passes_equal_and_fails_wrong(real):
    flt = [nchw(synthetic_avatars(16, seed=100 + r)) for r in range(3)]

    def fidelity(fixed_of):
        fixed = [fixed_of(f) for f in flt]
        res = run_protocol(real, {"float": lambda r: flt[r], "fixed": lambda r: fixed[r]}, 16, 3, seed=0,
                           patches=32, directions=128)
        return fixed_vs_float(np.concatenate(fixed), np.concatenate(flt), swd_section(res))

    same = fidelity(lambda f: f.copy())
    assert same["psnr_db"] == float("inf") and same["psnr_ok"]
    assert same["swd_rel_diff"] == 0.0 and same["swd_rel_ok"] and same["pixels_equal_share"] == 1.0
    assert not same["swd_fixed_vs_float_comparison"]["differ"]
    rng = np.random.default_rng(0)
    near = fidelity(lambda f: np.clip(f.astype(int) + rng.integers(-1, 2, f.shape), 0, 255).astype(np.uint8))
    assert near["psnr_ok"] and near["psnr_db"] > 48 and near["max_abs_pixel_diff"] == 1
    bad = fidelity(lambda f: np.clip(f.astype(int) + 40, 0, 255).astype(np.uint8))  # a broken fixed-point model
    assert not bad["psnr_ok"] and bad["psnr_db"] < 40
    assert not bad["swd_rel_ok"] and bad["swd_rel_diff"] > 0.02
    assert bad["swd_fixed_vs_float_comparison"]["differ"]


def run_eval(argv, capsys):
    status = cli.main(["evaluate", *argv])
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def test_evaluate_float_and_fixed_writes_reports(files, tmp_path, capsys):
    out = tmp_path / "rep"
    argv = [files["ckpt"], "--fixed", files["model"], "--data", files["data"], *FAST, "--out", str(out)]
    status, stdout, err = run_eval(argv, capsys)
    assert status == 0, err
    rep = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert md in stdout
    p = rep["protocol"]
    assert p["kind"] == "splits" and p["set_size"] == 16 and p["repeats"] == 3 and rep["train_count"] == 120
    rows = {r["name"]: r for r in rep["swd"]["rows"]}
    assert list(rows) == ["floor", "float", "fixed"]  # no training row with splits: it is the reference
    for r in rows.values():
        assert len(r["per_rep"]) == 3 and len(r["per_rep"][0]) == 2 and r["avg"]["n"] == 3
        assert r["avg"]["low"] <= r["avg"]["mean"] <= r["avg"]["high"]
        assert set(r["stats"]) == {"coverage", "repeat_share"}
    assert rows["float"]["avg"]["mean"] > rows["floor"]["avg"]["mean"]  # a random Generator is far off
    fx = rep["fixed"]
    assert fx["z_count"] == 48 and fx["psnr_db"] > 30  # all R x N z
    assert fx["swd_float_mean"] == rows["float"]["avg"]["mean"]
    assert "PSNR fixed vs float" in md and "floor" in md and "95 %" in md
    assert rep["checks"]["float"]["count"] == 48 and "real" in rep["checks"]
    for name in ("samples.png", "samples_fixed.png", "swd.png"):
        with Image.open(out / name) as im:
            assert im.size[0] > 100
    # the samples are the documented z: rows 0.. of default_rng(seed).standard_normal((R*N, nz))
    z = np.random.default_rng(0).standard_normal((48, CHANNELS[0])).astype(np.float32)
    want = to_uint8(load_generator(files["ckpt"]).rgb(z[:1]))[0].transpose(1, 2, 0)
    with Image.open(out / "samples.png") as im:
        grid = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(grid[2:2 + 128:4, 2:2 + 128:4], want)
    # deterministic: the same command gives the same figures
    run_eval(argv[:-1] + [str(tmp_path / "rep2")], capsys)
    rep2 = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert rep2["swd"] == rep["swd"] and rep2["checks"] == rep["checks"]


def test_compare_a_checkpoint_with_itself_and_with_a_damaged_copy(files, tmp_path, capsys):
    out = tmp_path / "same"
    status, stdout, err = run_eval([files["ckpt"], files["ckpt"], "--data", files["data"], *FAST, "--out", str(out)],
                                   capsys)
    assert status == 0, err
    rep = json.loads((out / "report.json").read_text())
    comp = {(c["a"], c["b"]): c for c in rep["swd"]["comparisons"]}
    ab = comp[("A", "B")]
    assert ab["diff_a_minus_b"]["mean"] == 0.0 and not ab["differ"]
    assert ab["verdict"] == "no difference beyond the interval"
    assert "| A vs B |" in stdout and (out / "samples_A.png").is_file() and (out / "samples_B.png").is_file()

    out = tmp_path / "dull"
    status, stdout, err = run_eval([files["ckpt"], files["dull"], "--data", files["data"], *FAST, "--out", str(out)],
                                   capsys)
    assert status == 0, err
    rep = json.loads((out / "report.json").read_text())
    ab = next(c for c in rep["swd"]["comparisons"] if (c["a"], c["b"]) == ("A", "B"))
    assert ab["differ"] and ab["verdict"] != "no difference beyond the interval"
    assert rep["models"]["B"].endswith("dull.npz")


def test_heldout_reference_drops_training_copies(files, tmp_path, capsys):
    out = tmp_path / "h"
    status, stdout, err = run_eval([files["ckpt"], "--data", files["data"], "--heldout", files["heldout"],
                                    *FAST, "--out", str(out)], capsys)
    assert status == 0, err
    rep = json.loads((out / "report.json").read_text())
    p = rep["protocol"]
    assert p["kind"] == "heldout" and p["pool"] == 70 and p["dropped_as_training_copies"] == 5
    assert [r["name"] for r in rep["swd"]["rows"]] == ["floor", "training set", "model"]
    assert "the training set" in stdout
    # default set size: the training set's size, at most half the held-out pool
    status, _, err = run_eval([files["ckpt"], "--data", files["data"], "--heldout", files["heldout"],
                               "--repeats", "2", "--out", str(tmp_path / "h2")], capsys)
    assert status == 0, err
    assert json.loads((tmp_path / "h2" / "report.json").read_text())["protocol"]["set_size"] == 35


def test_evaluate_fixed_only(files, tmp_path, capsys):
    out = tmp_path / "fx"
    status, _, err = run_eval(["--fixed", files["model"], "--data", str(files["dir"] / "avatars.npz"), *FAST,
                               "--out", str(out)], capsys)
    assert status == 0, err
    rep = json.loads((out / "report.json").read_text())
    assert "integer golden model" in rep["models"]["fixed"] and "note" in rep["fixed"]
    assert "psnr_db" not in rep["fixed"] and "no CHECKPOINT" in markdown(rep)


def test_evaluate_bad_input(files, tmp_path, capsys):
    def one_line(argv, needle):
        status = cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and needle in err[0], err

    out = str(tmp_path / "o")
    ck, data = files["ckpt"], files["data"]
    one_line(["evaluate", ck, "--data", str(tmp_path / "none.npz"), "--out", out], "does not exist")
    one_line(["evaluate", ck, "--data", files["small"], "--out", out], "at least 16")
    one_line(["evaluate", ck, "--data", files["noimages"], "--out", out], "images")
    one_line(["evaluate", ck, "--data", data, "--count", "7", "--out", out], "--count")
    one_line(["evaluate", ck, "--data", data, "--count", "61", "--out", out], "more than half")
    one_line(["evaluate", ck, "--data", data, "--repeats", "1", "--out", out], "--repeats")
    one_line(["evaluate", ck, "--data", data, "--count", "1000", "--repeats", "61", "--heldout", files["heldout"],
              "--out", out], "the limit is 60000")
    one_line(["evaluate", ck, "--data", data, "--count", "36", "--heldout", files["heldout"], "--out", out],
             "not in the training set")
    one_line(["evaluate", str(tmp_path / "nock.npz"), "--data", data, "--out", out], "does not exist")
    one_line(["evaluate", ck, ck, "--fixed", files["model"], "--data", data, "--out", out], "--fixed")
    one_line(["evaluate", *[ck] * 9, "--data", data, "--out", out], "at most 8")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    one_line(["evaluate", ck, "--data", data, "--out", str(a_file)], "not a folder")
    one_line(["evaluate", ck, "--data", data, "--out", str(tmp_path), "--heldout", data], "input")
    assert not (tmp_path / "o").exists()


def test_built_in_dataset_gets_a_held_out_reference_from_the_maker(tmp_path, capsys, monkeypatch, files):
    from golden.dataset import generate_dataset, load_images, make_avatars

    monkeypatch.chdir(tmp_path)  # the held-out cache lives in ./build/cache/heldout
    # The default set size is the protocol's (1 000, here 8 to be quick), not the training set's 5.
    monkeypatch.setattr("avatargan.commands.evaluate.DEFAULT_SET_CAP", 8)
    data = generate_dataset(tmp_path / "d", count=5, seed=3, progress=False)
    argv = [files["ckpt"], "--data", str(data), "--repeats", "2", "--out", str(tmp_path / "e")]
    status, _, err = run_eval(argv, capsys)
    assert status == 0, err
    assert "32 avatars of the built-in maker with seed 4 (made now and cached" in err
    rep = json.loads((tmp_path / "e" / "report.json").read_text())
    assert rep["protocol"]["kind"] == "heldout" and rep["protocol"]["set_size"] == 8
    cached = list((tmp_path / "build" / "cache" / "heldout").glob("avataaars-seed4-count32-*.npz"))
    assert len(cached) == 1
    want, _ = make_avatars(8, 4, progress=False)  # the same maker, seed 3 + 1 (avatar i does not depend on count)
    np.testing.assert_array_equal(load_images(cached[0])[:8], want)
    assert not any((load_images(data)[:, None] == want[None]).all(axis=(2, 3, 4)).ravel())
    status, _, err = run_eval(argv[:-1] + [str(tmp_path / "e2")], capsys)
    assert status == 0 and "(cached in" in err
    assert json.loads((tmp_path / "e2" / "report.json").read_text())["swd"] == rep["swd"]
