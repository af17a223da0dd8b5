"""The integer golden model: hand-worked cases, decomposition == direct definition, determinism."""

import numpy as np
import pytest

from golden.fixed import convt_grouped, convt_phase, fixed_layers, fixed_plane, fixed_rgb, pass_inputs, phase_taps, quantize_z
from golden.fixed_direct import convt_direct, direct_plane, direct_rgb
from golden.qmodel import acc_bits, build_header, make_qmodel, tanh_table
from golden.random_models import random_qmodel


def _phase_int(x_nchw, w, stride, pad, out_size):
    """convt_phase on NCHW integers -> int64 NCHW (the golden model's path)."""
    s = convt_phase(np.asarray(x_nchw, dtype=np.float64).transpose(0, 2, 3, 1), np.asarray(w, dtype=np.float64),
                    stride, pad, out_size)
    return s.astype(np.int64).transpose(0, 3, 1, 2)


def test_phase_taps_as_in_numerics():
    # oy = 2m + py: py = 0 uses ky in {1, 3} (rows m, m-1); py = 1 uses ky in {0, 2} (rows m+1, m)
    assert phase_taps(2, 1) == [[(1, 0), (3, -1)], [(0, 1), (2, 0)]]
    # layer 1 (stride 1, pad 0, 1x1 input): output row ky reads input row m - ky
    assert phase_taps(1, 0) == [[(0, 0), (1, -1), (2, -2), (3, -3)]]


def test_one_channel_layer_by_hand():
    # One channel, stride 2, pad 1, 2x2 input x = [[1, 2], [3, 4]], kernel w[ky][kx] = 10*ky + kx.
    # oy = 2*iy - 1 + ky, so output row 0 gets (iy=0, ky=1); row 1 gets (0, 2) and (1, 0);
    # row 2 gets (0, 3) and (1, 1); row 3 gets (1, 2). Columns alike.
    #   out[0][0] = x00*w11                               = 11
    #   out[0][1] = x00*w12 + x01*w10 = 12 + 2*10         = 32
    #   out[0][3] = x01*w12           = 2*12              = 24
    #   out[1][1] = x00*w22 + x01*w20 + x10*w02 + x11*w00 = 22 + 40 + 6 + 0 = 68
    #   out[2][1] = x00*w32 + x01*w30 + x10*w12 + x11*w10 = 32 + 60 + 36 + 40 = 168
    #   out[3][0] = x10*w21           = 3*21              = 63
    #   out[3][3] = x11*w22           = 4*22              = 88
    x = np.array([[1, 2], [3, 4]]).reshape(1, 1, 2, 2)
    w = np.array([[10 * ky + kx for kx in range(4)] for ky in range(4)]).reshape(1, 1, 4, 4)
    for out in (_phase_int(x, w, 2, 1, 4), convt_direct(x, w, 2, 1, 4)):
        o = out[0, 0]
        assert (o[0, 0], o[0, 1], o[0, 3], o[1, 1], o[2, 1], o[3, 0], o[3, 3]) == (11, 32, 24, 68, 168, 63, 88)


def _one_channel_model(w_codes, b_codes):
    header = build_header([1, 1, 1, 1, 1], w_frac=[0, 0, 0, 0], a_frac=[11, 10, 9])
    arrays = {f"w{l}": np.full((1, 1, 4, 4), w_codes[l - 1], dtype=np.int8) for l in range(1, 5)}
    arrays.update({f"b{l}": np.array([b_codes[l - 1]], dtype=np.int64) for l in range(1, 5)})
    arrays["v"] = np.array([[0], [-7]], dtype=np.int16)
    arrays["tanh_lut"] = tanh_table()
    return make_qmodel(header, arrays)


def test_one_channel_model_by_hand():
    # channels 1-1-1-1-1, all weight fractions 0, Fa = 11, 10, 9: every shift is 1 (halve, round half up).
    # Weights: layer 1 all 2, layers 2-3 all 1, layer 4 all -1; biases 0, 1, 0, 300; z code 3.
    qm = _one_channel_model([2, 1, 1, -1], [0, 1, 0, 300])
    assert [qm.shift(l) for l in range(1, 5)] == [1, 1, 1, 1]
    lay = fixed_layers(qm, np.array([[3]]))
    # layer 1: one tap per output: acc = 3*2 = 6 everywhere; a1 = (6+1)>>1 = 3
    assert np.all(lay[0]["acc"] == 6) and np.all(lay[0]["out"] == 3)
    # layer 2 (4 -> 8): taps per output row: 1 at rows 0 and 7, else 2; acc = 3*ty*tx + 1
    #   corner 3+1 = 4 -> 2; edge 6+1 = 7 -> 4; inside 12+1 = 13 -> 7
    a2 = lay[1]["out"][0, 0]
    assert lay[1]["acc"][0, 0, 0, 0] == 4 and lay[1]["acc"][0, 0, 0, 3] == 7 and lay[1]["acc"][0, 0, 4, 4] == 13
    assert (a2[0, 0], a2[0, 1], a2[1, 0], a2[1, 1], a2[7, 7], a2[3, 5]) == (2, 4, 4, 7, 2, 7)
    # layer 3 (8 -> 16): out(0,0) = a2[0,0] = 2 -> 1; out(0,1) = a2[0,0] + a2[0,1] = 6 -> 3;
    #   out(1,1) = a2[0,0] + a2[0,1] + a2[1,0] + a2[1,1] = 17 -> 9
    a3 = lay[2]["out"][0, 0]
    assert (a3[0, 0], a3[0, 1], a3[1, 0], a3[1, 1]) == (1, 3, 3, 9)
    # layer 4: out(0,0) = -a3[0,0] + 300 = 299 -> t = 150 -> tanh(150/256) = 0.52697 -> floor(195.19) = 195
    #          out(1,1) = -(1 + 3 + 3 + 9) + 300 = 284 -> t = 142 -> tanh(0.5546875) = 0.50403 -> 192
    assert lay[3]["acc"][0, 0, 0, 0] == 299 and lay[3]["acc"][0, 0, 1, 1] == 284
    assert lay[3]["out"][0, 0, 0, 0] == 150 and lay[3]["out"][0, 0, 1, 1] == 142
    assert lay[3]["pixel"][0, 0, 0, 0] == 195 and lay[3]["pixel"][0, 0, 1, 1] == 192
    # with biases 0, 0, 0, 300 a negative z dies at the first ReLU: z = -4 -> acc -8 -> -4 -> 0;
    # all zeros downstream; layer 4 sees only its bias 300 -> t 150 -> 195 everywhere
    qm = _one_channel_model([2, 1, 1, -1], [0, 0, 0, 300])
    rgb = fixed_rgb(qm, np.array([[-4]]))
    assert np.all(rgb[0, 0] == 195)
    # the same model through the direct definition
    assert np.array_equal(rgb, direct_rgb(qm, np.array([[-4]])))


@pytest.mark.parametrize("stride,pad,n_in,n_out", [(1, 0, 1, 4), (2, 1, 4, 8), (2, 1, 8, 16), (2, 1, 16, 32),
                                                   (2, 1, 3, 6), (2, 1, 1, 2)])
def test_decomposition_equals_direct_definition(stride, pad, n_in, n_out):
    rng = np.random.default_rng(n_in * 7 + stride)
    ic, oc = 5, 3
    x = rng.integers(-(2 ** 15), 2 ** 16, size=(4, ic, n_in, n_in))
    w = rng.integers(-128, 128, size=(ic, oc, 4, 4))
    x[0] = 2 ** 16 - 1   # extremes: max input with max-magnitude weights
    w[0, 0] = -128
    direct = convt_direct(x, w, stride, pad, n_out)
    assert np.array_equal(_phase_int(x, w, stride, pad, n_out), direct)
    grouped = convt_grouped(x.astype(np.float64).transpose(0, 2, 3, 1), w.astype(np.float64), stride, pad, n_out)
    assert np.array_equal(grouped.astype(np.int64).transpose(0, 3, 1, 2), direct)


def test_region_groups_cover_each_valid_tap_once():
    from golden.fixed import region_groups
    for stride, pad, n_in, n_out in [(1, 0, 1, 4), (2, 1, 4, 8), (2, 1, 16, 32)]:
        pairs = []
        for (i0, i1, j0, j1), taps in region_groups(stride, pad, n_in, n_out):
            for py, px, m0, m1, n0, n1, ky, kx in taps:
                for m in range(m0, m1):
                    for n in range(n0, n1):
                        iy, ix = i0 + m - m0, j0 + n - n0
                        oy, ox = stride * m + py, stride * n + px
                        assert oy == iy * stride - pad + ky and ox == ix * stride - pad + kx
                        pairs.append((iy, ix, ky, kx))
        want = [(iy, ix, ky, kx) for iy in range(n_in) for ix in range(n_in) for ky in range(4) for kx in range(4)
                if 0 <= iy * stride - pad + ky < n_out and 0 <= ix * stride - pad + kx < n_out]
        assert sorted(pairs) == sorted(want)
    # 4 -> 8: 14 valid taps per dimension, 196 in 2-D (NUMERICS.md)
    assert sum(len(t) * (g[1] - g[0]) * (g[3] - g[2]) for g, t in region_groups(2, 1, 4, 8)) == 196


def test_max_magnitude_accumulators_exact_and_within_width():
    # All weights -128 and all inputs at the format limits: the largest |acc| of every layer kind.
    for l, ic, n_in, n_out, stride, pad, xval in [(1, 100, 1, 4, 1, 0, -(2 ** 15)), (2, 128, 4, 8, 2, 1, 2 ** 16 - 1),
                                                  (3, 64, 8, 16, 2, 1, 2 ** 16 - 1)]:
        x = np.full((1, ic, n_in, n_in), xval)
        w = np.full((ic, 2, 4, 4), -128)
        got = _phase_int(x, w, stride, pad, n_out)
        assert np.array_equal(got, convt_direct(x, w, stride, pad, n_out))
        fan = ic if l == 1 else 4 * ic
        assert int(np.abs(got).max()) == fan * abs(xval) * 128
        assert int(np.abs(got).max()) + 2 ** 31 < 2 ** (acc_bits(l, ic, l == 1) - 1)


@pytest.fixture(scope="module")
def tiny():
    return random_qmodel((8, 8, 4, 4, 1), seed=1, std=0.3, bias_std=0.05)


def test_golden_equals_direct_on_tiny_model(tiny):
    z, _ = quantize_z(np.random.default_rng(5).standard_normal((6, 8)) * 3)
    z[0] = 32767
    z[1] = -32768
    assert np.array_equal(fixed_rgb(tiny, z).astype(np.int64), direct_rgb(tiny, z))


def test_golden_equals_direct_on_default_size_model():
    qm = random_qmodel(seed=2, n_calib=16)
    z, _ = quantize_z(np.random.default_rng(6).standard_normal((2, 100)))
    assert np.array_equal(fixed_rgb(qm, z).astype(np.int64), direct_rgb(qm, z))


def test_layers_consistent_with_rgb(tiny):
    z, _ = quantize_z(np.random.default_rng(7).standard_normal((3, 8)))
    u = pass_inputs(tiny, z)
    lay = fixed_layers(tiny, u[:, 1])
    assert [d["acc"].shape for d in lay] == [(3, 8, 4, 4), (3, 4, 8, 8), (3, 4, 16, 16), (3, 1, 32, 32)]
    assert all(d["acc"].dtype == np.int64 and d["out"].dtype == np.int64 for d in lay)
    assert np.array_equal(lay[3]["pixel"][:, 0], fixed_rgb(tiny, z)[:, 1])
    for l in range(3):
        assert np.array_equal(lay[l + 1]["input"], lay[l]["out"])
    assert np.array_equal(direct_plane(tiny, u[:, 1]), lay[3]["pixel"][:, 0])


def test_deterministic_and_batch_independent(tiny):
    z, _ = quantize_z(np.random.default_rng(8).standard_normal((5, 8)))
    a = fixed_rgb(tiny, z)
    assert a.dtype == np.uint8 and a.shape == (5, 3, 32, 32)
    assert np.array_equal(a, fixed_rgb(tiny, z))
    assert np.array_equal(a, np.concatenate([fixed_rgb(tiny, z[i:i + 1]) for i in range(5)]))
    assert np.array_equal(fixed_plane(tiny, z), a[:, 0])
    assert np.array_equal(random_qmodel((8, 8, 4, 4, 1), seed=1, std=0.3, bias_std=0.05).w[2], tiny.w[2])


def test_comparison_catches_a_wrong_model(tiny):
    # the equality check used above must fail on a model with one weight code off by one
    z, _ = quantize_z(np.random.default_rng(9).standard_normal((4, 8)))
    wrong = make_qmodel(tiny.header, {**tiny.arrays()})
    lay = fixed_layers(tiny, z)
    # pick a layer-3 weight whose input channel is active, so the change must reach the output
    ic = int(np.argmax(lay[2]["input"].sum(axis=(0, 2, 3))))
    wrong.w[3][ic, 0, 1, 1] += 1 if wrong.w[3][ic, 0, 1, 1] < 127 else -1
    assert not np.array_equal(fixed_layers(wrong, z)[2]["acc"], lay[2]["acc"])
    # a layer-4 bias 40 Tanh-index steps off changes the pixels, and the RGB comparison says so
    wrong.b[4] += 40 << tiny.shift(4)
    assert not np.array_equal(direct_rgb(wrong, z), fixed_rgb(tiny, z).astype(np.int64))
    # and a wrong rounding rule (truncation instead of round half up) is caught by the layer check
    acc = lay[0]["acc"]
    trunc = np.clip(acc >> tiny.shift(1), 0, 65535)
    assert not np.array_equal(trunc, lay[0]["out"])


def test_unit_scale_random_model_spans_pixels_and_equals_direct():
    qm = random_qmodel((8, 16, 8, 8, 1), seed=3, unit_scale=True)
    z, _ = quantize_z(np.random.default_rng(4).standard_normal((4, 8)))
    rgb = fixed_rgb(qm, z)
    assert rgb.min() < 40 and rgb.max() > 215
    assert np.array_equal(rgb.astype(np.int64), direct_rgb(qm, z))


def test_extreme_shifts_exact_in_the_fast_path():
    # shift 48 (the largest a reader accepts) in layer 1, weight fraction 47 in layer 4: the
    # float64 rules of fixed_rgb must still equal the int64 definition bit for bit
    header = build_header([1, 1, 1, 1, 1], w_frac=[0, 0, 0, 47], a_frac=[12 - 48, -37, -38])
    assert [r["shift"] for r in header["layers"]] == [48, 1, 1, 1]
    for b1 in (2 ** 31 - 1, -(2 ** 31), 2 ** 30):
        arrays = {f"w{l}": np.full((1, 1, 4, 4), 127 if l < 4 else -128, dtype=np.int8) for l in range(1, 5)}
        arrays.update({f"b{l}": np.array([b], dtype=np.int64) for l, b in zip(range(1, 5), [b1, 5, -3, 2 ** 31 - 1])})
        arrays["v"] = np.array([[32767], [-32768]], dtype=np.int16)
        arrays["tanh_lut"] = tanh_table()
        qm = make_qmodel(header, arrays)
        z = np.array([[32767], [-32768], [0], [12345]])
        assert np.array_equal(fixed_rgb(qm, z).astype(np.int64), direct_rgb(qm, z))


def test_shipped_model_quantizes_and_draws_deterministically(tmp_path):
    # The shipped model: quantizing it twice gives the same codes; the golden model draws the same
    # pixels twice, in any batch split, and equal to the direct (scatter) definition.
    from avatargan.commands.demo import SHIPPED_MODEL
    from golden.qmodel import load_qmodel, save_qmodel
    from golden.quantize import quantize_checkpoint

    qa, _, _ = quantize_checkpoint(SHIPPED_MODEL, n_calib=200)
    qb, _, _ = quantize_checkpoint(SHIPPED_MODEL, n_calib=200)
    assert all(np.array_equal(a, qb.arrays()[k]) for k, a in qa.arrays().items())
    save_qmodel(qa, tmp_path / "q.npz")
    qm = load_qmodel(tmp_path / "q.npz")
    z, _ = quantize_z(np.random.default_rng(2024).standard_normal((6, 100)))
    a = fixed_rgb(qm, z)
    assert np.array_equal(a, fixed_rgb(qm, z))
    assert np.array_equal(a, np.concatenate([fixed_rgb(qm, z[:2]), fixed_rgb(qm, z[2:])]))
    assert np.array_equal(a[:2], direct_rgb(qm, z[:2]))
    assert a.std() > 40            # a trained model draws avatars, not flat planes
