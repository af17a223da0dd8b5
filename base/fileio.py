"""The output policy of every command, written once (README, "What the commands write").

* **Whole or nothing.** A file is written to a temporary file beside the target and renamed over
  it only when complete (:func:`atomic_path`, :func:`atomic_write`); a folder of results is built
  in a temporary folder beside the target and swapped in when complete (:func:`staged_folder`).
  A crash, Ctrl-C, kill -9 or full disk never leaves a half-written result.
* **An output is never an input.** :func:`check_output_file` and :func:`check_output_folder`
  refuse an output that is (or, for a folder, holds) one of the command's inputs, and an output
  file name that is an existing folder.
* **Only the tool's own folders are replaced.** A folder is replaced only when everything in it
  was written by this tool: it carries a manifest (:data:`MANIFEST`) listing the files the tool
  wrote there, and nothing else is in it. Otherwise one line says why and nothing is touched.
* **Faults are one line.** ``ENOSPC``, ``EACCES``, ``EISDIR``, ``EROFS`` (any ``OSError``) while
  writing become a :class:`UserError` naming the path (:func:`write_error`).
* **Temporaries are swept.** Temporary names carry the writer's process id
  (``.NAME.tmpPID-XXXX``); those of processes that no longer run are removed by the next process
  that writes in that folder (:func:`sweep_temporaries`).
* **A run folder is locked** while a command writes it (:func:`folder_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

from base.errors import UserError

#: The manifest a folder-writing command leaves in its output folder: which command wrote the
#: folder and every file it wrote there (relative POSIX paths).
MANIFEST = ".avatargan-manifest.json"
#: The lock file of a run folder (see :func:`folder_lock`).
LOCK = ".avatargan.lock"

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EROFS: "read-only file system",
}

#: ``.NAME.tmpPID-RANDOM[SUFFIX]``: a temporary of :func:`atomic_path` or :func:`staged_folder`.
_TMP = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)-[A-Za-z0-9_]+(?:\.[A-Za-z0-9]+)?$")


def write_error(path, e: OSError) -> UserError:
    """One line for an ``OSError`` met while writing ``path`` (the reason in words, then errno's)."""
    reason = _REASONS.get(e.errno) or e.strerror or str(e)
    return UserError(f"cannot write {path}: {reason}")


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed; raise :class:`UserError` if that is impossible."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create folder {p}: {_REASONS.get(e.errno) or e.strerror or e}") from None
    if not os.access(p, os.W_OK):
        raise UserError(f"folder {p} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sweep_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporaries in ``folder`` left by processes that no longer run; return them.

    ``name`` limits the sweep to temporaries of that target name. Temporaries of running
    processes (another command writing beside us) are left alone.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP.match(p.name)
        if not m or (name is not None and m["name"] != name) or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


#: Folders this process has swept already: each is listed once, not once per file written
#: (writing N files into one folder stays O(N)).
_SWEPT: set[str] = set()


def _sweep_once(folder) -> None:
    key = os.path.realpath(folder)
    if key not in _SWEPT:
        sweep_temporaries(folder)
        _SWEPT.add(key)


def _tmp_prefix(name: str) -> str:
    return f".{name}.tmp{os.getpid()}-"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it to ``target``.

    ``suffix`` defaults to the target's suffix, so libraries that pick a format from the file
    name (Pillow, ``numpy.savez``) see the right one. On an exception the temporary file is
    removed and ``target`` is left as it was; an ``OSError`` becomes a one-line
    :class:`UserError` naming ``target``. Temporaries of dead processes in the folder are swept
    at this process's first write there.
    """
    target = Path(target)
    folder = ensure_dir(target.parent if str(target.parent) else ".")
    if target.is_dir():
        raise UserError(f"cannot write {target}: it is a folder")
    _sweep_once(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target.name), suffix=suffix or target.suffix, dir=folder)
    except OSError as e:
        raise write_error(target, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file 0600; give the result the permissions a plain open() would.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise write_error(target, e) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write(target: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``target`` atomically; return the path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(target)


# --------------------------------------------------------------------------- outputs vs inputs

def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.realpath(a)) == Path(os.path.realpath(b))


def check_output_file(path, inputs: Iterable = (), flag: str = "--out") -> Path:
    """Check an output file name before any work: not a folder, not one of ``inputs``."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {p} is a folder; give a file name")
    for inp in inputs:
        if inp is not None and p.exists() and Path(inp).exists() and _same(p, Path(inp)):
            raise UserError(f"{flag} {p} is the input {inp}; write the result to another file")
    return p


def _files(folder: Path) -> list[str]:
    """Every non-folder entry under ``folder``, as sorted relative POSIX paths."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [(rel / f).as_posix() for f in files]
        out += [(rel / d).as_posix() for d in dirs if (Path(root) / d).is_symlink()]
    return sorted(out)


def folder_owner(folder, legacy: Callable[[list[str]], str | None] | None = None) -> str | None:
    """The command that wrote everything in ``folder``, ``""`` if it is empty, else ``None``.

    A folder is the tool's when its :data:`MANIFEST` lists every file in it; ``legacy`` may
    recognise a folder written before manifests existed (it gets the file list and returns the
    command name or ``None``).
    """
    folder = Path(folder)
    files = _files(folder)
    if not files:
        return ""
    if MANIFEST in files:
        try:
            man = json.loads((folder / MANIFEST).read_text("utf-8"))
            listed, command = set(man["files"]), str(man["command"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return command if set(files) - {MANIFEST} <= listed else None
    return legacy(files) if legacy else None


def legacy_owner(command: str, marker: str, own: str) -> Callable[[list[str]], str | None]:
    """The ``legacy`` test of :func:`check_output_folder` / :func:`staged_folder` for a folder that
    ``command`` wrote before manifests: it holds ``marker`` and only files whose relative path matches
    the regular expression ``own`` (the command's own files)."""
    rx = re.compile(own)

    def legacy(files: list[str]) -> str | None:
        return command if marker in files and all(rx.match(f) for f in files) else None

    return legacy


def check_output_folder(out, command: str, inputs: Iterable = (), legacy=None, accept: Iterable[str] = (),
                        flag: str = "--out") -> Path:
    """Check an output folder before any work (see :func:`staged_folder`); return it as a Path."""
    out = Path(out)
    real = Path(os.path.realpath(out))
    for inp in inputs:
        if inp is None:
            continue
        ri = Path(os.path.realpath(inp))
        if ri == real or real in ri.parents:
            raise UserError(f"{flag} {out} holds the input {inp}; choose another output folder")
    if not out.exists():
        if out.is_symlink():
            raise UserError(f"{flag} {out} is a broken symbolic link")
        return out
    if not out.is_dir():
        raise UserError(f"{flag} {out} exists and is not a folder")
    owner = folder_owner(out, legacy)
    if owner is None:
        raise UserError(f"{flag} {out} holds files that avatargan did not write; refusing to replace it "
                        "(choose a new or empty folder)")
    if owner and owner != command and owner not in set(accept):
        raise UserError(f"{flag} {out} holds the output of `avatargan {owner}`, not of `avatargan {command}`; "
                        "refusing to replace it (choose a new or empty folder)")
    return out


def write_manifest(folder, command: str) -> Path:
    """Record in ``folder`` that ``command`` wrote every file now in it (:data:`MANIFEST`)."""
    files = [f for f in _files(Path(folder)) if f != MANIFEST]
    return atomic_write(Path(folder) / MANIFEST, json.dumps({"command": command, "files": files}, indent=1) + "\n")


@contextlib.contextmanager
def staged_folder(out, command: str, inputs: Iterable = (), legacy=None, accept: Iterable[str] = (),
                  flag: str = "--out") -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out``; on success it replaces ``out`` whole.

    ``out`` must be missing, empty, or the tool's own output of ``command`` (or of a command in
    ``accept``), and must not hold any of ``inputs`` (:func:`check_output_folder`; checked
    again just before the swap). On success a :data:`MANIFEST` listing every file is added, the
    old folder is moved aside, the new one renamed into place and the old one deleted. On any
    failure the temporary folder is deleted and ``out`` is left as it was.
    """
    inputs = list(inputs)
    out = check_output_folder(out, command, inputs, legacy, accept, flag)
    real = Path(os.path.realpath(out))
    parent = ensure_dir(real.parent)
    sweep_temporaries(parent, real.name)
    try:
        stage = Path(tempfile.mkdtemp(prefix=_tmp_prefix(real.name), dir=parent))
    except OSError as e:
        raise write_error(out, e) from None
    old = None
    try:
        os.chmod(stage, 0o777 & ~_umask())
        yield stage
        write_manifest(stage, command)
        check_output_folder(out, command, inputs, legacy, accept, flag)
        if real.exists():
            old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(real.name), dir=parent))
            os.replace(real, old / "old")
        try:
            os.replace(stage, real)
        except OSError:
            if old is not None:
                os.replace(old / "old", real)
            raise
    except OSError as e:
        raise write_error(out, e) from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- run-folder lock

@contextlib.contextmanager
def folder_lock(folder, what: str = "command") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (its :data:`LOCK` file) for the ``with`` block.

    A second process that asks for the same folder gets a one-line :class:`UserError` at once.
    The lock dies with its process (``flock``), so a killed run never leaves the folder locked;
    the lock file is removed on release (a taker checks that the file it locked is still the
    one in the folder, so the removal cannot let two holders in).
    """
    import fcntl

    folder = ensure_dir(folder)
    path = folder / LOCK
    while True:
        try:
            f = open(path, "a+")
        except OSError as e:
            raise write_error(path, e) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise UserError(f"{folder} is in use by another {what} (process {holder}); wait for it to "
                            "finish or choose another folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()  # the holder released and removed it meanwhile: take the new file
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield folder
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        f.close()


def sha256_file(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (a model's source checkpoint, a dataset)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
