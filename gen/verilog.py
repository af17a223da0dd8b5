"""Elaborate the Generator top with a quantized model: Verilog, RTLIL, resource and cycle summary.

Files written into the output folder (each atomically):

``generator.v``
    Verilog of module ``generator`` with generic multipliers (``*``), for Verilator / cocotb.
``generator.il``
    RTLIL for yosys; by default with ECP5 ``MULT18X18D`` instances (input and output registers
    enabled), the same cycle timing as the Verilog.
``summary.json`` / ``summary.md``
    Lanes, memories (bits, expected DP16KD), multipliers, cycle model, utilization, elaboration times.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from amaranth.utils import ceil_log2

from base.contract import DEFAULT_LANES, PIXEL_BITS, PIXEL_WORD_BITS
from base.fileio import atomic_write, ensure_dir
from gen.cycles import cycle_model
from gen.routed import routed_line
from rtl.config import ACT_BITS, TANH_BITS, EnginePlan, plan_engine
from rtl.engine import BANK_DEPTH
from rtl.top import FIFO_DEPTH

#: DP16KD aspect ratios (depth, width) on the ECP5; 512×36 needs the pseudo-dual-port mode (one read, one write).
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: Block RAMs and 18×18 multipliers of the LFE5U-85F.
ECP5_85F = {"DP16KD": 208, "MULT18X18D": 156}
#: Memories smaller than this many bits are expected in LUT RAM or flip-flops, not block RAM.
LUTRAM_BITS = 1024


def dp16kd_count(width: int, depth: int) -> int:
    """Fewest DP16KD blocks that hold a ``width × depth`` memory with one aspect ratio for all blocks."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in DP16KD_SHAPES)


def memories(plan: EnginePlan, fifo_depth: int = FIFO_DEPTH) -> list[dict]:
    """Every memory of the design: ``name``, ``width``, ``depth``, ``bits``, ``dp16kd`` (0: LUT RAM/FFs)."""
    l0 = plan.layers[0]
    mems = [("weight ROM", plan.lanes * plan.w_bits, len(plan.weight_rom))]
    for l in range(1, len(plan.layers)):
        w, d = plan.buffer_shape(l)
        mems.append((f"layer {l + 1} input buffer", w, d))
    mems += [("Tanh ROM", PIXEL_BITS, 1 << TANH_BITS),
             ("z RAM", l0.icp * ACT_BITS, plan.nz // l0.icp),
             ("v ROM", l0.icp * ACT_BITS, 2 << ceil_log2(plan.nz // l0.icp)),
             ("pixel FIFO", PIXEL_WORD_BITS, fifo_depth - 1)]
    out = []
    for name, w, d in mems:
        bits = w * d
        if bits < LUTRAM_BITS:
            bram = 0
        elif name == "weight ROM" and d > BANK_DEPTH:       # banks of BANK_DEPTH words (rtl.engine)
            bram = math.ceil(d / BANK_DEPTH) * dp16kd_count(w, BANK_DEPTH)
        else:
            bram = dp16kd_count(w, d)
        out.append({"name": name, "width": w, "depth": d, "bits": bits, "dp16kd": bram})
    return out


def summary(plan: EnginePlan, header: dict) -> dict:
    """Resource estimate and cycle model of ``plan`` (no elaboration)."""
    mems = memories(plan)
    cm = cycle_model(header, plan.lanes)
    bram = sum(m["dp16kd"] for m in mems)
    return {
        "lanes": plan.lanes,
        "channels": list(header["channels"]),
        "layers": cm["layers"],
        "memories": mems,
        "rom_bits": sum(m["bits"] for m in mems if "ROM" in m["name"]),
        "weight_rom_bits": mems[0]["bits"],
        "dp16kd_expected": bram,
        "mult18x18d_expected": plan.lanes,
        "device": {"name": "LFE5U-85F", **ECP5_85F,
                   "dp16kd_percent": round(100 * bram / ECP5_85F["DP16KD"], 1),
                   "mult_percent": round(100 * plan.lanes / ECP5_85F["MULT18X18D"], 1)},
        "cycles_per_plane": cm["cycles_per_plane"],
        "cycles_per_avatar": cm["cycles_per_avatar"],
        "useful_macs_per_avatar": cm["useful_macs_per_avatar"],
        "mac_bound_cycles": cm["mac_bound_cycles"],
        "utilization": cm["utilization"],
        "weight_index_bits": plan.w_bits,
        "routed": routed_line(header["channels"], plan.lanes, cm["cycles_per_avatar"], w_bits=plan.w_bits),
    }


def summary_markdown(s: dict) -> str:
    """``summary.md`` text of :func:`summary` (plus elaboration times if present)."""
    lines = [f"# Generator core: {s['lanes']} lanes, channels {s['channels']}", "",
             "| layer | OCP × ICP (busy lanes) | taps per step | OCG | ICG | steps | gap |",
             "|---|---|---|---|---|---|---|"]
    for r in s["layers"]:
        lines.append(f"| {r['layer']} | {r['ocp']} × {r['icp']} ({r['busy_lanes']}) | {r['tp']} | {r['ocg']} "
                     f"| {r['icg']} | {r['steps']} | {r['gap']} |")
    lines += ["", "| memory | width × depth | bits | DP16KD (expected) |", "|---|---|---|---|"]
    for m in s["memories"]:
        lines.append(f"| {m['name']} | {m['width']} × {m['depth']} | {m['bits']} | "
                     f"{m['dp16kd'] if m['dp16kd'] else 'LUT RAM / FF'} |")
    d = s["device"]
    lines += ["",
              f"- DP16KD expected: **{s['dp16kd_expected']}** of {d['DP16KD']} ({d['dp16kd_percent']} %)",
              f"- MULT18X18D expected: **{s['mult18x18d_expected']}** of {d['MULT18X18D']} ({d['mult_percent']} %)",
              f"- ROM bits: {s['rom_bits']} (weights {s['weight_rom_bits']})",
              f"- cycles per plane: {s['cycles_per_plane']}; per RGB avatar: **{s['cycles_per_avatar']}**",
              f"- MAC bound: {s['mac_bound_cycles']} cycles ({s['useful_macs_per_avatar']} useful MACs / "
              f"{s['lanes']} lanes); utilization **{100 * s['utilization']:.2f} %**",
              f"- {s['routed']}"]
    if "elaboration_s" in s:
        lines.append("- elaboration: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["elaboration_s"].items()))
    return "\n".join(lines) + "\n"


def elaborate(model, lanes: int = DEFAULT_LANES, mult: str = "generic"):
    """The :class:`rtl.top.Generator` of ``model`` (a ``QModel``) on ``lanes`` lanes."""
    from rtl.top import Generator

    return Generator(plan_engine(model, lanes), mult=mult)


def write_design(model, out_dir, lanes: int = DEFAULT_LANES, il_mult: str = "ecp5", verilog: bool = True,
                 rtlil: bool = True, log=None) -> dict:
    """Write ``generator.v``, ``generator.il``, ``summary.json`` and ``summary.md`` into ``out_dir``.

    Parameters
    ----------
    model : golden.qmodel.QModel
    out_dir : path
    lanes : int
        ``P``.
    il_mult : str
        Multiplier kind in the RTLIL (``"ecp5"`` for synthesis, or ``"generic"``).
    verilog, rtlil : bool
        Which netlists to write.
    log : callable or None
        Called with one-line progress messages.

    Returns
    -------
    dict
        The summary (also written as JSON).
    """
    from amaranth.back import rtlil as rtlil_back
    from amaranth.back import verilog as verilog_back

    out = ensure_dir(out_dir)
    say = log or (lambda msg: None)
    plan = plan_engine(model, lanes)
    s = summary(plan, model.header)
    times = {}
    from rtl.top import Generator

    if rtlil:
        say(f"elaborating RTLIL ({il_mult} multipliers)")
        t = time.monotonic()
        text = rtlil_back.convert(Generator(plan, mult=il_mult), name="generator")
        times["rtlil"] = time.monotonic() - t
        atomic_write(Path(out) / "generator.il", text)
    if verilog:
        say("elaborating Verilog (generic multipliers)")
        t = time.monotonic()
        text = verilog_back.convert(Generator(plan, mult="generic"), name="generator")
        times["verilog"] = time.monotonic() - t
        atomic_write(Path(out) / "generator.v", text)
    s["elaboration_s"] = times
    s["il_mult"] = il_mult
    atomic_write(Path(out) / "summary.json", json.dumps(s, indent=2) + "\n")
    atomic_write(Path(out) / "summary.md", summary_markdown(s))
    return s
