"""cocotb testbenches of the standalone mode (rtl/standalone.py, rtl/video.py) on Verilator.

``capture`` (module ``standalone_logic``): runs the engine clock and the pixel clock, presses the
buttons the scenario names at the pixel clock it names, and records every pixel clock's pre-TMDS
word (``video``), the three TMDS symbols (``tmds``) and the ``seed`` port. Writes ``video.npy``,
``tmds.npy``, ``seed.npy`` (uint64, one entry per pixel clock) to the scenario's ``out_dir``.

``edges`` (module ``video_probe``: ``rtl.video.VideoOut`` alone, with its sync and DE on 1-bit ports):
records the simulation time of every edge of ``hsync``, ``vsync`` and ``de`` over the scenario's
number of pixel clocks; the full 640×480 raster costs only its edges in Python. Writes ``edges.json``.

Scenario (JSON named by ``AVATARGAN_SIM_SCENARIO``): ``mode``, ``out_dir``, ``pix_ns``, ``sync_ns``,
``clocks`` (pixel clocks to record), ``skip`` (pixel clocks to run first without recording), ``presses`` (list of ``[pixel_clock, button_index, hold_sync_cycles]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Edge, First, ReadOnly, RisingEdge, Timer


def _scenario() -> dict:
    return json.loads(Path(os.environ["AVATARGAN_SIM_SCENARIO"]).read_text())


async def _press(dut, at_pix: int, button: int, hold: int, state: dict) -> None:
    await ClockCycles(dut.pix_clk, at_pix)
    state["buttons"] |= 1 << button
    dut.buttons.value = state["buttons"]
    await ClockCycles(dut.clk, hold)
    state["buttons"] &= ~(1 << button)
    dut.buttons.value = state["buttons"]


@cocotb.test()
async def capture(dut):
    """Record ``video``, ``tmds`` and ``seed`` every pixel clock while the buttons are pressed as told."""
    sc = _scenario()
    if sc["mode"] != "capture":
        return
    out = Path(sc["out_dir"])
    Clock(dut.clk, sc["sync_ns"], unit="ns").start()
    Clock(dut.pix_clk, sc["pix_ns"], unit="ns").start()
    dut.buttons.value = 0
    dut.rst.value = 1
    dut.pix_rst.value = 1
    await ClockCycles(dut.pix_clk, 3)
    dut.rst.value = 0
    dut.pix_rst.value = 0
    state = {"buttons": 0}
    skip = int(sc.get("skip", 0))
    if skip:
        await ClockCycles(dut.pix_clk, skip)        # run without recording (no Python per clock)
    for at, button, hold in sc["presses"]:
        cocotb.start_soon(_press(dut, int(at), int(button), int(hold), state))
    n = int(sc["clocks"])
    video = np.zeros(n, dtype=np.uint64)
    tmds = np.zeros(n, dtype=np.uint64)
    seed = np.zeros(n, dtype=np.uint64)
    v_h, t_h, s_h, clk = dut.video, dut.tmds, dut.seed, dut.pix_clk
    for i in range(n):
        await RisingEdge(clk)
        await ReadOnly()
        video[i] = int(v_h.value)
        tmds[i] = int(t_h.value)
        seed[i] = int(s_h.value)
    np.save(out / "video.npy", video)
    np.save(out / "tmds.npy", tmds)
    np.save(out / "seed.npy", seed)


@cocotb.test()
async def edges(dut):
    """Times (in pixel clocks) of the edges of ``hsync``, ``vsync`` and ``de`` after reset."""
    sc = _scenario()
    if sc["mode"] != "edges":
        return
    period = float(sc["pix_ns"])
    Clock(dut.pix_clk, period, unit="ns").start()
    dut.pix_rst.value = 1
    await ClockCycles(dut.pix_clk, 3)
    dut.pix_rst.value = 0
    await RisingEdge(dut.pix_clk)
    await ReadOnly()
    t0 = get_sim_time("ns")
    init = {name: int(getattr(dut, name).value) for name in ("hsync", "vsync", "de")}
    rec = {name: [] for name in init}
    end = t0 + int(sc["clocks"]) * period
    done = Timer(int(sc["clocks"]) * period, unit="ns")
    sigs = {name: getattr(dut, name) for name in init}
    while True:
        trig = await First(done, *[Edge(s) for s in sigs.values()])
        now = get_sim_time("ns")
        if trig is done or now >= end:
            break
        await ReadOnly()
        for name, s in sigs.items():
            v = int(s.value)
            last = rec[name][-1][1] if rec[name] else init[name]
            if v != last:
                rec[name].append((round((now - t0) / period), v))
    (Path(sc["out_dir"]) / "edges.json").write_text(json.dumps({"init": init, "edges": rec,
                                                                "clocks": int(sc["clocks"])}))
