"""NUMERICS.md rules 1-6, one by one, with hand-worked values and edge cases."""

import math

import numpy as np
import pytest

from base.errors import UserError
from golden.fixed import (check_zq, pass_inputs, quantize_z, requantize_relu, rshift_rnd, tanh_index)
from golden.qmodel import acc_bits, tanh_table
from golden.random_models import random_qmodel


@pytest.fixture(scope="module")
def tiny():
    return random_qmodel((8, 8, 4, 4, 1), seed=3)


def test_rshift_round_half_up_including_negatives():
    # (q, s) -> floor(q / 2^s + 1/2), worked by hand
    cases = [
        (5, 1, 3),     # 2.5 -> 3 (half up)
        (-5, 1, -2),   # -2.5 -> -2 (half up = towards +inf, not away from zero)
        (-6, 2, -1),   # -1.5 -> -1
        (6, 2, 2),     # 1.5 -> 2
        (7, 2, 2),     # 1.75 -> 2
        (-7, 2, -2),   # -1.75 -> -2
        (-1, 1, 0),    # -0.5 -> 0
        (-3, 1, -1),   # -1.5 -> -1
        (1, 3, 0),     # 0.125 -> 0
        (4, 3, 1),     # 0.5 -> 1
        (-4, 3, 0),    # -0.5 -> 0
        (-5, 3, -1),   # -0.625 -> -1
        (9, 0, 9),     # no shift
    ]
    q = np.array([c[0] for c in cases])
    for (qq, s, want) in cases:
        assert int(rshift_rnd(np.array([qq]), s)[0]) == want, (qq, s)
    # and against exact rational arithmetic on a sweep
    qs = np.arange(-300, 301)
    for s in (1, 2, 5):
        want = np.array([math.floor(int(v) / 2 ** s + 0.5) for v in qs])
        assert np.array_equal(rshift_rnd(qs, s), want)
    assert q.size == len(cases)


def test_requantize_relu_round_then_relu_then_saturate():
    acc = np.array([-1, -2, -3, 0, 1, 2, 3, 131069, 131070, 131071, 10 ** 9, -(10 ** 9)])
    # shift 1: -1 -> 0, -2 -> -1 -> 0, -3 -> -1 -> 0, 1 -> 1 (0.5 up), 3 -> 2,
    # 131069 -> 65535 (65534.5 up), 131070 -> 65535, 131071 -> 65536 -> saturates 65535
    want = [0, 0, 0, 0, 1, 1, 2, 65535, 65535, 65535, 65535, 0]
    assert requantize_relu(acc, 1).tolist() == want


def test_tanh_index_saturates_to_s11():
    acc = np.array([2046, 2047, 2048, 5000, -2048, -2049, -2050, -9999])
    # shift 1: 1023, 1024 -> 1023, 1024 -> 1023, ..., -1024, -1024 (-1024.5 -> -1024), -1025 -> -1024
    assert tanh_index(acc, 1).tolist() == [1023, 1023, 1023, 1023, -1024, -1024, -1024, -1024]


def test_tanh_table_is_rule_5():
    lut = tanh_table()
    assert lut.dtype == np.uint8 and lut.shape == (2048,)
    # independent spelling of rule 5 with Python floats
    want = [min(max(math.floor(127.5 * (math.tanh((i - 1024) / 256) + 1) + 0.5), 0), 255) for i in range(2048)]
    assert lut.tolist() == want
    # hand points: tanh(0) = 0 -> 128; tanh(1) = 0.76159 -> floor(225.10) = 225; ends 0 and 255
    assert lut[1024] == 128 and lut[1024 + 256] == 225 and lut[0] == 0 and lut[2047] == 255
    assert np.all(np.diff(lut.astype(int)) >= 0)


def test_quantize_z_rounding_and_saturation_reported():
    lsb = 1 / 4096
    z = np.array([[0.5 * lsb, -0.5 * lsb, 1.5 * lsb, -1.5 * lsb, 8.0, -8.0, -8.5, 7.9998, 100.0, 1.0]])
    q, n_sat = quantize_z(z, nz=10)
    # half up: 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1; 8.0 -> 32768 saturates to 32767;
    # -8.0 -> -32768 fits; -8.5 saturates; 7.9998*4096 = 32767.18 -> 32767; 100 saturates; 1.0 -> 4096
    assert q.tolist() == [[1, 0, 2, -1, 32767, -32768, -32768, 32767, 32767, 4096]]
    assert n_sat == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_z_refuses_non_finite(bad):
    z = np.zeros((2, 5))
    z[1, 3] = bad
    with pytest.raises(UserError, match="non-finite"):
        quantize_z(z, nz=5)


def test_quantize_z_refuses_wrong_length_and_garbage():
    with pytest.raises(UserError, match="100 elements"):
        quantize_z(np.zeros((3, 99)), nz=100)
    with pytest.raises(UserError):
        quantize_z(np.zeros((2, 3, 100)), nz=100)
    with pytest.raises(UserError):
        quantize_z([["a", "b"]])


def test_z_codes_checked(tiny):
    with pytest.raises(UserError, match="shape"):
        check_zq(tiny, np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(UserError, match="shape"):
        check_zq(tiny, np.zeros(8, dtype=np.int64))
    with pytest.raises(UserError, match="integers"):
        check_zq(tiny, np.zeros((2, 8)))
    with pytest.raises(UserError, match="lie in"):
        check_zq(tiny, np.full((1, 8), 32768))
    with pytest.raises(UserError, match="lie in"):
        check_zq(tiny, np.full((1, 8), -32769))


def test_pass_inputs_saturating_add(tiny):
    qm = tiny
    qm.v[0, :] = [100, -100, 32767, -32768, 0, 1, -1, 5]
    qm.v[1, :] = [-1, 1, -32768, 32767, 7, 0, 0, 0]
    z = np.array([[32767, -32768, 32767, -32768, -5, 32767, -32768, 3]])
    u = pass_inputs(qm, z)
    assert u[0, 0].tolist() == z[0].tolist()
    # z + v1 saturated to [-32768, 32767], never wrapped
    assert u[0, 1].tolist() == [32767, -32768, 32767, -32768, -5, 32767, -32768, 8]
    assert u[0, 2].tolist() == [32766, -32767, -1, -1, 2, 32767, -32768, 3]


def test_accumulator_widths_match_numerics():
    # the figures written in NUMERICS.md for the default model
    assert acc_bits(1, 100, True) == 33
    assert acc_bits(2, 128, False) == 34
    assert acc_bits(3, 64, False) == 33
    assert acc_bits(4, 32, False) == 33
    # the definition: 1 + ceil(log2(N * Pmax + 2^31 + 1))
    for l, ic, signed in [(1, 100, True), (2, 128, False), (3, 64, False), (4, 32, False), (2, 7, False)]:
        n = ic if l == 1 else 4 * ic
        pmax = 2 ** 22 if signed else (2 ** 16 - 1) * 2 ** 7
        assert acc_bits(l, ic, signed) == 1 + math.ceil(math.log2(n * pmax + 2 ** 31 + 1))
