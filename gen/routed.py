"""What a routed bitstream does: the clock it runs at and the avatars/s that follow.

A synthesis run (``avatargan synth``) writes ``report.json``; the reports of the shipped
configurations are committed under ``docs/reports/``. The figure a user should see for a design
is the one of its routed bitstream at that bitstream's own clock (the PLL frequency it was built
for), and only if that clock meets timing — never a clock the design was not routed at.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["REPORTS", "bitstream_clock", "find_report", "routed_line"]

#: The committed hardware reports (docs/reports/*.json).
REPORTS = Path(__file__).resolve().parent.parent / "docs" / "reports"


def bitstream_clock(rep: dict) -> dict:
    """The engine clock of a report: ``{"mhz", "met", "fmax_mhz"}``; ``mhz`` is the bitstream's clock.

    The bitstream runs the engine at the clock constraint (the PLL's real frequency for the board
    top); ``met`` says whether the routed paths allow it (Fmax at or above it).
    """
    p = rep["performance"]
    clk = rep["clocks"][p["engine_clock"]]
    if "bitstream_clock_mhz" in p:        # the PLL's clock, which may be below nextpnr's target
        return {"mhz": float(p["bitstream_clock_mhz"]), "met": bool(p["bitstream_meets_timing"]),
                "fmax_mhz": float(clk["fmax_mhz"])}
    return {"mhz": float(clk["constraint_mhz"]), "met": bool(clk["met"]), "fmax_mhz": float(clk["fmax_mhz"])}


#: The tops whose reports give the Generator's own routed figure.
GENERATOR_TOPS = ("board", "generator")


def find_report(channels, lanes: int, device: str = "85F", folder=None, w_bits: int = 8) -> tuple[Path, dict] | None:
    """The committed report of a routed Generator (the host-driven board top or the bare core) with
    these channels, lanes, device and weight store (``w_bits``: 8-bit codes, or the index width of a
    codebook model, ``EnginePlan.w_bits``; reports without the field are of 8-bit stores), or None.
    Reports of other tops (the standalone video design) are not the Generator's figure.

    Among several, the one whose bitstream clock meets timing and is fastest.
    """
    folder = Path(folder) if folder is not None else REPORTS
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            rep = json.loads(path.read_text())
            if (rep.get("format") == "avatargan-hwreport" and list(rep["channels"]) == list(channels)
                    and rep["performance"].get("lanes") == lanes and rep["device"]["key"] == device
                    and rep.get("top") in GENERATOR_TOPS and rep.get("weight_index_bits", 8) == w_bits):
                found.append((path, rep))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not found:
        return None
    return max(found, key=lambda pr: (bitstream_clock(pr[1])["met"], bitstream_clock(pr[1])["mhz"]))


def routed_line(channels, lanes: int, cycles_per_avatar: int, device: str = "85F", folder=None,
                w_bits: int = 8) -> str:
    """One line for people: avatars/s of the routed bitstream at its clock, or why there is no figure
    (``w_bits``: the design's weight store, as :func:`find_report`)."""
    hit = find_report(channels, lanes, device, folder, w_bits)
    if hit is None:
        return (f"no routed LFE5U-{device} report for {lanes} lanes and these channels; "
                f"`avatargan synth` measures one")
    path, rep = hit
    clk = bitstream_clock(rep)
    name = path.name
    if not clk["met"]:
        return (f"routed on the LFE5U-{device} ({name}): Fmax {clk['fmax_mhz']:.1f} MHz, below the bitstream's "
                f"{clk['mhz']:g} MHz clock; rebuild with `avatargan synth --freq-from {os.path.relpath(path)}`")
    theirs = rep["performance"].get("cycles_per_avatar")
    if theirs != cycles_per_avatar:
        # Another engine's bitstream: its own figure, never this design's cycles at its clock (this
        # engine has not been routed, and its timing is not that one's).
        rate = clk["mhz"] * 1e6 / theirs if theirs else float("nan")
        return (f"no routed LFE5U-{device} report for this engine ({cycles_per_avatar} cycles per avatar); "
                f"the last one routed ({name}, an engine of {theirs} cycles) ran {rate:,.0f} RGB avatars/s "
                f"at its {clk['mhz']:g} MHz clock; `avatargan synth` measures this one")
    rate = clk["mhz"] * 1e6 / cycles_per_avatar
    return (f"routed on the LFE5U-{device} ({name}): {rate:,.0f} RGB avatars/s at the bitstream's "
            f"{clk['mhz']:g} MHz clock (meets timing; Fmax {clk['fmax_mhz']:.1f} MHz)")
