"""The ECP5 flow (gen/synth.py, gen/hwreport.py, gen/pll.py, ``avatargan synth``) on a tiny model."""

import json
import re

import pytest

from avatargan.cli import main
from base.errors import UserError
from gen.hwreport import build_report, clocks, render_markdown, useful_macs
from gen.pll import ecppll_config, parse_ecppll_verilog
from gen.routed import find_report, routed_line
from gen.synth import DEVICES, freq_from_report, run_flow

ECPPLL_150 = """
module pll(input clkin, output clkout0, output locked);
(* FREQUENCY_PIN_CLKI="25" *)
(* FREQUENCY_PIN_CLKOP="150" *)
(* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *) (* MFG_GMCREF_SEL="2" *)
EHXPLLL #(
        .PLLRST_ENA("DISABLED"),
        .CLKI_DIV(1),
        .CLKOP_ENABLE("ENABLED"),
        .CLKOP_DIV(4),
        .CLKOP_CPHASE(2),
        .FEEDBK_PATH("CLKOP"),
        .CLKFB_DIV(6)
    ) pll_i (
        .CLKI(clkin), .CLKOP(clkout0), .CLKFB(clkout0), .LOCK(locked));
endmodule
"""


def test_useful_macs_matches_numerics_doc():
    # docs/NUMERICS.md: 204 800 + 1 605 632 + 1 843 200 + 123 008 per plane for the default model.
    assert useful_macs((100, 128, 64, 32, 1)) == 3_776_640
    assert useful_macs((100, 64, 32, 16, 1)) != 3_776_640


def test_parse_ecppll():
    cfg = parse_ecppll_verilog(ECPPLL_150)
    assert cfg.params["CLKFB_DIV"] == 6 and cfg.params["CLKOP_DIV"] == 4 and cfg.params["CLKI_DIV"] == 1
    assert cfg.clkout_mhz == 150.0 and cfg.attrs["ICP_CURRENT"] == "12"
    # The frequency follows the divisors, not the comment attribute.
    cfg2 = parse_ecppll_verilog(ECPPLL_150.replace(".CLKFB_DIV(6)", ".CLKFB_DIV(5)"))
    assert cfg2.clkout_mhz == 125.0
    with pytest.raises(ValueError):
        parse_ecppll_verilog("module x; endmodule")


def test_ecppll_runs():
    cfg = ecppll_config(25, 125)
    assert 25 / cfg.params["CLKI_DIV"] * cfg.params["CLKFB_DIV"] == cfg.clkout_mhz == 125.0
    with pytest.raises(UserError):
        ecppll_config(25, 1000)


def _fake_reports(fmax):
    util = {k: {"used": u, "available": a} for k, u, a in
            [("TRELLIS_COMB", 1000, 83640), ("TRELLIS_FF", 500, 83640), ("DP16KD", 10, 208),
             ("MULT18X18D", 8, 156), ("EHXPLLL", 1, 4), ("TRELLIS_IO", 12, 365)]}
    nextpnr = {"utilization": util, "fmax": {"$glbnet$clk": {"achieved": fmax, "constraint": 150.0}}}
    stat = {"design": {"num_cells_by_type": {"LUT4": 900, "CCU2C": 50, "$scopeinfo": 3}}}
    return stat, nextpnr


def test_report_numbers():
    stat, nextpnr = _fake_reports(120.0)
    rep = build_report(yosys_stat=stat, nextpnr_report=nextpnr, device=DEVICES["85F"], top="board",
                       freq_mhz=150.0, channels=(8, 8, 4, 4, 1), lanes=8, cycles_per_avatar=10_000,
                       seconds={"yosys": 1.0}, dsp_mode="ecp5", model="m", machine="test")
    p = rep["performance"]
    assert p["avatars_per_s_at_fmax"] == pytest.approx(120e6 / 10_000)
    assert p["mac_utilization"] == pytest.approx(3 * useful_macs((8, 8, 4, 4, 1)) / (8 * 10_000))
    assert rep["clocks"] == {"clk": {"fmax_mhz": 120.0, "constraint_mhz": 150.0, "met": False}}
    assert rep["resources"]["DP16KD"] == {"used": 10, "available": 208, "percent": pytest.approx(100 * 10 / 208)}
    assert "$scopeinfo" not in rep["resources"]["yosys_cells"]
    md = render_markdown(rep)
    assert "| MULT18X18D | 8 | 156 |" in md and "| `clk` | 120.0 | 150 | NO |" in md
    assert clocks(_fake_reports(151.0)[1])["clk"]["met"]
    assert "Timing not met for `clk`" in md and rep["critical_paths"] == []
    # The bitstream runs at the 150 MHz constraint, which its paths do not allow: no figure at that clock.
    assert p["bitstream_clock_mhz"] == 150.0 and p["bitstream_meets_timing"] is False
    assert p["avatars_per_s_at_bitstream_clock"] is None and "does **not** meet timing" in md


def _report_at(tmp_path, name, fmax, constraint, channels=(8, 8, 4, 4, 1), lanes=8, cycles=10_000):
    stat, nextpnr = _fake_reports(fmax)
    nextpnr["fmax"]["$glbnet$clk"]["constraint"] = constraint
    rep = build_report(yosys_stat=stat, nextpnr_report=nextpnr, device=DEVICES["85F"], top="board",
                       freq_mhz=constraint, channels=channels, lanes=lanes, cycles_per_avatar=cycles,
                       seconds={"yosys": 1.0}, dsp_mode="ecp5", model="m", machine="test")
    (tmp_path / name).write_text(json.dumps(rep))
    return rep


def test_avatars_per_s_at_the_bitstream_clock(tmp_path):
    """A met constraint gives avatars/s at that clock (not at Fmax); the routed line picks the best report."""
    rep = _report_at(tmp_path, "a.json", 120.0, 100.0)
    p = rep["performance"]
    assert p["bitstream_meets_timing"] and p["avatars_per_s_at_bitstream_clock"] == pytest.approx(100e6 / 10_000)
    assert "**RGB avatars/s at the bitstream's 100 MHz clock: 10,000** (meets timing)" in render_markdown(rep)
    _report_at(tmp_path, "b.json", 90.0, 150.0)          # faster clock, but not met: never chosen
    _report_at(tmp_path, "c.json", 99.0, 95.0)           # met, slower than a.json
    _report_at(tmp_path, "d.json", 300.0, 200.0, lanes=16)
    line = routed_line((8, 8, 4, 4, 1), 8, 10_000, folder=tmp_path)
    assert line.startswith("routed on the LFE5U-85F (a.json): 10,000 RGB avatars/s at the bitstream's 100 MHz")
    assert "this engine" not in line
    # Another engine's cycle count: that bitstream's own figure, not this design's cycles at its clock.
    other = routed_line((8, 8, 4, 4, 1), 8, 20_000, folder=tmp_path)
    assert other.startswith("no routed LFE5U-85F report for this engine (20000 cycles per avatar)")
    assert "an engine of 10000 cycles) ran 10,000 RGB avatars/s at its 100 MHz clock" in other
    (tmp_path / "a.json").unlink()
    (tmp_path / "c.json").unlink()
    assert "below the bitstream's 150 MHz clock" in routed_line((8, 8, 4, 4, 1), 8, 10_000, folder=tmp_path)
    assert routed_line((8, 8, 4, 4, 1), 4, 10_000, folder=tmp_path).startswith("no routed LFE5U-85F report")
    # The committed report of the shipped model is found by its channels and lanes; the standalone
    # video top's report (the engine beside a video path) is not the Generator's figure.
    assert find_report((100, 128, 64, 32, 1), 64) is not None
    path, rep = find_report((100, 128, 64, 32, 1), 128)
    assert rep["top"] == "board"
    assert path.name == "synth-85F-shipped-128.json"           # the 8-bit store's, not the codebook model's
    cb_path, cb = find_report((100, 128, 64, 32, 1), 128, w_bits=5)
    assert cb_path.name == "synth-85F-codebook-128.json" and cb["weight_index_bits"] == 5
    assert find_report((100, 128, 64, 32, 1), 128, w_bits=4) is None
    std = json.loads((path.parent / "synth-85F-shipped-standalone.json").read_text())
    std["clocks"]["clk"]["fmax_mhz"] = 900.0           # even the fastest standalone report is not chosen
    (tmp_path / "std.json").write_text(json.dumps(std))
    assert find_report((100, 128, 64, 32, 1), 128, folder=tmp_path) is None


def test_bitstream_clock_below_the_pnr_target():
    """Placed and routed for 150 MHz, clocked by the PLL at 75: judged at 75 (met), not at 150."""
    stat, nextpnr = _fake_reports(76.6)
    kw = dict(yosys_stat=stat, nextpnr_report=nextpnr, device=DEVICES["85F"], top="board", freq_mhz=150.0,
              channels=(8, 8, 4, 4, 1), lanes=8, cycles_per_avatar=10_000, seconds={"yosys": 1.0},
              dsp_mode="ecp5", model="m", machine="test")
    rep = build_report(**kw, clock_mhz=75.0)
    p = rep["performance"]
    assert rep["clocks"]["clk"]["met"] is False                    # nextpnr's own verdict at 150 MHz
    assert p["bitstream_meets_timing"] and p["avatars_per_s_at_bitstream_clock"] == pytest.approx(7_500)
    md = render_markdown(rep)
    assert "the bitstream runs it at 75 MHz, which the routed paths (76.6 MHz) meet." in md
    assert "Timing not met" not in md
    from gen.routed import bitstream_clock
    assert bitstream_clock(rep) == {"mhz": 75.0, "met": True, "fmax_mhz": 76.6}
    rep = build_report(**kw, clock_mhz=80.0)                        # a clock the paths do not allow
    assert not rep["performance"]["bitstream_meets_timing"] and not bitstream_clock(rep)["met"]
    assert "do **not** meet" in render_markdown(rep)


def test_freq_from_report(tmp_path):
    _report_at(tmp_path, "r.json", 93.7, 150.0)
    f = freq_from_report(tmp_path / "r.json", "board")
    assert f <= 93.7 and f >= 90.0 and ecppll_config(25, f).clkout_mhz == f
    assert freq_from_report(tmp_path / "r.json", "core") == pytest.approx(93.7)
    assert freq_from_report(tmp_path / "r.json", "board", with_target=True) == (f, 150.0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a report.json"):
        freq_from_report(tmp_path / "bad.json")
    with pytest.raises(UserError, match="No such file"):
        freq_from_report(tmp_path / "missing.json")


def _hop(kind, delay, cell_from, cell_to, loc_from=(1, 1), loc_to=(1, 1), net=None):
    e = {"type": kind, "delay": delay, "from": {"cell": cell_from, "port": "Q" if kind == "clk-to-q" else "F",
                                                "loc": list(loc_from)},
         "to": {"cell": cell_to, "port": "DI" if kind == "setup" else "A", "loc": list(loc_to)}}
    if net:
        e["net"] = net
    return e


def test_report_critical_path_summary():
    """Per-clock critical path: totals, split and longest hop; cross-domain paths left out."""
    stat, nextpnr = _fake_reports(160.0)
    path = [_hop("clk-to-q", 0.5, "a", "a"), _hop("routing", 1.25, "a", "l1", (2, 3), (9, 40), net="n1"),
            _hop("logic", 0.25, "l1", "l1"), _hop("routing", 2.0, "l1", "l2", (9, 40), (30, 7), net="n2"),
            _hop("logic", 0.25, "l2", "l2"), _hop("routing", 0.5, "l2", "b", net="n3"),
            _hop("setup", 0.5, "b", "b")]
    nextpnr["critical_paths"] = [
        {"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk", "path": path},
        {"from": "<async>", "to": "posedge $glbnet$clk", "path": path[:2]},
        {"from": "posedge $glbnet$clk", "to": "<async>", "path": path[:2]},
    ]
    rep = build_report(yosys_stat=stat, nextpnr_report=nextpnr, device=DEVICES["85F"], top="board",
                       freq_mhz=150.0, channels=(8, 8, 4, 4, 1), lanes=8, cycles_per_avatar=10_000,
                       seconds={"yosys": 1.0}, dsp_mode="ecp5", model="m", machine="test")
    assert rep["critical_paths"] == [{
        "clock": "clk", "start": "a.Q", "end": "b.DI", "delay_ns": 5.25, "logic_ns": 1.5, "routing_ns": 3.75,
        "logic_levels": 2, "longest_route": {"net": "n2", "delay_ns": 2.0, "from": [9, 40], "to": [30, 7]}}]
    md = render_markdown(rep)
    assert "Critical path of `clk`: 5.25 ns" in md and "net `n2` (tile (9, 40) → (30, 7))" in md
    assert "Timing not met" not in md


def test_late_endpoint_families():
    """Endpoints whose arrival is over the threshold, grouped by cell.port with digits read as '#',
    latest family first; the threshold in report.json is the target's period."""
    from gen.hwreport import late_endpoint_groups

    def net(name, *ends):
        return {"net": name, "driver": "d", "endpoints": [{"cell": c, "port": "DI", "delay": [a / 2, a]}
                                                          for c, a in ends]}
    pnr = {"detailed_net_timings": [net("n1", ("mac.x_op17", 4.5), ("mac.x_op93", 3.5)),
                                    net("n2", ("mac.x_op2", 2.9)), net("n3", ("ws.w_addr1", 6.0), ("q", 0.2)),
                                    net("short", ("r", 2.0)), {"net": "no_sinks", "endpoints": []}]}
    assert late_endpoint_groups(pnr, 3.0) == [
        {"pattern": "ws.w_addr#.DI", "endpoints": 1, "worst_ns": 6.0, "worst_endpoint": "ws.w_addr1.DI",
         "worst_net": "n3"},
        {"pattern": "mac.x_op#.DI", "endpoints": 2, "worst_ns": 4.5, "worst_endpoint": "mac.x_op17.DI",
         "worst_net": "n1"}]
    assert late_endpoint_groups(pnr, 3.0, top=1)[0]["pattern"] == "ws.w_addr#.DI"
    assert late_endpoint_groups(pnr, 5.0) == [late_endpoint_groups(pnr, 3.0)[0]]
    assert late_endpoint_groups({}, 3.0) == []
    stat, nextpnr = _fake_reports(160.0)
    nextpnr.update(pnr)
    rep = build_report(yosys_stat=stat, nextpnr_report=nextpnr, device=DEVICES["85F"], top="board",
                       freq_mhz=250.0, channels=(8, 8, 4, 4, 1), lanes=8, cycles_per_avatar=10_000,
                       seconds={"yosys": 1.0}, dsp_mode="ecp5", model="m", machine="test")
    assert rep["late_endpoints"]["threshold_ns"] == 4.0            # 1000 / 250 MHz
    assert [g["pattern"] for g in rep["late_endpoints"]["groups"]] == ["ws.w_addr#.DI", "mac.x_op#.DI"]
    assert "| `mac.x_op#.DI` | 1 | 4.50 | `mac.x_op17.DI` | `n1` |" in render_markdown(rep)


def test_flow_error_is_one_line(tmp_path):
    with pytest.raises(UserError) as e:
        run_flow("this is not RTLIL\n", "top", tmp_path / "bad", DEVICES["85F"], 100.0, progress=False)
    msg = str(e.value)
    assert "yosys failed" in msg and "yosys.log" in msg and "\n" not in msg
    with pytest.raises(UserError, match="--router"):
        run_flow("", "top", tmp_path / "bad2", DEVICES["85F"], 100.0, progress=False, router="router3")
    assert not (tmp_path / "bad2").exists()
    with pytest.raises(UserError, match="--placer-density"):
        run_flow("", "top", tmp_path / "bad3", DEVICES["85F"], 100.0, progress=False, density=2.0)
    assert not (tmp_path / "bad3").exists()


def _fake_stage(fmax, constraint=150.0, calls=None):
    """A stand-in for gen.synth._run_stage: writes what yosys and nextpnr would (no tools run)."""
    def stage(name, cmd, cwd, log, bar):
        if calls is not None:
            calls.append((name, cmd))
        stat, pnr = _fake_reports(fmax)
        pnr["fmax"]["$glbnet$clk"]["constraint"] = constraint
        if name == "yosys":
            (cwd / "yosys_stat.json").write_text(json.dumps(stat))
            # The four lane multipliers of the ``--lanes 4`` builds below (the floorplan pins them).
            cells = {f"logic.core.engine.mac.mul{j}.dsp": {"type": "MULT18X18D", "attributes": {},
                                                          "parameters": {}, "connections": {}}
                     for j in range(4)}
            (cwd / "design.json").write_text(json.dumps({"modules": {"board": {"attributes": {"top": "1"},
                                                                                 "cells": cells}}}))
        if name == "nextpnr":
            (cwd / "nextpnr_report.json").write_text(json.dumps(pnr))
        return 0.5
    return stage


def test_nextpnr_options_reach_the_command_line(tmp_path, monkeypatch, capsys):
    """``--router`` and ``--no-tmdriv`` go to nextpnr and into both reports (tools faked)."""
    import gen.synth

    calls = []
    monkeypatch.setattr(gen.synth, "_run_stage", _fake_stage(120.0, calls=calls))
    for opts, router, tmdriv, beta in [
            ([], "router2", True, None),
            (["--router", "router1", "--no-tmdriv", "--placer-density", "0.6", "--heatmap"], "router1", False, 0.6)]:
        calls.clear()
        out = tmp_path / router
        assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "100", *opts, "-o", str(out)]) == 0
        cmd = dict(calls)["nextpnr"]
        assert cmd[cmd.index("--router") + 1] == router
        assert ("--no-tmdriv" in cmd) == (not tmdriv)
        assert ("--placer-heap-beta" in cmd) == (beta is not None) and ("--router2-heatmap" in cmd) == (beta is not None)
        if beta is not None:
            assert cmd[cmd.index("--placer-heap-beta") + 1] == "0.6"
        rep = json.loads((out / "report.json").read_text())
        assert (rep["router"], rep["timing_driven_placement"], rep["placer_density"]) == (router, tmdriv, beta)
        assert rep["nextpnr_command"] == "nextpnr-ecp5 " + " ".join(cmd[1:])
        assert f"nextpnr `{rep['nextpnr_command']}`." in (out / "report.md").read_text()


def test_pnr_freq_reaches_nextpnr_as_a_net_constraint(tmp_path, monkeypatch):
    """--pnr-freq above the PLL clock: the board LPF gets FREQUENCY NET "clk" (nextpnr would otherwise
    derive the PLL output's constraint from its 25 MHz input); the report judges the 50 MHz clock."""
    import gen.synth

    monkeypatch.setattr(gen.synth, "_run_stage", _fake_stage(77.0, constraint=100.0))
    out = tmp_path / "b"
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "50", "--pnr-freq", "100",
                 "-o", str(out)]) == 0
    lpf = (out / "constraints.lpf").read_text()
    assert 'FREQUENCY NET "clk" 100 MHZ;' in lpf and 'FREQUENCY PORT "clk25" 25 MHZ;' in lpf
    p = json.loads((out / "report.json").read_text())["performance"]
    assert p["bitstream_clock_mhz"] == 50.0 and p["bitstream_meets_timing"]
    out2 = tmp_path / "c"                          # without --pnr-freq: no extra constraint
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "50", "-o", str(out2)]) == 0
    assert "FREQUENCY NET" not in (out2 / "constraints.lpf").read_text()
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "50", "--pnr-freq", "40",
                 "-o", str(tmp_path / "d")]) == 2


@pytest.mark.slow
def test_full_flow_tiny_board(tmp_path, capsys):
    """``avatargan synth`` on a tiny random model with 4 DSP lanes: bitstream and parsed report."""
    out = tmp_path / "tiny"
    rc = main(["synth", "random:8,8,4,4,1:1", "--device", "85F", "--lanes", "4", "--freq", "100",
               "--router", "router2", "-o", str(out)])
    assert rc == 0
    bit = (out / "design.bit").read_bytes()
    assert len(bit) > 10_000 and b"\xff\xff\xbd\xb3" in bit[:4096]   # ECP5 preamble
    rep = json.loads((out / "report.json").read_text())
    pnr = json.loads((out / "nextpnr_report.json").read_text())
    stat = json.loads((out / "yosys_stat.json").read_text())
    # The report's numbers are the tools' numbers.
    for name, key in [("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("DP16KD", "DP16KD"),
                      ("MULT18X18D", "MULT18X18D")]:
        assert rep["resources"][name]["used"] == pnr["utilization"][key]["used"]
        assert rep["resources"][name]["available"] == pnr["utilization"][key]["available"]
    assert rep["resources"]["MULT18X18D"]["used"] == 4, "one DSP instance per lane"
    # nextpnr's Fmax is the inverse of its critical path's delay: the summary must add up to it.
    (cp,) = [c for c in rep["critical_paths"] if c["clock"] == rep["performance"]["engine_clock"]]
    assert cp["delay_ns"] == pytest.approx(1000.0 / rep["performance"]["fmax_mhz"], rel=2e-3)
    assert cp["logic_ns"] + cp["routing_ns"] == pytest.approx(cp["delay_ns"], abs=2e-3)
    assert rep["resources"]["yosys_cells"]["MULT18X18D"] == stat["design"]["num_cells_by_type"]["MULT18X18D"]
    assert rep["resources"]["EHXPLLL"]["used"] == 1
    assert rep["resources"]["DP16KD"]["used"] >= 1
    fmax = min(v["achieved"] for v in pnr["fmax"].values())
    assert rep["performance"]["fmax_mhz"] == pytest.approx(fmax)
    assert 10 < fmax < 500
    md = (out / "report.md").read_text()
    assert f"| MULT18X18D | 4 | {pnr['utilization']['MULT18X18D']['available']} |" in md
    assert re.search(r"Fmax [\d.]+ MHz", capsys.readouterr().out)
    assert rep["router"] == "router2" and "router2" in (out / "nextpnr.log").read_text()
    # The netlist adjustments ran: block-RAM outputs moved into DP16KD registers, bypass logic gone.
    assert rep["bram_output_registers"]["ports"] >= 1 and rep["relaxed_read_ports"] >= 1
    assert "--json design_pnr.json" in rep["nextpnr_command"] and (out / "design_pnr.json").is_file()
    assert "Block-RAM output registers" in md
    # The floorplan pinned the lane multipliers and weight RAMs, and nextpnr kept them there.
    fp = rep["floorplan"]
    assert fp["lanes"] == 4 and fp["weight_rams"] >= 1 and "Floorplan (gen/floorplan.py)" in md
    placed = re.search(r"Placed (\d+) cells based on constraints", (out / "nextpnr.log").read_text())
    ports = json.loads((out / "design_pnr.json").read_text())["modules"]["board"]["ports"]
    io = sum(len(p["bits"]) for p in ports.values())    # nextpnr places the I/O by the LPF, too
    assert placed and int(placed[1]) >= io + fp["lanes"] + fp["weight_rams"]
    for log in ("yosys.log", "nextpnr.log"):
        assert (out / log).stat().st_size > 0
