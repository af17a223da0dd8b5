"""The on-chip z source and latent walk, defined in exact integers (the twin of ``rtl/noise.py``).

Uniform source
--------------
Marsaglia's xorshift32 (shifts 13, 17, 5): one step per clock in hardware,
``x ^= x << 13; x ^= x >> 17; x ^= x << 5`` on 32 bits. Period ``2^32 − 1`` over the non-zero
states; a seed of 0 (the one state that never leaves itself) is replaced by :data:`DEFAULT_SEED`.
Each step gives one uniform integer ``u = x >> 20`` (the top :data:`UNIFORM_BITS` = 12 bits of the
new state), ``0 ≤ u < 4096``.

Gaussian transform (sum of uniforms)
------------------------------------
One z element is the centred sum of :data:`TERMS` = 12 consecutive uniforms (Irwin–Hall, n = 12)::

    q = u_1 + u_2 + ... + u_12 − 24570          (S(16,12) code; value q / 4096)

Reading each ``u`` as the midpoint ``(u + 0.5) / 4096`` of its cell, the sum of 12 uniforms on (0, 1)
minus 6 has mean 0 and variance 1 exactly in the continuous limit; the codes have mean 0 exactly
(``12 · 4095 / 2 = 24570``) and variance ``4096² − 1`` code units², i.e. a standard deviation of
``1 − 3·10⁻⁸`` in value. The range is ``|q| ≤ 24570`` (±6.0), inside S(16,12) (±8): no saturation.
Why this transform: the hardware is one 32-bit xorshift, one 16-bit adder and a counter (12 cycles
per element; a new z2 of 100 elements takes 1 200 cycles, about 1 % of one avatar's compute), and
its distance from N(0, 1) is below what 10^5 draws can resolve (docs/RESULTS.md, "On-chip z
source"). Its tails end at ±6 (a normal exceeds that with probability 2·10⁻⁹) and its kurtosis is
2.9 instead of 3.

Latent walk (the paper's Fig. 7, equations 12–13, on chip)
----------------------------------------------------------
The seed paper interpolates linearly between two random inputs, ``z(t) = (1 − t)·z1 + t·z2`` with
``t`` at equal steps between 0 and 1. Here ``t = k / 2^s`` (``s`` = ``steps_log2``) so the division is
a shift, and the interpolation is written as a difference::

    z(k) = z1 + rshift_rnd(k · (z2 − z1), s),      k = 0, 1, ..., 2^s − 1

with ``rshift_rnd`` of docs/NUMERICS.md (add half an LSB, arithmetic shift right). For every ``k`` in
that range the result lies between ``z1`` and ``z2`` (inclusive), so it needs no saturation. After
each avatar ``k`` increases; when it reaches ``2^s`` (``t = 1``) it becomes 0, ``z1 ← z2`` and a new
``z2`` is drawn (element 0 first). The first two vectors drawn after a seed are ``z1`` then ``z2``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_SEED", "UNIFORM_BITS", "TERMS", "OFFSET", "MASK32", "seed_state", "xorshift32",
           "Gaussian", "LatentWalk", "walk_z"]

MASK32 = 0xFFFF_FFFF
#: The state used for a seed of 0 (xorshift's fixed point).
DEFAULT_SEED = 0x2545_F491
#: Bits of one uniform: the top bits of the xorshift state.
UNIFORM_BITS = 12
#: Uniforms summed per Gaussian element.
TERMS = 12
#: ``TERMS · (2^UNIFORM_BITS − 1) / 2``: the sum's mean, subtracted to centre it.
OFFSET = TERMS * ((1 << UNIFORM_BITS) - 1) // 2
#: Bits of a z code (S(16,12)).
Z_BITS = 16


def seed_state(seed: int) -> int:
    """The xorshift state for ``seed`` (a 32-bit integer): ``seed``, or :data:`DEFAULT_SEED` for 0."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) <= MASK32:
        raise ValueError(f"seed must be an integer in 0..2^32-1, got {seed!r}")
    return int(seed) or DEFAULT_SEED


def xorshift32(x: int) -> int:
    """One xorshift32 step (13, 17, 5) of a 32-bit state."""
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x


class Gaussian:
    """The z-element source: xorshift32 uniforms summed in twelves (module text).

    Parameters
    ----------
    seed : int
        32-bit seed (0 means :data:`DEFAULT_SEED`).
    """

    def __init__(self, seed: int):
        self.state = seed_state(seed)

    def draw(self) -> int:
        """One S(16,12) code (12 xorshift steps)."""
        x, acc = self.state, 0
        for _ in range(TERMS):
            x = xorshift32(x)
            acc += x >> (32 - UNIFORM_BITS)
        self.state = x
        return acc - OFFSET

    def draws(self, n: int) -> np.ndarray:
        """``n`` codes as int64."""
        return np.array([self.draw() for _ in range(int(n))], dtype=np.int64)


class LatentWalk:
    """The walk of the module text: ``z(k) = z1 + rshift_rnd(k·(z2 − z1), s)``, ``k`` stepping per avatar.

    Parameters
    ----------
    nz : int
        Length of z (≥ 1).
    seed : int
        32-bit seed of the Gaussian source.
    steps_log2 : int
        ``s``: ``2^s`` avatars from ``z1`` to ``z2``, 1..15.
    """

    def __init__(self, nz: int, seed: int, steps_log2: int):
        if not isinstance(nz, int) or nz < 1:
            raise ValueError(f"nz must be an integer >= 1, got {nz!r}")
        check_steps_log2(steps_log2)
        self.nz, self.s = nz, steps_log2
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart from ``seed``: new ``z1`` and ``z2`` (in that order), ``k = 0``."""
        self.rng = Gaussian(seed)
        self.z1 = self.rng.draws(self.nz)
        self.z2 = self.rng.draws(self.nz)
        self.k = 0

    def current(self) -> np.ndarray:
        """``z(k)`` of the current step, int64 ``(nz,)``."""
        d = self.z2 - self.z1
        return self.z1 + ((self.k * d + (1 << (self.s - 1))) >> self.s)

    def next(self) -> np.ndarray:
        """The current ``z(k)``, then one step on (``z1 ← z2`` and a new ``z2`` when ``t`` reaches 1)."""
        z = self.current()
        self.k += 1
        if self.k == 1 << self.s:
            self.k = 0
            self.z1 = self.z2
            self.z2 = self.rng.draws(self.nz)
        return z


def check_steps_log2(steps_log2) -> int:
    """``steps_log2`` if it is an integer in 1..15, else ValueError naming it."""
    if not isinstance(steps_log2, int) or isinstance(steps_log2, bool) or not 1 <= steps_log2 <= 15:
        raise ValueError(f"steps_log2 must be an integer in 1..15, got {steps_log2!r}")
    return steps_log2


def walk_z(nz: int, seed: int, steps_log2: int, count: int) -> np.ndarray:
    """The first ``count`` z vectors of a walk, int64 ``(count, nz)``."""
    w = LatentWalk(nz, seed, steps_log2)
    return np.array([w.next() for _ in range(int(count))], dtype=np.int64).reshape(int(count), nz)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * (1.0 + np.vectorize(lambda v: erf(v / sqrt(2.0)))(x))


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic ``sup |F_a − F_b|`` over the pooled sample."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def ks_normal(x: np.ndarray) -> float:
    """One-sample KS statistic of ``x`` against the N(0, 1) CDF (ties of discrete values counted whole)."""
    xs = np.sort(np.asarray(x, float))
    u, last = np.unique(xs, return_index=False, return_counts=True)
    hi = np.cumsum(last) / xs.size
    lo = hi - last / xs.size
    f = _normal_cdf(u)
    return float(max(np.max(np.abs(hi - f)), np.max(np.abs(f - lo))))


def measure(n: int = 100_000, seed: int = 1, ref_seed: int = 0) -> dict:
    """Moments and KS statistics of ``n`` draws (values ``q / 4096``) against N(0, 1) and NumPy's normal."""
    x = Gaussian(seed).draws(n) / 4096.0
    ref = np.random.default_rng(ref_seed).standard_normal(n)

    def mom(v):
        v = np.asarray(v)
        cc = v - v.mean()
        s2 = np.mean(cc ** 2)
        return {"mean": float(v.mean()), "std": float(np.sqrt(s2)), "skew": float(np.mean(cc ** 3) / s2 ** 1.5),
                "kurtosis": float(np.mean(cc ** 4) / s2 ** 2), "min": float(v.min()), "max": float(v.max())}

    return {"n": n, "seed": seed, "ref_seed": ref_seed, "hw": mom(x), "numpy": mom(ref),
            "ks_hw_vs_numpy": ks_two_sample(x, ref), "ks_hw_vs_cdf": ks_normal(x),
            "ks_numpy_vs_cdf": ks_normal(ref),
            "ks_numpy_vs_numpy": ks_two_sample(ref, np.random.default_rng(ref_seed + 1).standard_normal(n)),
            "ks_critical_95": 1.358 * float(np.sqrt(2.0 / n)), "ks1_critical_95": 1.358 / float(np.sqrt(n))}


if __name__ == "__main__":  # python -m golden.noise [N] [SEED]
    import json
    import sys

    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(measure(*args), indent=1))
