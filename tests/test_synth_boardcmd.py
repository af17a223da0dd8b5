"""``avatargan board`` with a stand-in for the serial port (pyserial's ``Serial`` interface).

The stand-in answers like the board: it decodes the request with the protocol of rtl/board.py and
replies with the golden model's avatar (or a corrupted one, to show the command notices).
"""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from avatargan.cli import main
from golden.fixed import fixed_rgb, quantize_z
from golden.qmodel import save_qmodel
from golden.random_models import random_qmodel
from rtl.board import CMD_Z


class FakeBoard:
    def __init__(self, qm, corrupt=False, mute=False):
        self.qm, self.corrupt, self.mute = qm, corrupt, mute
        self.out = b""

    # pyserial's Serial interface, the part the command uses
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def reset_input_buffer(self):
        self.out = b""

    def write(self, data):
        assert data[0] == CMD_Z and len(data) == 1 + 2 * self.qm.nz
        zq = np.frombuffer(data[1:], dtype="<i2").astype(np.int64)
        rgb = fixed_rgb(self.qm, zq[None])[0].copy()
        if self.corrupt:
            rgb[1, 2, 3] ^= 1
        if not self.mute:
            self.out = rgb.tobytes() + (4242).to_bytes(4, "little")

    def read(self, n):
        n = min(n, 1000)               # the command must loop over short reads
        chunk, self.out = self.out[:n], self.out[n:]
        return chunk


@pytest.fixture
def model(tmp_path):
    qm = random_qmodel((8, 8, 4, 4, 1), seed=2, std=0.2)
    path = tmp_path / "m.npz"
    save_qmodel(qm, path)
    return qm, path


def fake_serial(monkeypatch, board):
    mod = types.ModuleType("serial")
    mod.SerialException = type("SerialException", (OSError,), {})
    mod.Serial = lambda port, baud, timeout: board
    monkeypatch.setitem(sys.modules, "serial", mod)


def test_board_command_writes_golden_png(tmp_path, monkeypatch, model, capsys):
    qm, path = model
    fake_serial(monkeypatch, FakeBoard(qm))
    out = tmp_path / "a.png"
    assert main(["board", "--port", "/dev/null", "--seed", "3", "--model", str(path), "--out", str(out)]) == 0
    img = np.asarray(Image.open(out))
    zq, _ = quantize_z(np.random.default_rng(3).standard_normal(qm.nz))
    assert np.array_equal(img, fixed_rgb(qm, zq[None])[0].transpose(1, 2, 0))
    text = capsys.readouterr().out
    assert "4242 cycles" in text and "bit-exact" in text


def test_board_command_reports_mismatch(tmp_path, monkeypatch, model, capsys):
    qm, path = model
    fake_serial(monkeypatch, FakeBoard(qm, corrupt=True))
    rc = main(["board", "--port", "x", "--model", str(path), "--out", str(tmp_path / "b.png")])
    assert rc == 1
    assert "1 of 3072 pixels differ" in capsys.readouterr().err


def test_board_command_timeout_and_bad_z(tmp_path, monkeypatch, model, capsys):
    qm, path = model
    fake_serial(monkeypatch, FakeBoard(qm, mute=True))
    out = tmp_path / "c.png"
    rc = main(["board", "--port", "x", "--model", str(path), "--timeout", "0.2", "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert "no full reply" in capsys.readouterr().err
    bad = tmp_path / "z.npy"
    np.save(bad, np.zeros(qm.nz + 1))
    assert main(["board", "--port", "x", "--model", str(path), "--z", str(bad), "--out", str(out)]) == 2
    assert f"must have shape (N, {qm.nz}) or ({qm.nz},), got ({qm.nz + 1},)" in capsys.readouterr().err


def test_board_command_without_pyserial(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "serial", None)     # import serial -> ImportError
    assert main(["board", "--port", "x", "--nz", "4", "--out", str(tmp_path / "d.png")]) == 2
    assert "pyserial" in capsys.readouterr().err
