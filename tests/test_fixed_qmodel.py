"""The quantized-model file: round trip, and every bad file refused with one clear line."""

import copy
import io
import json

import numpy as np
import pytest

from base.errors import UserError
from golden.qmodel import FORMAT_VERSION, build_header, load_qmodel, save_qmodel
from golden.random_models import random_qmodel


@pytest.fixture(scope="module")
def tiny():
    return random_qmodel((8, 8, 4, 4, 1), seed=4)


def _write(path, header, arrays):
    buf = io.BytesIO()
    blob = json.dumps(header).encode()
    np.savez(buf, header=np.frombuffer(blob, dtype=np.uint8), **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _refused(path, match):
    with pytest.raises(UserError, match=match) as e:
        load_qmodel(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_round_trip(tiny, tmp_path):
    p = save_qmodel(tiny, tmp_path / "m.npz")
    qm = load_qmodel(p)
    assert qm.header == tiny.header
    for k, a in tiny.arrays().items():
        b = qm.arrays()[k]
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with np.load(p, allow_pickle=False) as npz:  # plain npz, no pickles
        assert sorted(npz.files) == sorted(["header", "v", "tanh_lut"] + [f"{p}{l}" for l in range(1, 5) for p in "wb"])
    assert qm.header["format_version"] == FORMAT_VERSION == 1


def test_header_formats_follow_the_rules(tiny):
    h = tiny.header
    assert h["z"] == {"signed": True, "bits": 16, "frac": 12}
    prev = h["z"]
    for l, rec in enumerate(h["layers"], start=1):
        assert rec["input"] == prev
        fc = rec["input"]["frac"] + rec["weight"]["frac"]
        assert rec["bias"] == {"signed": True, "bits": 32, "frac": fc}
        assert rec["acc"]["frac"] == fc and rec["shift"] == fc - rec["output"]["frac"] >= 1
        prev = rec["output"]
    assert prev == {"signed": True, "bits": 11, "frac": 8}


def test_truncated_file_refused(tiny, tmp_path):
    p = save_qmodel(tiny, tmp_path / "m.npz")
    data = p.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        _refused(bad, "truncated|corrupt|npz")


def test_not_a_model_refused(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("hello")
    _refused(p, "npz")
    _refused(tmp_path / "missing.npz", "no such file")
    q = tmp_path / "noheader.npz"
    np.savez(q, a=np.zeros(3))
    _refused(q, "header")
    r = tmp_path / "badjson.npz"
    np.savez(r, header=np.frombuffer(b"{nope", dtype=np.uint8))
    _refused(r, "JSON")


def test_other_format_or_version_refused(tiny, tmp_path):
    h = copy.deepcopy(tiny.header)
    h["format_version"] = 2
    _refused(_write(tmp_path / "v2.npz", h, tiny.arrays()), "format_version 2")
    h = copy.deepcopy(tiny.header)
    h["format"] = "avatargan-checkpoint"
    _refused(_write(tmp_path / "f.npz", h, tiny.arrays()), "not an avatargan quantized model")


def test_missing_or_extra_arrays_refused(tiny, tmp_path):
    arr = tiny.arrays()
    del arr["b3"]
    _refused(_write(tmp_path / "m.npz", tiny.header, arr), "'b3' is missing")
    arr = tiny.arrays()
    arr["w5"] = arr["w4"]
    _refused(_write(tmp_path / "e.npz", tiny.header, arr), "unexpected array 'w5'")


def test_missing_header_key_refused(tiny, tmp_path):
    for key in ("channels", "layers", "z", "tanh"):
        h = copy.deepcopy(tiny.header)
        del h[key]
        _refused(_write(tmp_path / f"{key}.npz", h, tiny.arrays()), key)
    h = copy.deepcopy(tiny.header)
    del h["layers"][2]["weight"]
    _refused(_write(tmp_path / "w.npz", h, tiny.arrays()), "layer 3 weight")


def test_wrong_shapes_and_dtypes_refused(tiny, tmp_path):
    arr = tiny.arrays()
    arr["w2"] = arr["w2"][:, :3]
    _refused(_write(tmp_path / "s.npz", tiny.header, arr), "'w2' has shape")
    arr = tiny.arrays()
    arr["v"] = arr["v"][:, :7]
    _refused(_write(tmp_path / "v.npz", tiny.header, arr), "'v' has shape")
    arr = tiny.arrays()
    arr["w1"] = arr["w1"].astype(np.int16)
    _refused(_write(tmp_path / "d.npz", tiny.header, arr), "'w1' has dtype int16")
    h = copy.deepcopy(tiny.header)   # header channels that disagree with the arrays
    h["channels"][2] = 5
    h["layers"][1]["oc"] = 5
    h["layers"][2]["ic"] = 5
    _refused(_write(tmp_path / "c.npz", h, tiny.arrays()), "has shape")


def test_codes_outside_declared_format_refused(tiny, tmp_path):
    arr = tiny.arrays()
    arr["b2"] = arr["b2"].copy()
    arr["b2"][0] = 2 ** 31
    _refused(_write(tmp_path / "b.npz", tiny.header, arr), r"'b2' has codes .* outside its declared format S\(32")
    arr = tiny.arrays()
    arr["b4"] = arr["b4"].copy()
    arr["b4"][0] = -(2 ** 31) - 1
    _refused(_write(tmp_path / "b4.npz", tiny.header, arr), "outside its declared format")
    h = copy.deepcopy(tiny.header)   # weights declared narrower than version 1 allows
    h["layers"][0]["weight"]["bits"] = 6
    _refused(_write(tmp_path / "wb.npz", h, tiny.arrays()), "bits is 6")


def test_shift_below_one_refused(tiny, tmp_path):
    # an activation fraction equal to the accumulator fraction gives shift 0
    h = copy.deepcopy(tiny.header)
    fc = h["layers"][1]["acc"]["frac"]
    rebuilt = build_header(h["channels"], [r["weight"]["frac"] for r in h["layers"]],
                           [h["layers"][0]["output"]["frac"], fc, h["layers"][2]["output"]["frac"]])
    assert rebuilt["layers"][1]["shift"] == 0
    _refused(_write(tmp_path / "s0.npz", rebuilt, tiny.arrays()), "shift 0 is outside")
    h = copy.deepcopy(tiny.header)   # a shift that disagrees with the formats
    h["layers"][0]["shift"] += 1
    _refused(_write(tmp_path / "s.npz", h, tiny.arrays()), "shift .* differs")


def test_wrong_tanh_table_refused(tiny, tmp_path):
    arr = tiny.arrays()
    arr["tanh_lut"] = arr["tanh_lut"].copy()
    arr["tanh_lut"][1000] += 1
    _refused(_write(tmp_path / "t.npz", tiny.header, arr), "rule 5")


def test_failed_save_leaves_existing_file(tiny, tmp_path):
    p = save_qmodel(tiny, tmp_path / "m.npz")
    before = p.read_bytes()
    broken = copy.copy(tiny)
    broken.header = copy.deepcopy(tiny.header)
    broken.header["format_version"] = 7
    with pytest.raises(UserError):
        save_qmodel(broken, p)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.npz"]


def test_shift_above_48_refused(tiny, tmp_path):
    h = build_header([1, 1, 1, 1, 1], w_frac=[0, 0, 0, 48], a_frac=[12 - 49, -38, -39])
    assert h["layers"][0]["shift"] == 49
    arrays = {f"w{l}": np.ones((1, 1, 4, 4), dtype=np.int8) for l in range(1, 5)}
    arrays.update({f"b{l}": np.zeros(1, dtype=np.int64) for l in range(1, 5)})
    arrays["v"] = np.zeros((2, 1), dtype=np.int16)
    arrays["tanh_lut"] = tiny.tanh_lut
    _refused(_write(tmp_path / "s49.npz", h, arrays), "shift 49 is outside 1..48")
