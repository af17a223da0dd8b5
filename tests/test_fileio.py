"""Atomic writes: the old file survives a failed write; no temp files are left behind."""

import pytest

from base.errors import UserError
from base.fileio import atomic_path, atomic_write, ensure_dir


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


# --------------------------------------------------------------------------- the output policy (issue 14)

def test_staged_folder_appears_whole_or_not_at_all(tmp_path):
    import json

    from base.fileio import MANIFEST, staged_folder

    out = tmp_path / "out"
    with staged_folder(out, "demo") as stage:
        (stage / "a.txt").write_text("1")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text("2")
        assert not out.exists()  # nothing visible until the block ends
    assert json.loads((out / MANIFEST).read_text()) == {"command": "demo", "files": ["a.txt", "sub/b.txt"]}
    with pytest.raises(RuntimeError):
        with staged_folder(out, "demo") as stage:
            (stage / "c.txt").write_text("3")
            raise RuntimeError("crash in the middle")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a.txt", "sub"]  # the old result stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]                 # no temporary left


def test_only_folders_wholly_written_by_the_tool_are_replaced(tmp_path):
    from base.fileio import check_output_folder, folder_owner, staged_folder

    out = tmp_path / "out"
    with staged_folder(out, "simulate") as stage:
        (stage / "hardware.png").write_bytes(b"x")
    assert folder_owner(out) == "simulate"
    check_output_folder(out, "simulate")                       # its own output: may be replaced
    with pytest.raises(UserError, match="output of `avatargan simulate`"):
        check_output_folder(out, "verilog")                    # another command's: refused
    (out / "mine.txt").write_text("user file")
    assert folder_owner(out) is None
    with pytest.raises(UserError, match="avatargan did not write"):
        check_output_folder(out, "simulate")
    legacy = tmp_path / "legacy"                               # written before manifests existed
    legacy.mkdir()
    (legacy / "simulate.json").write_text("{}")
    assert folder_owner(legacy, lambda files: "simulate" if files == ["simulate.json"] else None) == "simulate"
    assert folder_owner(legacy) is None                       # without a recogniser: not the tool's


def test_sweep_removes_only_temporaries_of_dead_processes(tmp_path):
    import os
    import subprocess
    import sys

    from base.fileio import sweep_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".c.npz.tmp{dead}-abcd1234.npz").write_bytes(b"half")
    (tmp_path / f".c.npz.tmp{os.getpid()}-abcd1234.npz").write_bytes(b"mine, still writing")
    (tmp_path / f".d.tmp{dead}-zz").mkdir()
    (tmp_path / "c.npz").write_bytes(b"result")
    removed = sweep_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [f".c.npz.tmp{dead}-abcd1234.npz", f".d.tmp{dead}-zz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".c.npz.tmp{os.getpid()}-abcd1234.npz", "c.npz"]


def test_first_write_in_a_folder_sweeps_dead_temporaries(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    left = tmp_path / f".other.png.tmp{dead}-abcd1234.png"
    left.write_bytes(b"half")
    atomic_write(tmp_path / "a.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
