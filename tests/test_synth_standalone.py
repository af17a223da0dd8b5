"""The standalone top for synthesis: its LPF against the ULX3S pinout and its ports, the ECP5 primitives
in its RTLIL, and ``avatargan synth --top standalone`` with the tools faked (the report's video part)."""

import json
import re
from pathlib import Path

import pytest

from avatargan.cli import main
from gen.cycles import cycles_per_avatar
from golden.random_models import random_qmodel
from tests.test_synth_lpf import parse_lpf

LPF = Path(__file__).resolve().parent.parent / "constraints" / "ulx3s_standalone.lpf"

#: ULX3S pins (amaranth-boards ulx3s.py, emard's ulx3s_v20.lpf): buttons FIRE1, FIRE2, UP, RIGHT; GPDI
#: positive pins of blue, green, red and the clock; the 25 MHz oscillator; the LEDs.
PINS = {
    "clk25": "G2", "btn_reset": "R1", "btn_pause": "T1", "btn_reseed": "R18", "btn_step": "H16",
    "gpdi_dp[0]": "A16", "gpdi_dp[1]": "A14", "gpdi_dp[2]": "A12", "gpdi_dp[3]": "A17",
    **{f"led[{i}]": p for i, p in enumerate("B2 C2 C1 D2 D1 E2 E1 H3".split())},
}


def _standalone(qm, lanes=2):
    from gen.pll import ecppll_config
    from rtl.standalone import Standalone, StandaloneLogic
    from rtl.top import Generator

    core = Generator.from_model(qm, lanes=lanes, mult="ecp5")
    return Standalone(StandaloneLogic(core, qm.nz), ecppll_config(25.0, 50.0),
                      ecppll_config(25.0, 125.0, clkout1_mhz=25.0))


@pytest.fixture(scope="module")
def rtlil_text():
    from amaranth.back import rtlil

    return rtlil.convert(_standalone(random_qmodel((4, 4, 4, 2, 1), seed=3)), name="standalone")


def test_lpf_matches_ulx3s_and_the_ports(rtlil_text):
    locate, iobuf, freq = parse_lpf(LPF.read_text())
    assert locate == PINS
    assert freq == {"clk25": 25.0}
    for port in locate:
        want = "LVCMOS33D" if port.startswith("gpdi") else "LVCMOS33"
        assert iobuf[port]["IO_TYPE"] == want, port
    top = rtlil_text[rtlil_text.index("module \\standalone\n"):]
    top = top[:top.index("\nend\n")]
    ports = {name: int(w) for w, name in re.findall(r"wire width (\d+) (?:input|output) \d+\s+\\(\S+)", top)}
    bits = {f"{n}[{i}]" if w > 1 else n for n, w in ports.items() for i in range(w)}
    assert bits == set(PINS)


def test_lpf_check_fails_on_a_wrong_pin():
    text = LPF.read_text().replace('"gpdi_dp[1]" SITE "A14"', '"gpdi_dp[1]" SITE "C14"')
    assert parse_lpf(text)[0] != PINS


def test_rtlil_has_the_ecp5_primitives(rtlil_text):
    """Two EHXPLLL (engine; 125 MHz shift + 25 MHz pixel) and four ODDRX1F (three TMDS lanes and the clock)."""
    cells = re.findall(r"^\s*cell \\(\w+) ", rtlil_text, re.M)
    assert cells.count("EHXPLLL") == 2 and cells.count("ODDRX1F") == 4


def test_video_pll_frequencies():
    from gen.pll import ecppll_config

    cfg = ecppll_config(25.0, 125.0, clkout1_mhz=25.0)
    p = cfg.params
    vco = 25.0 / p["CLKI_DIV"] * p["CLKFB_DIV"] * p["CLKOP_DIV"]
    assert vco / p["CLKOP_DIV"] == pytest.approx(125.0) and vco / p["CLKOS_DIV"] == pytest.approx(25.0)


def _fake_stage(shift_fmax=200.0, crossing_ns=2.0):
    """gen.synth._run_stage stand-in: nextpnr reports the engine, pixel and shift clocks and one
    pixel -> shift path (no tools run)."""
    def stage(name, cmd, cwd, log, bar):
        util = {k: {"used": u, "available": a} for k, u, a in
                [("TRELLIS_COMB", 1000, 83640), ("TRELLIS_FF", 500, 83640), ("DP16KD", 9, 208),
                 ("MULT18X18D", 5, 156), ("EHXPLLL", 2, 4), ("TRELLIS_IO", 17, 365)]}
        pnr = {"utilization": util, "fmax": {
            "$glbnet$clk": {"achieved": 80.0, "constraint": 50.0},
            "$glbnet$logic.fb.pix_clk": {"achieved": 100.0, "constraint": 25.0},
            "$glbnet$rst_shift.async_ff_clk": {"achieved": shift_fmax, "constraint": 125.0}},
            "critical_paths": [{"from": "posedge $glbnet$logic.fb.pix_clk",
                                "to": "posedge $glbnet$rst_shift.async_ff_clk",
                                "path": [{"type": "clk-to-q", "delay": 0.5, "from": {"cell": "a", "port": "Q"},
                                          "to": {"cell": "b", "port": "D"}},
                                         {"type": "routing", "delay": crossing_ns - 0.5,
                                          "from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "D"}}]}]}
        if name == "yosys":
            (cwd / "yosys_stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {"LUT4": 900}}}))
            # The four lane multipliers of the ``--lanes 4`` builds below (the floorplan pins them).
            cells = {f"logic.core.engine.mac.mul{j}.dsp": {"type": "MULT18X18D", "attributes": {}}
                     for j in range(4)}
            (cwd / "design.json").write_text(json.dumps({"modules": {"standalone": {"attributes": {"top": "1"},
                                                                                      "cells": cells}}}))
        if name == "nextpnr":
            (cwd / "nextpnr_report.json").write_text(json.dumps(pnr))
        return 0.5
    return stage


def test_synth_standalone_report(tmp_path, monkeypatch, capsys):
    import gen.synth

    monkeypatch.setattr(gen.synth, "_run_stage", _fake_stage())
    out = tmp_path / "ok"
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "50", "--top", "standalone",
                 "--walk-steps", "5", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    s = rep["standalone"]
    assert rep["top"] == "standalone" and s["walk_steps_log2"] == 5
    assert (s["h_total"], s["v_total"], s["zoom"], s["frame_buffer_bits"]) == (800, 525, 15, 2 * 1024 * 24)
    frame_hz = 25e6 / (800 * 525)
    cycles = cycles_per_avatar(random_qmodel((8, 8, 4, 4, 1), seed=1).header, 4)
    assert s["engine_avatars_per_frame"] == pytest.approx(50e6 / cycles / frame_hz)
    assert s["video_clocks"]["pix_to_shift"] == {"delay_ns": 2.0, "budget_ns": 8.0, "met": True}
    assert s["video_timing_met"] and s["new_avatar_every_frame"]
    assert "## Standalone mode" in (out / "report.md").read_text()
    assert (out / "constraints.lpf").read_text().startswith(LPF.read_text()[:60])


def test_synth_standalone_report_says_when_video_timing_fails(tmp_path, monkeypatch):
    import gen.synth

    monkeypatch.setattr(gen.synth, "_run_stage", _fake_stage(shift_fmax=120.0, crossing_ns=9.0))
    out = tmp_path / "slow"
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "50", "--top", "standalone",
                 "-o", str(out)]) == 0
    s = json.loads((out / "report.json").read_text())["standalone"]
    assert not s["video_clocks"]["shift_clk"]["met"] and not s["video_clocks"]["pix_to_shift"]["met"]
    assert not s["video_timing_met"] and not s["new_avatar_every_frame"]
    assert "NOT met" in (out / "report.md").read_text()


def test_walk_steps_refused(capsys):
    assert main(["synth", "random:8,8,4,4,1:1", "--top", "standalone", "--walk-steps", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--walk-steps" in err[0]
