"""Property-based tests (Hypothesis) of the parsers: model/checkpoint files, z files, image folders.

Whatever bytes a user hands over, a parser either returns what the file holds or raises one
:class:`UserError`; nothing else escapes (no TypeError, MemoryError, zipfile or Pillow errors).
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from base.errors import UserError
from golden.checkpoint import read_checkpoint, save_generator
from golden.dataset import import_images
from golden.fixed import check_zq
from golden.models import Generator
from golden.npzfile import read_npz, read_z
from golden.qmodel import load_qmodel, save_qmodel
from golden.random_models import random_qmodel

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QM = random_qmodel((8, 8, 4, 4, 1), seed=1)


def _valid_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        ck = save_generator(Path(d) / "c.npz", Generator([8, 8, 4, 4, 1], np.random.default_rng(0)))
        q = save_qmodel(QM, Path(d) / "q.npz")
        return {"checkpoint": ck.read_bytes(), "quantized model": q.read_bytes()}


VALID = _valid_files()
READERS = {"checkpoint": read_checkpoint, "quantized model": load_qmodel}


def _write(data: bytes, name: str = "f.npz") -> tuple[tempfile.TemporaryDirectory, Path]:
    d = tempfile.TemporaryDirectory()
    p = Path(d.name) / name
    p.write_bytes(data)
    return d, p


@st.composite
def mutated(draw, kind):
    """A valid file of ``kind`` cut short, with bytes overwritten, or with bytes inserted."""
    data = bytearray(VALID[kind])
    how = draw(st.sampled_from(["cut", "flip", "insert"]))
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return bytes(data[:at])
    if how == "flip":
        chunk = draw(st.binary(min_size=1, max_size=16))
        data[at:at + len(chunk)] = chunk
        return bytes(data)
    return bytes(data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:])


@pytest.mark.parametrize("kind", sorted(VALID))
@SETTINGS
@given(data=st.data())
def test_model_readers_return_or_refuse_in_one_line(kind, data):
    blob = data.draw(st.one_of(mutated(kind), st.binary(max_size=600)))
    d, p = _write(blob)
    with d:
        try:
            READERS[kind](p)
        except UserError as e:
            assert "\n" not in str(e) and str(p) in str(e)


def test_mutation_strategy_can_break_a_file():
    """The property above is not vacuous: cutting a valid file is refused (and the intact one read)."""
    d, p = _write(VALID["checkpoint"][:100])
    with d, pytest.raises(UserError):
        read_checkpoint(p)
    d, p = _write(VALID["checkpoint"])
    with d:
        assert read_checkpoint(p)[0]["channels"] == [8, 8, 4, 4, 1]


@st.composite
def npy_headers(draw):
    """An .npz with one member whose header declares a random dtype/shape over random data."""
    dtype = draw(st.sampled_from(["<f4", "<f8", "<i8", "|u1", "<u8", "|b1", "<c8", "|O", "<U3", ">i4"]))
    shape = tuple(draw(st.lists(st.integers(0, 2 ** 40), max_size=4)))
    body = draw(st.binary(max_size=256))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": draw(st.booleans()),
                                               "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("a.npy", buf.getvalue() + body)
    return out.getvalue(), dtype, shape, len(body)


@SETTINGS
@given(npy_headers())
def test_declared_shapes_are_checked_before_allocating(case):
    blob, dtype, shape, held = case
    d, p = _write(blob)
    with d:
        try:
            arrays = read_npz(p, "file")
        except UserError:
            return
        a = arrays["a"]
        assert a.shape == shape and a.nbytes == held == int(np.prod(shape)) * np.dtype(dtype).itemsize
        assert a.dtype.kind in "biuf"


@SETTINGS
@given(
    dtype=st.sampled_from([np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64,
                           np.bool_, np.complex64]),
    shape=st.lists(st.integers(0, 12), min_size=0, max_size=3).map(tuple),
    container=st.sampled_from(["npy", "npz", "npz-other"]),
    values=st.integers(-2 ** 63, 2 ** 64 - 1),
)
def test_z_files_return_rows_or_refuse(dtype, shape, container, values):
    with tempfile.TemporaryDirectory() as d:
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arr = np.full(shape, min(max(values, info.min), info.max), dtype)
        else:
            arr = np.full(shape, values % 1000 / 37.0, dtype)
        p = Path(d) / ("z.npy" if container == "npy" else "z.npz")
        if container == "npy":
            np.save(p, arr)
        else:
            np.savez(p, **({"z": arr} if container == "npz" else {"a": arr, "b": arr}))
        try:
            z = read_z(p, 8)
        except UserError:
            ok_shape = arr.ndim in (1, 2) and arr.shape[-1] == 8 and (arr.ndim == 1 or arr.shape[0] >= 1)
            assert not (ok_shape and container != "npz-other" and arr.dtype.kind in "iuf")
            return
        assert z.ndim == 2 and z.shape[1] == 8 and len(z) >= 1
        if z.dtype.kind in "iu":  # integer codes: accepted exactly when every one is in S(16,12)
            lo, hi = int(z.min()), int(z.max())
            if -32768 <= lo and hi <= 32767:
                assert np.array_equal(check_zq(QM, z), z.astype(np.int64))
            else:
                with pytest.raises(UserError, match="must lie in"):
                    check_zq(QM, z)


@st.composite
def folder_entries(draw):
    """A folder of names and contents: valid PNGs, random bytes, truncated PNGs, under image suffixes."""
    n = draw(st.integers(1, 5))
    entries = {}
    for i in range(n):
        suffix = draw(st.sampled_from([".png", ".jpg", ".gif", ".txt", ".PNG", ".webp"]))
        kind = draw(st.sampled_from(["png", "bytes", "cut", "mode"]))
        if kind == "bytes":
            body = draw(st.binary(max_size=200))
        else:
            modes = ["RGB", "RGBA", "L", "LA", "P", "I;16", "1", "CMYK"]
            mode = draw(st.sampled_from(modes)) if kind == "mode" else "RGB"
            size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
            buf = io.BytesIO()
            fmt = "JPEG" if mode == "CMYK" else "PNG"
            Image.new(mode, size).save(buf, format=fmt)
            body = buf.getvalue()
            if kind == "cut":
                body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
        entries[f"{i}{suffix}"] = body
    return entries


@SETTINGS
@given(folder_entries())
def test_image_folder_import_keeps_readable_files_and_warns_for_the_rest(entries):
    warnings = []
    with tempfile.TemporaryDirectory() as d:
        for name, body in entries.items():
            (Path(d) / name).write_bytes(body)
        try:
            images, rows = import_images(d, warn=warnings.append, progress=False)
        except UserError as e:
            assert "\n" not in str(e)
            return
        assert images.dtype == np.uint8 and images.shape == (len(rows), 32, 32, 3)
        candidates = [n for n in entries if os.path.splitext(n)[1].lower() in (".png", ".jpg", ".gif", ".webp")]
        assert len(rows) + len(warnings) == len(candidates)  # every image file is kept or named in a warning
