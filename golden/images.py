"""Avatar pixels and picture files: float Tanh output → uint8, sample grids and single PNGs.

Every picture goes through :func:`base.fileio.atomic_path`, so a crash never leaves a
half-written PNG and never destroys the previous one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from base.errors import UserError
from base.fileio import atomic_path

#: Gutter colour between avatars in a grid (white, as the brief asks for thin white gutters).
GUTTER_RGB = (255, 255, 255)


def to_uint8(y: np.ndarray) -> np.ndarray:
    """Map Tanh outputs in [-1, 1] to pixels 0..255 by NUMERICS.md rule 5.

    ``pixel = min(max(floor(127.5 · (y + 1) + 0.5), 0), 255)``, computed in float64, so float
    and fixed-point avatars are compared in the same 0..255 units.

    Parameters
    ----------
    y : numpy.ndarray
        Any shape, float values (normally the generator's Tanh output).

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.
    """
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise UserError("the generator produced non-finite pixels (NaN or Inf)")
    q = np.floor(127.5 * (y + 1.0) + 0.5)
    return np.clip(q, 0, 255).astype(np.uint8)


def to_nhwc(rgb: np.ndarray) -> np.ndarray:
    """Return avatars as ``(N, H, W, 3)``, accepting ``(N, 3, H, W)`` (the models' layout) or NHWC."""
    a = np.asarray(rgb)
    if a.ndim != 4:
        raise ValueError(f"expected a batch of RGB avatars (4-D), got shape {a.shape}")
    if a.shape[-1] == 3:
        return a
    if a.shape[1] == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    raise ValueError(f"expected 3 colour channels in axis 1 or 3, got shape {a.shape}")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: bitmap font, fixed size
        return ImageFont.load_default()


def grid_image(
    avatars: np.ndarray,
    cols: int | None = None,
    scale: int = 4,
    gutter: int = 2,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Image.Image:
    """Lay out avatars on a grid, upscaled with NEAREST so every pixel stays a crisp square.

    Parameters
    ----------
    avatars : numpy.ndarray
        uint8 ``(N, 3, H, W)`` or ``(N, H, W, 3)``.
    cols : int, optional
        Avatars per row; default ``ceil(sqrt(N))``.
    scale : int
        Integer upscaling factor (nearest neighbour).
    gutter : int
        White gap in output pixels around and between avatars.
    row_labels : sequence of str, optional
        One label per grid row, written left of the row.
    col_labels : sequence of str, optional
        One label per grid column, written above the column.

    Returns
    -------
    PIL.Image.Image
        An RGB image.
    """
    a = to_nhwc(avatars)
    if a.dtype != np.uint8:
        raise ValueError(f"grid_image wants uint8 pixels, got {a.dtype}")
    n, h, w, _ = a.shape
    if n == 0:
        raise ValueError("no avatars to draw")
    if scale < 1 or gutter < 0:
        raise ValueError("scale must be >= 1 and gutter >= 0")
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    if col_labels is not None and len(col_labels) != cols:
        raise ValueError(f"{len(col_labels)} column labels for {cols} columns")
    cell_h, cell_w = h * scale, w * scale

    font = _font(max(10, cell_h // 4))
    label_w = 0
    if row_labels:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        label_w = max(int(probe.textlength(str(t), font=font)) for t in row_labels) + 2 * gutter + 4

    label_h = int(font.size * 1.4) + gutter if col_labels else 0

    width = label_w + gutter + cols * (cell_w + gutter)
    height = label_h + gutter + rows * (cell_h + gutter)
    canvas = Image.new("RGB", (width, height), GUTTER_RGB)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = Image.fromarray(a[i], "RGB").resize((cell_w, cell_h), Image.NEAREST)
        canvas.paste(tile, (label_w + gutter + c * (cell_w + gutter), label_h + gutter + r * (cell_h + gutter)))
    draw = ImageDraw.Draw(canvas)
    for r, text in enumerate(row_labels or []):
        y_mid = label_h + gutter + r * (cell_h + gutter) + cell_h // 2
        draw.text((gutter + 2, y_mid), str(text), fill=(0, 0, 0), font=font, anchor="lm")
    for c, text in enumerate(col_labels or []):
        x_mid = label_w + gutter + c * (cell_w + gutter) + cell_w // 2
        draw.text((x_mid, label_h // 2 + 1), str(text), fill=(0, 0, 0), font=font, anchor="mm")
    return canvas


def write_grid(path: str | os.PathLike, avatars: np.ndarray, **kwargs) -> Path:
    """Write :func:`grid_image` of ``avatars`` as a PNG at ``path``, atomically; return the path."""
    img = grid_image(avatars, **kwargs)
    return write_png(path, img)


def write_png(path: str | os.PathLike, image: Image.Image | np.ndarray) -> Path:
    """Write one picture (PIL image, or uint8 ``(H, W, 3)`` array) as PNG at ``path``, atomically."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
        image = Image.fromarray(image, "RGB")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UserError(f"{path}: pictures are written as PNG; give a file name ending in .png")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
