"""One reader for the project's array files: checkpoints, quantized models, datasets and z files.

``numpy.load`` trusts its input: a ``.npy`` named ``.npz`` comes back as an array (callers then
fail with ``TypeError``), and a member whose header declares a huge shape is allocated before a
single byte of it is read (``MemoryError``). These readers look at the container first (the
file's magic bytes: ZIP, NumPy ``.npy``, text, empty), then at every member's declared dtype and
shape, and only then allocate, and only as much as the member really holds. Every problem is one
:class:`UserError` line naming the file.
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from base.errors import UserError

#: Most bytes one file may ask us to allocate (1 GiB): far above the largest file the project
#: writes (a 100 000-avatar augment set is 300 MB; a checkpoint of 1024-wide layers ~200 MB).
MAX_BYTES = 1 << 30

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def sniff(path) -> str:
    """The container of ``path`` by its first bytes: ``npz``, ``npy``, ``empty``, ``text`` or ``other``."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "empty"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at 512 bytes is still text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "other"
    return "text"


def _open_checked(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} {p} does not exist")
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder, not a file")
    if not p.is_file():
        raise UserError(f"{what} {p} is not a regular file")
    return p


_KINDS = {"npy": "a single NumPy .npy array", "empty": "an empty file", "text": "a text file",
          "other": "neither an .npz nor an .npy file", "npz": "an .npz archive"}


def _read_header(f) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    try:
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except (SyntaxError, tokenize.TokenError, TypeError, UnicodeDecodeError, RecursionError) as e:
        # NumPy parses the header's Python literal; a damaged one fails in the tokenizer or parser.
        raise ValueError(f"unparsable .npy header ({type(e).__name__})") from None
    raise ValueError(f"unsupported .npy format version {version}")


def _read_array(f, held: int, where: str, budget: int) -> np.ndarray:
    """Read one ``.npy`` stream whose total size is ``held`` bytes, checking before allocating."""
    start = f.tell()
    shape, fortran, dtype = _read_header(f)
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise UserError(f"{where} holds {dtype} values; only plain numbers are read")
    nbytes = math.prod(shape) * dtype.itemsize
    data = held - (f.tell() - start)
    if nbytes > budget:
        raise UserError(f"{where} declares shape {shape} ({nbytes:,} bytes), over the limit of "
                        f"{MAX_BYTES:,} bytes per file")
    if nbytes != data:
        raise UserError(f"{where} declares shape {shape} of {dtype} ({nbytes:,} bytes) but holds "
                        f"{data:,} bytes (corrupt or truncated)")
    arr = np.empty(shape[::-1] if fortran else shape, dtype)
    view = memoryview(arr.reshape(-1)).cast("B") if nbytes else b""
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise UserError(f"{where} ends early (truncated)")
        got += n
    return arr.T if fortran else arr


def read_npz(path, what: str, max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` at ``path`` as a dict of arrays, checked before allocation.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is meant to be ("checkpoint", "quantized model", ...), for the messages.
    max_bytes : int
        Most bytes all members together may take.

    Raises
    ------
    UserError
        The file is missing, not an ``.npz`` (a ``.npy``, text, empty, other), corrupt or
        truncated, holds non-numeric members, or declares more data than it holds or than
        ``max_bytes``.
    """
    p = _open_checked(path, what)
    kind = sniff(p)
    if kind != "npz":
        hint = "; save it with numpy.savez" if kind == "npy" else ""
        raise UserError(f"{what} {p} is {_KINDS[kind]}, not an .npz archive{hint}")
    out, budget = {}, max_bytes
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise UserError(f"{what} {p}: member {info.filename!r} is not an .npy array")
                key = info.filename[:-4]
                where = f"{what} {p}: array {key!r}"
                with zf.open(info) as f:
                    arr = _read_array(f, info.file_size, where, budget)
                budget -= arr.nbytes
                out[key] = arr
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error, EOFError, ValueError,
            OSError) as e:
        raise UserError(f"{what} {p} is not a readable .npz archive (corrupt or truncated: "
                        f"{type(e).__name__})") from None
    return out


def read_npy(path, what: str, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array of the ``.npy`` file at ``path``, checked before allocation (see :func:`read_npz`)."""
    p = _open_checked(path, what)
    kind = sniff(p)
    if kind != "npy":
        raise UserError(f"{what} {p} is {_KINDS[kind]}, not an .npy array")
    try:
        with open(p, "rb") as f:
            return _read_array(f, os.fstat(f.fileno()).st_size, f"{what} {p}", max_bytes)
    except UserError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{what} {p} is not a readable .npy array ({type(e).__name__}: {e})") from None


def npz_members(path, what: str) -> list[str]:
    """The array names in the ``.npz`` at ``path`` (nothing is loaded), or a one-line refusal."""
    p = _open_checked(path, what)
    kind = sniff(p)
    if kind != "npz":
        raise UserError(f"{what} {p} is {_KINDS[kind]}, not an .npz archive")
    try:
        with zipfile.ZipFile(p) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{what} {p} is not a readable .npz archive ({type(e).__name__})") from None


#: Most z vectors one z file may hold (the simulator draws a few avatars a second).
MAX_Z_ROWS = 100_000


def read_z(path, nz: int) -> np.ndarray:
    """The z of a z file: ``(N, nz)`` float or integer, 1 <= N <= :data:`MAX_Z_ROWS`.

    The file is a ``.npy`` array, or an ``.npz`` with an array ``z`` (as ``avatargan augment``
    writes) or exactly one array. A single vector ``(nz,)`` counts as one row. Text, empty and
    other files are refused in one line. Values are returned in their stored dtype (integer
    ranges are checked by the caller before any cast).
    """
    p = _open_checked(path, "z file")
    kind = sniff(p)
    if kind == "npy":
        arr = read_npy(p, "z file")
    elif kind == "npz":
        arrays = read_npz(p, "z file")
        if "z" in arrays:
            arr = arrays["z"]
        elif len(arrays) == 1:
            arr = next(iter(arrays.values()))
        else:
            raise UserError(f"z file {p} is an .npz without an array 'z' (it holds {', '.join(arrays) or 'nothing'})")
    else:
        raise UserError(f"z file {p} is {_KINDS[kind]}; give a .npy (numpy.save) of shape (N, {nz})")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise UserError(f"z file {p} must hold floats or integer S(16,12) codes, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != nz:
        raise UserError(f"z file {p} must have shape (N, {nz}) or ({nz},), got {arr.shape}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if not 1 <= len(arr) <= MAX_Z_ROWS:
        raise UserError(f"z file {p} holds {len(arr)} z vectors; give 1 to {MAX_Z_ROWS:,}")
    return arr


__all__ = ["MAX_BYTES", "MAX_Z_ROWS", "sniff", "read_npz", "read_npy", "npz_members", "read_z"]
