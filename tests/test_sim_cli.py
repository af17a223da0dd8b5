"""``avatargan simulate``: bad input is one line and exit 2; a tiny run writes its images and verdict."""

import json

import numpy as np
import pytest

from avatargan.cli import main
from golden.qmodel import save_qmodel
from golden.random_models import random_qmodel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.npz"
    save_qmodel(random_qmodel((8, 8, 4, 4, 1), seed=1, std=0.3), path)
    return path


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("avatargan simulate: error:") and "\n" not in err
    return err


def test_missing_model(capsys, tmp_path):
    err = one_line_error(capsys, ["simulate", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o")])
    assert "does not exist" in err


def test_not_a_model(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    one_line_error(capsys, ["simulate", str(bad), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("content,what", [
    (b"garbage", "is a text file"),
    (None, "shape"),
    ("nan", "non-finite"),
])
def test_bad_z_file(capsys, tmp_path, tiny, content, what):
    zf = tmp_path / "z.npy"
    if content is None:
        np.save(zf, np.zeros((2, 5)))                     # nz is 8
    elif content == "nan":
        np.save(zf, np.full((1, 8), np.nan))
    else:
        zf.write_bytes(content)
    err = one_line_error(capsys, ["simulate", str(tiny), "--z", str(zf), "--out", str(tmp_path / "o")])
    assert what in err or "must have" in err


def test_bad_count(capsys, tmp_path, tiny):
    one_line_error(capsys, ["simulate", str(tiny), "--count", "0", "--out", str(tmp_path / "o")])


def test_tiny_run_writes_images_and_verdict(capsys, tmp_path, tiny):
    zf = tmp_path / "z.npy"
    np.save(zf, np.random.default_rng(0).standard_normal((3, 8)))
    out = tmp_path / "out"
    assert main(["simulate", str(tiny), "--z", str(zf), "--lanes", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bit-exact: yes" in printed and "cycles per avatar" in printed and "avatars/s" in printed
    for name in ("hardware.png", "golden.png", "difference.png", "simulate.md", "hardware.npy"):
        assert (out / name).is_file()
    summary = json.loads((out / "simulate.json").read_text())
    assert summary["bit_exact"] is True and summary["avatars"] == 3 and summary["mismatching_pixels"] == 0
    assert np.load(out / "hardware.npy").shape == (3, 3, 32, 32)


@pytest.mark.parametrize("argv,what", [
    (["--fast", "--waves"], "--waves needs the cocotb testbench"),
    (["--jobs", "2"], "--jobs is for --fast"),
    (["--fast", "--jobs", "0"], "--jobs must be between 1 and 256"),
])
def test_bad_fast_options(capsys, tmp_path, tiny, argv, what):
    err = one_line_error(capsys, ["simulate", str(tiny), "--out", str(tmp_path / "o"), *argv])
    assert what in err


def test_fast_run_matches_the_cocotb_run(capsys, tmp_path, tiny):
    zf = tmp_path / "z.npy"
    np.save(zf, np.random.default_rng(0).standard_normal((3, 8)))
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    assert main(["simulate", str(tiny), "--z", str(zf), "--lanes", "4", "--out", str(slow)]) == 0
    assert main(["simulate", str(tiny), "--z", str(zf), "--lanes", "4", "--out", str(fast), "--fast",
                 "--jobs", "2"]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out
    summary = json.loads((fast / "simulate.json").read_text())
    assert summary["bit_exact"] is True and summary["harness"] == "fast path, 2 process(es)"
    assert summary["cycles_per_avatar"] == json.loads((slow / "simulate.json").read_text())["cycles_per_avatar"]
    assert np.array_equal(np.load(fast / "hardware.npy"), np.load(slow / "hardware.npy"))
