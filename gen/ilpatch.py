"""Adjustments to the RTLIL that Amaranth writes, made before yosys reads it (synthesis only).

Both act only where the design asked for them with an attribute, and neither changes what the
design computes:

* :func:`relax_read_collisions` (memory attribute ``no_rw_check``). Amaranth's read ports return the old
  word when the same address is written in the same cycle. A DP16KD cannot do that across its two ports,
  so yosys builds bypass logic (address comparators, a copy of the write data and a multiplexer after
  the RAM output) for every such memory. The engine never uses data read in a cycle that writes the same
  address (a buffer is written while the previous layer runs and read while its own layer runs; z is
  written while the engine is idle), says so with the memory attribute ``no_rw_check``, and this
  function marks the read ports of those memories "collision gives undefined data"
  (``COLLISION_X_MASK``), which removes the bypass logic. (yosys 0.5x does not act on the attribute
  itself for the ECP5 block RAMs: measured, the bypass logic stays.)

* :func:`keep_registers` (signal attribute ``keep``). The engine replicates a few registers with
  a large fan-out (the layer number, the accumulators' first-step flag) so that each copy drives a
  part of the chip. yosys merges flip-flops with identical inputs (``opt_merge``) and would undo the
  copies; it leaves cells with the ``keep`` attribute alone, so this function puts ``keep`` on
  every flip-flop cell whose output is a ``keep`` signal (Amaranth puts signal attributes on the
  wire only).
"""

from __future__ import annotations

import re

__all__ = ["relax_read_collisions", "keep_registers"]


def _rewrite_marked_cells(rtlil: str, marked_re: str, cell_re: str, edit) -> tuple[str, int]:
    """In each module that declares names matching ``marked_re`` (group 1), replace every cell matching
    ``cell_re`` by ``edit(match, marked)``, which returns the new text and a count; sum the counts."""
    out, count = [], 0
    for chunk in re.split(r"(?m)^(?=module )", rtlil):
        marked = set(re.findall(marked_re, chunk, re.M))
        if marked:
            def fix(cell):
                nonlocal count
                new, n = edit(cell, marked)
                count += n
                return new
            chunk = re.sub(cell_re, fix, chunk)
        out.append(chunk)
    return "".join(out), count


def relax_read_collisions(rtlil: str) -> tuple[str, int]:
    """Set ``COLLISION_X_MASK`` to all ones on every ``$memrd_v2`` of a ``no_rw_check`` memory.

    Returns the new RTLIL text and the number of read ports changed.
    """
    def edit(cell, marked):
        memid = re.search(r'parameter \\MEMID "\\\\(\S+)"', cell.group(0))
        if not memid or "\\" + memid.group(1) not in marked:
            return cell.group(0), 0
        return re.subn(r"(parameter \\COLLISION_X_MASK )(\d+)'([01]+)",
                       lambda g: f"{g.group(1)}{g.group(2)}'{'1' * int(g.group(2))}", cell.group(0))

    return _rewrite_marked_cells(rtlil, r"attribute \\no_rw_check 1\s*\n\s*memory [^\n]*? (\S+)\s*$",
                                 r"(?ms)^\s*cell \$memrd_v2 .*?^\s*end$", edit)


def keep_registers(rtlil: str) -> tuple[str, int]:
    """Add ``attribute \\keep 1`` to every flip-flop cell (``$dff``, ``$adff``, ...) whose ``Q`` is a
    wire with ``keep``. Returns the new RTLIL text and the number of cells marked."""
    def edit(cell, keep):
        q = re.search(r"connect \\Q (\\\S+)", cell.group(0))
        if not q or q.group(1) not in keep:
            return cell.group(0), 0
        return cell.group(1) + "attribute \\keep 1\n" + cell.group(1) + cell.group(2), 1

    return _rewrite_marked_cells(rtlil, r"attribute \\keep 1\s*\n\s*wire [^\n]*? (\\\S+)\s*$",
                                 r"(?ms)^( *)(cell \$\w*dff\w* .*?^\s*end)$", edit)
