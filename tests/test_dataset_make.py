"""`avatargan dataset`: seeded py-avataaars avatars, byte-for-byte reproducible, written safely."""

import csv
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from base.fileio import MANIFEST
from base.errors import UserError
from golden import dataset as ds


def _hashes(folder):
    """sha256 of every file under ``folder``, keyed by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(folder):
    with open(folder / ds.CSV_NAME, newline="") as f:
        return list(csv.DictReader(f))


def _hex(color):
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Eight avatars from seed 0, made through the command line."""
    out = tmp_path_factory.mktemp("small") / "avatars"
    assert cli.main(["dataset", "--count", "8", "--seed", "0", "--out", str(out), "--quiet"]) == 0
    return out


def test_layout_and_formats(small):
    images = ds.load_images(small)
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
    rows = _rows(small)
    assert [r["png"] for r in rows] == [f"png/{i:04d}.png" for i in range(8)]
    assert set(ds.ATTRIBUTES) <= set(rows[0])
    for i, r in enumerate(rows):
        with Image.open(small / r["png"]) as im:
            assert (im.size, im.mode) == ((32, 32), "RGB")
            assert np.array_equal(np.asarray(im), images[i])  # PNG and npz hold the same pixels
    info = json.loads((small / ds.JSON_NAME).read_text())
    assert (info["count"], info["seed"], info["filter"], info["source"]) == (8, 0, "LANCZOS", "py-avataaars")
    # nothing but the dataset: no temporary or hidden files left beside or inside it
    assert sorted(p.name for p in small.parent.iterdir()) == ["avatars"]
    # ... except the manifest that marks the folder as this tool's (base.fileio)
    assert [p.name for p in small.rglob(".*")] == [MANIFEST]


def test_same_seed_same_bytes_other_seed_other_avatars(small, tmp_path):
    again = tmp_path / "again"
    assert cli.main(["dataset", "--count", "8", "--out", str(again), "--quiet"]) == 0  # default seed 0
    assert _hashes(again) == _hashes(small)
    other = tmp_path / "other"
    assert cli.main(["dataset", "--count", "8", "--seed", "1", "--out", str(other), "--quiet"]) == 0
    assert not np.array_equal(ds.load_images(other), ds.load_images(small))
    # avatar i does not depend on how many are drawn
    assert np.array_equal(ds.make_avatars(3, 0, progress=False)[0], ds.load_images(small)[:3])


def test_avatars_are_varied_faces_on_white(small):
    images = ds.load_images(small).astype(int)
    assert len({im.tobytes() for im in images}) == 8
    # the background is white: most of the top corners of most avatars are pure white
    corners = np.concatenate([images[:, :3, :3], images[:, :3, -3:]], axis=1)
    assert (corners == 255).all(axis=-1).mean() > 0.7
    # the face fills the frame: the skin colour named in attributes.csv covers a good part of
    # the picture (at least 8 %), and a wrong skin colour would not
    rows = _rows(small)
    import py_avataaars as pa

    skins = list(pa.SkinColor)
    for im, r in zip(images, rows):
        right = pa.SkinColor[r["skin_color"]]
        wrong = skins[(skins.index(right) + 1) % len(skins)]

        def share(c):
            return (np.linalg.norm(im - _hex(c.main_value), axis=-1) < 20).mean()

        assert share(right) > 0.08, (r, share(right))
        assert share(wrong) < share(right)


def test_attribute_draw_covers_choices():
    attrs = ds.draw_attributes(275, 0)
    tops = {a["top_type"] for a in attrs}
    assert len(tops) >= 30  # of 35 hair styles and hats
    shown = [ds.visible_attributes(a) for a in attrs]
    no_beard = sum(s["facial_hair_type"] == "NONE" for s in shown) / len(shown)
    assert 0.45 < no_beard < 0.75  # P_NO_FACIAL_HAIR = 0.6
    for s in shown:  # hidden attributes are blank
        assert (s["hair_color"] == "") == (not s["top_type"].startswith(("LONG_HAIR", "SHORT_HAIR")))
        assert (s["clothe_graphic_type"] == "") == (s["clothe_type"] != "GRAPHIC_SHIRT")


def test_library_prints_are_silenced(tmp_path, capfd):
    assert cli.main(["dataset", "--count", "2", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out, err = capfd.readouterr()
    assert out.splitlines() == [f"wrote 2 images of 32x32 to {tmp_path / 'd'}/ (avatars.npz, attributes.csv, png/)"]
    assert err == ""


def test_progress_on_stderr(tmp_path, capfd):
    assert cli.main(["dataset", "--count", "2", "--out", str(tmp_path / "d")]) == 0
    out, err = capfd.readouterr()
    assert "avatars" in err and "2/2" in err
    assert "avatars:" not in out


def test_rerun_replaces_old_dataset(tmp_path):
    out = tmp_path / "d"
    assert cli.main(["dataset", "--count", "3", "--out", str(out), "--quiet"]) == 0
    assert cli.main(["dataset", "--count", "2", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    assert len(ds.load_images(out)) == 2
    assert sorted(p.name for p in (out / "png").iterdir()) == ["0000.png", "0001.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_failed_run_keeps_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / "d"
    assert cli.main(["dataset", "--count", "2", "--out", str(out), "--quiet"]) == 0
    before = _hashes(out)

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ds, "save_npz", disk_full)
    with pytest.raises(UserError, match="no space left on the device"):
        ds.generate_dataset(out, count=3, seed=1, progress=False)
    assert _hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # the half-built copy is gone


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "--count must be between 1 and 9999"),
    (["--count", "10000"], "--count must be between 1 and 9999"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--from", ".", "--count", "3"], "--count and --seed apply to drawn avatars"),
])
def test_bad_options(tmp_path, capsys, argv, message):
    assert cli.main(["dataset", *argv, "--out", str(tmp_path / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "d").exists()


def test_output_that_is_not_a_dataset_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert cli.main(["dataset", "--count", "1", "--out", str(mine), "--quiet"]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert cli.main(["dataset", "--count", "1", "--out", str(a_file), "--quiet"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "x"


def test_unwritable_output_path(tmp_path, capsys):
    # Tests run as root, which ignores permission bits; a parent that is a regular file cannot
    # hold a folder for anyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    assert cli.main(["dataset", "--count", "1", "--out", str(blocker / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create folder" in err[0] and str(blocker) in err[0]
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_default_275_avatars_reproducible(tmp_path):
    """The default dataset (275 avatars, seed 0) twice: identical files, byte for byte."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["dataset", "--out", str(a), "--quiet"]) == 0
    assert cli.main(["dataset", "--out", str(b), "--quiet"]) == 0
    ha = _hashes(a)
    assert len(ha) == 275 + 4  # PNGs, csv, npz, json, manifest
    assert ha == _hashes(b)
    assert len({im.tobytes() for im in ds.load_images(a)}) == 275
