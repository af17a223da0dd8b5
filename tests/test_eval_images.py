"""Pixel mapping (NUMERICS rule 5) and grid PNGs (golden/images.py)."""

import os

import numpy as np
import pytest
from PIL import Image

from base.errors import UserError
from golden.images import grid_image, to_nhwc, to_uint8, write_grid


def test_to_uint8_rule5_hand_cases():
    y = np.array([-1.0, 1.0, 0.0, 0.5, -0.5, 2.0, -3.0, 0.999, -0.999])
    # floor(127.5*(y+1)+0.5): 0, 255, 128, floor(191.75)=191, floor(64.25)=64, clamp, clamp,
    # floor(255.3725)=255, floor(0.6275)=0
    assert to_uint8(y).tolist() == [0, 255, 128, 191, 64, 255, 0, 255, 0]
    assert to_uint8(np.float32([[-1.0]])).dtype == np.uint8
    with pytest.raises(UserError):
        to_uint8(np.array([0.0, np.nan]))


def test_to_nhwc():
    a = np.zeros((2, 3, 32, 32), np.uint8)
    assert to_nhwc(a).shape == (2, 32, 32, 3)
    assert to_nhwc(a.transpose(0, 2, 3, 1)).shape == (2, 32, 32, 3)
    with pytest.raises(ValueError):
        to_nhwc(np.zeros((2, 4, 32, 32)))


def test_grid_layout_and_pixels():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 200, (5, 32, 32, 3), dtype=np.uint8)
    img = np.asarray(grid_image(x, cols=3, scale=4, gutter=2))
    assert img.shape == (2 + 2 * 130, 2 + 3 * 130, 3)
    # avatar 4 sits in row 1, column 1; every source pixel is a 4x4 block (NEAREST)
    top, left = 2 + 130, 2 + 130
    np.testing.assert_array_equal(img[top:top + 128:4, left:left + 128:4], x[4])
    np.testing.assert_array_equal(img[top + 3:top + 128:4, left + 3:left + 128:4], x[4])
    assert (img[0] == 255).all() and (img[:, 130:132] == 255).all()  # gutters white
    assert (img[top:, 2 + 2 * 130:] == 255).all()  # the empty sixth cell
    # NCHW input gives the same picture
    np.testing.assert_array_equal(np.asarray(grid_image(x.transpose(0, 3, 1, 2), cols=3)), img)


def test_grid_row_labels():
    x = np.full((4, 32, 32, 3), 100, np.uint8)
    plain = np.asarray(grid_image(x, cols=2))
    labelled = np.asarray(grid_image(x, cols=2, row_labels=["z1", "z2"]))
    extra = labelled.shape[1] - plain.shape[1]
    assert labelled.shape[0] == plain.shape[0] and extra > 0
    label_area = labelled[:, :extra]
    assert (label_area.min(axis=2) < 128).any()  # dark text was drawn
    np.testing.assert_array_equal(labelled[:, extra:], plain)
    with pytest.raises(ValueError):
        grid_image(x, cols=2, row_labels=["only one"])


def test_write_grid_atomic_png(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = write_grid(tmp_path / "g.png", x, cols=2, scale=1, gutter=0)
    back = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(back[:32, 32:], x[1])
    assert os.listdir(tmp_path) == ["g.png"]
    with pytest.raises(UserError):
        write_grid(tmp_path / "g.jpg", x)
    assert os.listdir(tmp_path) == ["g.png"]


def test_grid_column_labels():
    x = np.full((4, 32, 32, 3), 100, np.uint8)
    plain = np.asarray(grid_image(x, cols=2))
    labelled = np.asarray(grid_image(x, cols=2, col_labels=["z1", "z2"]))
    extra = labelled.shape[0] - plain.shape[0]
    assert labelled.shape[1] == plain.shape[1] and extra > 0
    assert (labelled[:extra].min(axis=2) < 128).any()
    np.testing.assert_array_equal(labelled[extra:], plain)
    with pytest.raises(ValueError):
        grid_image(x, cols=2, col_labels=["a", "b", "c"])
