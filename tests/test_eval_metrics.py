"""SWD on Laplacian pyramids, memorisation and collapse metrics (golden/metrics.py)."""

import numpy as np
import pytest

from eval_synth import blur, synthetic_avatars
from golden import metrics as M


@pytest.fixture(scope="module")
def real():
    """Two disjoint "real" sets drawn from one distribution."""
    x = synthetic_avatars(192, seed=7)
    return x[:96], x[96:]


def test_kernel_and_pyramid_reconstruct():
    assert M.KERNEL_1D.sum() == pytest.approx(1.0)
    x = np.random.default_rng(0).uniform(0, 255, (3, 3, 32, 32))
    levels = M.laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [32, 16]
    np.testing.assert_allclose(levels[0] + M.upsample(levels[1]), x, atol=1e-9)
    levels8 = M.laplacian_pyramid(x, min_res=8)
    assert [lv.shape[-1] for lv in levels8] == [32, 16, 8]
    np.testing.assert_allclose(levels8[0] + M.upsample(levels8[1] + M.upsample(levels8[2])), x, atol=1e-9)
    const = np.full((1, 1, 16, 16), 42.0)
    np.testing.assert_allclose(M.downsample(const), 42.0)
    np.testing.assert_allclose(M.upsample(const), 42.0)


def test_patches_are_the_image_pixels():
    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 16, 16))
    d = M._descriptors(x, (0, 0, 1), 5)
    assert d.shape == (10, 3, 7, 7)
    # every descriptor is some 7x7 window of its own image
    for i, desc in enumerate(d):
        img = x[i // 5]
        hits = [(y, xx) for y in range(10) for xx in range(10) if np.array_equal(img[:, y:y + 7, xx:xx + 7], desc)]
        assert hits
    sub = M._descriptors(x, (0, 0, 1), 5, keep=4, keep_seed=(9,))
    assert sub.shape == (4, 3, 7, 7)
    assert all(any(np.array_equal(s, f) for f in d) for s in sub)  # a subset of the same patches


def test_swd_of_a_set_with_itself_is_zero(real):
    r = M.swd(real[0], real[0])
    assert r.levels == [32, 16]
    assert len(r.per_level) == 2
    assert r.avg == pytest.approx(0.0, abs=1e-9)


def test_swd_layouts_symmetry_and_seed(real):
    a, b = real
    ab = M.swd(a, b, seed=3)
    assert ab.avg > 0
    assert M.swd(b, a, seed=3).avg == pytest.approx(ab.avg, rel=1e-6)
    assert M.swd(a.transpose(0, 3, 1, 2), b, seed=3).avg == pytest.approx(ab.avg, rel=1e-9)
    assert M.swd(a, b, seed=3).per_level == ab.per_level  # deterministic
    other = M.swd(a, b, seed=4).avg
    assert other != ab.avg and other == pytest.approx(ab.avg, rel=0.5)


def test_swd_detects_blur_and_colour_shift(real):
    a, b = real
    floor = M.swd(a, b).avg
    blurred = M.swd(a, blur(b))
    shifted = M.swd(a, np.clip(b.astype(int) + 25, 0, 255).astype(np.uint8))
    assert blurred.avg > 3 * floor
    assert blurred.per_level[0] > 3 * M.swd(a, b).per_level[0]  # blur lives in the fine band
    assert shifted.avg > 3 * floor
    assert shifted.per_level[1] > 3 * M.swd(a, b).per_level[1]  # a colour shift in the low-pass


def test_swd_unequal_counts_and_level8(real):
    a, b = real
    r = M.swd(a[:40], b)
    assert np.isfinite(r.avg) and r.avg > 0
    r8 = M.swd(a, b, min_res=8)
    assert r8.levels == [32, 16, 8] and len(r8.per_level) == 3
    with pytest.raises(ValueError):
        M.swd(a[:0], b)


def test_nearest_distances_match_brute_force(real):
    a, b = real[0][:12], real[1][:9]
    got = M.nearest_distances(a, b, chunk=5)
    fa, fb = a.reshape(12, -1) / 255.0, b.reshape(9, -1) / 255.0
    want = [min(np.linalg.norm(p - q) for q in fb) for p in fa]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    own = M.nearest_distances(b, b, exclude_self=True)
    want_own = [min(np.linalg.norm(fb[i] - fb[j]) for j in range(9) if j != i) for i in range(9)]
    np.testing.assert_allclose(own, want_own, rtol=1e-9, atol=1e-9)


def test_memorisation_flags_copies_not_new_samples(real):
    train, fresh = real
    copies = M.memorisation(train[:30], train)
    assert copies.share == 1.0 and copies.count == 30
    assert np.all(copies.sample_nn == 0.0)
    new = M.memorisation(fresh, train)
    assert new.share < 0.2
    mixed = M.memorisation(np.concatenate([train[:10], fresh[:30]]), train)
    assert 10 <= mixed.count <= 16
    # a training set holding a duplicate has threshold 0: exact copies are still flagged
    dup_train = np.concatenate([train, train[:10]])
    m = M.memorisation(train[40:45], dup_train)
    assert m.threshold == 0.0 and m.share == 1.0
    assert "5th percentile" in m.as_dict()["rule"]


def test_collapse_ratio(real):
    a, b = real
    assert M.diversity_ratio(np.repeat(a[:1], 50, axis=0), b) == 0.0
    assert M.diversity_ratio(a, b) == pytest.approx(1.0, abs=0.1)
    few = np.repeat(a[:3], 20, axis=0)  # collapse to three faces
    assert M.diversity_ratio(few, b) < 0.85
    x = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    f = x.reshape(7, -1) / 255.0
    want = np.mean([np.linalg.norm(f[i] - f[j]) for i in range(7) for j in range(7) if i != j])
    assert M.mean_pairwise_distance(x, chunk=3) == pytest.approx(want, rel=1e-9)



def test_swd_normalisation_union_sees_a_colour_shift_each_does_not(real):
    a, b = real
    shifted = np.clip(b.astype(int) + 25, 0, 255).astype(np.uint8)
    union = M.swd(a, shifted, seed=1, patches=32, directions=128)
    each = M.swd(a, shifted, seed=1, patches=32, directions=128, normalise="each")
    plain = M.swd(a, b, seed=1, patches=32, directions=128, normalise="each")
    assert union.per_level[1] > 3 * each.per_level[1]  # the low-pass shift is what "each" removes
    assert each.per_level[1] < 1.5 * plain.per_level[1]  # ... leaving about the unshifted distance
    assert M.swd(a, a, normalise="each").avg == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        M.swd(a, b, normalise="per-image")
