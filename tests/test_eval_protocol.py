"""The evaluation protocol (golden/evalproto.py): Student t, intervals, resampling, coverage, comparisons.

Every verdict is checked on constructed cases whose answer is known: a set against itself (no
difference), fresh draws of the same distribution (no difference), a blurred, a shifted and a
motif-repeating copy (difference found).
"""

import math
import statistics

import numpy as np
import pytest

from eval_synth import blur, synthetic_avatars
from golden import metrics as M
from golden.evalproto import (Row, compare, mean_interval, ratio_interval, run_protocol, split_indices, t_cdf,
                              t_quantile)

# Small but honest settings: 40 avatars per set, 32 patches per image, 128 directions.
N, REPEATS, KW = 40, 6, {"patches": 32, "directions": 128}


# --------------------------------------------------------------------------- Student t


@pytest.mark.parametrize("df, table", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262),
                                       (19, 2.093), (30, 2.042), (120, 1.980)])
def test_t_quantile_matches_the_printed_table(df, table):
    # two-sided 95 % critical values as printed in any t table (3 decimals)
    assert abs(t_quantile(0.975, df) - table) <= 5e-4
    assert t_quantile(0.025, df) == -t_quantile(0.975, df)


def test_t_cdf_closed_forms_and_limits():
    for t in (-3.0, -0.4, 0.0, 0.7, 2.5, 40.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)  # Cauchy
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
    # large df tends to the normal: Phi(1.96) = 0.9750021
    assert t_cdf(1.959964, 4000) == pytest.approx(0.975, abs=2e-4)
    # t(3) CDF at 1 has the closed form 1/2 + (1/pi)[atan(1/sqrt3) + sqrt3/4]
    assert t_cdf(1.0, 3) == pytest.approx(0.5 + (math.atan(1 / math.sqrt(3)) + math.sqrt(3) / 4) / math.pi, abs=1e-13)
    with pytest.raises(ValueError):
        t_cdf(1.0, 0)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)


def test_mean_interval_by_hand():
    v = [1.0, 2.0, 3.0, 4.0, 5.0]
    iv = mean_interval(v)
    half = 2.776 * statistics.stdev(v) / math.sqrt(5)  # t(0.975, 4) from the table
    assert iv.mean == 3.0 and iv.min == 1.0 and iv.max == 5.0 and iv.n == 5
    assert iv.low == pytest.approx(3.0 - half, abs=1e-3) and iv.high == pytest.approx(3.0 + half, abs=1e-3)
    assert not iv.excludes(3.0) and iv.excludes(0.9) and iv.excludes(5.1)
    same = mean_interval([2.5, 2.5, 2.5])
    assert (same.low, same.high) == (2.5, 2.5) and not same.excludes(2.5) and same.excludes(2.5001)
    with pytest.raises(ValueError):
        mean_interval([1.0])
    with pytest.raises(ValueError):
        mean_interval([1.0, float("nan")])


def test_split_indices():
    splits = split_indices(100, 30, 4, seed=5)
    assert len(splits) == 4
    for ref, floor in splits:
        assert len(ref) == len(floor) == 30 and len(set(ref)) == 30
        assert not set(ref) & set(floor) and max(ref.max(), floor.max()) < 100
    assert not np.array_equal(splits[0][0], splits[1][0])  # each repetition resamples
    again = split_indices(100, 30, 2, seed=5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, splits))  # r depends on (seed, r) only
    assert not np.array_equal(split_indices(100, 30, 1, seed=6)[0][0], splits[0][0])
    with pytest.raises(ValueError):
        split_indices(59, 30, 1, seed=0)


# --------------------------------------------------------------------------- coverage


def _line(values):
    """Avatars whose only non-zero pixel is the first: distances are |a - b| / 255."""
    x = np.zeros((len(values), 32, 32, 3), np.uint8)
    x[:, 0, 0, 0] = values
    return x


def test_coverage_by_hand():
    real = _line([0, 10, 20, 30, 40, 50, 60])
    samples = _line([0, 44])
    # nearest sample of each real avatar: 0, 10, 20, 14, 4, 6, 16 (distances are exact: integer pixels)
    # k = 1: every radius is 10; covered (<=): 0, 10, 40, 50
    assert M.coverage(samples, real, k=1) == 4 / 7
    # k = 2: radii 20, 10, 10, 10, 10, 10, 20; covered: 0, 10, 40, 50 and 60 (16 <= 20)
    assert M.coverage(samples, real, k=2) == 5 / 7
    assert M.coverage(real, real) == 1.0
    with pytest.raises(ValueError):
        M.coverage(samples, real[:5], k=5)


# --------------------------------------------------------------------------- the protocol


@pytest.fixture(scope="module")
def pool():
    return synthetic_avatars(10 * N, seed=21)  # large beside the sets: little of its own idiosyncrasy is shared


def fresh(seed0):
    """A candidate that draws N new avatars of the real distribution in each repetition."""
    return lambda r: synthetic_avatars(N, seed=seed0 + r)


def shift(x, dy=3, dx=3):
    """Move the picture down and right by (dy, dx) pixels, the edge rows repeated."""
    p = np.pad(x, ((0, 0), (dy, 0), (dx, 0), (0, 0)), mode="edge")
    return p[:, : x.shape[1], : x.shape[2]]


def test_protocol_rows_are_paired_and_deterministic(pool):
    res = run_protocol(pool, {"A": fresh(1000)}, N, 3, seed=0, **KW)
    assert [r.name for r in res.rows] == ["floor", "A"] and res.rows[0].kind == "floor"
    assert res.floor.per_rep.shape == (3, 2) and res.floor.stats["coverage"].shape == (3,)
    # repetition r is SWD(set_r, reference_r) with the repetition's own SWD seed: recompute one
    from golden.evalproto import swd_seed

    ref_i, floor_i = split_indices(len(pool), N, 3, 0)[1]
    want = M.swd(pool[floor_i], pool[ref_i], seed=swd_seed(0, 1), **KW).per_level
    assert res.floor.per_rep[1].tolist() == want
    assert res.floor.stats["coverage"][1] == M.coverage(pool[floor_i], pool[ref_i])
    assert res.floor.stats["repeat_share"][1] == M.repeat_share(pool[floor_i], pool[ref_i])
    again = run_protocol(pool, {"A": fresh(1000)}, N, 3, seed=0, **KW)
    np.testing.assert_array_equal(again.row("A").per_rep, res.row("A").per_rep)
    with pytest.raises(ValueError):
        run_protocol(pool, {"A": lambda r: synthetic_avatars(N - 1, seed=r)}, N, 2, seed=0, **KW)
    with pytest.raises(ValueError):
        run_protocol(pool, {}, N, 1, seed=0, **KW)


def test_a_set_against_itself_and_against_its_own_distribution(pool):
    draws = fresh(2000)
    res = run_protocol(pool, {"A": draws, "A again": draws, "B": fresh(3000)}, N, REPEATS, seed=1, **KW)
    same = compare(res.row("A"), res.row("A again"))
    assert same.diff.mean == 0.0 and not same.differ and "no difference" in same.verdict
    assert all(d.mean == 0.0 and not d.excludes(0.0) for d in same.stat_diffs.values())
    other = compare(res.row("A"), res.row("B"))  # two independent draws of one distribution
    assert not other.differ
    to_floor = res.over_floor(res.row("A"))  # as good as real avatars: the ratio interval holds 1
    assert to_floor.low <= 1.0 <= to_floor.high
    assert not any(d.excludes(0.0) for d in compare(res.row("A"), res.floor).stat_diffs.values())


@pytest.mark.parametrize("damage, name", [(blur, "blurred"), (shift, "shifted")])
def test_a_damaged_copy_is_found_worse(pool, damage, name):
    draws = fresh(4000)
    res = run_protocol(pool, {"A": draws, name: lambda r: damage(draws(r))}, N, REPEATS, seed=2, **KW)
    c = compare(res.row("A"), res.row(name))
    assert c.differ and c.diff.high < 0 and c.verdict == "A lower (better)"
    if name == "blurred":  # strong enough to show against the (noisier, unpaired) real floor too
        assert compare(res.row(name), res.floor).differ
        assert res.over_floor(res.row(name)).low > 1.0
    # the same comparison the other way round names the other winner
    assert compare(res.row(name), res.row("A")).verdict == "A lower (better)"


def test_motif_repetition_raises_the_repeat_share(pool):
    def motif(r):  # one avatar in six shows one motif, slightly varied (the issue: ~10 of 64 samples)
        x = synthetic_avatars(N, seed=5000 + r)
        noise = np.random.default_rng(r).integers(-3, 4, (N // 6, 32, 32, 3))
        x[::6][: N // 6] = np.clip(x[0].astype(int) + noise, 0, 255).astype(np.uint8)
        return x

    res = run_protocol(pool, {"fresh": fresh(5000), "motif": motif}, N, REPEATS, seed=3, **KW)
    c = compare(res.row("motif"), res.row("fresh"))
    assert c.stat_diffs["repeat_share"].low > 0  # higher than fresh draws beyond the interval
    assert res.row("motif").stats["repeat_share"].min() >= (N // 6) / N  # every repetition finds every copy
    fresh_vs_floor = compare(res.row("fresh"), res.floor).stat_diffs["repeat_share"]
    assert not fresh_vs_floor.excludes(0.0)


def test_repeat_share_by_hand():
    real = _line([0, 10, 20, 30, 40, 50, 60])  # nearest-other distances all 10: threshold 10
    assert M.repeat_share(_line([0, 5, 100, 200]), real) == 0.5  # 0 and 5 are 5 apart, 100 and 200 are not
    assert M.repeat_share(_line([0, 10, 21, 40]), real) == 0.5  # 0 and 10 at exactly 10 count (<=)
    assert M.repeat_share(_line([0, 30, 60, 90]), real) == 0.0
    with pytest.raises(ValueError):
        M.repeat_share(_line([0]), real)


def test_compare_refuses_rows_of_different_protocols():
    a = Row("a", "model", [32, 16], np.ones((3, 2)), {"coverage": np.ones(3)})
    b = Row("b", "model", [32, 16], np.ones((4, 2)), {"coverage": np.ones(4)})
    with pytest.raises(ValueError):
        compare(a, b)


def test_ratio_interval_is_fiellers():
    rng = np.random.default_rng(0)
    b = 20 + rng.normal(0, 3, 12)
    exact = ratio_interval(2.0 * b, b)  # a = 2b in every repetition: the ratio is known exactly
    assert exact.mean == pytest.approx(2.0, rel=1e-12)
    assert exact.low == pytest.approx(2.0, rel=1e-9) and exact.high == pytest.approx(2.0, rel=1e-9)
    a = 1.5 * b + rng.normal(0, 2, 12)
    iv = ratio_interval(a, b)
    assert iv.mean == pytest.approx(a.mean() / b.mean(), rel=1e-12) and iv.low < iv.mean < iv.high
    # at each end the paired t-interval of a - rho*b just touches 0 (the defining property)
    lo, hi = mean_interval(a - iv.low * b), mean_interval(a - iv.high * b)
    assert abs(lo.low) < 1e-9 or abs(lo.high) < 1e-9
    assert abs(hi.low) < 1e-9 or abs(hi.high) < 1e-9
    inside = mean_interval(a - iv.mean * b)
    assert inside.low < 0 < inside.high
    outside = mean_interval(a - (iv.high + 0.01) * b)
    assert outside.excludes(0.0)
    # a denominator whose mean is not clear of 0: no bounded interval
    wild = ratio_interval(a, rng.normal(0, 5, 12))
    assert wild.low == -math.inf and wild.high == math.inf
