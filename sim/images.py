"""PNG grids of simulated avatars (hardware, golden, difference), written atomically."""

from __future__ import annotations

import math
import os

import numpy as np

from base.fileio import atomic_path


def grid(rgb: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile avatars ``(N, 3, 32, 32)`` uint8 into one ``(H, W, 3)`` image with ``pad`` grey pixels between."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    n = len(rgb)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    h, w = rgb.shape[2], rgb.shape[3]
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 64, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = rgb[i].transpose(1, 2, 0)
    return out


def difference(hw: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Difference avatars: black where equal, the absolute difference (scaled ×8, at least 64) elsewhere."""
    d = np.abs(hw.astype(np.int16) - ref.astype(np.int16))
    return np.where(d > 0, np.clip(d * 8, 64, 255), 0).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray, scale: int = 4) -> None:
    """Write an ``(H, W, 3)`` uint8 image, enlarged ``scale`` times (nearest neighbour), atomically."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
