"""Atomic writes: the old file survives a failed write; no temp files are left behind."""

import pytest

from avatargan.errors import UserError
from avatargan.fileio import atomic_path, atomic_write, ensure_dir


def test_atomic_write_replaces(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write(p, "one")
    atomic_write(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "a.npz"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            assert tmp.suffix == ".npz"
            tmp.write_bytes(b"half")
            raise RuntimeError("crash in the middle")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.npz"]


def test_unwritable_folder_is_a_user_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="cannot create folder"):
        ensure_dir(f / "sub")


def test_result_has_ordinary_permissions(tmp_path):
    import os
    p = tmp_path / "a.txt"
    atomic_write(p, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)
