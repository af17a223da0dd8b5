"""`avatargan sample`, `interpolate` and `augment`: float and --fixed sources, files, bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from avatargan.commands.interpolate import interpolation_z
from golden.checkpoint import load_generator, save_generator
from golden.dataset import load_images
from golden.fixed import fixed_rgb, quantize_z
from golden.images import grid_image, to_uint8
from golden.models import Generator
from golden.qmodel import load_qmodel, save_qmodel
from base.fileio import sha256_file
from golden.quantize import quantize_params

CHANNELS = [16, 16, 8, 8, 1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small random float checkpoint and its quantized model."""
    d = tmp_path_factory.mktemp("models")
    gen = Generator(CHANNELS, np.random.default_rng(3))
    for name, a in gen.params.items():  # livelier than the N(0, 0.02) init: avatars with contrast
        a *= 6.0 if name.startswith("w") else 1.0
    ckpt = save_generator(d / "g.npz", gen)
    calib = np.random.default_rng(4).standard_normal((64, CHANNELS[0]))
    qm, _ = quantize_params(gen.params, gen.v, calib, source={"sha256": sha256_file(ckpt), "path": str(ckpt)})
    model = d / "q.npz"
    save_qmodel(qm, model)
    return str(ckpt), str(model)


def run_cli(argv, capsys):
    status = cli.main(argv)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def z_of(seed, shape, nz=CHANNELS[0]):
    """The documented z rule: numpy.random.default_rng(seed).standard_normal(shape + (nz,))."""
    return np.random.default_rng(seed).standard_normal(tuple(shape) + (nz,))


def png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_sample_float_grid_is_the_generator(models, tmp_path, capsys):
    ckpt, _ = models
    out = tmp_path / "s.png"
    status, stdout, _ = run_cli(["sample", ckpt, "--count", "6", "--seed", "5", "--out", str(out)], capsys)
    assert status == 0 and "6 avatars" in stdout
    want = to_uint8(load_generator(ckpt).rgb(z_of(5, (6,)).astype(np.float32)))
    np.testing.assert_array_equal(png(out), np.asarray(grid_image(want, cols=3)))
    assert want.std() > 5  # the grid is not a flat grey: a different seed must show
    other = tmp_path / "o.png"
    run_cli(["sample", ckpt, "--count", "6", "--seed", "6", "--out", str(other)], capsys)
    assert not np.array_equal(png(other), png(out))


def test_sample_fixed_without_checkpoint(models, tmp_path, capsys):
    ckpt, model = models
    out = tmp_path / "f.png"
    status, stdout, _ = run_cli(["sample", "--fixed", model, "--count", "4", "--out", str(out)], capsys)
    assert status == 0 and "integer golden model" in stdout
    zq, _ = quantize_z(z_of(0, (4,)), nz=CHANNELS[0])
    want = fixed_rgb(load_qmodel(model), zq)
    np.testing.assert_array_equal(png(out), np.asarray(grid_image(want, cols=2)))
    flt = to_uint8(load_generator(ckpt).rgb(z_of(0, (4,)).astype(np.float32)))
    assert np.abs(want.astype(int) - flt).max() <= 8  # same avatars, up to fixed-point error


def test_interpolation_points():
    z1, z2 = np.zeros((2, 4)), np.ones((2, 4)) * 8.0
    z = interpolation_z(z1, z2, 3)
    assert z.shape == (2, 5, 4)
    np.testing.assert_array_equal(z[0, :, 0], [0.0, 2.0, 4.0, 6.0, 8.0])  # t_k = k/4
    a, b = np.random.default_rng(0).standard_normal((2, 1, 7))
    z = interpolation_z(a, b, 1)  # N = 1: t_1 = 1/2
    np.testing.assert_allclose(z[0, 1], 0.5 * a[0] + 0.5 * b[0], rtol=1e-12)
    np.testing.assert_array_equal(z[0, 0], a[0])
    np.testing.assert_array_equal(z[0, 2], b[0])


def test_interpolate_grid(models, tmp_path, capsys):
    ckpt, model = models
    out = tmp_path / "i.png"
    status, _, _ = run_cli(["interpolate", ckpt, "--rows", "2", "--steps", "3", "--seed", "1", "--out", str(out)],
                           capsys)
    assert status == 0
    ends = z_of(1, (2, 2))
    rows = [[(1 - k / 4) * ends[r, 0] + (k / 4) * ends[r, 1] for k in range(5)] for r in range(2)]
    want = to_uint8(load_generator(ckpt).rgb(np.array(rows).reshape(10, -1).astype(np.float32)))
    heads = ["z1", "t=1/4", "t=2/4", "t=3/4", "z2"]
    np.testing.assert_array_equal(png(out), np.asarray(grid_image(want, cols=5, row_labels=["1", "2"],
                                                                   col_labels=heads)))
    fixed_out = tmp_path / "if.png"
    assert run_cli(["interpolate", "--fixed", model, "--out", str(fixed_out)], capsys)[0] == 0  # 3 rows, N = 3
    ends = z_of(0, (3, 2))
    z = np.array([[(1 - k / 4) * ends[r, 0] + (k / 4) * ends[r, 1] for k in range(5)] for r in range(3)])
    zq, _ = quantize_z(z.reshape(15, -1), nz=CHANNELS[0])
    want = fixed_rgb(load_qmodel(model), zq)
    np.testing.assert_array_equal(png(fixed_out), np.asarray(grid_image(want, cols=5, row_labels=["1", "2", "3"],
                                                                         col_labels=heads)))


def test_augment_writes_a_dataset_and_refuses_overwrite(models, tmp_path, capsys):
    ckpt, model = models
    out = tmp_path / "aug"
    status, _, _ = run_cli(["augment", ckpt, "--count", "5", "--seed", "2", "--out", str(out)], capsys)
    assert status == 0
    names = sorted(os.listdir(out / "png"))
    assert names == [f"{i:04d}.png" for i in range(5)]
    images = load_images(out)  # the output is itself a dataset
    want = to_uint8(load_generator(ckpt).rgb(z_of(2, (5,)).astype(np.float32))).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(images, want)
    for i in range(5):
        np.testing.assert_array_equal(png(out / "png" / f"{i:04d}.png"), images[i])
    assert json.loads((out / "augment.json").read_text())["count"] == 5
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    status, stdout, err = run_cli(["augment", "--fixed", model, "--count", "3", "--out", str(out)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    status, _, _ = run_cli(["augment", "--fixed", model, "--count", "3", "--out", str(out), "--force"], capsys)
    assert status == 0
    assert sorted(os.listdir(out / "png")) == ["0000.png", "0001.png", "0002.png"]  # stale ones gone
    zq, _ = quantize_z(z_of(0, (3,)), nz=CHANNELS[0])
    np.testing.assert_array_equal(load_images(out), fixed_rgb(load_qmodel(model), zq).transpose(0, 2, 3, 1))


def _one_line_error(argv, capsys, needle):
    status, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]


def test_bad_input_one_line_exit_2(models, tmp_path, capsys):
    ckpt, model = models
    out = str(tmp_path / "x.png")
    _one_line_error(["sample", str(tmp_path / "missing.npz"), "--out", out], capsys, "does not exist")
    _one_line_error(["sample", "--fixed", str(tmp_path / "missing.npz"), "--out", out], capsys, "does not exist")
    _one_line_error(["sample", ckpt, "--count", "0", "--out", out], capsys, "--count")
    _one_line_error(["sample", ckpt, "--count", "many", "--out", out], capsys, "--count must be an integer")
    _one_line_error(["sample", ckpt, "--seed", "-1", "--out", out], capsys, "--seed")
    _one_line_error(["sample", ckpt, "--out", str(tmp_path / "x.jpg")], capsys, ".png")
    _one_line_error(["interpolate", ckpt, "--steps", "0", "--out", out], capsys, "--steps")
    _one_line_error(["interpolate", ckpt, "--rows", "x", "--out", out], capsys, "--rows")
    _one_line_error(["augment", ckpt, "--count", "-2", "--out", str(tmp_path / "a")], capsys, "--count")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    _one_line_error(["sample", str(garbage), "--out", out], capsys, "garbage.npz")
    _one_line_error(["sample", "--fixed", str(garbage), "--out", out], capsys, "garbage.npz")
    # a checkpoint and a quantized model of different Generators (nz 100 vs 16)
    big = save_generator(tmp_path / "big.npz", Generator([100, 8, 4, 4, 1], np.random.default_rng(0)))
    _one_line_error(["sample", str(big), "--fixed", model, "--out", out], capsys, "nz")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _one_line_error(["augment", ckpt, "--count", "2", "--out", str(a_file)], capsys, "not a folder")
    assert not os.path.exists(out)
