"""Differentiable augmentation (DiffAugment, Zhao et al., NeurIPS 2020) in NumPy.

The same random transformations are applied to the real and the fake inputs of a
discriminator, and the fake ones are back-propagated through (:meth:`DiffAugment.backward`),
so the Generator learns from augmented images without the augmentations "leaking" into what it
draws. Policy ``color,translation,cutout`` as in the paper, re-implemented from its description:

colour
    per image: brightness ``x + b`` (b ~ U[−0.5, 0.5]); saturation ``m_c + s·(x − m_c)`` with
    ``m_c`` the mean over channels (s ~ U[0, 2], the identity on one-channel planes); contrast
    ``m + c·(x − m)`` with ``m`` the image mean (c ~ U[0.5, 1.5]).
translation
    per image an integer shift in [−S/8, S/8] on each axis, filled with 0.
cutout
    per image a square of side S/2 centred at a random pixel (clipped at the borders) set to 0.

Every step is linear in ``x`` for fixed random draws, so the backward pass is exact.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from golden.nn import parallel_blocks

POLICIES = ("color", "translation", "cutout")


def _shift(x: np.ndarray, ty: np.ndarray, tx: np.ndarray, pad: int) -> np.ndarray:
    """``out[n, :, i, j] = x[n, :, i + ty[n], j + tx[n]]`` with zeros outside (|t| ≤ pad)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (h, w), axis=(2, 3))       # (N, C, 2p+1, 2p+1, H, W)
    return win[np.arange(n), :, ty + pad, tx + pad]            # (N, C, H, W)


class DiffAugment:
    """One draw of the augmentation for a batch; call :meth:`forward` then :meth:`backward`.

    Parameters
    ----------
    policy : str
        Comma-separated subset of ``color,translation,cutout`` (empty: identity).
    """

    def __init__(self, policy: str = "color,translation,cutout"):
        self.ops = [p for p in policy.split(",") if p]
        for p in self.ops:
            if p not in POLICIES:
                raise ValueError(f"unknown augmentation {p!r}; choose from {POLICIES}")

    def forward(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment ``x`` (N, C, H, W) with fresh random draws from ``rng``; remember them.

        :meth:`draw`, then :meth:`apply`.
        """
        self.draw(x.shape, x.dtype, rng)
        return self.apply(x)

    def draw(self, shape: tuple, dtype, rng: np.random.Generator) -> "DiffAugment":
        """Draw the random transformations for a batch of ``shape`` (N, C, H, W) and remember them
        (in policy order, as many draws per image as ever); returns ``self``. Separate from
        :meth:`apply` so that a training step can draw in a fixed order and transform elsewhere."""
        n, c, h, w = shape
        dt = np.dtype(dtype)
        self.shape = tuple(shape)
        self.steps = []
        for op in self.ops:
            if op == "color":
                b = (rng.random(n) - 0.5).astype(dt)[:, None, None, None]
                s = (rng.random(n) * 2).astype(dt)[:, None, None, None]
                k = (rng.random(n) + 0.5).astype(dt)[:, None, None, None]
                self.steps.append(("color", b, s, k))
            elif op == "translation":
                sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
                ty = rng.integers(-sy, sy + 1, n)
                tx = rng.integers(-sx, sx + 1, n)
                self.steps.append(("translation", ty, tx, max(sy, sx)))
            elif op == "cutout":
                ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
                cy = rng.integers(0, h + 1 - ch % 2, n)
                cx = rng.integers(0, w + 1 - cw % 2, n)
                ry = np.arange(h)[None, :] - (cy[:, None] - ch // 2)
                rx = np.arange(w)[None, :] - (cx[:, None] - cw // 2)
                inside = ((ry >= 0) & (ry < ch))[:, :, None] & ((rx >= 0) & (rx < cw))[:, None, :]
                self.steps.append(("cutout", (~inside).astype(dt)[:, None]))
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The drawn transformations on ``x`` (its shape as drawn), in blocks of samples, in threads
        when it pays (:func:`golden.nn.parallel_blocks`; each image's result does not depend on the
        blocks)."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"augmentation drawn for shape {self.shape}, applied to {tuple(x.shape)}")
        if not self.steps:
            return x
        out = np.empty(x.shape, x.dtype)

        def part(n0, n1):
            out[n0:n1] = self._forward_block(x[n0:n1], n0, n1)

        parallel_blocks(part, x.shape[0], 8 * x.size)
        return out

    def _forward_block(self, x, n0, n1):
        """The remembered transformations on images ``n0..n1-1`` (``x`` holds those images)."""
        for step in self.steps:
            if step[0] == "color":
                b, s, k = (a[n0:n1] for a in step[1:])
                x = x + b
                x = (x - x.mean(axis=1, keepdims=True)) * s + x.mean(axis=1, keepdims=True)
                m = x.mean(axis=(1, 2, 3), keepdims=True)
                x = (x - m) * k + m
            elif step[0] == "translation":
                _, ty, tx, pad = step
                x = _shift(x, ty[n0:n1], tx[n0:n1], pad)
            else:
                x = x * step[1][n0:n1]
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input of the last :meth:`forward` (in blocks of samples too)."""
        if not self.steps:
            return dy
        dx = np.empty(dy.shape, dy.dtype)

        def part(n0, n1):
            dx[n0:n1] = self._backward_block(dy[n0:n1], n0, n1)

        parallel_blocks(part, dy.shape[0], 8 * dy.size)
        return dx

    def _backward_block(self, dy, n0, n1):
        for step in reversed(self.steps):
            if step[0] == "cutout":
                dy = dy * step[1][n0:n1]
            elif step[0] == "translation":
                _, ty, tx, pad = step
                dy = _shift(dy, -ty[n0:n1], -tx[n0:n1], pad)
            else:
                _, _, s, k = step
                s, k = s[n0:n1], k[n0:n1]
                dy = dy * k + (1 - k) * dy.mean(axis=(1, 2, 3), keepdims=True)
                dy = dy * s + (1 - s) * dy.mean(axis=1, keepdims=True)
                # brightness: identity
        return dy
