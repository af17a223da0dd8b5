"""Neural-network layers in pure NumPy, with forward and backward passes.

Every layer works on float32 NCHW arrays (``(batch, channels, height, width)``) and follows
PyTorch's semantics (weight shapes, padding, BatchNorm momentum and running variance, Adam's
update rule), so that ``tests/test_nn_torch.py`` can compare them with PyTorch element by element.

The style is that of a "deep learning from scratch" ``layers.py``: ``forward`` caches what
``backward`` needs; ``backward(dout)`` stores the parameter gradients in ``self.grads`` (same
keys as ``self.params``) and returns the gradient with respect to the input. A layer built with
``need_dx=False`` skips computing the input gradient (the first layer of a network) and returns
``None``.

Convolutions use im2col/col2im: :func:`im2col` copies every receptive field into the columns of
a matrix (one strided slice copy per kernel tap), so a convolution is a single BLAS matrix
product; :func:`col2im` scatters columns back with one strided add per kernel tap (16 adds for
a 4×4 kernel; never a loop over pixels or samples). The column layout is ``(C, k, k, N, OH, OW)``, which makes every scatter slice
contiguous. :class:`ConvTranspose2d`'s forward pass *is* the data gradient of a convolution
(``col2im`` of ``Wᵀ x``), and its backward pass is a convolution (``im2col``), so both classes
share the same two functions and no zeros are ever inserted between input pixels.
"""

from __future__ import annotations

import os

import numpy as np

DTYPE = np.float32

#: Arrays with fewer elements than this are copied/scattered by one thread.
PARALLEL_MIN_ELEMENTS = 1 << 18
_POOL = None


def num_threads() -> int:
    """Threads for the data movement around the matrix products (im2col, col2im, layout copies).

    ``AVATARGAN_THREADS``, else ``OMP_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS``, else all
    cores — the same count BLAS uses, so ``avatargan bench train --threads N`` is fair.
    """
    for var in ("AVATARGAN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        try:
            val = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if val >= 1:
            return val
    return os.cpu_count() or 1


def parallel_blocks(fn, n: int, size: int) -> None:
    """Call ``fn(n0, n1)`` on disjoint blocks of ``range(n)`` covering it, in threads when it pays.

    NumPy releases the GIL inside large copies and additions, so blocks of samples that write
    disjoint memory run concurrently. Results do not depend on the blocking (every element is
    computed by the same operations in the same order), so training stays deterministic.
    """
    global _POOL
    t = min(num_threads(), n)
    if t <= 1 or size < PARALLEL_MIN_ELEMENTS:
        fn(0, n)
        return
    if _POOL is None or _POOL._max_workers < t:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=t, thread_name_prefix="golden-nn")
    bounds = [n * i // t for i in range(t + 1)]
    for f in [_POOL.submit(fn, bounds[i], bounds[i + 1]) for i in range(t)]:
        f.result()


# --------------------------------------------------------------------------- im2col / col2im

def conv_out_size(n: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution over ``n`` samples (kernel ``k``, stride ``s``, pad ``p``)."""
    return (n + 2 * p - k) // s + 1


def im2col(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Receptive fields of ``x`` as the columns of a matrix.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    k, s, p : int
        Kernel size, stride and zero padding.

    Returns
    -------
    ndarray, shape (C * k * k, N * OH * OW)
        Row ``(c, i, j)``, column ``(n, oh, ow)`` holds ``x_pad[n, c, s*oh + i, s*ow + j]``.
    """
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
    # zero-padded copy in (C, N, Hp, Wp) order, then one strided copy per kernel tap: every
    # destination block col[:, i, j] is contiguous (faster than one 6-D transposing copy)
    xt = np.zeros((c, n, h + 2 * p, w + 2 * p), dtype=x.dtype)
    col = np.empty((c, k, k, n, oh, ow), dtype=x.dtype)

    def part(n0, n1):  # samples n0..n1-1 (disjoint blocks, so blocks may run in parallel)
        xt[:, n0:n1, p:p + h, p:p + w] = x[n0:n1].transpose(1, 0, 2, 3)
        for i in range(k):
            for j in range(k):
                col[:, i, j, n0:n1] = xt[:, n0:n1, i:i + s * oh:s, j:j + s * ow:s]

    parallel_blocks(part, n, col.size)
    return col.reshape(c * k * k, n * oh * ow)


def col2im(col: np.ndarray, shape: tuple, k: int, s: int, p: int, bias: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column entry back to the pixel it came from.

    Parameters
    ----------
    col : ndarray, shape (C * k * k, N * OH * OW)
    shape : tuple
        ``(N, C, H, W)`` of the image that :func:`im2col` read.
    k, s, p : int
        Kernel size, stride and zero padding.
    bias : ndarray, shape (C,), optional
        Added to every pixel of channel ``c`` (fused into the final copy).

    Returns
    -------
    ndarray, shape (N, C, H, W), float32, C-contiguous
    """
    n, c, h, w = shape
    oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
    col = col.reshape(c, k, k, n, oh, ow)
    hp, wp = h + 2 * p, w + 2 * p
    if k % s == 0 and (hp - k) % s == 0 and (wp - k) % s == 0:
        # Phase split: padded row s*r + a only receives taps i = a + s*di (r = oh + di). Viewing
        # the image as (C, N, R, s, S, s), each phase (a, b) is a dense grid that the q*q taps of
        # that phase cover at unit offsets; the first tap is copied (no zero fill, one read less).
        q = k // s
        img = np.empty((c, n, oh + q - 1, s, ow + q - 1, s), dtype=col.dtype)

        def part(n0, n1):
            for a in range(s):
                for b in range(s):
                    sub = img[:, n0:n1, :, a, :, b]
                    cb = col[:, :, :, n0:n1]
                    sub[:, :, oh:] = 0
                    sub[:, :, :oh, ow:] = 0
                    sub[:, :, :oh, :ow] = cb[:, a, b]
                    for di in range(q):
                        for dj in range(q):
                            if di or dj:
                                sub[:, :, di:di + oh, dj:dj + ow] += cb[:, a + s * di, b + s * dj]

        parallel_blocks(part, n, col.size)
        img = img.reshape(c, n, hp, wp)
    else:
        # general case: one strided add per kernel tap into a (C, N, Hp, Wp) buffer
        img = np.zeros((c, n, hp + s, wp + s), dtype=col.dtype)

        def part(n0, n1):
            for i in range(k):
                for j in range(k):
                    img[:, n0:n1, i:i + s * oh:s, j:j + s * ow:s] += col[:, i, j, n0:n1]

        parallel_blocks(part, n, col.size)
    return _to_nchw(img[:, :, p:p + h, p:p + w], bias)


def _to_nchw(img: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """(C, N, H, W) view -> C-contiguous (N, C, H, W), adding ``bias`` per channel in the same pass."""
    c, n, h, w = img.shape
    out = np.empty((n, c, h, w), dtype=img.dtype)
    src = img.transpose(1, 0, 2, 3)
    b = None if bias is None else bias.astype(img.dtype, copy=False)[None, :, None, None]

    def part(n0, n1):
        if b is None:
            np.copyto(out[n0:n1], src[n0:n1])
        else:
            np.add(src[n0:n1], b, out=out[n0:n1])

    parallel_blocks(part, n, out.size)
    return out


def _cn(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N*H*W), one copy."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, n * h * w)


def _nc(y: np.ndarray, n: int, h: int, w: int, bias: np.ndarray | None = None) -> np.ndarray:
    """(C, N*H*W) -> (N, C, H, W), one copy (plus an optional per-channel bias)."""
    return _to_nchw(y.reshape(y.shape[0], n, h, w), bias)


# --------------------------------------------------------------------------- layers

class Layer:
    """Base class: ``params`` and ``grads`` are dicts of float32 arrays with the same keys."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.train = True
        #: When True, ``backward`` skips the parameter gradients (only ``dx`` is needed).
        self.frozen = False

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:  # pragma: no cover - interface
        raise NotImplementedError


class Conv2d(Layer):
    """2-D convolution, PyTorch's ``nn.Conv2d`` (weight ``(OC, IC, k, k)``, optional bias).

    Parameters
    ----------
    in_ch, out_ch, k, stride, pad : int
    bias : bool
    need_dx : bool
        Compute the input gradient in :meth:`backward` (False for a network's first layer).
    """

    def __init__(self, in_ch, out_ch, k, stride=1, pad=0, bias=True, need_dx=True):
        super().__init__()
        self.k, self.s, self.p, self.need_dx = k, stride, pad, need_dx
        self.params["w"] = np.zeros((out_ch, in_ch, k, k), DTYPE)
        if bias:
            self.params["b"] = np.zeros(out_ch, DTYPE)

    def forward(self, x):
        n, c, h, w = x.shape
        k, s, p = self.k, self.s, self.p
        oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
        self.x_shape = x.shape
        self.col = im2col(x, k, s, p)                       # (C k k, N OH OW)
        wm = self.params["w"].reshape(self.params["w"].shape[0], -1)
        y = wm @ self.col                                   # (OC, N OH OW)
        return _nc(y, n, oh, ow, self.params.get("b"))

    def backward(self, dout):
        w = self.params["w"]
        dy = _cn(dout)                                      # (OC, N OH OW)
        if not self.frozen:
            self.grads["w"] = (dy @ self.col.T).reshape(w.shape)
            if "b" in self.params:
                self.grads["b"] = dy.sum(axis=1)
        self.col = None
        if not self.need_dx:
            return None
        dcol = w.reshape(w.shape[0], -1).T @ dy            # (C k k, N OH OW)
        return col2im(dcol, self.x_shape, self.k, self.s, self.p)


class ConvTranspose2d(Layer):
    """Transposed 2-D convolution, PyTorch's ``nn.ConvTranspose2d`` (weight ``(IC, OC, k, k)``).

    The output size is ``(H − 1)·stride − 2·pad + k``. Forward is the data gradient of the
    convolution that has the same weight tensor (``col2im(Wᵀ x)``), backward is that
    convolution (``im2col``), so no zeros are inserted.
    """

    def __init__(self, in_ch, out_ch, k, stride=1, pad=0, bias=True, need_dx=True):
        super().__init__()
        self.k, self.s, self.p, self.need_dx = k, stride, pad, need_dx
        self.params["w"] = np.zeros((in_ch, out_ch, k, k), DTYPE)
        if bias:
            self.params["b"] = np.zeros(out_ch, DTYPE)

    def forward(self, x):
        n, ic, h, w = x.shape
        k, s, p = self.k, self.s, self.p
        oc = self.params["w"].shape[1]
        oh, ow = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
        self.out_shape = (n, oc, oh, ow)
        self.x_shape = x.shape
        self.xc = _cn(x)                                    # (IC, N H W)
        col = self.params["w"].reshape(ic, -1).T @ self.xc  # (OC k k, N H W)
        return col2im(col, self.out_shape, k, s, p, self.params.get("b"))

    def backward(self, dout):
        w = self.params["w"]
        ic = w.shape[0]
        col = im2col(dout, self.k, self.s, self.p)          # (OC k k, N H W)
        if not self.frozen:
            self.grads["w"] = (self.xc @ col.T).reshape(w.shape)
            if "b" in self.params:
                self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.xc = None
        if not self.need_dx:
            return None
        n, _, h, wd = self.x_shape
        dx = w.reshape(ic, -1) @ col                        # (IC, N H W)
        return _nc(dx, n, h, wd)


class Linear(Layer):
    """Fully connected layer, PyTorch's ``nn.Linear``: ``y = x Wᵀ + b`` with ``W`` (out, in).

    Inputs with more than two dimensions are flattened per sample (C, H, W order).
    """

    def __init__(self, in_f, out_f, bias=True, need_dx=True):
        super().__init__()
        self.need_dx = need_dx
        self.params["w"] = np.zeros((out_f, in_f), DTYPE)
        if bias:
            self.params["b"] = np.zeros(out_f, DTYPE)

    def forward(self, x):
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        y = self.x @ self.params["w"].T
        if "b" in self.params:
            y += self.params["b"]
        return y

    def backward(self, dout):
        if not self.frozen:
            self.grads["w"] = dout.T @ self.x
            if "b" in self.params:
                self.grads["b"] = dout.sum(axis=0)
        self.x = None
        if not self.need_dx:
            return None
        return (dout @ self.params["w"]).reshape(self.x_shape)


class BatchNorm2d(Layer):
    """Batch normalisation over (N, H, W) per channel, PyTorch's ``nn.BatchNorm2d``.

    Training mode normalises with the batch mean and biased variance and updates the running
    statistics with ``momentum`` (running variance uses the unbiased batch variance, as PyTorch
    does); evaluation mode (``train = False``) uses the running statistics.
    """

    def __init__(self, ch, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.params["gamma"] = np.ones(ch, DTYPE)
        self.params["beta"] = np.zeros(ch, DTYPE)
        self.running_mean = np.zeros(ch, DTYPE)
        self.running_var = np.ones(ch, DTYPE)

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not trained by gradients but must be saved."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x):
        dt = x.dtype
        g = self.params["gamma"][None, :, None, None]
        b = self.params["beta"][None, :, None, None]
        if not self.train:
            inv = (1.0 / np.sqrt(self.running_var + self.eps)).astype(dt)
            xhat = (x - self.running_mean[None, :, None, None].astype(dt)) * inv[None, :, None, None]
            self.xhat, self.inv, self.batch_stats = xhat, inv, False
            return xhat * g + b
        m = x.shape[0] * x.shape[2] * x.shape[3]
        mu = x.mean(axis=(0, 2, 3), dtype=np.float64).astype(dt)
        xc = x - mu[None, :, None, None]
        var = (xc * xc).mean(axis=(0, 2, 3), dtype=np.float64).astype(dt)
        inv = (1.0 / np.sqrt(var + self.eps)).astype(dt)
        xhat = xc * inv[None, :, None, None]
        mom = self.momentum
        rm, rv = self.running_mean, self.running_var
        rm[...] = (1 - mom) * rm + mom * mu
        rv[...] = (1 - mom) * rv + mom * var * (m / max(m - 1, 1))
        self.xhat, self.inv, self.batch_stats = xhat, inv, True
        return xhat * g + b

    def backward(self, dout):
        xhat, inv = self.xhat, self.inv
        gamma = self.params["gamma"]
        self.grads["beta"] = dout.sum(axis=(0, 2, 3))
        self.grads["gamma"] = (dout * xhat).sum(axis=(0, 2, 3))
        self.xhat = None
        if not self.batch_stats:    # running statistics are constants
            return dout * (gamma * inv)[None, :, None, None]
        m = dout.shape[0] * dout.shape[2] * dout.shape[3]
        mean_d = self.grads["beta"] / m
        mean_dx = self.grads["gamma"] / m
        return (dout - mean_d[None, :, None, None] - xhat * mean_dx[None, :, None, None]) \
            * (gamma * inv)[None, :, None, None]


class ReLU(Layer):
    """``max(x, 0)``; the gradient at 0 is 0 (as PyTorch)."""

    def forward(self, x):
        self.y = np.maximum(x, x.dtype.type(0))
        return self.y

    def backward(self, dout):
        y, self.y = self.y, None
        return np.where(y > 0, dout, dout.dtype.type(0))


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, ``slope·x`` otherwise (PyTorch's default slope is 0.01; DCGAN uses 0.2)."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.x = x
        y = x * x.dtype.type(self.slope)
        return np.maximum(x, y, out=y) if self.slope <= 1 else np.where(x > 0, x, y)

    def backward(self, dout):
        x, self.x = self.x, None
        return np.where(x > 0, dout, dout * dout.dtype.type(self.slope))


class Tanh(Layer):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1 - self.y * self.y)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


class Sigmoid(Layer):
    def forward(self, x):
        self.y = sigmoid(x)
        return self.y

    def backward(self, dout):
        return dout * self.y * (1 - self.y)


def bce_with_logits(logits: np.ndarray, target: float) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against a constant label, stably.

    ``BCE(σ(x), y) = max(x, 0) − x·y + log(1 + exp(−|x|))``, PyTorch's
    ``BCEWithLogitsLoss`` with mean reduction.

    Returns
    -------
    loss : float
    dlogits : ndarray
        ``(σ(x) − y) / numel``, the gradient of the loss.
    """
    x = logits
    loss = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))
    grad = (sigmoid(x) - np.asarray(target, x.dtype)) / x.size
    return float(loss.mean(dtype=np.float64)), grad.astype(x.dtype)


class Sequential(Layer):
    """Layers applied in order; parameters are exposed as ``"<index>.<name>"``."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def named_params(self):
        """Yield ``(name, layer, key)`` for every trainable array."""
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                yield f"{i}.{key}", layer, key

    def state(self) -> dict[str, np.ndarray]:
        """Parameters and BatchNorm buffers as a flat dict of arrays (shared, not copied)."""
        out = {}
        for i, layer in enumerate(self.layers):
            for key, val in layer.params.items():
                out[f"{i}.{key}"] = val
            if isinstance(layer, BatchNorm2d):
                for key, val in layer.buffers().items():
                    out[f"{i}.{key}"] = val
        return out

    def set_train(self, flag: bool):
        for layer in self.layers:
            layer.train = flag

    def set_frozen(self, flag: bool):
        """Skip (True) or compute (False) parameter gradients in every layer."""
        for layer in self.layers:
            layer.frozen = flag

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def params_list(self):
        return [layer.params[k] for _, layer, k in self.named_params()]

    def grads_list(self):
        return [layer.grads[k] for _, layer, k in self.named_params()]


def dcgan_init(net: Sequential, rng: np.random.Generator) -> None:
    """DCGAN initialisation: conv/linear weights N(0, 0.02), biases 0, BN gamma N(1, 0.02), beta 0."""
    for layer in net.layers:
        if isinstance(layer, BatchNorm2d):
            layer.params["gamma"][...] = rng.normal(1.0, 0.02, layer.params["gamma"].shape)
            layer.params["beta"][...] = 0
        elif isinstance(layer, (Conv2d, ConvTranspose2d, Linear)):
            layer.params["w"][...] = rng.normal(0.0, 0.02, layer.params["w"].shape)
            if "b" in layer.params:
                layer.params["b"][...] = 0


# --------------------------------------------------------------------------- optimiser

class Adam:
    """Adam with PyTorch's update rule (``torch.optim.Adam``, no weight decay, no amsgrad).

    ``m ← β1 m + (1−β1) g``; ``v ← β2 v + (1−β2) g²``;
    ``p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)``. Parameters are updated in place.

    Parameters
    ----------
    params : list of ndarray
        The arrays to update (float32, updated in place).
    """

    def __init__(self, params, lr=1e-3, betas=(0.5, 0.999), eps=1e-8):
        self.params = params
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        b1, b2 = self.b1, self.b2
        bc1 = 1 - b1 ** self.t
        bc2_sqrt = np.sqrt(1 - b2 ** self.t)
        step = np.float32(self.lr / bc1)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= np.float32(b1)
            m += np.float32(1 - b1) * g
            v *= np.float32(b2)
            v += np.float32(1 - b2) * (g * g)
            denom = np.sqrt(v) / np.float32(bc2_sqrt) + np.float32(self.eps)
            p -= step * (m / denom)

    def state(self) -> dict[str, np.ndarray]:
        """Moments and step count as arrays (``m.i``, ``v.i``, ``t``)."""
        out = {"t": np.array(self.t, np.int64)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            out[f"m.{i}"] = m
            out[f"v.{i}"] = v
        return out

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        self.t = int(st["t"])
        for i in range(len(self.m)):
            self.m[i][...] = st[f"m.{i}"]
            self.v[i][...] = st[f"v.{i}"]
