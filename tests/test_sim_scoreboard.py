"""The testbench's checker on its own (no simulator): it passes the right stream and fails wrong ones."""

import numpy as np
import pytest

from sim import tb_generator as tb


def stream(rgb: np.ndarray) -> np.ndarray:
    """The 3 072 payload words a correct Generator sends for one avatar (ARCHITECTURE.md layout)."""
    o = tb.expected_fields()
    return (rgb.reshape(-1).astype(np.int64) | (o["x"] << 8) | (o["y"] << 13) | (o["plane"] << 18)
            | (o["last"] << 20))


@pytest.fixture
def expected():
    return np.random.default_rng(7).integers(0, 256, (2, 3, 32, 32)).astype(np.uint8)


def test_correct_stream_passes(expected):
    board = tb.Scoreboard(expected)
    for n in range(2):
        board.add(stream(expected[n]).tolist(), 100 * n)
    assert board.first is None and board.mismatches == 0 and board.all_done.is_set()
    assert np.array_equal(board.hardware, expected)
    assert board.message().startswith("bit-exact")


def test_one_wrong_pixel_is_reported_by_plane_x_y(expected):
    words = stream(expected[1])
    i = 2 * 1024 + 17 * 32 + 9            # plane B, y 17, x 9
    words[i] ^= 0x01
    board = tb.Scoreboard(expected)
    board.add(stream(expected[0]).tolist(), 0)
    board.add(words.tolist(), 1)
    assert board.mismatches == 1
    assert board.first["avatar"] == 1
    assert (board.first["plane"], board.first["x"], board.first["y"]) == (2, 9, 17)
    assert "plane B (2), x 9, y 17" in board.message()


@pytest.mark.parametrize("field,shift", [("x", 8), ("y", 13), ("plane", 18), ("last", 20)])
def test_wrong_coordinates_or_last_flag_fail(expected, field, shift):
    words = stream(expected[0])
    words[5] ^= 1 << shift                # same pixel value, wrong field
    board = tb.Scoreboard(expected[:1])
    board.add(words.tolist(), 0)
    assert board.mismatches == 1 and board.first["index"] == 5
    assert "first mismatch" in board.message()


def test_swapped_pixels_fail(expected):
    words = stream(expected[0])
    words[[10, 11]] = words[[11, 10]]     # right values, wrong order
    board = tb.Scoreboard(expected[:1])
    board.add(words.tolist(), 0)
    assert board.mismatches == 2 and board.first["index"] == 10


def test_missing_and_extra_avatars_fail(expected):
    board = tb.Scoreboard(expected)
    board.add(stream(expected[0]).tolist(), 0)
    assert "only 1 of 2 avatars" in board.message()
    board.add(stream(expected[1]).tolist(), 1)
    board.add(stream(expected[1]).tolist(), 2)
    assert board.extra == 3072 and "extra" in board.message()


def test_pause_generator_rates():
    for rate in (0.0, 0.5, 0.9):
        g = tb.PauseGenerator(rate, seed=3)
        got = np.mean([next(g) for _ in range(20000)])
        assert abs(got - rate) < 0.02     # statistical, 20 000 draws: 5+ standard deviations
    g1, g2, g3 = tb.PauseGenerator(0.5, 1), tb.PauseGenerator(0.5, 1), tb.PauseGenerator(0.5, 2)
    a, b, c = ([next(g) for _ in range(64)] for g in (g1, g2, g3))
    assert a == b and a != c              # seeded: reproducible, and the seed matters
