"""The hardware contract (base/contract.py) is defined once; the copies it replaced cannot come back."""

import re
from pathlib import Path

import numpy as np
import pytest

from base import contract
from base.contract import (DEFAULT_LANES, DEVICE_LANES, PIXEL_WORD_BITS, PIXEL_WORD_FIELDS, PIXEL_WORD_OFFSETS,
                           decode_pixel_word, decode_pixel_words, encode_pixel_word)

ROOT = Path(__file__).resolve().parent.parent
#: The product's source (tests may build fakes with literal widths on purpose).
ROOMS = ("base", "golden", "rtl", "gen", "sim", "avatargan")
CONTRACT = ROOT / "base" / "contract.py"

#: Known literal copies of contract facts, as they were written before the contract module (issue 17).
COPIES = {
    "a contract name defined outside base/contract.py":
        re.compile(r"^(KERNEL|Z_FMT|ACT_BITS|WEIGHT_BITS|BIAS_BITS|TANH_INDEX|TANH_ENTRIES|PIXEL_BITS|GEOMETRY|XY_BITS"
                   r"|PIXEL_WORD_BITS|PIXEL_WORD_FIELDS|DEFAULT_LANES|DEVICE_LANES|DEFAULT_DEVICE|DEFAULT_CHANNELS)\s*(:[^=]*)?=", re.M),
    "a width written as a literal": re.compile(r"^\s*(W_BITS|TANH_BITS|X_BITS)\s*=\s*\d", re.M),
    "the pixel word's width as a literal": re.compile(r"Signature\(21\)|Out\(21\)|\[20:0\]|\(\"pixel FIFO\", 21"),
    "a pixel-word field picked by bit position":
        re.compile(r"payload\[\d+(:\d+)?\]|\b(payload|p|pix|word|words)\s*>>\s*(13|18|20)\b"),
    "the pixel word's layout written out": re.compile(r"\{\s*\"pixel\"\s*:\s*8"),
    "the default channels written out": re.compile(r"100, ?128, ?64, ?32, ?1\b|100-128-64-32-1"),
    "a lane default written as a literal": re.compile(r"lanes\s*(:\s*int)?\s*=\s*128\b|--lanes\"[^)]*default=128\b"
                                                      r"|\{\s*\"85F\"\s*:\s*128"),
}


def find_copies(files) -> list[str]:
    """``path:line: what`` for every known literal copy in ``files`` (base/contract.py itself excluded)."""
    out = []
    for f in files:
        f = Path(f)
        if f.resolve() == CONTRACT:
            continue
        text = f.read_text(encoding="utf-8")
        for what, rx in COPIES.items():
            for m in rx.finditer(text):
                out.append(f"{f.relative_to(f.anchor) if not f.is_relative_to(ROOT) else f.relative_to(ROOT)}:"
                           f"{text.count(chr(10), 0, m.start()) + 1}: {what}: {m.group(0).strip()!r}")
    return out


def _sources():
    return [f for room in ROOMS for f in sorted((ROOT / room).rglob("*.py"))]


def test_no_literal_copies_of_the_contract():
    assert find_copies(_sources()) == []


@pytest.mark.parametrize("line", [
    "PIXEL_BITS = 8 + 2 * XY_BITS + 2 + 1\n",
    "ACT_BITS = 16\n",
    "TANH_BITS = 11\n",
    "        with m.If(core.pixel.valid & tx.data.ready & core.pixel.payload[20]):\n",
    "  output [20:0] pixel__payload, output pixel__valid, input pixel__ready,\n",
    "    pix, x, y = payload & 0xFF, (payload >> 8) & 31, (payload >> 13) & 31\n",
    "    plane, last = (p >> 18) & 3, p >> 20\n",
    "def cycle_model(header: dict, lanes: int = 128) -> dict:\n",
    "DEFAULT_LANES = {\"85F\": 128, \"45F\": 64}\n",
    "    return data.StructLayout({\"pixel\": 8, \"x\": 5, \"y\": 5, \"plane\": 2, \"last\": 1})\n",
    "            \"pixel\": Out(stream.Signature(21)),\n",
    "DEFAULT_CHANNELS = [100, 128, 64, 32, 1]\n",
    "def random_qmodel(channels=(100, 128, 64, 32, 1), seed: int = 0):\n",
])
def test_a_reintroduced_copy_is_found(tmp_path, line):
    # Each copy that issue 17 removed, put back into a file, is reported: the check above can fail.
    f = tmp_path / "copy.py"
    f.write_text("x = 1\n" + line)
    found = find_copies([f])
    assert len(found) >= 1 and ":2: " in found[0]


def test_pixel_word_fields_tile_the_word():
    assert PIXEL_WORD_BITS == 21
    assert [n for n, _ in PIXEL_WORD_FIELDS] == ["pixel", "x", "y", "plane", "last"]
    assert PIXEL_WORD_OFFSETS == {"pixel": 0, "x": 8, "y": 13, "plane": 18, "last": 20}
    assert 1 << contract.XY_BITS >= contract.GEOMETRY[-1][3]


def test_pixel_word_round_trip():
    rng = np.random.default_rng(0)
    fields = {n: rng.integers(0, 1 << w, 500) for n, w in PIXEL_WORD_FIELDS}
    words = [encode_pixel_word(**{n: int(v[i]) for n, v in fields.items()}) for i in range(500)]
    got = decode_pixel_words(words)
    for n in fields:
        assert np.array_equal(got[n], fields[n])
    assert decode_pixel_word(words[3]) == {n: int(v[3]) for n, v in fields.items()}
    assert decode_pixel_word(encode_pixel_word(pixel=0xAB, x=31, y=1, plane=2, last=1)) == \
        {"pixel": 0xAB, "x": 31, "y": 1, "plane": 2, "last": 1}
    with pytest.raises(ValueError, match="does not fit"):
        encode_pixel_word(plane=4)
    with pytest.raises(ValueError, match="unknown"):
        encode_pixel_word(colour=1)


def test_amaranth_layout_matches_the_contract():
    from rtl.layouts import pixel_layout

    layout = pixel_layout()
    assert layout.size == PIXEL_WORD_BITS
    assert {name: f.offset for name, f in layout} == PIXEL_WORD_OFFSETS
    assert {name: f.width for name, f in layout} == dict(PIXEL_WORD_FIELDS)
    # Amaranth's own packing of a constant agrees with the NumPy decoder.
    word = layout.const({"pixel": 200, "x": 7, "y": 30, "plane": 1, "last": 1}).as_bits()
    assert decode_pixel_word(word) == {"pixel": 200, "x": 7, "y": 30, "plane": 1, "last": 1}


def test_lanes_per_device():
    from gen.devices import DEVICES

    assert set(DEVICE_LANES) == set(DEVICES)
    assert DEFAULT_LANES == DEVICE_LANES[contract.DEFAULT_DEVICE]


def test_the_golden_model_does_not_need_amaranth():
    import subprocess
    import sys

    code = ("import sys; sys.modules['amaranth'] = None\n"
            "import base.contract, golden.qmodel, golden.fixed, golden.quantize, golden.random_models\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
