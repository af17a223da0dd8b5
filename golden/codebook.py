"""Weight codebooks: how many distinct 8-bit weight codes a layer needs, and a fine-tuning that gets there.

A layer whose weights take at most ``2**b`` distinct S(8) codes can be stored as ``b``-bit indices
into a per-layer table of those codes; the multipliers still see the same 8-bit codes, so the
golden model is unchanged by construction. :func:`restrict_codes` maps a layer's codes onto the
best ``2**b`` codes (least squared error, counted over all weights) so that the fidelity cost of
such a store can be measured before any hardware is built (``avatargan bench codebook``).
:func:`distill` fine-tunes a float Generator so that its layers use at most ``2**b`` codes each and it
still draws what the original draws (``avatargan quantize --codebook-bits B``); the engine stores
such a model as ``b``-bit indices (:func:`rtl.config.weight_codebooks`).
"""

from __future__ import annotations

import copy

import numpy as np

from golden.quantize import WMAX_CODE

__all__ = ["optimal_codebook", "restrict_codes", "restricted_model", "distill"]


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


def _project(w: np.ndarray, frac: int, book: np.ndarray) -> np.ndarray:
    """``w`` with each weight replaced by the codebook value nearest its S(8, frac) code."""
    codes = np.clip(np.rint(w.astype(np.float64) * 2.0 ** frac), -WMAX_CODE, WMAX_CODE)
    i = np.clip(np.searchsorted((book[1:] + book[:-1]) / 2, codes), 0, len(book) - 1)
    return (book[i] * 2.0 ** -frac).astype(w.dtype)


def distill(teacher, bits: int, iterations: int = 1000, lr: float = 5e-5, batch: int = 64, seed: int = 0,
            progress=None):
    """A copy of float Generator ``teacher`` whose layers each use at most ``2**bits`` weight values
    on their S(8) grid, trained to draw what the teacher draws (distillation; no data, no discriminator).

    Each layer's codebook is fixed at the start (:func:`optimal_codebook` of the teacher's 8-bit
    codes, at the fraction bits the quantizer gives the teacher, :func:`golden.quantize.weight_frac`).
    Every step draws ``batch`` standard-normal z, runs the three passes through the student with its
    weights projected onto the codebooks, and takes an Adam step on the squared difference of the
    planes from the teacher's, the gradient passing the projection unchanged (straight-through) to
    float master weights and biases. The learning rate follows a cosine from ``lr`` to 0, which is
    what lets the projected weights settle (at a constant rate they keep crossing codebook
    boundaries and the fidelity wanders by several dB). Returns the student with projected weights:
    quantized by the ``max`` rule, each layer keeps at most ``2**bits`` codes.

    ``progress(n)``: called after each step (a tqdm ``update``).
    """
    from golden.models import Generator
    from golden.nn import Adam
    from golden.quantize import weight_frac

    if not isinstance(bits, int) or not 1 <= bits <= 7:
        raise ValueError(f"bits must be an integer in 1..7, got {bits!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be ≥ 0, got {iterations}")
    student = Generator(teacher.channels)
    for name, a in student.params.items():
        a[...] = teacher.params[name]
    student.v[...] = teacher.v
    names = [n for n in student.params if n.startswith("w")]
    frac = {n: weight_frac(teacher.params[n]) for n in names}
    books = {n: optimal_codebook(np.clip(np.rint(teacher.params[n] * 2.0 ** frac[n]), -WMAX_CODE, WMAX_CODE)
                                 .astype(np.int64), 1 << bits).astype(np.float64) for n in names}
    master = {n: student.params[n].copy() for n in names}
    layers = student._deconvs()
    opt = Adam([master[n] for n in names] + [lay.params["b"] for lay in layers], lr=lr, betas=(0.9, 0.999))
    rng = np.random.default_rng(seed)
    for it in range(iterations):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * it / iterations))
        for n in names:
            student.params[n][...] = _project(master[n], frac[n], books[n])
        u = student.stacked_inputs(rng.standard_normal((batch, student.nz)).astype(np.float32))
        target = teacher.plane(u)[:, None]
        out = student.forward(u)
        student.backward(((2.0 / out.size) * (out - target)).astype(out.dtype))
        opt.step([lay.grads["w"] for lay in layers] + [lay.grads["b"] for lay in layers])
        if progress is not None:
            progress(1)
    for n in names:
        student.params[n][...] = _project(master[n], frac[n], books[n])
    return student
