"""Synthetic avatar-like images for the evaluation tests (no dataset, no download needed).

Each image has a background, a shirt, a face disc with hair and two eyes, with random colours,
positions and sizes, so two disjoint sets drawn from it are "the same distribution" and a blurred
or colour-shifted set is measurably different.
"""

import numpy as np


def synthetic_avatars(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """``n`` random avatar-like uint8 images ``(n, size, size, 3)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    yy, xx = yy[None], xx[None]

    def col(k):
        return rng.integers(0, 256, size=(n, 1, 1, 3)).astype(np.float64) if k is None else k

    img = np.broadcast_to(col(None), (n, size, size, 3)).copy()  # background
    cy = 15 + rng.uniform(-2, 2, (n, 1, 1))
    cx = 16 + rng.uniform(-2, 2, (n, 1, 1))
    r = rng.uniform(7, 10, (n, 1, 1))
    shirt = yy >= 25 + rng.integers(-1, 2, (n, 1, 1))
    img[shirt] = np.broadcast_to(col(None), (n, size, size, 3))[shirt]
    hair = (yy - cy + 2) ** 2 + (xx - cx) ** 2 <= (r + 2) ** 2
    hair &= yy < cy
    img[hair] = np.broadcast_to(col(None), (n, size, size, 3))[hair]
    skins = np.array([[255, 220, 180], [230, 180, 140], [190, 140, 100], [140, 95, 60]], float)
    skin = skins[rng.integers(0, 4, n)][:, None, None, :] + rng.normal(0, 6, (n, 1, 1, 3))
    face = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2) & (yy >= cy - r / 3)
    img[face] = np.broadcast_to(skin, (n, size, size, 3))[face]
    ex = rng.integers(2, 5, (n, 1, 1))
    for sgn in (-1, 1):
        eye = (np.abs(yy - cy) <= 0.6) & (np.abs(xx - (cx + sgn * ex)) <= 0.6)
        img[eye] = 30.0
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def blur(images: np.ndarray) -> np.ndarray:
    """3×3 box blur of uint8 (N, H, W, 3) images (edge pixels repeated)."""
    x = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    s = sum(x[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    return np.clip(np.rint(s), 0, 255).astype(np.uint8)
