"""Codebook weight store: a model whose layers use at most 2**b distinct weight codes is stored as
b-bit indices and looked up per lane; the avatars stay bit-exact and the cycle count unchanged."""

import numpy as np
import pytest

from gen.cycles import cycles_per_avatar
from sim.rtlsim import simulate
from golden.codebook import restricted_model
from golden.fixed import fixed_rgb
from golden.random_models import random_qmodel
from rtl.config import plan_engine, weight_codebooks
from romcheck import expected_words
from rtl.top import Generator

CH = (8, 32, 8, 4, 1)
LANES = 16


@pytest.fixture(scope="module")
def cb_model():
    """A small model with 3-bit codebooks (at most 8 distinct codes per layer), weights wide enough
    that the avatars are not flat (their pixels span most of 0..255)."""
    qm = restricted_model(random_qmodel(CH, seed=4, n_calib=8, std=0.3), 3)
    rgb = fixed_rgb(qm, np.random.default_rng(2).integers(-2 ** 15, 2 ** 15, (2, CH[0])))
    assert len(np.unique(rgb)) > 100
    return qm


def test_codebook_width_follows_the_distinct_codes():
    assert weight_codebooks([np.array([-3, 0, 5, 5])]) == (2, [[-3, 0, 5]])
    assert weight_codebooks([np.array([1, 1])]) == (1, [[1]])
    assert weight_codebooks([np.arange(-64, 64)]) == (7, [list(range(-64, 64))])
    assert weight_codebooks([np.arange(-127, 128)]) == (8, None)         # 255 codes: the codes themselves


def test_index_words_decode_to_the_weights(cb_model):
    plan = plan_engine(cb_model, LANES)
    b = plan.w_bits
    assert b == 3 and len(plan.codebooks) == 4
    for lp in plan.layers:
        w, book = cb_model.w[lp.index + 1], plan.codebooks[lp.index]
        assert sorted(set(int(x) for x in np.unique(w))) == book
        for addr, want in expected_words(w, lp, LANES).items():
            word = plan.weight_rom[addr]
            assert word < 1 << (b * LANES)
            for j in range(lp.ocp * lp.lanes_per_group):      # idle lanes: index 0 stands for any code
                assert book[(word >> (b * j)) & ((1 << b) - 1)] == want[j]


def test_shipped_style_model_keeps_8_bit_codes():
    qm = random_qmodel(CH, seed=4, n_calib=8)          # ~hundreds of distinct codes in layer 1
    plan = plan_engine(qm, LANES)
    assert plan.w_bits == 8 and plan.codebooks is None


def test_codebook_engine_bit_exact_and_cycle_exact(cb_model):
    zq = np.random.default_rng(2).integers(-2 ** 15, 2 ** 15, (2, CH[0]))
    dut = Generator.from_model(cb_model, lanes=LANES)
    assert dut.plan.w_bits == 3
    res = simulate(dut, zq)
    assert np.array_equal(res.rgb, fixed_rgb(cb_model, zq).astype(np.int64))
    assert res.cycles == [cycles_per_avatar(cb_model.header, LANES)] * 2


def test_a_wrong_codebook_entry_is_caught(cb_model):
    """The check above fails when one codebook entry in the RTL differs from the model's code."""
    zq = np.random.default_rng(2).integers(-2 ** 15, 2 ** 15, (1, CH[0]))
    dut = Generator.from_model(cb_model, lanes=LANES)
    book = dut.plan.codebooks[0]
    book[len(book) // 2] += 1
    res = simulate(dut, zq)
    assert not np.array_equal(res.rgb, fixed_rgb(cb_model, zq).astype(np.int64))
