"""Build and run the standalone-mode testbenches (:mod:`sim.tb_standalone`) on Verilator.

:func:`capture` simulates :class:`rtl.standalone.StandaloneLogic` (Verilog module
``standalone_logic``) for a number of pixel clocks and returns what was on its video outputs;
:func:`timing_edges` simulates :class:`rtl.video.VideoOut` alone (module ``video_probe``) and returns
its sync and DE signals rebuilt from their edges, so the real 640×480 raster costs seconds.
Builds are cached under ``build/sim/standalone-HASH`` (hash of the Verilog and the options).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from base.contract import DEFAULT_LANES
from sim.runner import DEFAULT_BUILD_ROOT, REPO_ROOT, SimulationError, scenario_environment, tool_environment

__all__ = ["BUILD_ARGS", "standalone_verilog", "capture", "timing_edges", "VideoProbe"]

TB_MODULE = "sim.tb_standalone"

#: Verilator options: those of the board loopback (sim/board_loopback.py) but, as in the Generator's
#: testbench (sim/runner.py), only the top's ports are visible to VPI (``--no-public-flat-rw`` and a
#: control file naming them): with every signal public the C++ compiler spent over 8 minutes on
#: the symbol table of the tiny standalone design alone.
BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw", "-O3", "--x-assign", "fast",
              "--x-initial", "fast", "--output-split", "20000", "--output-split-cfuncs", "2000", "-CFLAGS", "-O1"]

#: Ports per top: (inputs the testbench drives, outputs it reads).
PORTS = {
    "standalone_logic": (("clk", "rst", "pix_clk", "pix_rst", "buttons"), ("led", "seed", "video", "tmds")),
    "video_probe": (("pix_clk", "pix_rst"), ("hsync", "vsync", "de")),
}


def control_file(toplevel: str) -> str:
    """Verilator control file: the top's ports public (inputs writable, outputs read-only)."""
    ins, outs = PORTS[toplevel]
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{p}"' for p in ins]
    lines += [f'public_flat_rd -module "{toplevel}" -var "{p}"' for p in outs]
    return "\n".join(lines) + "\n"


def standalone_verilog(logic) -> str:
    """Verilog of a :class:`rtl.standalone.StandaloneLogic` as module ``standalone_logic``."""
    from amaranth.back import verilog

    return verilog.convert(logic, name="standalone_logic", emit_src=False)


def _probe():
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out

    from rtl.video import VideoOut

    class VideoProbe(wiring.Component):
        """``VideoOut`` in the ``pix`` domain with its sync and DE on 1-bit ports (for edge triggers)."""

        def __init__(self, timing):
            self.vout = VideoOut(timing)
            super().__init__({"hsync": Out(1), "vsync": Out(1), "de": Out(1)})

        def elaborate(self, platform):
            from amaranth.hdl import DomainRenamer

            m = Module()
            m.submodules.vout = v = DomainRenamer("pix")(self.vout)
            m.d.comb += [self.hsync.eq(v.out.hsync), self.vsync.eq(v.out.vsync), self.de.eq(v.out.de)]
            return m

    return VideoProbe


def VideoProbe(timing):  # noqa: N802 - a class factory (keeps amaranth imports lazy)
    """A component with ``VideoOut(timing)``'s ``hsync``, ``vsync`` and ``de`` as 1-bit ports."""
    return _probe()(timing)


def _build(verilog_text: str, toplevel: str, root: Path) -> Path:
    from cocotb_tools.runner import get_runner

    vlt_text = control_file(toplevel)
    # The order of the clock and reset ports in the module header follows Python's string hashing
    # (it differs between runs); it does not change the model, so the cache key leaves it out.
    import re

    canonical = re.sub(rf"^module {toplevel}\([^)]*\);", "", verilog_text, count=1, flags=re.M)
    key = hashlib.sha256((canonical + vlt_text + json.dumps(BUILD_ARGS)).encode()).hexdigest()[:16]
    build_dir = (root / f"{toplevel}-{key}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{toplevel}.v"
    vlt = build_dir / "ports.vlt"
    if not src.is_file() or re.sub(rf"^module {toplevel}\([^)]*\);", "", src.read_text(), count=1,
                                   flags=re.M) != canonical:
        src.write_text(verilog_text)
    if not vlt.is_file() or vlt.read_text() != vlt_text:
        vlt.write_text(vlt_text)
    with tool_environment():
        runner = get_runner("verilator")
        try:
            runner.build(sources=[vlt, src], hdl_toplevel=toplevel, build_dir=build_dir / "obj", build_args=BUILD_ARGS,
                         timescale=("1ns", "1ps"), always=False, log_file=build_dir / "build.log")
        except (RuntimeError, SystemExit) as e:
            raise SimulationError(f"Verilator build of {toplevel} failed ({e}); log: {build_dir / 'build.log'}") from None
    return build_dir


def _run(build_dir: Path, toplevel: str, scenario: dict) -> Path:
    from cocotb_tools.runner import get_runner

    run_dir = build_dir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    scenario = dict(scenario, out_dir=str(run_dir))
    cfg = run_dir / "scenario.json"
    cfg.write_text(json.dumps(scenario))
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    with tool_environment(), scenario_environment(cfg):
        runner = get_runner("verilator")
        try:
            runner.test(test_module=TB_MODULE, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir / "obj", test_dir=run_dir, results_xml=str(run_dir / "results.xml"),
                        log_file=run_dir / "sim.log")
        except (SystemExit, RuntimeError) as e:
            raise SimulationError(f"the {toplevel} testbench failed ({e}); log: {run_dir / 'sim.log'}") from None
    return run_dir


def capture(logic, clocks: int, *, presses=(), pix_ns: float = 40, sync_ns: float = 10, skip: int = 0,
            build_root=DEFAULT_BUILD_ROOT) -> dict:
    """Simulate ``logic`` (a ``StandaloneLogic``) for ``clocks`` pixel clocks.

    ``presses``: ``(pixel_clock, button, hold_sync_cycles)`` with ``button`` an index into
    :data:`rtl.standalone.BUTTONS`, counted from the end of ``skip`` (pixel clocks run first without
    recording). Returns ``video``, ``tmds``, ``seed`` (uint64 arrays, one per pixel
    clock), ``seconds`` (build and run) and ``run_dir``.
    """
    t0 = time.perf_counter()
    build_dir = _build(standalone_verilog(logic), "standalone_logic", Path(build_root))
    t1 = time.perf_counter()
    run_dir = _run(build_dir, "standalone_logic", {
        "mode": "capture", "clocks": int(clocks), "pix_ns": pix_ns, "sync_ns": sync_ns, "skip": int(skip),
        "presses": [list(map(int, p)) for p in presses]})
    try:
        res = {k: np.load(run_dir / f"{k}.npy") for k in ("video", "tmds", "seed")}
    except OSError:
        raise SimulationError(f"the capture wrote no data; log: {run_dir / 'sim.log'}") from None
    res.update(build_s=t1 - t0, run_s=time.perf_counter() - t1, run_dir=run_dir)
    return res


def timing_edges(timing, clocks: int, *, pix_ns: float = 40, build_root=DEFAULT_BUILD_ROOT) -> dict:
    """Simulate ``VideoOut(timing)`` alone for ``clocks`` pixel clocks; ``hsync``, ``vsync``, ``de`` per
    pixel clock (uint8 arrays rebuilt from the recorded edges) and ``seconds``."""
    from amaranth.back import verilog

    t0 = time.perf_counter()
    text = verilog.convert(VideoProbe(timing), name="video_probe", emit_src=False)
    build_dir = _build(text, "video_probe", Path(build_root))
    run_dir = _run(build_dir, "video_probe", {"mode": "edges", "clocks": int(clocks), "pix_ns": pix_ns,
                                              "sync_ns": pix_ns, "presses": []})
    try:
        rec = json.loads((run_dir / "edges.json").read_text())
    except OSError:
        raise SimulationError(f"the edge recorder wrote nothing; log: {run_dir / 'sim.log'}") from None
    out = {}
    for name, level in rec["init"].items():
        n = int(rec["clocks"])
        at = [0] + [min(int(a), n) for a, _ in rec["edges"][name]] + [n]
        vals = [level] + [int(v) for _, v in rec["edges"][name]]
        out[name] = np.repeat(np.array(vals, dtype=np.uint8), np.diff(at))
    out["edges"] = sum(len(v) for v in rec["edges"].values())
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    """``python -m sim.standalone [MODEL] --out frame.png``: one 640×480 frame of the standalone design,
    simulated on Verilator, written as PNG (the README's picture); the avatar in it is checked
    against the golden model's first avatar of the walk."""
    import argparse

    from PIL import Image

    from golden.fixed import fixed_rgb
    from golden.noise import walk_z
    from rtl.standalone import StandaloneLogic
    from rtl.top import Generator
    from rtl.video import VGA_640x480
    from sim import video_check as vc

    ap = argparse.ArgumentParser(prog="python -m sim.standalone", description=main.__doc__)
    ap.add_argument("model", help="quantized model (avatargan quantize models/default.npz -o build/q/max.npz)")
    ap.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from golden.qmodel import load_qmodel

    qm = load_qmodel(args.model)
    t = VGA_640x480
    logic = StandaloneLogic(Generator.from_model(qm, lanes=args.lanes), qm.nz, t, seed=args.seed)
    frame = t.h_total * t.v_total
    # Engine clock 13 ns (77 MHz, about the routed Fmax) against the 40 ns pixel clock: avatar 0 is
    # ready within frame 0 and shown from frame 1 on. Record from just before frame 0's vsync to just
    # after frame 1's: frame 1 whole, vsync to vsync.
    vs0 = (t.v_active + t.v_front) * t.h_total
    res = capture(logic, frame + 6 * t.h_total, pix_ns=40, sync_ns=13, skip=vs0 - 2 * t.h_total)
    rgb = vc.unpack_video(res["video"])
    vc.check_timing(rgb["hsync"], rgb["vsync"], rgb["de"], t)
    frames = vc.split_frames(rgb, t)
    dec = vc.split_frames(vc.decode_tmds(res["tmds"]), t)
    if not frames or any(not np.array_equal(a, b) for a, b in zip(frames, dec)):
        raise SimulationError("no complete frame, or the TMDS frames differ from the RGB frames")
    av = vc.avatar_from_frame(frames[0], t)
    gold = fixed_rgb(qm, walk_z(qm.nz, args.seed, 7, 1)).transpose(0, 2, 3, 1)[0]
    Image.fromarray(frames[0]).save(args.out)
    same = np.array_equal(av, gold)
    print(f"{args.out}: 640x480 frame, avatar {'equal to' if same else 'DIFFERENT from'} the golden model's; "
          f"build {res['build_s']:.0f} s, run {res['run_s']:.0f} s")
    return 0 if same else 1


if __name__ == "__main__":
    from base.errors import UserError

    try:
        raise SystemExit(main())
    except (UserError, SimulationError, ValueError) as e:
        print(f"python -m sim.standalone: {e}", file=sys.stderr)
        raise SystemExit(2) from None
