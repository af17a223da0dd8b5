"""Central-difference gradient checks of every NumPy layer, in float64.

For a layer ``f`` and a fixed random ``r`` the scalar ``L = Σ f(x)·r`` has ``dL/dx = backward(r)``
and ``dL/dθ = grads``. We compare these with ``(L(a + h) − L(a − h)) / 2h`` element by element
and require the relative error ``‖analytic − numeric‖ / max(‖analytic‖ + ‖numeric‖, 1e-12)``
to be below ``BOUND`` (1e-6; float64 central differences with h = 1e-5 give about 1e-9).
The checker itself is shown to fail on a wrong gradient.
"""

import zlib

import numpy as np
import pytest

from golden import nn
from golden.models import Discriminator, Generator

BOUND = 1e-6
H = 1e-5


def rel_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def numeric_grad(loss, a, h=H):
    """Central differences of ``loss()`` with respect to every element of ``a`` (changed in place)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        lp = loss()
        flat[i] = old - h
        lm = loss()
        flat[i] = old
        gflat[i] = (lp - lm) / (2 * h)
    return g


def to64(layer):
    for k in layer.params:
        layer.params[k] = layer.params[k].astype(np.float64)
    return layer


def check_layer(layer, x, rng):
    """Return the relative errors of dx and of every parameter gradient."""
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)
    errs = {}

    def loss():
        return float(np.sum(layer.forward(x) * r))

    if dx is not None:
        errs["x"] = rel_error(dx, numeric_grad(loss, x))
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    for k, p in layer.params.items():
        errs[k] = rel_error(analytic[k], numeric_grad(loss, p))
    return errs


def away_from_zero(rng, shape):
    """Inputs at least 0.1 away from the kink of ReLU/LeakyReLU."""
    r = rng.standard_normal(shape)
    return np.sign(r) * (0.1 + np.abs(r))


def random_params(layer, rng):
    for k in layer.params:
        layer.params[k][...] = rng.standard_normal(layer.params[k].shape) * 0.5 + (1 if k == "gamma" else 0)
    return layer


CASES = {
    "conv_k4s2p1": (lambda: nn.Conv2d(3, 4, 4, 2, 1), (2, 3, 8, 8)),
    "conv_k3s1p1_nobias": (lambda: nn.Conv2d(2, 3, 3, 1, 1, bias=False), (2, 2, 5, 5)),
    "conv_k4s2p0_odd": (lambda: nn.Conv2d(2, 2, 4, 2, 0), (1, 2, 9, 7)),
    "convT_k4s1p0": (lambda: nn.ConvTranspose2d(5, 3, 4, 1, 0), (2, 5, 1, 1)),
    "convT_k4s2p1": (lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 4, 4)),
    "convT_k3s2p1": (lambda: nn.ConvTranspose2d(2, 3, 3, 2, 1), (2, 2, 3, 5)),
    "linear": (lambda: nn.Linear(12, 5), (3, 12)),
    "linear_flatten": (lambda: nn.Linear(2 * 3 * 3, 4), (3, 2, 3, 3)),
    "batchnorm_train": (lambda: nn.BatchNorm2d(3), (4, 3, 3, 3)),
    "minibatch_std": (lambda: nn.MinibatchStd(), (5, 3, 2, 3)),
    "relu": (lambda: nn.ReLU(), (2, 3, 4, 4)),
    "leakyrelu": (lambda: nn.LeakyReLU(0.2), (2, 3, 4, 4)),
    "tanh": (lambda: nn.Tanh(), (2, 3, 4, 4)),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_gradients(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    make, shape = CASES[name]
    layer = random_params(to64(make()), rng)
    x = away_from_zero(rng, shape)
    errs = check_layer(layer, x, rng)
    assert errs, "nothing was checked"
    assert "x" in errs
    assert max(errs.values()) < BOUND, errs


def test_batchnorm_eval_gradients():
    rng = np.random.default_rng(5)
    bn = random_params(to64(nn.BatchNorm2d(3)), rng)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2, 3)
    bn.train = False
    errs = check_layer(bn, rng.standard_normal((2, 3, 3, 3)), rng)
    assert max(errs.values()) < BOUND, errs


def test_bce_with_logits_gradient():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 1)) * 3
    for target in (0.0, 1.0):
        _, g = nn.bce_with_logits(x, target)
        num = numeric_grad(lambda: nn.bce_with_logits(x, target)[0], x)
        assert rel_error(g, num) < BOUND


def test_bce_with_logits_is_stable():
    x = np.array([[-1e4], [1e4], [0.0]], np.float32)
    loss, g = nn.bce_with_logits(x, 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert loss == pytest.approx((1e4 + 0 + np.log(2)) / 3, rel=1e-6)


def test_models_end_to_end_gradients():
    """Whole tiny Generator and Discriminator: parameter and input gradients."""
    rng = np.random.default_rng(2)
    g = Generator([3, 4, 3, 2, 1], rng)
    for layer in g.net.layers:
        random_params(to64(layer), rng)  # O(1) weights: activations far from ReLU's kink
    z = rng.standard_normal((2, 3))
    y = g.forward(z)
    r = rng.standard_normal(y.shape)
    g.backward(r)
    analytic = {k: layer.grads[kk].copy() for k, layer, kk in g.net.named_params()}
    for k, layer, kk in g.net.named_params():
        num = numeric_grad(lambda: float(np.sum(g.forward(z) * r)), layer.params[kk])
        assert rel_error(analytic[k], num) < BOUND, k

    for mbstd in (False, True):     # with the minibatch standard deviation before the Linear layer too
        d = Discriminator(2, [2, 3], size=8, rng=rng, mbstd=mbstd)
        assert any(isinstance(layer, nn.MinibatchStd) for layer in d.net.layers) == mbstd
        for layer in d.net.layers:
            to64(layer)
        x = rng.standard_normal((3, 2, 8, 8))
        out = d.forward(x, need_dx=True)
        r = rng.standard_normal(out.shape)
        dx = d.backward(r)
        assert rel_error(dx, numeric_grad(lambda: float(np.sum(d.forward(x, True) * r)), x)) < BOUND
        analytic = {k: layer.grads[kk].copy() for k, layer, kk in d.net.named_params()}
        for k, layer, kk in d.net.named_params():
            num = numeric_grad(lambda: float(np.sum(d.forward(x, True) * r)), layer.params[kk])
            assert rel_error(analytic[k], num) < BOUND, k


class _WrongTanh(nn.Tanh):
    """Tanh with a plausible but wrong derivative (1 − y instead of 1 − y²)."""

    def backward(self, dout):
        return dout * (1 - self.y)


class _WrongConvT(nn.ConvTranspose2d):
    """ConvTranspose2d whose weight gradient has the kernel flipped."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["w"] = self.grads["w"][:, :, ::-1, ::-1].copy()
        return dx


def test_checker_fails_on_wrong_gradients():
    rng = np.random.default_rng(3)
    errs = check_layer(_WrongTanh(), rng.standard_normal((2, 3, 2, 2)), rng)
    assert errs["x"] > 100 * BOUND
    layer = random_params(to64(_WrongConvT(2, 3, 4, 2, 1)), rng)
    errs = check_layer(layer, rng.standard_normal((2, 2, 3, 3)), rng)
    assert errs["w"] > 100 * BOUND
    assert errs["x"] < BOUND  # the untouched parts still pass


@pytest.mark.parametrize("cls,k,s,p,hw", [(nn.Conv2d, 4, 2, 1, 8), (nn.ConvTranspose2d, 4, 2, 1, 4),
                                           (nn.ConvTranspose2d, 3, 2, 1, 5), (nn.Conv2d, 3, 1, 1, 6)])
def test_threaded_blocks_give_identical_results(monkeypatch, cls, k, s, p, hw):
    """im2col/col2im and the products split over channel blocks in threads (matmul_col2im in blocks
    of the fewest channels, so that there are several) must equal the one-thread result bit for bit."""
    from golden import threads

    rng = np.random.default_rng(9)
    layer = random_params(cls(9, 10, k, s, p), rng)
    x = rng.standard_normal((7, 9, hw, hw)).astype(np.float32)
    monkeypatch.setattr(nn, "BLOCK_FLOATS", 1)
    results, calls = [], []
    real = nn.parallel_blocks
    monkeypatch.setattr(nn, "parallel_blocks", lambda fn, n, size: (calls.append(n), real(fn, n, size)))
    before = threads.get_threads()
    try:
        for count, minimum in ((1, 1 << 30), (3, 0)):
            threads.set_threads(count)
            monkeypatch.setattr(nn, "PARALLEL_MIN_ELEMENTS", minimum)
            y = layer.forward(x)
            dx = layer.backward(np.ones_like(y) * y)
            results.append((y, dx, layer.grads["w"].copy()))
    finally:
        threads.set_threads(before)
    assert calls, "the layer no longer splits its copies; this test checks nothing"
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
