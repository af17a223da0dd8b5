"""The serial path end to end in cocotb on Verilator: host framing -> UART rx -> Generator (tiny
model) -> UART tx -> host decoding, compared with the integer golden model, every pixel."""

import numpy as np
import pytest

from golden.fixed import fixed_rgb
from golden.random_models import random_qmodel
from rtl.board import BoardLogic, PIXELS
from rtl.top import Generator
from sim.board_loopback import run_loopback

DIV = 4


@pytest.mark.slow
def test_loopback_tiny_generator(tmp_path):
    qm = random_qmodel((8, 8, 4, 4, 1), seed=5, std=0.2)   # std 0.2: pixels spread over 0..255
    rng = np.random.default_rng(11)
    zq = np.stack([
        rng.integers(-8192, 8192, qm.nz),
        np.array([32767, -32768] * (qm.nz // 2)),     # saturating z + v on chip
    ]).astype(np.int64)
    expected = fixed_rgb(qm, zq)
    assert len(np.unique(expected)) > 100, "a test model whose avatars are not flat"
    logic = BoardLogic(Generator.from_model(qm, lanes=4, mult="generic"), nz=qm.nz, divisor=DIV,
                       timeout_cycles=100_000)
    res = run_loopback(logic, zq, expected, tmp_path / "loopback")
    assert res["passed"], res["message"]
    assert np.array_equal(res["pixels"], expected)
    # The checker must be able to fail: the golden avatars of other z differ from what came back.
    assert not np.array_equal(res["pixels"], fixed_rgb(qm, zq[::-1]))
    # Each reply's cycle count spans at least the 3071 serial byte times of its pixels.
    assert len(res["cycles"]) == 2
    assert all(c >= (PIXELS - 1) * 10 * DIV for c in res["cycles"])
