"""DiffAugment: what each transformation does, and its exact backward pass (float64 gradient check)."""

import numpy as np
import pytest

from golden.augment import DiffAugment
from test_nn_gradcheck import BOUND, rel_error


def _draw(policy, x, seed=0):
    aug = DiffAugment(policy)
    return aug, aug.forward(x, np.random.default_rng(seed))


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("channels", [1, 3])
def test_backward_is_the_exact_gradient(policy, channels):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, channels, 32, 32))
    aug, y = _draw(policy, x)
    r = rng.standard_normal(y.shape)
    dx = aug.backward(r)

    def loss():  # replay the same random draws
        return float(np.sum(DiffAugment(policy).forward(x, np.random.default_rng(0)) * r))

    # central differences at 300 random elements (all 3·C·32·32 would be slow on 2 cores)
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, 300, replace=False)
    num = np.empty(idx.size)
    for t, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + 1e-5
        lp = loss()
        flat[i] = old - 1e-5
        num[t] = (lp - loss()) / 2e-5
        flat[i] = old
    assert rel_error(dx.reshape(-1)[idx], num) < BOUND


def test_translation_shifts_with_zero_fill():
    x = np.arange(2 * 1 * 32 * 32, dtype=np.float64).reshape(2, 1, 32, 32) + 1
    aug, y = _draw("translation", x, seed=3)
    _, ty, tx, pad = aug.steps[0]
    assert pad == 4 and np.all(np.abs(ty) <= 4) and np.all(np.abs(tx) <= 4)
    for n in range(2):
        for i in range(32):
            for j in range(32):
                si, sj = i + ty[n], j + tx[n]
                want = x[n, 0, si, sj] if 0 <= si < 32 and 0 <= sj < 32 else 0
                assert y[n, 0, i, j] == want


def test_cutout_zeroes_one_square_of_half_side():
    x = np.ones((16, 3, 32, 32))
    aug, y = _draw("cutout", x, seed=1)
    for img in y:
        zero = img[0] == 0
        assert np.all(zero == (img == 0).all(axis=0))  # same square in every channel
        rows, cols = np.nonzero(zero)
        assert 0 < zero.sum() <= 256
        assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert rows.max() - rows.min() < 16 and cols.max() - cols.min() < 16
    assert np.mean([(img[0] == 0).sum() for img in y]) > 120


def test_color_changes_brightness_saturation_contrast_per_image():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (8, 3, 32, 32))
    aug, y = _draw("color", x)
    assert y.shape == x.shape and not np.allclose(y, x)
    # on a one-channel plane saturation is the identity: y = m + k (x + b − m)
    p = x[:, :1]
    aug, y1 = _draw("color", p)
    _, drawn_b, s, k = aug.steps[0]
    b = np.random.default_rng(0).random(8)[:, None, None, None] - 0.5
    np.testing.assert_array_equal(drawn_b, b)
    xb = p + b
    m = xb.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(y1, m + k * (xb - m), rtol=1e-12, atol=1e-12)


def test_identity_and_bad_policy():
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    aug, y = _draw("", x)
    assert y is x and aug.backward(x) is x
    with pytest.raises(ValueError):
        DiffAugment("rotate")


def test_blocks_of_samples_in_threads_give_identical_results(monkeypatch):
    """Forward and backward split over blocks of images (3 threads) equal one block bit for bit."""
    from golden import nn, threads

    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 3, 32, 32)).astype(np.float32)
    r = rng.standard_normal(x.shape).astype(np.float32)
    out, calls = [], []
    real = nn.parallel_blocks
    monkeypatch.setattr("golden.augment.parallel_blocks", lambda fn, n, size: (calls.append(n), real(fn, n, size)))
    before = threads.get_threads()
    try:
        for count, minimum in ((1, 1 << 30), (3, 0)):
            threads.set_threads(count)
            monkeypatch.setattr(nn, "PARALLEL_MIN_ELEMENTS", minimum)
            aug, y = _draw("color,translation,cutout", x, seed=3)
            out.append((y, aug.backward(r)))
    finally:
        threads.set_threads(before)
    assert calls == [7, 7, 7, 7]
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_wrong_translation_gradient_is_caught():
    """Shifting the gradient the same way as the image (instead of back) must fail the check."""
    from golden.augment import _shift

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 1, 32, 32))
    aug, y = _draw("translation", x, seed=5)
    _, ty, tx, pad = aug.steps[0]
    assert np.any(ty != 0) or np.any(tx != 0)
    r = rng.standard_normal(y.shape)
    right, wrong = aug.backward(r), _shift(r, ty, tx, pad)
    # exact gradient of sum(y * r) by linearity: y is a 0/1 selection of x
    exact = np.zeros_like(x).reshape(-1)
    probe = np.arange(x.size, dtype=np.float64).reshape(x.shape) + 1
    sel = DiffAugment("translation").forward(probe, np.random.default_rng(5))
    hit = sel > 0
    np.add.at(exact, (sel[hit] - 1).astype(int), r[hit])
    assert rel_error(right, exact.reshape(x.shape)) < BOUND
    assert rel_error(wrong, exact.reshape(x.shape)) > 100 * BOUND


def test_draw_then_apply_is_forward_and_checks_the_shape():
    """A training step draws every augmentation first and applies them later (in the
    discriminators' tasks): draw + apply must be forward, and an augmentation drawn for one batch
    shape refuses another."""
    x = np.random.default_rng(5).standard_normal((6, 3, 32, 32)).astype(np.float32)
    policy = "color,translation,cutout"
    _, y = _draw(policy, x, seed=4)
    rng = np.random.default_rng(4)
    aug = DiffAugment(policy).draw(x.shape, x.dtype, rng)
    assert np.array_equal(aug.apply(x), y)
    after_forward = np.random.default_rng(4)
    DiffAugment(policy).forward(x, after_forward)
    assert rng.random() == after_forward.random()        # draw takes as many numbers as forward
    with pytest.raises(ValueError, match="drawn for shape"):
        aug.apply(x[:5])
