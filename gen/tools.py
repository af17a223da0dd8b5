"""Where the pip-installed EDA tools (YoWASP yosys, nextpnr-ecp5, ecppack, ecppll) are."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from base.errors import UserError

__all__ = ["tool_path"]


def tool_path(name: str) -> str:
    """The executable ``name``: next to the running Python first (a virtualenv), then on PATH.

    Raises
    ------
    UserError
        If the tool is not installed.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise UserError(f"{name} not found (install the project's dependencies: pip install -e .)")
