"""Weight codebooks (golden/codebook.py): exact 1-D clustering, and the bench's block-RAM arithmetic."""

import itertools

import numpy as np
import pytest

from golden.codebook import optimal_codebook, restrict_codes, restricted_model
from golden.random_models import random_qmodel


def _brute_force_sse(codes, k):
    """The k-means optimum: smallest squared error around (real) group means over every split of the
    sorted distinct codes into k contiguous groups (1-D optimal clusters are contiguous)."""
    vals = np.unique(codes)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(vals)), k - 1):
        err = 0.0
        for grp in np.split(vals, cuts):
            members = codes[np.isin(codes, grp)]
            err += float(((members - members.mean()) ** 2).sum())
        best = min(best, err)
    return best


def _sse(codes, book):
    return float(((codes - book[np.abs(codes[:, None] - book).argmin(1)]) ** 2).sum())


@pytest.mark.parametrize("seed", range(6))
def test_codebook_is_optimal_against_brute_force(seed):
    """No k codes do better than the real-valued optimum; the DP's integer codes lose at most the
    rounding of each mean (≤ 1/4 per weight)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-20, 20, size=60)
    book = optimal_codebook(codes, 3)
    opt = _brute_force_sse(codes, 3)
    assert len(book) == 3 and opt - 1e-9 <= _sse(codes, book) <= opt + len(codes) / 4
    # A checker that can fail: a poor codebook (evenly spaced) is measurably worse.
    assert _sse(codes, np.array([-15, 0, 15])) > _sse(codes, book) or opt < 1


def test_codebook_small_cases():
    assert list(optimal_codebook([5, 5, -3], 4)) == [-3, 5]            # fewer values than k: unchanged
    assert list(optimal_codebook([0, 2, 100, 102], 2)) == [1, 101]
    assert list(optimal_codebook([0, 0, 0, 10, 10, 10, 11], 2)) == [0, 10]
    with pytest.raises(ValueError):
        optimal_codebook([1, 2], 0)
    with pytest.raises(ValueError):
        optimal_codebook([], 2)


def test_restricted_model_uses_at_most_2_to_the_bits_codes():
    qm = random_qmodel((8, 16, 8, 4, 1), seed=1, n_calib=4)
    q4 = restricted_model(qm, 2)
    for l in range(1, 5):
        assert len(np.unique(q4.w[l])) <= 4 and q4.w[l].dtype == qm.w[l].dtype
        assert len(np.unique(qm.w[l])) > 4                     # the original had more: a real change
    q1 = restricted_model(qm, 2, [1])
    assert np.array_equal(q1.w[2], qm.w[2]) and len(np.unique(q1.w[1])) <= 4
    w = restrict_codes(np.array([[-7, -6, 9, 10]], dtype=np.int8), 1)
    assert w.dtype == np.int8 and len(np.unique(w)) == 2


def test_bench_rams_arithmetic():
    from avatargan.bench_codebook import _rams

    # 2 900 words of 128 lanes × 8 bits: 3 banks of 1024 words × 57 RAMs (1 024 / 18 bits).
    assert _rams(2900, 128, 8) == 3 * 57
    assert _rams(2900, 128, 5) == 3 * 36 and _rams(1024, 64, 8) == 29


# ----------------------------------------------------------------------------- distillation

def _tiny_teacher():
    from golden.models import Generator

    g = Generator([8, 16, 8, 4, 1], rng=np.random.default_rng(3))
    for name, a in g.params.items():        # DCGAN's init (std 0.02) draws flat planes: widen it
        a *= 12 if name.startswith("w") else 1
    return g


def _fit_mse(a, b, seed=9):
    u = np.random.default_rng(seed).standard_normal((64, a.nz)).astype(np.float32)
    return float(np.mean((a.plane(u) - b.plane(u)) ** 2))


def test_distill_keeps_at_most_2_to_the_bits_values_and_fits_better_than_projection():
    from golden.codebook import distill
    from golden.quantize import weight_frac

    teacher = _tiny_teacher()
    projected = distill(teacher, 2, iterations=0)                 # the codebook projection alone
    tuned = distill(teacher, 2, iterations=150, lr=2e-3, batch=32)
    for s in (projected, tuned):
        for l in range(1, 5):
            w = s.params[f"w{l}"]
            codes = w.astype(np.float64) * 2.0 ** weight_frac(teacher.params[f"w{l}"])
            assert len(np.unique(w)) <= 4 and np.array_equal(codes, np.rint(codes))   # on the S(8) grid
    assert _fit_mse(tuned, teacher) < 0.9 * _fit_mse(projected, teacher)       # measured: 0.80
    assert np.array_equal(teacher.v, tuned.v)
    with pytest.raises(ValueError):
        distill(teacher, 8)


def test_quantize_command_codebook_bits(tmp_path, capsys):
    from avatargan import cli
    from golden.checkpoint import generator_arrays, save_checkpoint
    from golden.qmodel import load_qmodel
    from rtl.config import plan_engine

    ck = tmp_path / "ck.npz"
    teacher = _tiny_teacher()
    save_checkpoint(ck, generator_arrays(teacher), {"iteration": 5, "channels": teacher.channels, "preset": "test"})
    out = tmp_path / "q.npz"
    assert cli.main(["quantize", str(ck), "-o", str(out), "--calib", "10", "--codebook-bits", "3",
                     "--finetune-iters", "20"]) == 0
    qm = load_qmodel(out)
    assert all(len(np.unique(qm.w[l])) <= 8 for l in range(1, 5))
    assert plan_engine(qm, 16).w_bits == 3
    assert (tmp_path / "q.float.npz").is_file()
    assert "3-bit indices" in capsys.readouterr().out
    for bad in (["--codebook-bits", "8"], ["--save-float", str(tmp_path / "f.npz")],
                ["--codebook-bits", "3", "--weight-rule", "mse"]):
        assert cli.main(["quantize", str(ck), "-o", str(tmp_path / "x.npz"), *bad]) == 2
    assert not (tmp_path / "x.npz").exists()
