"""The simulation flow in one call: quantized model → Verilog (cached) → Verilator (cached) → verdict.

Used by the pytest suite (tests/test_sim_*.py), ``avatargan simulate`` and ``avatargan bench sim``.
The Verilog is written by the project's own generator (``avatargan verilog MODEL -o DIR``), so the
checks run on exactly the Verilog a user gets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from base.contract import DEFAULT_LANES
from base.errors import UserError
from sim import runner

#: Lanes when none are given (the default of ``avatargan verilog``).

#: Cached Verilog per (model, lanes, generator sources), under the build root.
VERILOG_CACHE = runner.DEFAULT_BUILD_ROOT / "verilog"


def _sources_digest() -> str:
    """Hash of the Verilog generator's sources (rtl/, gen/): a change there invalidates the cache."""
    h = hashlib.sha256()
    for pkg in ("rtl", "gen"):
        for p in sorted((runner.REPO_ROOT / pkg).rglob("*.py")):
            h.update(p.relative_to(runner.REPO_ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_digest(path: str | os.PathLike) -> str:
    """Hash of a quantized model's content: its arrays and header, without the ``created`` time.

    Two files of the same model written at different times share their cached Verilog.
    """
    import json

    from golden.npzfile import read_npz

    h = hashlib.sha256()
    try:
        arrays = read_npz(path, "quantized model")  # sizes checked before anything is allocated
        for k in sorted(arrays):
            a = arrays[k]
            if k == "header":
                hd = json.loads(a.tobytes().decode("utf-8"))
                hd.pop("created", None)
                h.update(json.dumps(hd, sort_keys=True).encode())
            else:
                h.update(f"{k}|{a.dtype.str}|{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
    except (UserError, ValueError, AttributeError, UnicodeDecodeError):
        return file_digest(path)       # not a readable model: the generator will say why
    return h.hexdigest()


def generate_verilog(model: str | os.PathLike, lanes: int | None = None,
                     cache_root: str | os.PathLike | None = None) -> Path:
    """``generator.v`` of ``model`` on ``lanes`` multipliers, generated once and cached.

    Runs the generator behind ``avatargan verilog MODEL -o DIR --lanes P`` (``gen.verilog.write_design``)
    into a folder named by the hash of the model file, the lane count and the sources of rtl/ and gen/.
    """
    model = Path(model)
    if not model.is_file():
        raise UserError(f"model {model} does not exist")
    key = hashlib.sha256(f"{model_digest(model)}|{lanes}|{_sources_digest()}".encode()).hexdigest()[:16]
    root = Path(cache_root) if cache_root is not None else VERILOG_CACHE
    out = root / key
    v = out / "generator.v"
    if v.is_file():
        return v
    from gen.verilog import write_design
    from golden.qmodel import load_qmodel

    tmp = root / f".{key}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        write_design(load_qmodel(model), tmp, lanes=DEFAULT_LANES if lanes is None else lanes,
                     verilog=True, rtlil=False)
        if not (tmp / "generator.v").is_file():
            raise runner.SimulationError(f"the Verilog generator wrote no generator.v in {tmp}")
    except ValueError as e:  # the generator refuses a lane count / model combination
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{model}: {e}") from None
    except BaseException:  # nothing half-made stays in the cache
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return v


def wants_waves() -> bool:
    """Waves requested through the environment (``AVATARGAN_SIM_WAVES=1``, e.g. under pytest)."""
    return os.environ.get("AVATARGAN_SIM_WAVES", "") not in ("", "0")


def simulate(model: str | os.PathLike, zq: np.ndarray, *, lanes: int | None = None,
             golden_model: str | os.PathLike | None = None, input_pause: float = 0.0,
             output_stall: float = 0.0, seed: int = 0, reset_after_pixels: int | None = None,
             waves: bool | None = None, max_cycles: int | None = None,
             run_dir: str | os.PathLike | None = None) -> runner.SimResult:
    """Build (cached) the Verilog of ``model`` and check the avatars of ``zq`` against the golden model.

    Parameters
    ----------
    model : path
        Quantized model whose weights go into the Verilog ROMs.
    zq : int array (N, nz)
        z codes ``S(16,12)``.
    lanes : int, optional
        Multiply lanes P (default: the generator's default).
    golden_model : path, optional
        Model for the reference (default: ``model``). A different file here is how the suite proves
        that a corrupted ROM word is caught.
    input_pause, output_stall : float
        Idle probability on the z stream, stall probability on the pixel stream (0..1).
    seed : int
        Seed of the pause generators.
    reset_after_pixels : int, optional
        Reset in the middle of avatar 0 after that many pixels; avatars 1.. are checked.
    waves : bool, optional
        FST/VCD waves (default: ``AVATARGAN_SIM_WAVES``).
    max_cycles : int, optional
        Time-out of the whole run in clock cycles.
    run_dir : path, optional
        Where the run's files go (default: a fresh folder in the build folder).

    Returns
    -------
    sim.runner.SimResult
    """
    waves = wants_waves() if waves is None else waves
    verilog = generate_verilog(model, lanes)
    built = runner.build(verilog, waves=waves)
    zq = np.asarray(zq, dtype=np.int64)
    scenario = {"model": str(Path(golden_model or model).resolve()), "z": zq.tolist(),
                "input_pause": input_pause, "output_stall": output_stall, "seed": seed}
    if reset_after_pixels is not None:
        scenario["reset_after_pixels"] = int(reset_after_pixels)
    if max_cycles is not None:
        scenario["max_cycles"] = int(max_cycles)
    return runner.run(built, scenario, waves=waves, run_dir=run_dir)


def corrupt_weight(src: str | os.PathLike, dst: str | os.PathLike, layer: int = 2,
                   index: tuple[int, int, int, int] = (0, 0, 1, 1), delta: int = 1) -> tuple[int, int]:
    """Copy a quantized model with ONE weight code changed (``w<layer>[index] += delta``, kept in range).

    Returns the (old, new) code. Used to prove that the bit-exact check fails on a wrong ROM word.
    """
    from golden.qmodel import load_qmodel, save_qmodel

    qm = load_qmodel(src)
    w = qm.w[layer]
    old = int(w[index])
    new = old + delta if -128 <= old + delta <= 127 else old - delta
    w[index] = new
    save_qmodel(qm, dst)
    return old, new
