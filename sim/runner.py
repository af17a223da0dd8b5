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
    run folder; :func:`run` reads it back and returns a :class:`sim.result.SimResult`.
:func:`build_soak` and :func:`soak`
    The fast path for soaks and benchmarks: the same Verilog, simulation top, Verilator options and
    waivers, compiled with the C++ main ``sim/soak.cpp`` instead of cocotb (into the same build
    folder). It drives the avatars and compares every pixel with the golden model without waking
    Python; ``jobs`` processes share the avatars. Returns the same :class:`sim.result.SimResult`.

Verilator is found by :mod:`gen.verilator` (the one locator); its folder is put first on ``PATH``
for the build only, with ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include`` (the wheel's make configuration
leaves the precompiled-header include flag empty, which breaks models split over several C++ files).
Nothing is changed in the user's shell: the process environment is restored after the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base.contract import ACT_BITS, PIXEL_WORD_BITS, PIXEL_WORD_FIELDS, PIXEL_WORD_OFFSETS, decode_pixel_word
from base.environ import environment
from base.errors import UserError
from base.fileio import atomic_path
from gen.verilator import WAIVERS, VerilatorMissing, verilator_version
from gen.verilator import verilator_bin_dir as _verilator_bin_dir
from sim.result import SimResult, verdict_message

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
#: one-cycle delay changes nothing it checks. The port widths come from the contract (base/contract.py).
SIM_TOP_V = f"""// Simulation top written by sim/runner.py: generator with a registered reset (see SIM_TOP_V).
module sim_top (
  input clk, input rst,
  input [{ACT_BITS - 1}:0] z__payload, input z__valid, output z__ready,
  output [{PIXEL_WORD_BITS - 1}:0] pixel__payload, output pixel__valid, input pixel__ready,
  output busy, output done, output [31:0] cycles
);
  reg rst_q;
  initial rst_q = 1'b1;
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

#: Verilator warnings: -Wall, with the one waiver file of the generated Verilog (gen/verilator_waivers.vlt,
#: shared with the lint; each waiver there is one rule with its reason). Whether the waived extensions
#: and everything else compute the right numbers is what the bit-exact tests check.
#:
#: The control file :data:`TOP_VLT` makes the ports of ``sim_top`` (and nothing else) visible to VPI.
TOP_VLT = Path(__file__).with_name("sim_top.vlt")

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


def verilator_bin_dir() -> Path:
    """The folder holding the ``verilator`` executable (:func:`gen.verilator.verilator_bin_dir`)."""
    try:
        return _verilator_bin_dir()
    except VerilatorMissing as e:
        raise SimulationError(str(e)) from None


#: Compiler wrapper for Verilator's ``OBJCACHE`` make variable: Verilator's runtime objects
#: (``verilated*.o``: about 16 s of CPU per build) do not depend on the design, so they are compiled
#: once per set of options and copied into later build folders; every other command runs as is.
OBJCACHE_SH = Path(__file__).with_name("objcache.sh")


def _runtime_cache(root: Path, args: list[str]) -> Path:
    """Folder of Verilator's runtime objects for these options and tool versions."""
    key = hashlib.sha256(json.dumps({"args": args, "verilator": verilator_version(),
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
def tool_environment(runtime_cache: Path | None = None, make_vars: dict[str, str] | None = None):
    """Temporarily put Verilator first on PATH and set the make flags; restore afterwards.

    ``MAKEFLAGS`` gets ``CFG_CXXFLAGS_PCH_I=-include`` (the PyPI wheel leaves it empty), with
    ``runtime_cache``, ``OBJCACHE`` = the :data:`OBJCACHE_SH` wrapper that reuses runtime objects, and
    ``make_vars`` (variables of Verilator's makefile, e.g. ``OPT_FAST``, overriding the one above; spaces
    escaped for make).
    """
    values = {"PATH": str(verilator_bin_dir()) + os.pathsep + os.environ.get("PATH", ""),
              "AVATARGAN_VL_RUNTIME_CACHE": os.environ.get("AVATARGAN_VL_RUNTIME_CACHE")}
    make_vars = {"CFG_CXXFLAGS_PCH_I": "-include", **(make_vars or {})}
    flags = " ".join(f"{k}=" + v.replace(" ", "\\ ") for k, v in make_vars.items())
    if runtime_cache is not None:
        runtime_cache.mkdir(parents=True, exist_ok=True)
        wrapper = _install_script(runtime_cache.parent / "objcache.sh", OBJCACHE_SH.read_text())
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
    """Verilator command-line options of the cocotb build (see the module constants)."""
    args = ["-Wall", *SPEED_FLAGS]
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
    h.update(WAIVERS.read_bytes())
    h.update(TOP_VLT.read_bytes())
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


def _control_files(build_dir: Path) -> list[Path]:
    """Copies of the waiver file and the ports' control file in ``build_dir`` (sources of every build)."""
    out = []
    for f in (WAIVERS, TOP_VLT):
        dst = build_dir / f.name
        dst.write_bytes(f.read_bytes())
        out.append(dst)
    return out


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
        # Everything but the fast path's build (build_soak), which shares this folder and has its own stamp.
        for p in build_dir.iterdir():
            if p.name == "soak":
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    build_dir.mkdir(parents=True, exist_ok=True)
    # A private copy of the source: the cache key is its content, not the path it came from.
    src = build_dir / "generator.v"
    src.write_bytes(text)
    vlts = _control_files(build_dir)
    top = build_dir / "sim_top.v"
    top.write_text(SIM_TOP_V)
    log = build_dir / "build.log"
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tool_environment(_runtime_cache(root, build_args(waves))):
        runner = get_runner("verilator")
        try:
            runner.build(
                sources=[*vlts, src, top],
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


def _fresh_run_dir(built, run_dir) -> Path:
    """``run_dir`` (default: a new ``run-XXXXXXXX`` in the build folder), emptied and created."""
    if run_dir is None:
        run_dir = built.build_dir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir = Path(run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return run_dir


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
    run_dir = _fresh_run_dir(built, run_dir)
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


# --------------------------------------------------------------------------- the fast path

#: The C++ main of the fast path (drives the avatars and compares every pixel; see its header).
SOAK_CPP = Path(__file__).with_name("soak.cpp")
#: C++ optimisation of the fast path. It is compiled once per design and run for many avatars, so the longer
#: compile pays; the build runs on the machine that runs it. Verilator's makefile (verilated.mk) compiles
#: three kinds of code with three make variables; the fast path sets them rather than -CFLAGS (which reach
#: all three). Measured on the full default model in docs/RESULTS.md ("Simulation speed after issue 17").
#:
#: ``OPT_FAST``: the model's per-cycle code (``_eval``, the ``nba_sequent`` functions) and sim/soak.cpp.
#: -O3 with the host's instruction set (vectorised): the full model ran 11 % slower with -O3 for generic
#: x86-64, 13 % slower without vectorisation (-fno-tree-vectorize), 8 % slower with 512-bit vectors
#: (-mprefer-vector-width=512); -O2 ran as fast (kept -O3: the same flags for g++ and clang).
SOAK_CXXFLAGS = "-O3 -march=native"
#: ``OPT_GLOBAL``: Verilator's runtime library (``verilated*.o``, compiled once per option set, see OBJCACHE_SH).
SOAK_OPT_GLOBAL = "-O3 -march=native"
#: ``OPT_SLOW``: the constructors and the initial/settle code, run once per process but about 5/6 of the
#: generated C++. Not optimised: the fast path's build took a third of the time (33 s instead of 107 s CPU
#: for the full model), and the simulation ran as fast (-CFLAGS -O3 had compiled them at -O3 too).
SOAK_OPT_SLOW = "-O0"
#: Profile feedback (gcc ``-fprofile-generate`` / ``-fprofile-use``) on the ``OPT_FAST`` code: built
#: instrumented, run for one avatar (``soak --train``, 0.2 s), the per-cycle code recompiled with the
#: profile (about 20 s CPU for the full model). 10 % more avatars per CPU-second (docs/RESULTS.md);
#: ``-fprofile-update=single``: the model is single-threaded, no atomic counters needed.
SOAK_PROFILE = True
#: Options of the two compiles of a profiled build (added to ``OPT_FAST``).
PROFILE_GENERATE = "-fprofile-generate -fprofile-update=single"
PROFILE_USE = "-fprofile-use"
#: Added to :data:`PROFILE_USE` when the training run stopped before its avatar came out (a design of more
#: than 2 million cycles per avatar): code it did not reach is optimised as without a profile, not for size.
PROFILE_PARTIAL = "-fprofile-partial-training"
#: The fast path's C++ compiler, chosen by ``AVATARGAN_SOAK_COMPILER``: ``auto`` (default) takes clang
#: from the ``ziglang`` package (``zig c++``; ``pip install -e '.[fast-sim]'``) when it is installed, else
#: the system's g++ with profile feedback; ``gcc`` or ``zig`` forces one. clang 22 (zig 0.17.1) ran the
#: full model 16-18 % faster than g++ 12 with profile feedback and 28-31 % faster than g++ without, with
#: the same flags (docs/RESULTS.md); no profile feedback with it (zig ships no llvm-profdata to read one).
SOAK_COMPILER_ENV = "AVATARGAN_SOAK_COMPILER"


def _zig_binary() -> Path | None:
    """The ``zig`` executable of the ``ziglang`` package, or None when it is not installed."""
    try:
        import ziglang
    except ImportError:
        return None
    zig = Path(ziglang.__file__).resolve().parent / "zig"
    return zig if zig.is_file() else None


def soak_compiler() -> tuple[str, Path | None]:
    """``("zig", zig executable)`` or ``("gcc", None)``: the fast path's compiler (:data:`SOAK_COMPILER_ENV`)."""
    choice = os.environ.get(SOAK_COMPILER_ENV, "auto") or "auto"
    if choice not in ("auto", "gcc", "zig"):
        raise UserError(f"{SOAK_COMPILER_ENV}={choice!r}: use auto, gcc or zig")
    if choice != "gcc":
        zig = _zig_binary()
        if zig is not None:
            return "zig", zig
        if choice == "zig":
            raise SimulationError(f"{SOAK_COMPILER_ENV}=zig but the ziglang package is not installed "
                                  "(pip install -e '.[fast-sim]')")
    return "gcc", None


def soak_toolchain() -> str:
    """One line naming the fast path's compiler and flags (for benchmarks)."""
    kind, _ = soak_compiler()
    if kind == "zig":
        return f"zig c++ (clang) {SOAK_CXXFLAGS}"
    return f"g++ {SOAK_CXXFLAGS}" + (" + profile feedback" if SOAK_PROFILE else "")


def soak_args() -> list[str]:
    """Verilator options of the fast path: the cocotb build's without its C++ flags, the pixel word's layout.

    The C++ optimisation is in :func:`soak_make_vars`.
    """
    args = ["-Wall", *[a for a in SPEED_FLAGS if a not in ("-CFLAGS", "-O1")]]
    widths = dict(PIXEL_WORD_FIELDS)
    defs = {"PW_OFF_X": PIXEL_WORD_OFFSETS["x"], "PW_OFF_Y": PIXEL_WORD_OFFSETS["y"],
            "PW_OFF_PLANE": PIXEL_WORD_OFFSETS["plane"], "PW_OFF_LAST": PIXEL_WORD_OFFSETS["last"],
            "PW_W_PIXEL": widths["pixel"], "PW_W_X": widths["x"], "PW_W_PLANE": widths["plane"]}
    if PIXEL_WORD_OFFSETS["pixel"] != 0 or widths["x"] != widths["y"] or widths["last"] != 1:
        raise SimulationError("sim/soak.cpp assumes the pixel field at bit 0, equal x and y widths and a 1-bit last")
    for k, v in defs.items():
        args += ["-CFLAGS", f"-D{k}={v}"]
    return args


def soak_make_vars(profile: str | None = None, cxx: Path | None = None) -> dict[str, str]:
    """Make variables of the fast path's compile (see :data:`SOAK_CXXFLAGS`), with ``profile`` options added
    to ``OPT_FAST`` (:data:`PROFILE_GENERATE` or :data:`PROFILE_USE`) and ``cxx``, a clang wrapper
    (:func:`_zig_wrapper`), as the compiler and linker (with clang's way of reading the precompiled header)."""
    fast = SOAK_CXXFLAGS + (f" {profile}" if profile else "")
    out = {"OPT_FAST": fast, "OPT_GLOBAL": SOAK_OPT_GLOBAL, "OPT_SLOW": SOAK_OPT_SLOW}
    if profile == PROFILE_GENERATE:
        out["USER_LDFLAGS"] = "-fprofile-generate"
    if cxx is not None:
        out.update({"CXX": str(cxx), "LINK": str(cxx), "CFG_CXXFLAGS_PCH_I": "-include-pch", "CFG_GCH_IF_CLANG": ".gch"})
    return out


def _zig_wrapper(root: Path, zig: Path) -> Path:
    """``<root>/_runtime/zig-c++.sh``: runs ``zig c++`` (make's ``CXX`` is one word); written when it changed."""
    text = f'#!/bin/sh\n# sim/runner.py: the fast path\'s C++ compiler, clang from the ziglang package.\nexec "{zig}" c++ "$@"\n'
    return _install_script(root.resolve() / "_runtime" / "zig-c++.sh", text)


def _install_script(path: Path, text: str) -> Path:
    """Write the executable script ``path`` with ``text`` (atomically, so a parallel build never runs a
    half-written one) unless it already holds it; return ``path``."""
    if not path.is_file() or path.read_text() != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
            tmp.chmod(0o755)
    return path


def _fast_objects(obj: Path) -> list[Path]:
    """The objects that Verilator's makefile compiles with ``OPT_FAST``: the model's fast classes and support
    files and the user's sim/soak.cpp, named in the generated ``*_classes.mk`` and ``Vsim_top.mk``, and
    ``Vsim_top__ALL.o``, the whole model in one object (a small model, ``VM_PARALLEL_BUILDS = 0``)."""
    names = [f"V{TOPLEVEL}__ALL"]
    for mk in (obj / f"V{TOPLEVEL}_classes.mk", obj / f"V{TOPLEVEL}.mk"):
        var = None  # the variable whose continuation lines these are
        for line in mk.read_text().splitlines():
            if line[:1] not in (" ", "\t"):
                var = line.split("=")[0].rstrip("+ ").strip() if "=" in line and not line.startswith("#") else None
            elif var in ("VM_CLASSES_FAST", "VM_SUPPORT_FAST", "VM_USER_CLASSES") and line.strip(" \t\\"):
                names.append(line.strip(" \t\\"))
    return [obj / f"{n}.o" for n in names]


def build_soak(verilog: str | os.PathLike, *, build_root: str | os.PathLike | None = None,
               force: bool = False) -> Build:
    """Compile the fast path for ``verilog``: ``<build folder>/soak/obj/soak`` (cached like :func:`build`).

    The build folder is the cocotb build's for the same Verilog (same hash), so the two share the
    Verilog copy, the simulation top, the waiver file and the runtime-object cache. The compiler is
    :func:`soak_compiler`'s; with g++ and :data:`SOAK_PROFILE`, two compiles: instrumented, ``soak --train``,
    then the ``OPT_FAST`` objects again with the profile (the others are kept).
    """
    verilog = Path(verilog).resolve()
    if not verilog.is_file():
        raise UserError(f"Verilog file {verilog} does not exist")
    text = verilog.read_bytes()
    root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    build_dir = (root / config_hash(text, False)).resolve() / "soak"
    kind, zig = soak_compiler()
    cxx = _zig_wrapper(root, zig) if zig is not None else None
    profile = SOAK_PROFILE and kind == "gcc"
    key = hashlib.sha256(json.dumps({"args": soak_args(), "make": soak_make_vars(cxx=cxx), "profile": profile,
                                     "main": SOAK_CPP.read_text()}).encode()).hexdigest()[:16]
    obj = build_dir / "obj"
    stamp, exe = build_dir / "build.ok", obj / "soak"
    if not force and stamp.is_file() and stamp.read_text().split()[0] == key and exe.is_file():
        return Build(build_dir, False, 0.0, False)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    src = build_dir / "generator.v"
    src.write_bytes(text)
    top = build_dir / "sim_top.v"
    top.write_text(SIM_TOP_V)
    log = build_dir / "build.log"
    args = soak_args()
    jobs = str(max(1, os.cpu_count() or 1))
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", jobs, *args,
           "--top-module", TOPLEVEL, "--Mdir", str(obj), "-o", "soak",
           str(WAIVERS), str(src), str(top), str(SOAK_CPP)]
    # The runtime objects are compiled with OPT_GLOBAL only: the same for both compiles of a profiled build.
    cache = _runtime_cache(root, [*args, json.dumps(soak_make_vars(cxx=cxx))])
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as f:
        with tool_environment(cache, soak_make_vars(PROFILE_GENERATE if profile else None, cxx)):
            proc = subprocess.run(cmd, cwd=build_dir, stdout=f, stderr=subprocess.STDOUT, check=False)
        if proc.returncode == 0 and exe.is_file() and profile:
            f.write("\n# profile feedback: training run (soak --train)\n")
            f.flush()
            proc = subprocess.run([str(exe), "--train"], cwd=build_dir, stdout=f, stderr=subprocess.STDOUT,
                                  check=False)
            if proc.returncode in (0, 3):  # 3: the training avatar did not finish in its cycles
                use = PROFILE_USE + (f" {PROFILE_PARTIAL}" if proc.returncode == 3 else "")
                f.write(f"\n# profile feedback: the OPT_FAST objects again, with the profile ({use})\n")
                f.flush()
                for p in [*_fast_objects(obj), *obj.glob("*.fast.gch"), *obj.glob("*__ALL.a"), exe]:
                    p.unlink(missing_ok=True)
                with tool_environment(cache, soak_make_vars(use)):
                    proc = subprocess.run(["make", "-C", str(obj), "-f", f"V{TOPLEVEL}.mk", "-j", jobs],
                                          cwd=build_dir, stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not exe.is_file():
        tail = log.read_text(errors="replace")[-3000:]
        raise SimulationError(f"Verilator build of the fast path failed (exit {proc.returncode}); log: {log}\n{tail}")
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    stamp.write_text(f"{key} {seconds:.3f}\n")
    return Build(build_dir, True, seconds, False, None, cpu)


def soak(built: Build, zq, expected, *, run_dir: str | os.PathLike | None = None, jobs: int = 1,
         input_pause: float = 0.0, output_stall: float = 0.0, seed: int = 0,
         max_cycles: int = 50_000_000, idle_cycles_after: int = 64) -> SimResult:
    """Run avatars ``zq`` through the fast path and compare every pixel with ``expected``.

    Parameters
    ----------
    built : Build
        From :func:`build_soak`.
    zq : array_like
        int ``(N, nz)`` z codes ``S(16, 12)``.
    expected : array_like
        uint8 ``(N, 3, 32, 32)``: the golden model's pixels for ``zq``.
    jobs : int
        Simulator processes; each takes a contiguous share of the avatars (the results are joined in
        order, so they do not depend on ``jobs``; the pause sources are seeded per process).
    input_pause, output_stall, seed, max_cycles, idle_cycles_after
        As the scenario keys of :mod:`sim.tb_generator` (``max_cycles`` per process).

    Returns
    -------
    SimResult
        ``sim_wall_s`` is the wall time of the whole run (processes in parallel), ``sim_cpu_s`` the sum
        of the processes' simulation loops.
    """
    zq = np.asarray(zq, dtype=np.int64)
    expected = np.ascontiguousarray(expected, dtype=np.uint8)
    n, nz = zq.shape
    if expected.shape != (n, 3, 32, 32):
        raise SimulationError(f"expected pixels have shape {expected.shape}, need {(n, 3, 32, 32)}")
    run_dir = _fresh_run_dir(built, run_dir)
    exe = built.build_dir / "obj" / "soak"
    jobs = max(1, min(int(jobs), n))
    parts = np.array_split(np.arange(n), jobs)
    procs = []
    t0 = time.perf_counter()
    for j, idx in enumerate(parts):
        d = run_dir / f"part{j}"
        d.mkdir()
        zq[idx].astype("<i4").tofile(d / "z.bin")
        expected[idx].tofile(d / "expected.bin")
        cmd = [str(exe), str(d / "z.bin"), str(d / "expected.bin"), str(len(idx)), str(nz), str(d),
               repr(float(input_pause)), repr(float(output_stall)), str(int(seed) * 1000 + j), str(int(max_cycles)),
               str(int(idle_cycles_after))]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = [p.communicate()[0].decode(errors="replace") for p in procs]
    wall = time.perf_counter() - t0

    hw, cycles, dut_cycles, checks = [], [], [], []
    mismatches = received = extra = 0
    first, cpu, raw = None, 0.0, {"parts": []}
    for j, (idx, p, out) in enumerate(zip(parts, procs, outs)):
        d = run_dir / f"part{j}"
        if p.returncode != 0 or not (d / "result.json").is_file():
            raise SimulationError(f"the fast path wrote no verdict (exit {p.returncode}) in {d}\n{out[-2000:]}")
        r = json.loads((d / "result.json").read_text())
        raw["parts"].append(r)
        got = np.fromfile(d / "pixels.bin", dtype=np.uint8)
        full = np.zeros(len(idx) * 3 * 32 * 32, dtype=np.uint8)
        full[:min(len(got), len(full))] = got[:len(full)]
        hw.append(full.reshape(len(idx), 3, 32, 32))
        cycles += r["cycles"]
        dut_cycles += r["dut_cycles"]
        if r["first_mismatch"] is not None and first is None:
            fm = r["first_mismatch"]
            i = fm["index"]
            plane, y, x = i // 1024, (i // 32) % 32, i % 32
            a = int(idx[0]) + fm["avatar"]
            first = {"avatar": a, "index": i, "plane": plane, "x": x, "y": y,
                     "expected_pixel": int(expected[a, plane, y, x]), "got": decode_pixel_word(fm["word"])}
        mismatches += r["mismatches"]
        received += r["received"]
        extra += r["extra"]
        cpu += r["sim_cpu_s"]
        where = f"process {j} (avatars {int(idx[0])}..{int(idx[-1])})" if jobs > 1 else "the run"
        if r["timed_out"]:
            checks.append(f"time-out after {r['max_cycles']} cycles in {where}")
        if r["done_pulses"] != r["received"]:
            checks.append(f"{r['done_pulses']} done pulses for {r['received']} avatars in {where}")
        if r["stray"]:
            checks.append(f"{r['stray']} stray pixel transfer(s) after the last complete avatar in {where}")
        if r["busy_after"]:
            checks.append(f"busy still high after the last avatar in {where}")
    passed = first is None and extra == 0 and received == n and mismatches == 0 and not checks
    message = verdict_message(n, received, mismatches, first, extra) + "".join(f"; {c}" for c in checks)
    if not passed:
        message += f"\n  run folder: {run_dir}; rerun the avatars with `avatargan simulate` (cocotb) for waves"
    raw.update({"passed": passed, "message": message, "mismatches": mismatches, "first_mismatch": first,
                "avatars": n, "received": received, "cycles": cycles, "dut_cycles": dut_cycles, "jobs": jobs,
                "sim_wall_s": wall, "sim_cpu_s": cpu, "checks": checks})
    (run_dir / "result.json").write_text(json.dumps(raw, indent=1))
    pixels = np.concatenate(hw)
    np.save(run_dir / "pixels.npy", pixels)
    return SimResult(pixels=pixels, cycles=cycles, dut_cycles=dut_cycles, passed=passed, message=message,
                     expected=expected, mismatches=mismatches, sim_wall_s=wall, sim_cpu_s=cpu, run_dir=run_dir,
                     waves=None, raw=raw)
