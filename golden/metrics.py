"""Quality metrics for generated avatars: SWD on Laplacian pyramids, memorisation, mode collapse.

All functions take uint8 RGB avatars ``(N, H, W, 3)`` or ``(N, 3, H, W)`` (the dataset and the
models' layouts) and are vectorised NumPy, seeded, deterministic.

Sliced Wasserstein distance (after Karras et al., "Progressive Growing of GANs", ICLR 2018;
reimplemented from the paper's description):

* Laplacian pyramid with the 5×5 binomial Gaussian kernel ``[1, 4, 6, 4, 1]ᵀ[1, 4, 6, 4, 1] / 256``
  (reflect borders). For 32×32 avatars the default levels are **32** (band-pass
  ``x − up(down(x))``) and **16** (the low-pass residual ``down(x)``), like the paper whose
  coarsest level is 16×16. Level 8 is not used by default: a 7×7 patch fits an 8×8 image at only
  2×2 = 4 positions, so "128 random patches" would be 4 patches repeated and the level would add
  noise, not information (``min_res=8`` computes it anyway).
* 128 random 7×7 patches per image per level; patch positions depend only on the seed, the level
  and the image index, so two sets of equal size are cut at the same places (SWD(x, x) = 0
  exactly, and comparisons of two models on the same z share their randomness).
* Per-level, per-channel normalisation: the mean and standard deviation of each colour channel
  are taken over the union of both descriptor sets and applied to both (a global colour shift in
  one set stays visible, which normalising each set on its own would hide).
* 512 random unit directions in the 147-dimensional patch space; for each direction the sorted
  projections of the two sets are compared (mean absolute difference = 1-D Wasserstein-1);
  SWD is the mean over directions, ×10³, per level and averaged over levels.
* If the two sets have different numbers of images, the larger descriptor set is subsampled
  (seeded) to the size of the smaller one, so the 1-D distances compare equal-sized samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: The 1-D binomial kernel whose outer product is the 5×5 Gaussian of the pyramid.
KERNEL_1D = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
PATCH = 7
PATCHES_PER_IMAGE = 128
DIRECTIONS = 512
#: Near-duplicate rule: a sample whose nearest training avatar is at most this percentile of the
#: train-train nearest-neighbour distances counts as a near-duplicate.
NEAR_DUP_PERCENTILE = 5.0


def as_nchw_float(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` or ``(N, 3, H, W)`` → float64 ``(N, 3, H, W)`` in 0..255 units."""
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"expected a batch of RGB images (4-D), got shape {a.shape}")
    if a.shape[1] != 3 and a.shape[-1] == 3:
        a = a.transpose(0, 3, 1, 2)
    if a.shape[1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Laplacian pyramid


def _blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Separable 5×5 binomial blur over the last two axes, reflect borders."""
    k = KERNEL_1D * gain
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(2, 2), (2, 2)], mode="reflect")
    h = x.shape[-2]
    w = x.shape[-1]
    rows = sum(k[i] * p[..., i : i + h, :] for i in range(5))
    return sum(k[i] * rows[..., :, i : i + w] for i in range(5))


def downsample(x: np.ndarray) -> np.ndarray:
    """Gaussian blur, then keep every second row and column (one pyramid step down)."""
    return _blur(x)[..., ::2, ::2]


def upsample(x: np.ndarray) -> np.ndarray:
    """Zero insertion ×2, then the same blur with gain 2 per axis (keeps the mean)."""
    up = np.zeros(x.shape[:-2] + (2 * x.shape[-2], 2 * x.shape[-1]), dtype=x.dtype)
    up[..., ::2, ::2] = x
    return _blur(up, gain=2.0)


def laplacian_pyramid(x: np.ndarray, min_res: int = 16) -> list[np.ndarray]:
    """Laplacian pyramid of ``x`` (…, H, W): band-pass levels down to ``min_res``, which is low-pass.

    Returns the levels finest first, e.g. ``[32×32 band, 16×16 low-pass]`` for 32×32 input and
    ``min_res=16``. ``sum`` of the levels after upsampling reconstructs ``x`` exactly.
    """
    levels = []
    g = x
    while g.shape[-1] > min_res:
        d = downsample(g)
        levels.append(g - upsample(d))
        g = d
    levels.append(g)
    return levels


# ---------------------------------------------------------------------------------------------
# Sliced Wasserstein distance


def _descriptors(level: np.ndarray, rng_seed: tuple, patches: int, keep: int | None = None,
                 keep_seed: tuple = ()) -> np.ndarray:
    """Random 7×7 patches of one pyramid level (N, C, H, W) → (N·patches, C, 7, 7).

    Patch positions depend only on ``rng_seed`` and the image index. With ``keep`` < N·patches a
    seeded random subset of ``keep`` descriptors is cut out (only those are copied, so a large set
    compared with a small one costs little memory).
    """
    n, c, h, w = level.shape
    if h < PATCH or w < PATCH:
        raise ValueError(f"pyramid level {h}×{w} is smaller than a {PATCH}×{PATCH} patch")
    rng = np.random.default_rng(rng_seed)
    ys = rng.integers(0, h - PATCH + 1, size=(n, patches)).ravel()
    xs = rng.integers(0, w - PATCH + 1, size=(n, patches)).ravel()
    img = np.repeat(np.arange(n), patches)
    if keep is not None and keep < len(img):
        pick = np.sort(np.random.default_rng(keep_seed).choice(len(img), keep, replace=False))
        img, ys, xs = img[pick], ys[pick], xs[pick]
    win = sliding_window_view(level, (PATCH, PATCH), axis=(2, 3))  # (N, C, h-6, w-6, 7, 7), a view
    return win[img, :, ys, xs]  # advanced indices first: (M, C, 7, 7)


def _standardise(x: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``x`` less the per-channel mean of ``of``, over its per-channel std; flattened to (M, C·49)."""
    mean = of.mean(axis=(0, 2, 3), keepdims=True)
    std = of.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return ((x - mean) / std).reshape(len(x), -1)


def _normalise(a: np.ndarray, b: np.ndarray, mode: str = "union") -> tuple[np.ndarray, np.ndarray]:
    """Per-channel standardisation of two descriptor sets; flatten to (M, C·49).

    ``"union"``: mean and std over both sets, applied to both (a global colour shift stays
    visible). ``"each"``: each set by its own mean and std, as Karras et al.'s reference code
    does (a global colour or contrast shift of a whole set is normalised away).
    """
    if mode == "each":
        return _standardise(a, a), _standardise(b, b)
    if mode != "union":
        raise ValueError(f"normalisation must be 'union' or 'each', got {mode!r}")
    both = np.concatenate([a, b])
    return _standardise(a, both), _standardise(b, both)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int, rng_seed: tuple,
                       chunk: int = 64) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections.

    ``a`` and ``b`` are (M, D) float arrays with the same M.
    """
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {a.shape} vs {b.shape}")
    rng = np.random.default_rng(rng_seed)
    dirs = rng.standard_normal((a.shape[1], directions))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    # float32 projections: NumPy's SIMD sort is ~4x faster on float32, and 24-bit mantissas are
    # far finer than the sampling noise of the estimate; the means are accumulated in float64.
    a, b, dirs = a.astype(np.float32), b.astype(np.float32), dirs.astype(np.float32)
    total = 0.0
    for j in range(0, directions, chunk):
        d = dirs[:, j : j + chunk].T  # (chunk, D): rows are directions, sorted along contiguous rows
        pa = np.sort(d @ a.T, axis=1)
        pb = np.sort(d @ b.T, axis=1)
        total += np.abs(pa - pb).mean(axis=1, dtype=np.float64).sum()
    return total / directions


@dataclass
class SWDResult:
    """Sliced Wasserstein distance per pyramid level (×10³) and their average."""

    levels: list[int]
    per_level: list[float]
    avg: float = field(init=False)

    def __post_init__(self):
        self.avg = float(np.mean(self.per_level))

    def as_dict(self) -> dict:
        return {"levels": self.levels, "per_level_x1e3": self.per_level, "avg_x1e3": self.avg}


def swd(images_a: np.ndarray, images_b: np.ndarray, seed: int = 0, min_res: int = 16,
        patches: int = PATCHES_PER_IMAGE, directions: int = DIRECTIONS, normalise: str = "union") -> SWDResult:
    """Sliced Wasserstein distance between two sets of RGB avatars on a Laplacian pyramid.

    Parameters
    ----------
    images_a, images_b : numpy.ndarray
        uint8 avatars, ``(N, H, W, 3)`` or ``(N, 3, H, W)``; the counts may differ.
    seed : int
        Seeds patch positions, subsampling and directions.
    min_res : int
        Coarsest pyramid level (16 by default, see the module notes; 8 is allowed).
    patches, directions : int
        Patches per image per level (128) and random unit directions (512).
    normalise : str
        ``"union"`` (default) or ``"each"``, see :func:`_normalise`.

    Returns
    -------
    SWDResult
        Per level (finest first) and average, ×10³.
    """
    xa, xb = as_nchw_float(images_a), as_nchw_float(images_b)
    if len(xa) == 0 or len(xb) == 0:
        raise ValueError("SWD needs at least one image in each set")
    if xa.shape[1:] != xb.shape[1:]:
        raise ValueError(f"image sizes differ: {xa.shape[1:]} vs {xb.shape[1:]}")
    pa, pb = laplacian_pyramid(xa, min_res), laplacian_pyramid(xb, min_res)
    res, out = [], []
    for lev, (la, lb) in enumerate(zip(pa, pb)):
        m = min(len(la), len(lb)) * patches  # equal descriptor counts: subsample the larger set
        da = _descriptors(la, (seed, lev, 1), patches, keep=m, keep_seed=(seed, lev, 2))
        db = _descriptors(lb, (seed, lev, 1), patches, keep=m, keep_seed=(seed, lev, 2))
        na, nb = _normalise(da, db, normalise)
        out.append(1e3 * sliced_wasserstein(na, nb, directions, (seed, lev, 3)))
        res.append(la.shape[-1])
    return SWDResult(levels=res, per_level=[float(v) for v in out])


# ---------------------------------------------------------------------------------------------
# Distances in pixel space


def _flat(images: np.ndarray) -> np.ndarray:
    """Avatars → (N, D) float64 vectors of integer pixel values 0..255."""
    return as_nchw_float(images).reshape(len(images), -1)


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Euclidean distances (in units of pixel/255) between rows of ``a`` (N, D) and ``b`` (M, D).

    The rows hold integer pixel values 0..255, so every dot product is an integer below 2^53
    and ``|a|² + |b|² − 2a·b`` is exact in float64: identical images are at distance exactly 0.
    """
    bb = np.einsum("ij,ij->i", b, b)
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), chunk):
        x = a[i : i + chunk]
        d2 = np.einsum("ij,ij->i", x, x)[:, None] + bb[None, :] - 2.0 * (x @ b.T)
        out[i : i + chunk] = np.sqrt(np.maximum(d2, 0.0)) / 255.0
    return out


def nearest_distances(queries: np.ndarray, reference: np.ndarray, exclude_self: bool = False,
                      chunk: int = 1024) -> np.ndarray:
    """For each query avatar, the L2 distance (pixels / 255) to its nearest reference avatar.

    With ``exclude_self`` (queries are the reference set) the image itself does not count, but
    a duplicate of it elsewhere in the set does.
    """
    q, r = _flat(queries), _flat(reference)
    if exclude_self and len(r) < 2:
        raise ValueError("nearest neighbours within a set need at least two images")
    out = np.empty(len(q))
    for i in range(0, len(q), chunk):
        d = pairwise_distances(q[i : i + chunk], r)
        if exclude_self:
            rows = np.arange(len(d))
            d[rows, i + rows] = np.inf
        out[i : i + chunk] = d.min(axis=1)
    return out


@dataclass
class Memorisation:
    """Nearest-training-avatar check of generated samples."""

    threshold: float         # the NEAR_DUP_PERCENTILE-th percentile of train-train NN distances
    share: float             # share of samples with NN distance <= threshold
    count: int               # number of such samples
    sample_nn: np.ndarray    # per-sample NN distance to the training set
    train_nn: np.ndarray     # per-training-avatar NN distance within the training set

    def as_dict(self) -> dict:
        return {
            "rule": (f"sample is a near-duplicate if the L2 distance (pixels/255) to its nearest "
                     f"training avatar is <= the {NEAR_DUP_PERCENTILE:g}th percentile of the "
                     f"train-train nearest-neighbour distances"),
            "threshold": float(self.threshold),
            "share": float(self.share),
            "count": int(self.count),
            "sample_nn_median": float(np.median(self.sample_nn)),
            "train_nn_median": float(np.median(self.train_nn)),
        }


def memorisation(samples: np.ndarray, train: np.ndarray,
                 percentile: float = NEAR_DUP_PERCENTILE) -> Memorisation:
    """Share of samples that are near-duplicates of a training avatar.

    Rule: a sample is a near-duplicate when its nearest-training-avatar L2 distance (pixels/255)
    is at most the ``percentile``-th percentile of the nearest-neighbour distances among the
    training avatars themselves (each to its nearest *other* training avatar). ``<=`` so an exact
    copy counts even when the training set holds duplicates (threshold 0).
    """
    train_nn = nearest_distances(train, train, exclude_self=True)
    thr = float(np.percentile(train_nn, percentile))
    sample_nn = nearest_distances(samples, train)
    flags = sample_nn <= thr
    return Memorisation(thr, float(flags.mean()), int(flags.sum()), sample_nn, train_nn)


def mean_pairwise_distance(images: np.ndarray, chunk: int = 1024) -> float:
    """Mean L2 distance (pixels/255) over all unordered pairs of distinct avatars in the set."""
    x = _flat(images)
    n = len(x)
    if n < 2:
        raise ValueError("mean pairwise distance needs at least two images")
    total = 0.0
    for i in range(0, n, chunk):
        total += pairwise_distances(x[i : i + chunk], x).sum()  # diagonal is 0
    return total / (n * (n - 1))


def diversity_ratio(samples: np.ndarray, real: np.ndarray) -> float:
    """Collapse detector: mean pairwise distance of samples / that of real avatars (1.0 = as diverse)."""
    return mean_pairwise_distance(samples) / mean_pairwise_distance(real)



#: Neighbours that set the radius of a real avatar's ball in :func:`coverage`.
COVERAGE_K = 5


def coverage(samples: np.ndarray, real: np.ndarray, k: int = COVERAGE_K) -> float:
    """Share of real avatars whose k-nearest-neighbour ball holds at least one sample.

    After Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models" (ICML
    2020), in pixel space (L2, pixels/255): the ball of real avatar ``i`` has the radius of its
    distance to its ``k``-th nearest *other* real avatar; a real avatar is covered when some sample
    lies in its ball (distance ≤ radius). A generator that repeats a few motifs leaves the balls
    of the avatars it does not draw empty; two sets of one distribution of equal size cover about
    ``1 − 2^−k`` (0.97 for k = 5).
    """
    r = _flat(real)
    if len(r) <= k:
        raise ValueError(f"coverage with k={k} needs more than {k} real avatars, got {len(r)}")
    s = _flat(samples)
    if len(s) == 0:
        raise ValueError("coverage needs at least one sample")
    rr = pairwise_distances(r, r)
    np.fill_diagonal(rr, np.inf)
    radius = np.partition(rr, k - 1, axis=1)[:, k - 1]
    nearest = pairwise_distances(r, s).min(axis=1)
    return float(np.mean(nearest <= radius))


def repeat_share(samples: np.ndarray, real: np.ndarray, percentile: float = NEAR_DUP_PERCENTILE) -> float:
    """Share of samples that nearly repeat another sample of the same set (motif repetition).

    A sample counts when the L2 distance (pixels/255) to its nearest *other* sample is at most the
    ``percentile``-th percentile of the nearest-other distances within ``real`` (``≤``, so exact
    repeats count even at threshold 0). A set drawn like ``real`` and of the same size scores
    about ``percentile`` %; a generator that draws one motif again and again scores at least the
    share of its repeats. Compare sets of equal size: nearest-neighbour distances shrink as a set grows.
    """
    if len(samples) < 2:
        raise ValueError("repeat share needs at least two samples")
    thr = float(np.percentile(nearest_distances(real, real, exclude_self=True), percentile))
    return float(np.mean(nearest_distances(samples, samples, exclude_self=True) <= thr))
