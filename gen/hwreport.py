"""The hardware cost report of a synthesis run: resources, Fmax, avatars/s, MAC utilization.

Inputs are the tools' own reports (yosys ``stat -json``, nextpnr ``--report`` JSON) and the
cycle model of the Generator; nothing is copied by hand. :func:`build_report` returns a dict
(written as ``report.json``) and :func:`render_markdown` the ``report.md`` text.
"""

from __future__ import annotations

import re

__all__ = ["useful_macs", "resources", "clocks", "critical_paths", "late_endpoint_groups", "build_report",
           "render_markdown"]

#: nextpnr utilization entries in the report, with the names used in the report.
RESOURCE_KEYS = [
    ("LUT4", "TRELLIS_COMB"),          # nextpnr's logic cells: LUT4s and carry-chain halves
    ("FF", "TRELLIS_FF"),
    ("DP16KD", "DP16KD"),
    ("MULT18X18D", "MULT18X18D"),
    ("ALU54B", "ALU54B"),
    ("LUTRAM", "TRELLIS_RAMW"),
    ("EHXPLLL", "EHXPLLL"),
    ("IO", "TRELLIS_IO"),
]


def useful_macs(channels, kernel: int = 4) -> int:
    """Multiplies of one plane (all valid taps, docs/NUMERICS.md): layer 1 is 1x1 -> 4x4 with stride 1,
    the others stride 2, pad 1, where an ``H``-wide input gives ``4·H − 2`` valid taps per dimension."""
    ch = list(channels)
    total = ch[0] * ch[1] * kernel * kernel
    size = kernel
    for ic, oc in zip(ch[1:-1], ch[2:]):
        taps = kernel * size - 2
        total += ic * oc * taps * taps
        size *= 2
    return total


def _module_stat(stat: dict) -> dict:
    """The cell counts of the whole design from a yosys ``stat -json`` document."""
    if "design" in stat and "num_cells_by_type" in stat["design"]:
        return stat["design"]["num_cells_by_type"]
    mods = stat.get("modules", {})
    if len(mods) == 1:
        return next(iter(mods.values())).get("num_cells_by_type", {})
    raise ValueError("yosys stat has no whole-design cell counts")


def resources(yosys_stat: dict, nextpnr_report: dict) -> dict:
    """Used/available per resource from nextpnr, plus yosys' cell counts after synthesis."""
    util = nextpnr_report["utilization"]
    out = {}
    for name, key in RESOURCE_KEYS:
        if key in util:
            used, avail = int(util[key]["used"]), int(util[key]["available"])
            out[name] = {"used": used, "available": avail, "percent": 100.0 * used / avail if avail else 0.0}
    cells = _module_stat(yosys_stat)
    out["yosys_cells"] = {k: int(v) for k, v in sorted(cells.items()) if not k.startswith("$")}
    return out


def _clean_clock(name: str) -> str:
    # nextpnr names global nets "$glbnet$<net>$TRELLIS_IO_IN" and the like.
    if name.startswith("$glbnet$"):
        name = name[len("$glbnet$"):]
    for suffix in ("$TRELLIS_IO_IN",):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def clocks(nextpnr_report: dict) -> dict:
    """Per clock: achieved Fmax (MHz), the constraint (MHz) and whether it is met."""
    out = {}
    for name, v in nextpnr_report.get("fmax", {}).items():
        achieved, target = float(v["achieved"]), float(v["constraint"])
        out[_clean_clock(name)] = {"fmax_mhz": achieved, "constraint_mhz": target, "met": achieved >= target}
    return out


def _clock_of(edge: str) -> str:
    # nextpnr names path ends "posedge $glbnet$clk" or "<async>".
    return _clean_clock(edge.split(" ", 1)[1]) if " " in edge else edge


def late_endpoint_groups(nextpnr_report: dict, threshold_ns: float, top: int = 12) -> list:
    """The signal families whose inputs the data reaches late: flip-flop and block inputs (nextpnr's
    timing endpoints) whose worst arrival time, the time after the clock edge at which the slowest
    path's data gets there (clock-to-out, logic and routing; the ``delay`` pair of each sink in
    nextpnr's ``--detailed-timing-report``, minimum and maximum), exceeds ``threshold_ns``.
    Endpoints are grouped by cell name and port with every run of digits read as ``#``
    (``mac.x_op17`` and ``x_op93`` are one family), latest family first, at most ``top``.

    Per family: ``pattern`` (``cell.port``), ``endpoints`` (how many are over the threshold),
    ``worst_ns``, ``worst_endpoint`` and ``worst_net`` (the net into it). The critical path names
    one path; this says which families stand between the design and the clock, so a change can fix
    a family at once. Empty when the report has no detailed net timings.
    """
    groups = {}
    for net in nextpnr_report.get("detailed_net_timings", []):
        for e in net.get("endpoints", []):
            arrival = float(e["delay"][-1])
            if arrival <= threshold_ns:
                continue
            end = f"{e.get('cell', '')}.{e.get('port', '')}"
            g = groups.setdefault(re.sub(r"\d+", "#", end), {"endpoints": 0, "worst_ns": 0.0})
            g["endpoints"] += 1
            if arrival > g["worst_ns"]:
                g.update(worst_ns=arrival, worst_endpoint=end, worst_net=net.get("net", ""))
    out = [{"pattern": k, "endpoints": g["endpoints"], "worst_ns": round(g["worst_ns"], 3),
            "worst_endpoint": g["worst_endpoint"], "worst_net": g["worst_net"]} for k, g in groups.items()]
    return sorted(out, key=lambda g: (-g["worst_ns"], g["pattern"]))[:top]


def critical_paths(nextpnr_report: dict) -> list:
    """A summary of each clock's critical path (paths inside one clock domain only).

    Per path: ``clock``, ``start`` and ``end`` (cell and port), ``delay_ns`` (clock-to-out, logic,
    routing and setup), ``logic_ns``, ``routing_ns`` (``logic_ns`` is everything but routing, as nextpnr
    counts it: clock-to-out, cells, setup), ``logic_levels`` (cells passed through) and
    ``longest_route`` (the hop with the most routing delay: ``net``, ``delay_ns``, ``from`` and ``to``
    tile locations). Where nextpnr wrote no path (no ``--report`` path list), the list is empty.
    """
    out = []
    for cp in nextpnr_report.get("critical_paths", []):
        src, dst = cp.get("from", ""), cp.get("to", "")
        path = cp.get("path", [])
        if not path or src != dst or "<async>" in src:
            continue
        routes = [e for e in path if e.get("type") == "routing"]
        longest = max(routes, key=lambda e: e["delay"]) if routes else None
        out.append({
            "clock": _clock_of(src),
            "start": f"{path[0]['from']['cell']}.{path[0]['from']['port']}",
            "end": f"{path[-1]['to']['cell']}.{path[-1]['to']['port']}",
            "delay_ns": round(sum(float(e["delay"]) for e in path), 3),
            "logic_ns": round(sum(float(e["delay"]) for e in path if e.get("type") != "routing"), 3),
            "routing_ns": round(sum(float(e["delay"]) for e in routes), 3),
            "logic_levels": sum(e.get("type") == "logic" for e in path),
            "longest_route": None if longest is None else {
                "net": longest.get("net", ""), "delay_ns": round(float(longest["delay"]), 3),
                "from": list(longest["from"].get("loc", [])), "to": list(longest["to"].get("loc", []))},
        })
    return out


def build_report(*, yosys_stat: dict, nextpnr_report: dict, device, top: str, freq_mhz: float,
                 channels, lanes: int | None, cycles_per_avatar: int | None, seconds: dict,
                 dsp_mode: str, model: str, machine: str, clock_mhz: float | None = None) -> dict:
    """Assemble ``report.json``.

    ``freq_mhz`` is nextpnr's constraint; ``clock_mhz`` the engine clock the bitstream runs at
    (default the same; lower when nextpnr was given a higher target than the PLL makes).

    The engine clock is the slowest clock whose constraint is ``freq_mhz`` (the core clock; the
    board's 25 MHz input has its own LPF constraint). Avatars/s are RGB avatars (three planes)
    at that Fmax; the MAC utilization is useful multiplies per avatar over ``lanes · cycles``.
    """
    res = resources(yosys_stat, nextpnr_report)
    clk = clocks(nextpnr_report)
    if not clk:
        raise ValueError("nextpnr reported no clock")
    engine = [n for n, c in clk.items() if abs(c["constraint_mhz"] - freq_mhz) < 0.01 * freq_mhz] or list(clk)
    engine_clock = min(engine, key=lambda n: clk[n]["fmax_mhz"])
    fmax = clk[engine_clock]["fmax_mhz"]
    macs = 3 * useful_macs(channels)
    perf = {"engine_clock": engine_clock, "fmax_mhz": fmax, "useful_macs_per_avatar": macs,
            "lanes": lanes, "cycles_per_avatar": cycles_per_avatar}
    if cycles_per_avatar:
        perf["avatars_per_s_at_fmax"] = fmax * 1e6 / cycles_per_avatar
        perf["avatars_per_s_at_constraint"] = min(fmax, freq_mhz) * 1e6 / cycles_per_avatar
        # The bitstream runs the engine at the constraint (the PLL's frequency): its figure, if met.
        clock = freq_mhz if clock_mhz is None else clock_mhz
        met = fmax >= clock
        perf["bitstream_clock_mhz"] = clock
        perf["bitstream_meets_timing"] = met
        perf["avatars_per_s_at_bitstream_clock"] = clock * 1e6 / cycles_per_avatar if met else None
        if lanes:
            perf["mac_utilization"] = macs / (lanes * cycles_per_avatar)
    period_ns = 1000.0 / freq_mhz
    return {
        "format": "avatargan-hwreport", "format_version": 1,
        "device": {"key": device.key, "part": device.part, "package": device.package, "speed": device.speed},
        "top": top, "model": model, "channels": list(channels), "dsp_mode": dsp_mode,
        "freq_constraint_mhz": freq_mhz, "resources": res, "clocks": clk, "performance": perf,
        "critical_paths": critical_paths(nextpnr_report),
        # threshold: the period of the clock nextpnr was given (what a family must get under)
        "late_endpoints": {"threshold_ns": round(period_ns, 3),
                           "groups": late_endpoint_groups(nextpnr_report, period_ns)},
        "tool_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_seconds": round(sum(seconds.values()), 1), "machine": machine, "yosys_command": None,
    }


def render_markdown(rep: dict) -> str:
    """``report.md`` for a :func:`build_report` dict."""
    d = rep["device"]
    lines = [
        f"# Hardware report: {d['part']} ({d['package']}, speed {d['speed']})", "",
        f"Model `{rep['model']}`, channels {' → '.join(map(str, rep['channels']))}, top `{rep['top']}`, "
        f"DSP mode `{rep['dsp_mode']}`, clock constraint {rep['freq_constraint_mhz']:g} MHz"
        + (f", yosys `{rep['yosys_command']}`" if rep.get("yosys_command") else "")
        + ".", "",
        *([f"nextpnr `{rep['nextpnr_command']}`.", ""] if rep.get("nextpnr_command") else []),
        "## Resources (nextpnr, after place and route)", "",
        "| resource | used | available | % |", "|---|---:|---:|---:|",
    ]
    for name, r in rep["resources"].items():
        if name == "yosys_cells":
            continue
        lines.append(f"| {name} | {r['used']} | {r['available']} | {r['percent']:.1f} |")
    cells = rep["resources"]["yosys_cells"]
    lines += ["", "LUT4 counts nextpnr's TRELLIS_COMB cells (LUT4s and carry halves). yosys cells after "
              "`synth_ecp5`: " + ", ".join(f"{k} {v}" for k, v in cells.items()) + ".", ""]
    bo = rep.get("bram_output_registers")
    if bo is not None:
        skipped = ", ".join(f"{n} {why}" for why, n in bo["skipped"].items()) or "none"
        lines += [f"Block-RAM output registers (gen/bramreg.py): {bo['ports']} DP16KD read ports of "
                  f"{bo['dp16kd']} use OUTREG, {bo['flip_flops']} flip-flops absorbed; ports left "
                  f"unregistered: {skipped}; read ports without read-during-write bypass logic: "
                  f"{rep.get('relaxed_read_ports', 0)}.", ""]
    fp = rep.get("floorplan")
    if fp:
        gap = fp["reserved_columns"]
        lines += [f"Floorplan (gen/floorplan.py): {fp['lanes']} lane multipliers in {fp['dsp_columns']} DSP "
                  f"columns and {fp['weight_rams']} weight RAMs pinned, each RAM within "
                  f"{fp['max_ram_to_lane_columns']} columns of its lanes"
                  + (f" and {fp['max_ram_to_lane_rows']} tile rows of the farthest of them"
                     if "max_ram_to_lane_rows" in fp else "")
                  + (f"; columns {gap[0]}–{gap[1]} ({fp['reserved_ebr_sites']} EBR sites) left to the "
                     f"{fp['other_rams']} other block RAMs." if gap else "."), ""]
    lines += ["## Clocks", "", "| clock | Fmax (MHz) | constraint (MHz) | met |", "|---|---:|---:|---|"]
    for name, c in rep["clocks"].items():
        lines.append(f"| `{name}` | {c['fmax_mhz']:.1f} | {c['constraint_mhz']:g} | {'yes' if c['met'] else 'NO'} |")
    bit = rep["performance"].get("bitstream_clock_mhz")
    for name, c in rep["clocks"].items():
        if name == rep["performance"]["engine_clock"] and bit is not None and (
                bit < c["constraint_mhz"] or rep.get("pll_after_route")):
            lines += ["", f"nextpnr was given {c['constraint_mhz']:g} MHz for `{name}`; the bitstream runs it at "
                      f"{bit:g} MHz, which the routed paths ({c['fmax_mhz']:.1f} MHz) "
                      + ("meet." if c["fmax_mhz"] >= bit else "do **not** meet.")]
            par = rep.get("pll_after_route")
            if par:
                words = ", ".join(f"{k} {v}" for k, v in par["words"].items())
                lines[-1] += (f" The PLL was made for {par['routed_with_mhz']:g} MHz and its divisors set after "
                              f"routing to the fastest clock at or below the routed Fmax (`--freq fmax`; "
                              f"configuration words {words}).")
            continue
        if not c["met"]:
            lines += ["", f"**Timing not met for `{name}`**: the design is clocked at {c['constraint_mhz']:g} MHz "
                      f"but its paths allow {c['fmax_mhz']:.1f} MHz; a bitstream for a board needs "
                      f"`--freq` at or below the Fmax."]
    for cp in rep.get("critical_paths", []):
        lr = cp["longest_route"]
        lines += ["", f"Critical path of `{cp['clock']}`: {cp['delay_ns']:.2f} ns ({cp['logic_ns']:.2f} ns in cells: "
                  f"clock-to-out, {cp['logic_levels']} logic levels, setup; {cp['routing_ns']:.2f} ns routing), from `{cp['start']}` "
                  f"to `{cp['end']}`"
                  + (f"; longest hop {lr['delay_ns']:.2f} ns on net `{lr['net']}` (tile {tuple(lr['from'])} → "
                     f"{tuple(lr['to'])})" if lr else "") + "."]
    le = rep.get("late_endpoints", {})
    if le.get("groups"):
        lines += ["", f"Late endpoints, by signal family (digits read as `#`): flip-flop and block inputs whose "
                  f"data arrives more than {le['threshold_ns']:g} ns after the clock edge (the period of the "
                  f"{rep['freq_constraint_mhz']:g} MHz target; arrival = clock-to-out, logic and routing of the "
                  f"slowest path into it, from nextpnr's detailed timing report):", "",
                  "| family | endpoints over | worst arrival (ns) | worst endpoint | net into it |",
                  "|---|---:|---:|---|---|"]
        lines += [f"| `{g['pattern']}` | {g['endpoints']} | {g['worst_ns']:.2f} | `{g['worst_endpoint']}` | "
                  f"`{g['worst_net']}` |" for g in le["groups"]]
    p = rep["performance"]
    lines += ["", "## Throughput (engine clock, cycle model)", "",
              f"- engine clock `{p['engine_clock']}`: Fmax {p['fmax_mhz']:.1f} MHz",
              f"- useful multiplies per RGB avatar: {p['useful_macs_per_avatar']:,}"]
    if p.get("lanes"):
        lines.append(f"- MAC lanes: {p['lanes']}")
    if p.get("cycles_per_avatar"):
        if "bitstream_clock_mhz" in p:
            lines.append(f"- **RGB avatars/s at the bitstream's {p['bitstream_clock_mhz']:g} MHz clock: "
                         f"{p['avatars_per_s_at_bitstream_clock']:,.0f}** (meets timing)"
                         if p["bitstream_meets_timing"] else
                         f"- the bitstream's {p['bitstream_clock_mhz']:g} MHz clock does **not** meet timing: "
                         f"no avatars/s at that clock; rebuild with `--freq-from` this report")
        lines += [f"- cycles per RGB avatar: {p['cycles_per_avatar']:,}",
                  f"- RGB avatars/s at Fmax: {p['avatars_per_s_at_fmax']:,.0f} "
                  f"(at the {rep['freq_constraint_mhz']:g} MHz constraint or Fmax if lower: "
                  f"{p['avatars_per_s_at_constraint']:,.0f})"]
        if "mac_utilization" in p:
            lines.append(f"- MAC utilization: {100 * p['mac_utilization']:.1f} %")
    t = rep["tool_seconds"]
    lines += ["", "## Flow", "",
              "- wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
              + f"; total {rep['total_seconds']:.0f} s on {rep['machine']}", ""]
    return "\n".join(lines)
