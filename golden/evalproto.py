"""The evaluation protocol: SWD of models and of a real floor, repeated over resamplings, with intervals.

One SWD figure from one pair of sets is noisy: with 137 real avatars per half, the real-vs-real
floor moved from 30 to 69 between evaluation seeds (issue 16), so one model could score anywhere
from 0.6× to 1.2× "the floor". This module measures every figure the same way, several times:

* **Sets.** For each repetition ``r`` the real avatars give a *reference* set ``R_r`` and a
  *floor* set ``F_r`` of ``n`` avatars each, disjoint (:func:`split_indices`). With a held-out
  pool (the built-in avatar maker with another seed) both come from the pool and the training
  set is not used as reference at all; with a user's folder they are a random split of it.
  Every model draws ``n`` avatars per repetition (its own z for each ``r``).
* **Equal sizes.** Model, floor and (optionally) training-set rows are all ``n`` avatars against
  the same ``R_r`` with the same SWD seed for that repetition, i.e. the same patch positions per
  image index and the same directions (:func:`golden.metrics.swd`), so rows of one repetition
  are *paired*: their difference cancels most of the reference's and the directions' noise.
* **Intervals.** Each figure is reported as the mean over the ``R`` repetitions with a 95 %
  Student-t interval of that mean, ``mean ± t(0.975, R−1)·sd/√R`` (:func:`mean_interval`). Two rows are
  *different* when the t-interval of their per-repetition differences excludes 0 (a paired
  t-test at the 5 % level, :func:`compare`). A ratio of two rows ("SWD / floor") is the ratio of
  their means with Fieller's interval for paired means (:func:`ratio_interval`): the mean of
  per-repetition ratios would be biased upward by the floor's own noise (E[1/x] > 1/E[x]).

The repetitions are independent draws given the real avatars (the pool, or the user's folder):
the intervals say how precisely the protocol pins a model's expected SWD on *this* reference
data, not how the figure would move with a different pool.

Student's t distribution is computed here (no SciPy in the product): the CDF by the exact
finite series of Abramowitz & Stegun 26.7.3–26.7.4 for integer degrees of freedom, the
quantile by bisection on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from golden import metrics as M

#: Confidence of every interval (two-sided).
LEVEL = 0.95
#: How the intervals are computed, as written into reports.
INTERVAL_METHOD = ("95 % Student-t interval of the mean over the repetitions: "
                   "mean ± t(0.975, R−1)·sd/√R, sd with R−1 in the denominator")


# ---------------------------------------------------------------------------------------------
# Student's t


def t_cdf(t: float, df: int) -> float:
    """CDF of Student's t with integer ``df`` ≥ 1 degrees of freedom (A&S 26.7.3, 26.7.4; exact)."""
    if int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df}")
    df = int(df)
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 1:  # odd: (2/π)[θ + sinθ(cosθ + 2/3 cos³θ + … + (2·4…(ν−3))/(1·3…(ν−2)) cos^(ν−2)θ)]
        term, total = c, 0.0
        if df > 1:
            total = c
            for k in range(3, df - 1, 2):  # term for cos^k: multiply by (k−1)/k · cos²
                term *= (k - 1) / k * c2
                total += term
        a = 2.0 / math.pi * (theta + s * total)
    else:  # even: sinθ[1 + 1/2 cos²θ + (1·3)/(2·4) cos⁴θ + … + (1·3…(ν−3))/(2·4…(ν−2)) cos^(ν−2)θ]
        term = total = 1.0
        for k in range(2, df - 1, 2):
            term *= (k - 1) / k * c2
            total += term
        a = s * total
    a = min(max(a, 0.0), 1.0)  # P(|T| <= |t|)
    return 0.5 + 0.5 * a if t >= 0 else 0.5 - 0.5 * a


def t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t with integer ``df`` (bisection on :func:`t_cdf`, to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be strictly between 0 and 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass
class Interval:
    """Mean of ``values`` with its two-sided Student-t interval (see :data:`INTERVAL_METHOD`)."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    min: float
    max: float

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "sd": self.sd, "n": self.n,
                "min": self.min, "max": self.max}

    def excludes(self, value: float) -> bool:
        return not (self.low <= value <= self.high)

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}–{self.high:.{digits}f}]"


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and two-sided ``level`` t-interval of the mean of ``values`` (at least 2, all finite)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"an interval needs at least two values, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("an interval needs finite values")
    n = len(v)
    mean = float(v.mean())
    sd = float(v.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n, float(v.min()), float(v.max()))


def ratio_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Ratio of the means of paired values ``a``, ``b`` with Fieller's ``level`` interval.

    The interval holds every ρ for which the t-interval of the paired differences ``a − ρ·b``
    holds 0, i.e. ``(ā − ρ b̄)² ≤ t² (s_aa − 2ρ s_ab + ρ² s_bb) / R`` (t = t(0.5 + level/2, R−1),
    s the sample covariances): a quadratic in ρ. When ``b̄`` itself is not clear of 0 the set is
    unbounded and the interval is (−∞, ∞). ``sd``, ``min`` and ``max`` are those of the
    per-repetition ratios ``a/b`` (for information).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a ratio interval needs two paired series of at least 2 values, got {a.shape}, {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a ratio interval needs finite values")
    n = len(a)
    ma, mb = float(a.mean()), float(b.mean())
    cov = np.cov(np.stack([a, b]), ddof=1)
    k = t_quantile(0.5 + level / 2.0, n - 1) ** 2 / n
    qa = mb * mb - k * cov[1, 1]
    qb = ma * mb - k * cov[0, 1]
    qc = ma * ma - k * cov[0, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        per = a / b
    per = per[np.isfinite(per)]
    sd = float(per.std(ddof=1)) if len(per) > 1 else math.nan
    lo_r, hi_r = (float(per.min()), float(per.max())) if len(per) else (math.nan, math.nan)
    mean = ma / mb if mb != 0 else math.inf
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return Interval(mean, -math.inf, math.inf, sd, n, lo_r, hi_r)
    root = math.sqrt(disc)
    return Interval(mean, (qb - root) / qa, (qb + root) / qa, sd, n, lo_r, hi_r)


# ---------------------------------------------------------------------------------------------
# Resampling


def split_indices(pool_size: int, n: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each repetition, two disjoint random index sets of ``n`` into a pool of ``pool_size``.

    Returns ``[(reference, floor), …]``; repetition ``r`` depends only on (``seed``, ``r``).
    """
    if n < 2:
        raise ValueError(f"sets need at least 2 avatars, got {n}")
    if 2 * n > pool_size:
        raise ValueError(f"two disjoint sets of {n} need {2 * n} real avatars, the pool has {pool_size}")
    out = []
    for r in range(repeats):
        perm = np.random.default_rng((seed, r, 101)).permutation(pool_size)
        out.append((np.sort(perm[:n]), np.sort(perm[n : 2 * n])))
    return out


def swd_seed(seed: int, r: int) -> int:
    """The SWD seed (patch positions, directions) of repetition ``r`` of an evaluation with ``seed``."""
    return int(np.random.SeedSequence((seed, r, 202)).generate_state(1)[0])


# ---------------------------------------------------------------------------------------------
# The protocol


#: Statistics measured beside the SWD in every repetition, each of a set against the reference:
#: name → (function, what it is). Higher coverage is better; a higher repeat share is worse.
STATS = {
    "coverage": (M.coverage, "share of reference avatars with a sample within their 5th-nearest-neighbour "
                             "distance (pixel space, Naeem et al. 2020)"),
    "repeat_share": (M.repeat_share, "share of the set's avatars whose nearest other avatar of the set is "
                                     "closer than the 5th percentile of the reference's own nearest-neighbour "
                                     "distances (motif repetition)"),
}


@dataclass
class Row:
    """One set against the reference in every repetition.

    ``per_rep`` is the SWD (R, levels) ×10³; ``stats`` maps each name of :data:`STATS` to its
    (R,) values.
    """

    name: str
    kind: str                     # "floor", "train" or "model"
    levels: list[int]
    per_rep: np.ndarray
    stats: dict
    avg: Interval = field(init=False)
    intervals: dict = field(init=False)

    def __post_init__(self):
        self.avg = mean_interval(self.per_rep.mean(axis=1))
        self.intervals = {k: mean_interval(v) for k, v in self.stats.items()}

    @property
    def values(self) -> np.ndarray:
        """Per-repetition SWD averaged over levels."""
        return self.per_rep.mean(axis=1)


@dataclass
class Comparison:
    """Paired comparison of two rows over the repetitions."""

    a: str
    b: str
    diff: Interval                # of SWD(a) − SWD(b), per repetition
    ratio: Interval               # mean SWD(a) / mean SWD(b), Fieller interval (:func:`ratio_interval`)
    stat_diffs: dict              # name → Interval of stat(a) − stat(b), per repetition

    @property
    def differ(self) -> bool:
        return self.diff.excludes(0.0)

    @property
    def verdict(self) -> str:
        if not self.differ:
            return "no difference beyond the interval"
        return f"{self.a} lower (better)" if self.diff.high < 0 else f"{self.b} lower (better)"

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "diff_a_minus_b": self.diff.as_dict(),
                "ratio_a_over_b": self.ratio.as_dict(), "differ": self.differ, "verdict": self.verdict,
                "stats_diff_a_minus_b": {k: dict(v.as_dict(), differ=v.excludes(0.0))
                                         for k, v in self.stat_diffs.items()}}


def compare(a: Row, b: Row) -> Comparison:
    """Paired t-comparison of two rows measured in the same repetitions (same references, same seeds)."""
    if a.per_rep.shape != b.per_rep.shape:
        raise ValueError(f"rows {a.name!r} and {b.name!r} come from different protocols")
    va, vb = a.values, b.values
    diffs = {k: mean_interval(a.stats[k] - b.stats[k]) for k in a.stats}
    return Comparison(a.name, b.name, mean_interval(va - vb), ratio_interval(va, vb), diffs)


@dataclass
class ProtocolResult:
    rows: list[Row]
    n: int
    repeats: int
    seed: int

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    @property
    def floor(self) -> Row:
        return next(r for r in self.rows if r.kind == "floor")

    def over_floor(self, row: Row) -> Interval:
        """Mean SWD(row) / mean SWD(floor) with its Fieller interval (:func:`ratio_interval`)."""
        return compare(row, self.floor).ratio


def run_protocol(real: np.ndarray, candidates: dict[str, Callable[[int], np.ndarray]], n: int,
                 repeats: int, seed: int, train: np.ndarray | None = None, min_res: int = 16,
                 patches: int = M.PATCHES_PER_IMAGE, directions: int = M.DIRECTIONS,
                 progress: Callable[[], None] | None = None) -> ProtocolResult:
    """SWD of a real floor, of each candidate and optionally of the training set, ``repeats`` times.

    Beside the SWD each row gets, per repetition, the statistics of :data:`STATS` against the
    same reference set (coverage, repeat share).

    Parameters
    ----------
    real : numpy.ndarray
        uint8 avatars the reference and floor sets are drawn from (a held-out pool, or the user's
        dataset), ``(P, 32, 32, 3)`` or NCHW; ``P ≥ 2n``.
    candidates : dict
        Name → function of the repetition index ``r`` returning ``n`` uint8 avatars.
    n, repeats, seed : int
        Set size, repetitions (≥ 2), evaluation seed.
    train : numpy.ndarray, optional
        The training set: adds a row "training set" (``n`` of its avatars, a fresh random subset
        per repetition when it holds more), meaningful only when ``real`` is held out from it.
    progress : callable, optional
        Called once per SWD computed.
    """
    if repeats < 2:
        raise ValueError(f"an interval needs at least 2 repetitions, got {repeats}")
    splits = split_indices(len(real), n, repeats, seed)
    names = ["floor"] + (["training set"] if train is not None else []) + list(candidates)
    kinds = ["floor"] + (["train"] if train is not None else []) + ["model"] * len(candidates)
    if len(set(names)) != len(names):
        raise ValueError(f"row names must be unique: {names}")
    if train is not None and len(train) < n:
        raise ValueError(f"the training row needs {n} avatars, the training set has {len(train)}")
    per = {k: [] for k in names}
    stats = {k: {s: [] for s in STATS} for k in names}
    levels = None
    for r, (ref_i, floor_i) in enumerate(splits):
        ref = real[ref_i]
        sets = {"floor": real[floor_i]}
        if train is not None:
            pick = np.sort(np.random.default_rng((seed, r, 303)).permutation(len(train))[:n])
            sets["training set"] = train[pick]
        for name, draw in candidates.items():
            x = draw(r)
            if len(x) != n:
                raise ValueError(f"candidate {name!r} gave {len(x)} avatars in repetition {r}, expected {n}")
            sets[name] = x
        s = swd_seed(seed, r)
        for name in names:
            res = M.swd(sets[name], ref, seed=s, min_res=min_res, patches=patches, directions=directions)
            levels = res.levels
            per[name].append(res.per_level)
            for stat, (fn, _) in STATS.items():
                stats[name][stat].append(fn(sets[name], ref))
            if progress:
                progress()
    rows = [Row(k, kind, levels, np.asarray(per[k]), {s: np.asarray(v) for s, v in stats[k].items()})
            for k, kind in zip(names, kinds)]
    return ProtocolResult(rows, n, repeats, seed)


# ---------------------------------------------------------------------------------------------
# The picture


def plot_rows(result: ProtocolResult, title: str = ""):
    """The SWD of every row as a PIL image: one dot per repetition, the mean and its interval.

    Rows top to bottom in ``result.rows`` order; the x axis is SWD ×10³ from 0; the floor's
    interval is shaded across the whole plot so a row's distance from it shows at a glance.
    """
    from PIL import Image, ImageDraw

    from golden.images import _font

    rows = result.rows
    W, L, R, T, B, step = 900, 230, 30, 40, 40, 34
    H = T + B + step * len(rows)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font = _font(13)
    d.text((10, 10), title or f"SWD x1e3: {result.repeats} repetitions of {result.n} avatars "
           "(dots), mean and 95 % t-interval (bar; clipped to the plot)", fill="black", font=font)
    top = max(float(r.values.max()) for r in rows) * 1.15 or 1.0

    def px(v):
        return L + min(max(v, 0.0), top) / top * (W - L - R)

    f = result.floor.avg
    d.rectangle([px(f.low), T, px(f.high), H - B], fill=(225, 235, 250))
    for k in range(6):
        v = top * k / 5
        d.line([(px(v), T), (px(v), H - B)], fill=(220, 220, 220))
        d.text((px(v) - 12, H - B + 6), f"{v:.1f}", fill="black", font=font)
    colours = {"floor": (31, 119, 180), "train": (44, 160, 44), "model": (214, 39, 40)}
    for i, r in enumerate(rows):
        y = T + step * i + step // 2
        col = colours.get(r.kind, (0, 0, 0))
        d.text((10, y - 7), r.name[:32], fill="black", font=font)
        for v in r.values:
            d.ellipse([px(v) - 3, y - 9, px(v) + 3, y - 3], outline=col)
        d.line([(px(r.avg.low), y + 4), (px(r.avg.high), y + 4)], fill=col, width=3)
        d.line([(px(r.avg.mean), y - 1), (px(r.avg.mean), y + 9)], fill="black", width=2)
    d.rectangle([L, T, W - R, H - B], outline="black")
    return img
