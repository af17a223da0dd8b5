"""Block-RAM output registers for the ECP5 (see also :func:`gen.ilpatch.relax_read_collisions`).

yosys maps Amaranth memories to ``DP16KD`` cells with ``REGMODE_x = "NOREG"`` and leaves the register
that the design puts after the read data as ordinary ``TRELLIS_FF`` cells (yosys has no rule for the
ECP5 block RAM output register). A DP16KD without its output register has a clock-to-output of about
5.8 ns on the -6 speed grade, most of a 150 MHz cycle, and its data must then be routed to flip-flops
elsewhere. With ``REGMODE_x = "OUTREG"`` the block RAM delivers the same data one cycle later from its
own register, which nextpnr times with the short registered clock-to-output.

:func:`absorb_output_registers` rewrites the yosys JSON netlist. A port ``x`` (A or B) of a DP16KD is
converted only when all of these hold, so the function of the design is unchanged:

* the port has ``REGMODE_x = "NOREG"``, output clock enable ``OCEx`` tied to 1 and ``RSTx`` tied to 0;
* every output bit ``DOx0..17`` that is used drives exactly one load, the ``DI`` input of a
  ``TRELLIS_FF``;
* each of those flip-flops is clocked by the DP16KD's ``CLKx`` net on the same edge, has no clock
  enable (``CEMUX = "1"``) and no set/reset (``LSR`` unconnected or tied to 0), and ``GSR`` disabled.

Then ``REGMODE_x`` becomes ``"OUTREG"``, each ``DOxk`` is connected to its flip-flop's ``Q`` net and
the flip-flops are removed. In the 36-bit pseudo-dual-port shape (``DATA_WIDTH = 36``: port A
writes, port B reads, the read word is ``{DOB, DOA}``) the two ports are one read: it is converted only
as a whole, when ``CLKA`` and ``CLKB`` are the same clock and both resets are tied to 0; both
``REGMODE_A`` and ``REGMODE_B`` become ``"OUTREG"`` (as Lattice's tools set them for a ``PDPW16KD``
with ``REGMODE = "OUTREG"``) and ``OCEA`` is tied to 1 like ``OCEB``.

Power-up values differ (the flip-flop's ``REGSET`` against the block RAM register's zero), which
the Generator never depends on: every pipeline stage carries a valid bit.
"""

from __future__ import annotations

__all__ = ["absorb_output_registers"]


_PORTS = ("A", "B")


def _is_const(bits, value: str) -> bool:
    return bits is not None and len(bits) == 1 and bits[0] == value


def _width(param) -> int:
    try:
        return int(param, 2) if isinstance(param, str) else int(param)
    except (TypeError, ValueError):
        return -1


def _top_module(netlist: dict) -> dict:
    tops = [m for m in netlist.get("modules", {}).values()
            if _width(m.get("attributes", {}).get("top", "0")) > 0]
    if len(tops) != 1:
        raise ValueError(f"expected one top module in the netlist, found {len(tops)}")
    return tops[0]


def absorb_output_registers(netlist: dict) -> dict:
    """Rewrite ``netlist`` (yosys ``write_json`` form, changed in place) as the module text says.

    Returns
    -------
    dict
        ``ports`` (DP16KD ports converted), ``flip_flops`` (flip-flops removed), ``dp16kd`` (DP16KD
        cells), ``skipped`` (used ports left as they were, with the reason as key).
    """
    cells = _top_module(netlist)["cells"]
    # Loads of every net bit: (cell name, port name).
    loads: dict = {}
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c.get("connections", {}).items():
            if dirs.get(port, "input") != "output":
                for b in bits:
                    if isinstance(b, int):
                        loads.setdefault(b, []).append((name, port))

    stats = {"ports": 0, "flip_flops": 0, "dp16kd": 0, "skipped": {}}

    def skip(reason):
        stats["skipped"][reason] = stats["skipped"].get(reason, 0) + 1

    def plain_ffs(used, clk, inverted):
        """(pin, flip-flop, Q bits) for every used output, or None unless each drives one plain FF."""
        plan = []
        for pin, bit in used:
            ls = loads[bit]
            if len(ls) != 1 or ls[0][1] != "DI" or cells[ls[0][0]].get("type") != "TRELLIS_FF":
                return None
            fp, fc = cells[ls[0][0]].get("parameters", {}), cells[ls[0][0]].get("connections", {})
            if (fc.get("CLK") != clk or (fp.get("CLKMUX", "CLK").strip() == "INV") != inverted
                    or fp.get("CEMUX", "1").strip() != "1"
                    or not (fc.get("LSR") is None or _is_const(fc.get("LSR"), "0"))
                    or fp.get("GSR", "DISABLED").strip() != "DISABLED"):
                return None
            plan.append((pin, ls[0][0], fc["Q"]))
        return plan

    remove = []
    for name, c in list(cells.items()):
        if c.get("type") != "DP16KD":
            continue
        stats["dp16kd"] += 1
        params, conn = c["parameters"], c["connections"]
        pdp = _width(params.get("DATA_WIDTH_A")) == 36 or _width(params.get("DATA_WIDTH_B")) == 36
        # One read = the output pins one register setting covers: each port alone, or in the 36-bit
        # pseudo-dual-port shape both ports' pins (the read data is {DOB, DOA}, read port B).
        for group in ([_PORTS] if pdp else [(x,) for x in _PORTS]):
            used = [(f"DO{x}{k}", conn[f"DO{x}{k}"][0]) for x in group for k in range(18)
                    if conn.get(f"DO{x}{k}") and isinstance(conn[f"DO{x}{k}"][0], int)
                    and loads.get(conn[f"DO{x}{k}"][0])]
            if not used:
                continue
            rd = group[-1]                                   # the read port (B in the 36-bit shape)
            clk = conn.get(f"CLK{rd}")
            inverted = params.get(f"CLK{rd}MUX", f"CLK{rd}") == "INV"
            if any(params.get(f"REGMODE_{x}", "NOREG") != "NOREG" for x in group):
                skip("already registered")
                continue
            if not (_is_const(conn.get(f"OCE{rd}"), "1")
                    and all(_is_const(conn.get(f"RST{x}"), "0") for x in group)):
                skip("output clock enable or reset in use")
                continue
            if any(conn.get(f"CLK{x}") != clk or (params.get(f"CLK{x}MUX", f"CLK{x}") == "INV") != inverted
                   for x in group):
                skip("two clocks")
                continue
            plan = plain_ffs(used, clk, inverted)
            if plan is None:
                skip("a used output does not drive exactly one plain flip-flop")
                continue
            for pin, ff_name, q in plan:
                conn[pin] = list(q)
                remove.append(ff_name)
            for x in group:
                params[f"REGMODE_{x}"] = "OUTREG"
                conn[f"OCE{x}"] = ["1"]
            stats["ports"] += 1
            stats["flip_flops"] += len(plan)
    for ff_name in remove:
        del cells[ff_name]
    return stats
