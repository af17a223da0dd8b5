"""Weight codebooks: how many distinct 8-bit weight codes a layer needs (a study, not the shipped format).

A layer whose weights take at most ``2**b`` distinct S(8) codes can be stored as ``b``-bit indices
into a per-layer table of those codes; the multipliers still see the same 8-bit codes, so the
golden model is unchanged by construction. :func:`restrict_codes` maps a layer's codes onto the
best ``2**b`` codes (least squared error, counted over all weights) so that the fidelity cost of
such a store can be measured before any hardware is built (``avatargan bench codebook``).
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["optimal_codebook", "restrict_codes", "restricted_model"]


def optimal_codebook(codes, k: int) -> np.ndarray:
    """The ``k`` integer codes that minimise ``Σ (code − nearest)²`` over ``codes`` (1-D k-means, exact).

    Optimal 1-D clusters are contiguous in sorted order, so a dynamic programme over the distinct
    values (``O(k · n²)`` for ``n`` distinct codes, n ≤ 256 here) finds them exactly; each cluster's
    code is its weighted mean rounded to an integer. Returns the sorted codes (fewer than ``k`` if
    the input has fewer distinct values).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    vals, counts = np.unique(np.asarray(codes, dtype=np.int64).ravel(), return_counts=True)
    n = len(vals)
    if n == 0:
        raise ValueError("codes must not be empty")
    if n <= k:
        return vals
    v, c = vals.astype(np.float64), counts.astype(np.float64)
    cs = np.concatenate([[0.0], np.cumsum(c)])
    s1 = np.concatenate([[0.0], np.cumsum(c * v)])
    s2 = np.concatenate([[0.0], np.cumsum(c * v * v)])

    def sse(i, j):                       # squared error of values [i, j) around their mean
        w = cs[j] - cs[i]
        return s2[j] - s2[i] - (s1[j] - s1[i]) ** 2 / w

    cost = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=np.int64)
    cost[0, 0] = 0.0
    for q in range(1, k + 1):
        for j in range(q, n + 1):
            i = np.arange(q - 1, j)
            cand = cost[q - 1, i] + np.array([sse(a, j) for a in i])
            best = int(np.argmin(cand))
            cost[q, j], cut[q, j] = cand[best], i[best]
    out, j = [], n
    for q in range(k, 0, -1):
        i = cut[q, j]
        out.append(int(np.rint((s1[j] - s1[i]) / (cs[j] - cs[i]))))
        j = i
    return np.array(sorted(set(out)), dtype=np.int64)


def restrict_codes(w, bits: int) -> np.ndarray:
    """``w`` (integer codes) with every code replaced by the nearest of its :func:`optimal_codebook`."""
    w = np.asarray(w)
    book = optimal_codebook(w, 1 << bits)
    idx = np.abs(w.astype(np.int64)[..., None] - book).argmin(-1)
    return book[idx].astype(w.dtype)


def restricted_model(qm, bits: int, layers=None):
    """A copy of quantized model ``qm`` whose layers (1-based; default all) use at most ``2**bits`` codes."""
    out = copy.deepcopy(qm)
    for l in layers or range(1, len(qm.channels)):
        out.w[l] = restrict_codes(qm.w[l], bits)
    return out
