"""`avatargan dataset --from DIR` and `golden.dataset.load_images`: real files of every kind, and bad input.

Every image here is made by the test with Pillow (or NumPy), in the format named, and the
expected 32×32 result is worked out from how the picture was drawn, not from the code under test.
"""

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from base.errors import UserError
from golden import dataset as ds

WHITE = (255, 255, 255)


def _import(src, out):
    """Run ``avatargan dataset --from src --out out``; return the exit status."""
    return cli.main(["dataset", "--from", str(src), "--out", str(out), "--quiet"])


def _one(tmp_path, name, save):
    """Write one image with ``save(path)`` into a fresh folder, import it, return the (32,32,3) array."""
    src = tmp_path / "src"
    src.mkdir()
    save(src / name)
    images, rows = ds.import_images(src, progress=False)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8
    assert rows[0]["source"] == name
    return images[0].astype(int)


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- every kind of image -----------------------------------------------------------------------

def test_rgba_png_transparency_becomes_white(tmp_path):
    def save(p):
        a = np.zeros((64, 64, 4), np.uint8)          # fully transparent black ...
        a[16:48, 16:48] = (200, 0, 0, 255)           # ... around an opaque red square
        a[0:8, 56:64] = (0, 0, 255, 128)             # half-transparent blue in a corner
        Image.fromarray(a, "RGBA").save(p)

    im = _one(tmp_path, "rgba.png", save)
    assert tuple(im[0, 0]) == WHITE                  # transparent black is white, not black
    assert tuple(im[16, 16]) == (200, 0, 0)
    r, g, b = im[1, 30]                              # blue at alpha 128 over white
    assert abs(r - 127) <= 2 and abs(g - 127) <= 2 and b == 255  # LANCZOS/rounding: ±2 stated


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    def save(p):
        a = np.zeros((32, 32), np.uint16)
        a[:, :16] = 65535                            # white left half
        a[:, 16:] = 128 * 257                        # mid grey right half (16-bit code 32896)
        Image.fromarray(a).save(p)
        with Image.open(p) as check:                 # really a 16-bit file
            assert check.mode.startswith("I")

    im = _one(tmp_path, "grey16.png", save)
    assert tuple(im[5, 2]) == (255, 255, 255)
    assert tuple(im[5, 29]) == (128, 128, 128)       # a plain convert("L") would clip this to 255


def test_palette_gif_with_transparency(tmp_path):
    def save(p):
        a = np.zeros((40, 40), np.uint8)             # index 0: transparent
        a[10:30, 10:30] = 1                          # index 1: green
        im = Image.fromarray(a, "P")
        im.putpalette([0, 0, 0, 0, 160, 0] + [0] * 762)
        im.save(p, transparency=0)
        with Image.open(p) as check:
            assert check.mode == "P" and "transparency" in check.info

    im = _one(tmp_path, "pal.gif", save)
    assert tuple(im[0, 0]) == WHITE
    assert tuple(im[16, 16]) == (0, 160, 0)


def test_rgba_webp(tmp_path):
    def save(p):
        a = np.zeros((48, 48, 4), np.uint8)
        a[:, 24:] = (10, 20, 200, 255)               # opaque blue right half, transparent left
        Image.fromarray(a, "RGBA").save(p, lossless=True)
        with Image.open(p) as check:
            assert check.format == "WEBP" and check.mode == "RGBA"

    im = _one(tmp_path, "half.webp", save)
    assert tuple(im[10, 2]) == WHITE
    assert tuple(im[10, 29]) == (10, 20, 200)


def test_greyscale_jpeg(tmp_path):
    def save(p):
        Image.new("L", (50, 50), 100).save(p, quality=95)
        with Image.open(p) as check:
            assert check.mode == "L"

    im = _one(tmp_path, "grey.jpg", save)
    assert np.abs(im - 100).max() <= 2               # JPEG is lossy: ±2 stated


def test_bmp_and_la_png(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (33, 33), (1, 2, 3)).save(src / "a.bmp")
    Image.new("LA", (20, 20), (60, 0)).save(src / "b.png")  # fully transparent grey
    images, rows = ds.import_images(src, progress=False)
    assert [r["source"] for r in rows] == ["a.bmp", "b.png"]
    assert [r["mode"] for r in rows] == ["RGB", "LA"]
    assert (images[0] == (1, 2, 3)).all()
    assert (images[1] == 255).all()


@pytest.mark.parametrize("w, h", [(96, 32), (32, 96), (301, 97)])
def test_centre_square_is_kept(tmp_path, w, h):
    def save(p):
        a = np.zeros((h, w, 3), np.uint8)
        a[:] = (255, 0, 0)                            # red margins ...
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        a[top:top + side, left:left + side] = (0, 200, 0)  # ... around the green centre square
        Image.fromarray(a).save(p)

    im = _one(tmp_path, "wide.png", save)
    assert (im == (0, 200, 0)).all()


def test_large_image_is_reduced(tmp_path):
    def save(p):
        a = np.zeros((640, 640, 3), np.uint8)
        a[:320] = (250, 250, 0)                       # yellow top half, black bottom half
        Image.fromarray(a).save(p)

    im = _one(tmp_path, "big.png", save)
    assert (im[:12] == (250, 250, 0)).all()
    assert np.abs(im[20:]).max() <= 1                 # LANCZOS rings by ±1 near the edge (stated)
    assert im[:, :, 0].mean() == pytest.approx(125, abs=3)


def test_cli_import_writes_a_dataset(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        Image.new("RGB", (40 + i, 40), c).save(src / f"img{i}.png")
    (src / "notes.txt").write_text("not an image, ignored by its name")
    out = tmp_path / "out"
    assert _import(src, out) == 0
    images = ds.load_images(out)
    assert images.shape == (3, 32, 32, 3)
    assert [tuple(im[5, 5]) for im in images] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert (out / "png" / "0002.png").is_file() and (out / ds.CSV_NAME).is_file()
    assert "img1.png" in (out / ds.CSV_NAME).read_text()
    out2 = tmp_path / "out2"
    assert _import(src, out2) == 0
    assert _hashes(out2) == _hashes(out)              # same folder, same bytes


# --- bad input -----------------------------------------------------------------------------------

def _truncated_png(p):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)  # noise: big IDAT
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _truncated_png(src / "cut.png")
    (src / "text.png").write_text("I am not a PNG\n")
    (src / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (32, 32), (9, 9, 9)).save(src / "good.png")
    out = tmp_path / "out"
    assert _import(src, out) == 0
    err = capsys.readouterr().err
    for bad in ("cut.png", "text.png", "empty.jpg"):
        assert any(bad in line and "skipping" in line for line in err.splitlines()), err
    assert "good.png" not in err
    images = ds.load_images(out)
    assert images.shape == (1, 32, 32, 3) and (images == 9).all()


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "is empty"),
    (lambda d: (d / "notes.txt").write_text("hello"), "holds no image files"),
    (lambda d: (_truncated_png(d / "cut.png"), (d / "t.png").write_text("x")),
     "none of the 2 image files"),
])
def test_no_usable_image_is_a_user_error_and_keeps_old_dataset(tmp_path, capsys, make, message):
    out = tmp_path / "out"
    assert cli.main(["dataset", "--count", "1", "--out", str(out), "--quiet"]) == 0
    before = _hashes(out)
    capsys.readouterr()
    src = tmp_path / "src"
    src.mkdir()
    make(src)
    assert _import(src, out) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and message in err[0] and str(src) in err[0]
    assert _hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_missing_folder_and_file_instead_of_folder(tmp_path, capsys):
    assert _import(tmp_path / "nope", tmp_path / "out") == 2
    assert "does not exist" in capsys.readouterr().err
    f = tmp_path / "pic.png"
    Image.new("RGB", (4, 4)).save(f)
    assert _import(f, tmp_path / "out") == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_keeps_everything(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a folder should be")  # root ignores chmod; this is unwritable for all
    assert _import(src, blocker / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create folder" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "src"]


def test_output_is_the_source_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    assert _import(src, src) == 2
    assert "is the image folder itself" in capsys.readouterr().err
    assert [p.name for p in src.iterdir()] == ["a.png"]


# --- load_images -----------------------------------------------------------------------------------

def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_images_accepts_npz_and_folder(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    ds.save_npz(tmp_path / "avatars.npz", images=a)
    assert np.array_equal(ds.load_images(tmp_path / "avatars.npz"), a)
    assert np.array_equal(ds.load_images(tmp_path), a)
    other = _npz(tmp_path / "other.npz", images=a)      # numpy's own writer is fine too
    assert np.array_equal(ds.load_images(other), a)


@pytest.mark.parametrize("make, message", [
    (lambda p: _npz(p, images=np.zeros((2, 32, 32, 3), np.float32)), "must be uint8"),
    (lambda p: _npz(p, images=np.zeros((2, 32, 32, 4), np.uint8)), "must have shape"),
    (lambda p: _npz(p, images=np.zeros((2, 3, 32, 32), np.uint8)), "must have shape"),
    (lambda p: _npz(p, images=np.zeros((32, 32, 3), np.uint8)), "must have shape"),
    (lambda p: _npz(p, images=np.zeros((0, 32, 32, 3), np.uint8)), "N >= 1"),
    (lambda p: _npz(p, pictures=np.zeros((2, 32, 32, 3), np.uint8)), "no array 'images' (found: pictures)"),
    (lambda p: _npz(p, images=np.array([{"a": 1}], dtype=object)), "only plain numbers are read"),
    (lambda p: p.write_text("hello, I am text"), "is a text file, not an .npz archive"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((2, 32, 32, 3), np.uint8))
     or p.with_suffix(".npy").rename(p), "is a single NumPy .npy array, not an .npz archive"),
])
def test_load_images_refuses_bad_files(tmp_path, make, message):
    p = tmp_path / "bad.npz"
    make(p)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ds.load_images(p)


def test_load_images_refuses_truncated_npz(tmp_path):
    p = tmp_path / "cut.npz"
    ds.save_npz(p, images=np.zeros((50, 32, 32, 3), np.uint8))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not an .npz file|not a readable .npz"):
        ds.load_images(p)
    buf = io.BytesIO(data)                              # sanity: the untruncated bytes are a zip
    assert zipfile.is_zipfile(buf)


def test_load_images_missing(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ds.load_images(tmp_path / "nothing.npz")
    with pytest.raises(UserError, match="not a dataset folder"):
        ds.load_images(tmp_path)
