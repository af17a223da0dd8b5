"""Build and run the board loopback testbench (:mod:`sim.tb_board`) on Verilator.

The board logic (:class:`rtl.board.BoardLogic` around a core) is written as Verilog (module
``board_logic``), verilated with the same options and tool environment as the Generator's
testbench (:mod:`sim.runner`), and driven by cocotb at the serial-line level.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from sim.runner import REPO_ROOT, SimulationError, scenario_environment, tool_environment

__all__ = ["TOPLEVEL", "board_verilog", "run_loopback"]

TOPLEVEL = "board_logic"
TB_MODULE = "sim.tb_board"

#: Verilator options of this build (its own, not the Generator testbench's: the ports of
#: ``board_logic`` stay VPI-visible through cocotb's default ``--public-flat-rw``), without -Wall.
#: The board logic is Amaranth output through Yosys ``write_verilog``, whose idioms (``!x`` for a
#: multi-bit ``x == 0``, initialised ``reg`` declarations also written under reset) trip Verilator's
#: lint although they are exact; the loopback itself is the check of this design.
BOARD_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                    "--x-initial", "fast", "-CFLAGS", "-O1"]


def board_verilog(logic) -> str:
    """Verilog text of a :class:`rtl.board.BoardLogic` as module ``board_logic``."""
    from amaranth.back import verilog

    return verilog.convert(logic, name=TOPLEVEL, emit_src=False)


def run_loopback(logic, zq, expected, build_dir, *, max_cycles: int = 5_000_000) -> dict:
    """Simulate requests for each row of ``zq`` through ``logic`` and compare with ``expected``.

    Parameters
    ----------
    logic : rtl.board.BoardLogic
        The board logic with its core (its ``divisor`` sets the simulated baud rate).
    zq : array_like
        int ``(N, nz)`` z codes.
    expected : numpy.ndarray
        uint8 ``(N, 3, 32, 32)``: what the replies must hold.
    build_dir : path
        Folder for the Verilog, the Verilator build and the run (replaced).
    max_cycles : int
        Time-out per reply, in clock cycles.

    Returns
    -------
    dict
        The testbench's ``result.json`` plus ``pixels`` (the decoded replies) and ``seconds``.

    Raises
    ------
    SimulationError
        If the build fails or the testbench wrote no verdict.
    """
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    src = build_dir / "board_logic.v"
    src.write_text(board_verilog(logic))
    exp_path = build_dir / "expected.npy"
    np.save(exp_path, np.asarray(expected, dtype=np.uint8))
    run_dir = build_dir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    scenario = {"z": np.asarray(zq).tolist(), "expected_npy": str(exp_path), "divisor": logic.divisor,
                "max_cycles": int(max_cycles), "out_dir": str(run_dir), "clock_ns": 10}
    cfg = run_dir / "scenario.json"
    cfg.write_text(json.dumps(scenario))
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    t0 = time.perf_counter()
    with tool_environment():
        runner = get_runner("verilator")
        try:
            runner.build(sources=[src], hdl_toplevel=TOPLEVEL, build_dir=build_dir / "obj",
                         build_args=BOARD_BUILD_ARGS, timescale=("1ns", "1ps"), always=True,
                         log_file=build_dir / "build.log")
        except (RuntimeError, SystemExit) as e:
            raise SimulationError(f"Verilator build of the board logic failed ({e}); "
                                  f"log: {build_dir / 'build.log'}") from None
        failure = None
        with scenario_environment(cfg):
            try:
                runner.test(test_module=TB_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                            build_dir=build_dir / "obj", test_dir=run_dir,
                            results_xml=str(run_dir / "results.xml"), log_file=run_dir / "sim.log")
            except (SystemExit, RuntimeError) as e:
                failure = e
    result_path = run_dir / "result.json"
    if not result_path.is_file():
        raise SimulationError(f"the loopback wrote no verdict ({failure}); log: {run_dir / 'sim.log'}")
    res = json.loads(result_path.read_text())
    res["passed"] = bool(res["passed"]) and failure is None
    res["pixels"] = np.load(run_dir / "pixels.npy")
    res["seconds"] = time.perf_counter() - t0
    res["run_dir"] = str(run_dir)
    return res
