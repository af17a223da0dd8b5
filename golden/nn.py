"""Neural-network layers in pure NumPy, with forward and backward passes.

Every layer takes and returns float32 arrays in PyTorch's NCHW *index order* (``(batch, channels,
height, width)``) and follows PyTorch's semantics (weight shapes, padding, BatchNorm momentum and
running variance, Adam's update rule), so that ``tests/test_nn_torch.py`` can compare them with
PyTorch element by element.

The style is that of a "deep learning from scratch" ``layers.py``: ``forward`` caches what
``backward`` needs; ``backward(dout)`` stores the parameter gradients in ``self.grads`` (same
keys as ``self.params``) and returns the gradient with respect to the input. A layer built with
``need_dx=False`` skips computing the input gradient (the first layer of a network) and returns
``None``.

Memory layout. Convolutions work on ``(C, H, W, N)`` memory — the batch innermost — and return
their result as an NCHW *view* of it (``transpose(3, 0, 1, 2)``, no copy). Element-wise layers
(ReLU, LeakyReLU, BatchNorm, Tanh) keep their input's memory order (NumPy's ``order='K'``), so in
a chain conv → BatchNorm → LeakyReLU → conv the next convolution finds ``(C, H, W, N)`` memory
again and :func:`_chwn` costs nothing. With the batch innermost every kernel tap below moves runs
of N contiguous floats (64 to 192 here), where an NCHW layout moves runs of one image row read
with stride 2.

Convolutions use im2col/col2im: :func:`im2col` copies every receptive field into the columns of
a matrix (one strided slice copy per kernel tap), so a convolution is a single BLAS matrix
product; :func:`col2im` adds columns back with one strided add per kernel tap (16 for a 4×4
kernel; never a loop over pixels or samples). :class:`ConvTranspose2d`'s forward pass *is* the
data gradient of a convolution (``col2im`` of ``Wᵀ x``), and its backward pass is a convolution
(``im2col``), so both classes share the same two functions and no zeros are ever inserted
between input pixels. Where a product is followed by col2im (the transposed convolution's
forward pass, the convolution's input gradient), :func:`matmul_col2im` takes it in blocks of whole
output channels and adds each block back while it is still in the cache. Four 2×2-tap "phase"
products per stride-2 transposed convolution instead of one product and col2im were measured
slower for all of the Generator's layers, and im2col in blocks of output rows fused with the
products slower than whole im2col (docs/RESULTS.md, "Training speed").

Threads, two levels. :func:`run_tasks` runs independent pieces of a training step side by side
(the two discriminators' work), each on its share of the threads. Within a piece, one pool
(:func:`parallel_blocks`, :func:`thread_budget` threads) splits the matrix products (:func:`matmul`,
by blocks of rows or columns of the result, BLAS on one thread), the im2col/col2im copies and the
element-wise layers (by blocks of channels), Adam (by parameter) and DiffAugment
(:mod:`golden.augment`, by images). Every output element is computed by the same operations in
the same order whatever the split, so results do not depend on the thread count; where this BLAS
rounds a block of a product differently from the whole, products are taken in the same fixed
blocks at any thread count (:data:`FIXED_BLOCKS`).
"""

from __future__ import annotations

import threading

import numpy as np

from golden import threads as _threads

DTYPE = np.float32

#: Arrays with fewer elements than this are copied/added by one thread.
PARALLEL_MIN_ELEMENTS = 1 << 17
_POOL = None
_TASK_POOL = None
_POOL_LOCK = threading.Lock()
#: Per thread: the thread count granted to the task it runs (:func:`run_tasks`); unset outside tasks.
_LOCAL = threading.local()


def thread_budget() -> int:
    """Threads the calling code may use: :func:`golden.threads.get_threads`, or inside a task of
    :func:`run_tasks` its share of them."""
    return getattr(_LOCAL, "budget", None) or _threads.get_threads()


def run_tasks(*tasks):
    """Run independent callables, concurrently when there are threads for it; return their results.

    Task ``i`` gets ``budget // len(tasks)`` threads (at least one) for its own
    :func:`parallel_blocks`; the calling thread runs the first task, a separate pool the others
    (so a task's blocks never wait for a pool thread that is busy with a task). Tasks must not
    share memory they write, or draw random numbers: whatever runs where, every task computes
    the same operations in the same order, so results do not depend on the thread count. With
    one thread, or one task, or where BLAS owns the threads (``set_threads(n, "blas")``, or before
    any :func:`golden.threads.set_threads`), they run one after the other in the caller.
    """
    global _TASK_POOL
    t = thread_budget()
    if t < 2 or len(tasks) < 2 or not _threads.pool_splits_products():   # BLAS's own threads: one task at a time
        return [task() for task in tasks]
    share = max(1, t // len(tasks))

    def in_budget(task):
        old = getattr(_LOCAL, "budget", None)
        _LOCAL.budget = share
        try:
            return task()
        finally:
            _LOCAL.budget = old

    if _TASK_POOL is None or _TASK_POOL._max_workers < len(tasks) - 1:
        from concurrent.futures import ThreadPoolExecutor

        _TASK_POOL = ThreadPoolExecutor(max_workers=len(tasks) - 1, thread_name_prefix="golden-task")
    futures = [_TASK_POOL.submit(in_budget, task) for task in tasks[1:]]
    first = in_budget(tasks[0])
    return [first] + [f.result() for f in futures]


def parallel_blocks(fn, n: int, size: int) -> None:
    """Call ``fn(n0, n1)`` on disjoint blocks of ``range(n)`` covering it, in threads when it pays.

    NumPy releases the GIL inside large copies, additions and BLAS calls, so blocks that write
    disjoint memory (channels of an image, rows or columns of a product, parameter arrays) run
    concurrently; the calling thread takes the first block. Results do not depend on the
    blocking (every element is computed by the same operations in the same order), so training
    stays deterministic. One block per thread: smaller blocks taken from a queue were slower
    (docs/RESULTS.md, "Training speed").
    """
    global _POOL
    t = min(thread_budget(), n)
    if t <= 1 or size < PARALLEL_MIN_ELEMENTS:
        fn(0, n)
        return
    with _POOL_LOCK:    # tasks of run_tasks may get here at the same time
        if _POOL is None or _POOL._max_workers < t - 1:
            from concurrent.futures import ThreadPoolExecutor

            # sized for the whole process, so that concurrent tasks' blocks do not queue
            _POOL = ThreadPoolExecutor(max_workers=_threads.get_threads() - 1, thread_name_prefix="golden-nn")
        pool = _POOL
    bounds = [n * i // t for i in range(t + 1)]
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, t)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()


#: Matrix products are split into blocks of whole multiples of this many rows or columns.
MATMUL_ALIGN = 64
#: Blocks per product where this BLAS rounds a block differently from the whole product: a fixed
#: count, so that the result is the same at any thread count (two blocks cost 0–10 % more than one
#: call on one thread for the network's shapes, AMD EPYC, OpenBLAS 0.3.31 Haswell kernels).
FIXED_BLOCKS = 2


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D float32 arrays, the result's longer side split over :func:`parallel_blocks`.

    BLAS itself runs on one thread (:func:`golden.threads.set_threads`; with owner ``"blas"`` the
    product is one call on BLAS's threads instead); each block is one BLAS
    call writing its own rows or columns of the result in place (``out=``; a column block of a
    C-contiguous matrix is still a BLAS matrix, with a leading dimension). Blocks start at
    multiples of :data:`MATMUL_ALIGN`, so every element is computed by the same kernel code as
    in one call over the whole product, and the result does not depend on the thread count
    (tests/test_nn_train.py checks this for OpenBLAS) — where this BLAS computes blocks like the
    whole (:func:`split_products_are_exact`). Where it does not, every product is computed as the
    same :data:`FIXED_BLOCKS` aligned blocks whatever the thread count (one after the other on one
    thread, side by side on two), so the result still does not depend on it.
    """
    m, n = a.shape[0], b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))
    units = -(-max(m, n) // MATMUL_ALIGN)
    if n >= m:
        def part(u0, u1):
            c0, c1 = u0 * MATMUL_ALIGN, min(n, u1 * MATMUL_ALIGN)
            np.matmul(a, b[:, c0:c1], out=out[:, c0:c1])
    else:
        def part(u0, u1):
            r0, r1 = u0 * MATMUL_ALIGN, min(m, u1 * MATMUL_ALIGN)
            np.matmul(a[r0:r1], b, out=out[r0:r1])
    size = m * n * a.shape[1] // 16
    if not _threads.pool_splits_products():
        part(0, units)                          # BLAS's own threads
    elif split_products_are_exact():
        parallel_blocks(part, units, size)      # as many blocks as threads
    else:                                       # the same FIXED_BLOCKS calls at any thread count
        bounds = [units * i // FIXED_BLOCKS for i in range(FIXED_BLOCKS + 1)]

        def blocks(i0, i1):
            for i in range(i0, i1):
                if bounds[i] < bounds[i + 1]:
                    part(bounds[i], bounds[i + 1])

        parallel_blocks(blocks, FIXED_BLOCKS, size)
    return out


_SPLIT_EXACT = None


def split_products_are_exact() -> bool:
    """Whether this BLAS computes a product split into :data:`MATMUL_ALIGN`-aligned row or column
    blocks bit for bit like the whole product (probed once, on products of the default network's
    shapes). Not every build does: OpenBLAS 0.3.31's Haswell kernels on an AMD EPYC gave other
    last bits for the blocks (every block shape tried, even at k = 64). Where it does not,
    :func:`matmul` computes every product as :data:`FIXED_BLOCKS` blocks at any thread count, so
    results never depend on the thread count.
    """
    global _SPLIT_EXACT
    if _SPLIT_EXACT is None:
        rng = np.random.default_rng(0)
        exact = True
        for m, k, n in ((16, 100, 2048), (2048, 100, 16), (64, 1024, 256), (256, 1024, 64), (128, 512, 1024)):
            a = rng.standard_normal((m, k)).astype(DTYPE)
            b = rng.standard_normal((k, n)).astype(DTYPE)
            whole = np.matmul(a, b)
            out = np.empty_like(whole)
            if n >= m:
                h = n // 2 // MATMUL_ALIGN * MATMUL_ALIGN
                np.matmul(a, b[:, :h], out=out[:, :h])
                np.matmul(a, b[:, h:], out=out[:, h:])
            else:
                h = m // 2 // MATMUL_ALIGN * MATMUL_ALIGN
                np.matmul(a[:h], b, out=out[:h])
                np.matmul(a[h:], b, out=out[h:])
            exact = exact and np.array_equal(whole, out)
        _SPLIT_EXACT = exact
    return _SPLIT_EXACT


# --------------------------------------------------------------------------- im2col / col2im

def conv_out_size(n: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution over ``n`` samples (kernel ``k``, stride ``s``, pad ``p``)."""
    return (n + 2 * p - k) // s + 1


def _tap_range(i: int, s: int, p: int, n_in: int, n_out: int) -> tuple[int, int, int]:
    """Outputs ``o`` in ``[o0, o1)`` whose tap ``i`` reads an input inside the image.

    Tap ``i`` of output ``o`` reads input ``s·o + i − p``; returns ``(o0, o1, s·o0 + i − p)``
    (``o1 == o0`` when the tap only ever reads padding).
    """
    o0 = max(0, -((i - p) // s))
    o1 = max(o0, min(n_out, (n_in - 1 + p - i) // s + 1))
    return o0, o1, s * o0 + i - p


def im2col(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Receptive fields of ``x`` as the columns of a matrix.

    Parameters
    ----------
    x : ndarray, shape (C, H, W, N)
    k, s, p : int
        Kernel size, stride and zero padding.

    Returns
    -------
    ndarray, shape (C * k * k, OH * OW * N)
        Row ``(c, i, j)``, column ``(oh, ow, n)`` holds ``x[c, s·oh + i − p, s·ow + j − p, n]``
        (0 where that is outside the image).
    """
    c, h, w, n = x.shape
    oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
    col = np.empty((c, k, k, oh, ow, n), dtype=x.dtype)
    rows = [_tap_range(i, s, p, h, oh) for i in range(k)]
    cols = [_tap_range(j, s, p, w, ow) for j in range(k)]

    def part(c0, c1):  # channels c0..c1-1 (disjoint blocks, so blocks may run in parallel)
        for i, (o0, o1, y0) in enumerate(rows):
            for j, (q0, q1, x0) in enumerate(cols):
                dst = col[c0:c1, i, j]
                dst[:, o0:o1, q0:q1] = x[c0:c1, y0:y0 + s * (o1 - o0):s, x0:x0 + s * (q1 - q0):s]
                dst[:, :o0] = 0                 # rows and columns of the tap that read padding
                dst[:, o1:] = 0
                dst[:, o0:o1, :q0] = 0
                dst[:, o0:o1, q1:] = 0

    parallel_blocks(part, c, col.size)
    return col.reshape(c * k * k, oh * ow * n)


def col2im(col: np.ndarray, shape: tuple, k: int, s: int, p: int, bias: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column entry back to the pixel it came from.

    ``out[c, s·oh + i − p, s·ow + j − p, n] += col[(c, i, j), (oh, ow, n)]`` for every tap inside
    the image, starting from ``bias[c]`` (or 0): one strided add per kernel tap.

    Parameters
    ----------
    col : ndarray, shape (C * k * k, OH * OW * N)
    shape : tuple
        ``(C, H, W, N)`` of the image that :func:`im2col` read.
    k, s, p : int
        Kernel size, stride and zero padding.
    bias : ndarray, shape (C,), optional
        Start value of every pixel of channel ``c`` (the bias of a transposed convolution).

    Returns
    -------
    ndarray, shape (C, H, W, N), C-contiguous
    """
    out = np.empty(shape, dtype=col.dtype)
    c = shape[0]
    col = col.reshape(c, k * k, -1)
    parallel_blocks(lambda c0, c1: col2im_into(out[c0:c1], col[c0:c1], k, s, p,
                                                None if bias is None else bias[c0:c1]), c, col.size)
    return out


def col2im_into(out: np.ndarray, col: np.ndarray, k: int, s: int, p: int, bias=None) -> None:
    """:func:`col2im` of ``col`` (C·k·k rows) written into ``out`` (C, H, W, N), one thread."""
    c, h, w, n = out.shape
    oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
    col = col.reshape(c, k, k, oh, ow, n)
    out[...] = 0 if bias is None else bias.astype(out.dtype, copy=False)[:, None, None, None]
    for i in range(k):
        o0, o1, y0 = _tap_range(i, s, p, h, oh)
        for j in range(k):
            q0, q1, x0 = _tap_range(j, s, p, w, ow)
            out[:, y0:y0 + s * (o1 - o0):s, x0:x0 + s * (q1 - q0):s] += col[:, i, j, o0:o1, q0:q1]


#: :func:`matmul_col2im` keeps a block of the product at about this many floats (1 MiB: the
#: block is added back while it is still in the cache).
BLOCK_FLOATS = 1 << 18


def matmul_col2im(a: np.ndarray, b: np.ndarray, shape: tuple, k: int, s: int, p: int,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """``col2im(a @ b, shape, k, s, p, bias)`` without the whole product in memory.

    Rows ``(c, i, j)`` of the product belong to channel ``c`` of the result, so the product is
    taken in blocks of whole channels — a fixed number per block (at least :data:`MATMUL_ALIGN`
    rows where the kernel allows, about :data:`BLOCK_FLOATS` floats), the same at any thread count —
    and each block is added back into its channels right after it is computed, while it is in
    the cache. Blocks of channels are disjoint, so threads take whole blocks
    (:func:`parallel_blocks`). With a single block (the Generator's one-channel last layer) it is
    :func:`col2im` of :func:`matmul`.
    """
    c, kk, n_cols = shape[0], k * k, b.shape[1]
    per_block = max(1, MATMUL_ALIGN // kk)
    while (per_block * 2) * kk * n_cols <= BLOCK_FLOATS and per_block * 2 < c:
        per_block *= 2
    units = -(-c // per_block)
    if units < 2 or not _threads.pool_splits_products():   # never by the thread count: the same bits at any
        return col2im(matmul(a, b), shape, k, s, p, bias)
    out = np.empty(shape, dtype=np.result_type(a, b))

    def part(u0, u1):
        for u in range(u0, u1):
            c0, c1 = u * per_block, min(c, (u + 1) * per_block)
            col2im_into(out[c0:c1], np.matmul(a[c0 * kk:c1 * kk], b), k, s, p,
                         None if bias is None else bias[c0:c1])

    parallel_blocks(part, units, c * kk * n_cols)
    return out


def _chwn(x: np.ndarray) -> np.ndarray:
    """NCHW index order → C-contiguous ``(C, H, W, N)``; free when ``x`` is already a view of such memory."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))


def _nchw(y: np.ndarray) -> np.ndarray:
    """``(C, H, W, N)`` memory → its NCHW view (no copy)."""
    return y.transpose(3, 0, 1, 2)


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
        k, s, p = self.k, self.s, self.p
        xc = _chwn(x)                                       # (C, H, W, N)
        c, h, w, n = xc.shape
        oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
        self.x_shape = xc.shape
        self.col = im2col(xc, k, s, p)                      # (C k k, OH OW N)
        wm = self.params["w"].reshape(self.params["w"].shape[0], -1)
        y = matmul(wm, self.col)                            # (OC, OH OW N)
        if "b" in self.params:
            y += self.params["b"][:, None]
        return _nchw(y.reshape(-1, oh, ow, n))

    def backward(self, dout):
        w = self.params["w"]
        dy = _chwn(dout).reshape(w.shape[0], -1)           # (OC, OH OW N)
        if not self.frozen:
            self.grads["w"] = matmul(self.col, dy.T).T.reshape(w.shape)   # (C k k, OC)ᵀ
            if "b" in self.params:
                self.grads["b"] = dy.sum(axis=1)
        self.col = None
        if not self.need_dx:
            return None
        wt = w.reshape(w.shape[0], -1).T                    # (C k k, OC)
        return _nchw(matmul_col2im(wt, dy, self.x_shape, self.k, self.s, self.p))


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
        k, s, p = self.k, self.s, self.p
        xc = _chwn(x)                                       # (IC, H, W, N)
        ic, h, w, n = xc.shape
        oc = self.params["w"].shape[1]
        oh, ow = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
        self.x_hw = (h, w)
        self.xc = xc.reshape(ic, -1)                        # (IC, H W N)
        wt = self.params["w"].reshape(ic, -1).T                 # (OC k k, IC)
        return _nchw(matmul_col2im(wt, self.xc, (oc, oh, ow, n), k, s, p, self.params.get("b")))

    def backward(self, dout):
        w = self.params["w"]
        ic = w.shape[0]
        dc = _chwn(dout)                                    # (OC, OH, OW, N)
        col = im2col(dc, self.k, self.s, self.p)            # (OC k k, H W N)
        if not self.frozen:
            self.grads["w"] = matmul(col, self.xc.T).T.reshape(w.shape)  # (OC k k, IC)ᵀ
            if "b" in self.params:
                self.grads["b"] = dc.reshape(dc.shape[0], -1).sum(axis=1)
        self.xc = None
        if not self.need_dx:
            return None
        h, wd = self.x_hw
        dx = matmul(w.reshape(ic, -1), col)                 # (IC, H W N)
        return _nchw(dx.reshape(ic, h, wd, dc.shape[3]))


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
        n, c, h, w = x.shape
        m = n * h * w
        mu, var, inv = (np.empty(c, dt) for _ in range(3))
        xhat, out = np.empty_like(x), np.empty_like(x)     # x's memory order

        def part(c0, c1):  # channels c0..c1-1: μ, σ², x̂ = (x − μ)/√(σ² + ε), γ x̂ + β
            xs, xh, ch = x[:, c0:c1], xhat[:, c0:c1], slice(c0, c1)
            mu[ch] = xs.mean(axis=(0, 2, 3), dtype=np.float64)
            np.subtract(xs, mu[None, ch, None, None], out=xh)
            var[ch] = (xh * xh).mean(axis=(0, 2, 3), dtype=np.float64)
            inv[ch] = 1.0 / np.sqrt(var[ch] + dt.type(self.eps))
            np.multiply(xh, inv[None, ch, None, None], out=xh)
            np.multiply(xh, g[:, ch], out=out[:, c0:c1])
            out[:, c0:c1] += b[:, ch]

        parallel_blocks(part, c, x.size)
        mom = self.momentum
        rm, rv = self.running_mean, self.running_var
        rm[...] = (1 - mom) * rm + mom * mu
        rv[...] = (1 - mom) * rv + mom * var * (m / max(m - 1, 1))
        self.xhat, self.inv, self.batch_stats = xhat, inv, True
        return out

    def backward(self, dout):
        xhat, inv = self.xhat, self.inv
        gamma = self.params["gamma"]
        self.xhat = None
        c = dout.shape[1]
        dbeta, dgamma = np.empty(c, dout.dtype), np.empty(c, dout.dtype)
        dx = np.empty_like(dout)
        m = dout.shape[0] * dout.shape[2] * dout.shape[3]

        def part(c0, c1):  # channels c0..c1-1: dβ = Σ dy, dγ = Σ dy·x̂, dx = (dy − dβ/m − x̂·dγ/m)·γ/σ
            ds, xh, ch = dout[:, c0:c1], xhat[:, c0:c1], slice(c0, c1)
            dbeta[ch] = ds.sum(axis=(0, 2, 3))
            dgamma[ch] = (ds * xh).sum(axis=(0, 2, 3))
            scale = (gamma[ch] * inv[ch])[None, :, None, None]
            if not self.batch_stats:    # running statistics are constants
                np.multiply(ds, scale, out=dx[:, c0:c1])
                return
            t = ds - (dbeta[ch] / m)[None, :, None, None]
            t -= xh * (dgamma[ch] / m)[None, :, None, None]
            np.multiply(t, scale, out=dx[:, c0:c1])

        parallel_blocks(part, c, dout.size)
        self.grads["beta"], self.grads["gamma"] = dbeta, dgamma
        return dx


class ReLU(Layer):
    """``max(x, 0)``; the gradient at 0 is 0 (as PyTorch)."""

    def forward(self, x):
        self.y = np.empty_like(x)
        parallel_blocks(lambda c0, c1: np.maximum(x[:, c0:c1], x.dtype.type(0), out=self.y[:, c0:c1]),
                        x.shape[1], x.size)
        return self.y

    def backward(self, dout):
        y, self.y = self.y, None
        dx = np.empty_like(dout)         # a product with a boolean mask: one vectorised pass
        parallel_blocks(lambda c0, c1: np.multiply(dout[:, c0:c1], y[:, c0:c1] > 0, out=dx[:, c0:c1]),
                        dout.shape[1], dout.size)
        return dx


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, ``slope·x`` otherwise (PyTorch's default slope is 0.01; DCGAN uses 0.2)."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.x = x
        y = np.empty_like(x)
        s = x.dtype.type(self.slope)

        def part(c0, c1):  # max(x, slope·x) for 0 ≤ slope ≤ 1
            xs, ys = x[:, c0:c1], y[:, c0:c1]
            np.multiply(xs, s, out=ys)
            if 0 <= self.slope <= 1:
                np.maximum(xs, ys, out=ys)
            else:
                ys[...] = np.where(xs > 0, xs, ys)

        parallel_blocks(part, x.shape[1], x.size)
        return y

    def backward(self, dout):
        x, self.x = self.x, None
        dx = np.empty_like(dout)
        parallel_blocks(lambda c0, c1: np.multiply(dout[:, c0:c1], self._slopes(x[:, c0:c1]), out=dx[:, c0:c1]),
                        dout.shape[1], dout.size)
        return dx

    def _slopes(self, x):
        """The derivative of the layer at ``x``: 1 where ``x > 0``, ``slope`` elsewhere.

        For ``0 ≤ slope ≤ 1`` that is ``max(x > 0, slope)`` (exact: ``max(1, s) = 1``, ``max(0, s) = s``),
        several times faster than ``np.where``."""
        s = x.dtype.type(self.slope)
        return np.maximum(x > 0, s) if 0 <= self.slope <= 1 else np.where(x > 0, x.dtype.type(1), s)


class MinibatchStd(Layer):
    """Append the batch's spread as one more channel (Karras et al., ProGAN, section 3).

    ``s = mean_{c,h,w} √(σ²_{c,h,w} + ε)`` with ``σ²`` the biased variance over the batch of each
    feature; the output is ``x`` with a constant channel ``s`` appended, (N, C + 1, H, W). A
    discriminator that sees ``s`` can tell a batch of near-copies from a varied one, which pushes a
    generator away from repeating motifs. Backward: ``dx_n = dy_n[:C] + S/(C·H·W) · (x_n − μ)/(N·σ)``
    with ``S`` the sum of the gradient on the appended channel.
    """

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        n, c, h, w = x.shape
        self.dev = x - x.mean(axis=0, keepdims=True)
        self.sigma = np.sqrt((self.dev * self.dev).mean(axis=0) + x.dtype.type(self.eps))
        s = self.sigma.mean(dtype=np.float64).astype(x.dtype)
        return np.concatenate([x, np.full((n, 1, h, w), s, x.dtype)], axis=1)

    def backward(self, dout):
        n, c1, h, w = dout.shape
        c = c1 - 1
        total = dout[:, c].sum(dtype=np.float64)
        dev, sigma = self.dev, self.sigma
        self.dev = self.sigma = None
        scale = dout.dtype.type(total / (c * h * w * n))
        return dout[:, :c] + dev * (scale / sigma)


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

        def part(i0, i1):  # parameters i0..i1-1 (independent arrays, so blocks may run in parallel)
            for p, g, m, v in zip(self.params[i0:i1], grads[i0:i1], self.m[i0:i1], self.v[i0:i1]):
                m *= np.float32(b1)
                m += np.float32(1 - b1) * g
                v *= np.float32(b2)
                v += np.float32(1 - b2) * (g * g)
                denom = np.sqrt(v) / np.float32(bc2_sqrt) + np.float32(self.eps)
                p -= step * (m / denom)

        parallel_blocks(part, len(self.params), sum(p.size for p in self.params))

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
