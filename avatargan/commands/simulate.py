"""``avatargan simulate``: run the generated Verilog in Verilator (cocotb) and check it bit for bit."""

from __future__ import annotations

from base.fileio import legacy_owner

NAME = "simulate"
HELP = "simulate the Generator's Verilog in Verilator and compare every pixel with the golden model"
DESCRIPTION = (
    "Generate the Verilog of MODEL (cached), build it with Verilator (cached), stream z through it "
    "with cocotb and compare every pixel of the three planes with the integer golden model. Writes "
    "hardware.png, golden.png, difference.png, simulate.json and simulate.md to --out and prints "
    "bit-exact yes/no, cycles per avatar and simulated avatars per second. With --fast the harness's "
    "fast path runs instead of cocotb (a C++ main, no Python in the loop, every pixel still compared; "
    "for soaks). Exit status 1 on any mismatch."
)

#: Avatars per simulator run: long runs are split so that progress can be shown between chunks.
CHUNK = 50
#: Avatars shown in the PNG grids (the first ones).
GRID_MAX = 64


#: Most random avatars per run (the simulator draws a few per second; the z-file limit is the same).
MAX_COUNT = 100_000
#: A folder written by `avatargan simulate` before manifests: its own files and nothing else.
_legacy_simulate = legacy_owner(NAME, "simulate.json",
                                r"^(hardware\.(png|npy)|golden\.png|difference\.png|simulate\.(json|md))$")


def configure(parser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="quantized model (.npz from `avatargan quantize`) or a float checkpoint (quantized "
                             "and cached); default: the shipped models/default.npz")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--seed", type=int, default=0, help="seed of the random z, N(0, 1) (default 0)")
    src.add_argument("--z", metavar="FILE",
                     help=".npy of z (or .npz with an array 'z'): float (N, nz) values (quantized to S(16,12)) "
                          "or integer S(16,12) codes")
    parser.add_argument("--count", type=int, default=8,
                        help=f"number of random avatars, 1..{MAX_COUNT} (default 8; ignored with --z)")
    parser.add_argument("--lanes", type=int, default=None,
                        help="multiply lanes P, a power of two up to 256 (default: the generator's default)")
    parser.add_argument("--out", default="build/simulate", help="output folder (default build/simulate)")
    parser.add_argument("--waves", action="store_true",
                        help="record waves (FST; VCD where liblz4-dev is missing) in the run folder")
    parser.add_argument("--fast", action="store_true",
                        help="the fast path (C++ main instead of cocotb; every pixel still compared; no waves)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="simulator processes of --fast (default: the usable cores no other process keeps busy)")


def _load_z(args, qm):
    import numpy as np

    from base.errors import UserError
    from golden.fixed import check_zq, quantize_z
    from golden.npzfile import read_z

    if args.z is None:
        if not 1 <= args.count <= MAX_COUNT:
            raise UserError(f"--count must be between 1 and {MAX_COUNT} (the simulator draws a few avatars "
                            f"a second), got {args.count}")
        if args.seed < 0:
            raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
        z = np.random.default_rng(args.seed).standard_normal((args.count, qm.nz))
        zq, nsat = quantize_z(z, qm.nz)
        return zq, nsat, f"{args.count} random z (N(0,1), seed {args.seed})"
    arr = read_z(args.z, qm.nz)
    if arr.dtype.kind in "iu":
        return check_zq(qm, arr), 0, f"{len(arr)} z code vector(s) from {args.z}"
    zq, nsat = quantize_z(arr, qm.nz)
    return zq, nsat, f"{len(arr)} float z vector(s) from {args.z}"


def run(args) -> int:
    import sys

    from avatargan.commands._avatars import lanes_arg, quantized_model
    from base.errors import UserError
    from base.fileio import check_output_folder
    from golden.qmodel import load_qmodel

    lanes_arg(args.lanes)
    if args.fast and args.waves:
        raise UserError("--waves needs the cocotb testbench; leave out --fast")
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        raise UserError(f"--jobs must be between 1 and 256, got {args.jobs}")
    if args.jobs is not None and not args.fast:
        raise UserError("--jobs is for --fast")
    if args.seed < 0:                  # before any work (quantizing a float checkpoint included)
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    check_output_folder(args.out, NAME, inputs=[args.model, args.z], legacy=_legacy_simulate)
    model = quantized_model(args.model, NAME)
    qm = load_qmodel(model)
    zq, nsat, what = _load_z(args, qm)
    if nsat:
        print(f"note: {nsat} z value(s) outside [-8, 8) saturated", file=sys.stderr)
    summary = simulate_to_folder(model, zq, what, args.out, lanes=args.lanes, waves=args.waves, seed=args.seed,
                                 inputs=[args.model, args.z], fast=args.fast, jobs=args.jobs)
    return 0 if summary["bit_exact"] else 1


def simulate_to_folder(model, zq, what: str, out, lanes: int | None = None, waves: bool = False,
                       seed: int = 0, title: str = "avatargan simulate", into=None, inputs=(), fast: bool = False,
                       jobs: int | None = None) -> dict:
    """Simulate the avatars of ``zq`` on the Verilog of ``model`` and write the verdict to ``out``.

    Writes hardware.png, golden.png, difference.png, hardware.npy, simulate.json and simulate.md
    (all appear together, or none) and prints the verdict. Used by ``avatargan simulate`` and
    ``avatargan demo``.

    Parameters
    ----------
    model : path
        Quantized model.
    zq : int array (N, nz)
        z codes S(16,12).
    what : str
        One line saying where the z came from (for the report).
    out : path
        Output folder: replaced whole once everything is written (:func:`base.fileio.staged_folder`).
    into : path, optional
        Write into this folder instead (a caller's own staging folder that becomes ``out``).
    inputs : paths
        The command's inputs, which ``out`` must not hold.
    lanes : int, optional
        Multiply lanes (default: the generator's default).
    waves : bool
        Record waves.
    seed : int
        Seed recorded in the scenario.
    title : str
        Heading of simulate.md.
    fast : bool
        The harness's fast path (:func:`sim.runner.soak`) instead of the cocotb testbench.
    jobs : int, optional
        Simulator processes of the fast path (default: the usable cores).

    Returns
    -------
    dict
        The content of simulate.json, plus ``hardware`` and ``golden`` pixel arrays (N, 3, 32, 32).
    """
    import json
    import sys
    import time
    from pathlib import Path

    import numpy as np
    from tqdm import tqdm

    from base.fileio import staged_folder
    from sim import flow, images, runner

    model = Path(model)
    if into is None:
        with staged_folder(out, NAME, inputs=[model, *inputs], legacy=_legacy_simulate) as stage:
            return simulate_to_folder(model, zq, what, out, lanes, waves, seed, title, into=stage, fast=fast,
                                      jobs=jobs)
    stage, out = Path(into), Path(out)
    # the model as the report names it: a model written into the staging folder is named where it ends up
    shown_model = out / model.relative_to(stage) if model.is_relative_to(stage) else model
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    verilog = flow.generate_verilog(model, lanes)
    t_verilog = time.perf_counter() - t0
    built = runner.build_soak(verilog) if fast else runner.build(verilog, waves=waves)
    if built.compiled:
        print(f"Verilator build: {built.seconds:.1f} s ({built.build_dir})", file=sys.stderr)

    hw, ref, cycles, dut_cycles = [], [], [], []
    mismatches, sim_wall, messages, passed = 0, 0.0, [], True
    chunks = [zq[i:i + CHUNK] for i in range(0, len(zq), CHUNK)]
    if fast:
        from golden.fixed import fixed_rgb
        from golden.qmodel import load_qmodel
        from golden.threads import choose_threads

        jobs = choose_threads(jobs)[0]     # the cores no other process keeps busy (golden/threads.py)
        chunks = [zq[i:i + CHUNK * jobs] for i in range(0, len(zq), CHUNK * jobs)]
        qm = load_qmodel(model)
    with tqdm(total=len(zq), unit="avatar", desc="simulate", file=sys.stderr, disable=len(chunks) < 2) as bar:
        for k, chunk in enumerate(chunks):
            if fast:
                res = runner.soak(built, chunk, fixed_rgb(qm, chunk), jobs=jobs, seed=seed)
            else:
                res = runner.run(built, {"model": str(model.resolve()), "z": chunk.tolist(), "seed": seed},
                                 waves=waves)
            hw.append(res.pixels)
            ref.append(res.expected)
            cycles += res.cycles
            dut_cycles += res.dut_cycles
            mismatches += res.mismatches
            sim_wall += res.sim_wall_s
            if not res.passed:
                passed = False
                messages.append(f"chunk {k} (avatars {k * CHUNK}..): {res.message}")
            if res.waves is not None:
                print(f"waves: {res.waves}", file=sys.stderr)
            bar.set_postfix(mismatching_pixels=mismatches, refresh=False)
            bar.update(len(chunk))
    total_wall = time.perf_counter() - t_all
    hw = np.concatenate(hw)
    ref = np.concatenate(ref)
    exact = bool(passed and np.array_equal(hw, ref))

    shown = slice(0, min(len(hw), GRID_MAX))
    images.write_png(stage / "hardware.png", images.grid(hw[shown]))
    images.write_png(stage / "golden.png", images.grid(ref[shown]))
    images.write_png(stage / "difference.png", images.grid(images.difference(hw[shown], ref[shown])))
    np.save(stage / "hardware.npy", hw)

    cyc = float(np.mean(cycles)) if cycles else float("nan")
    rate = len(zq) / sim_wall if sim_wall > 0 else float("nan")
    summary = {
        "model": str(shown_model), "z": what, "avatars": int(len(zq)), "lanes": lanes,
        "bit_exact": exact, "mismatching_pixels": int(mismatches), "messages": messages,
        "cycles_per_avatar": cyc, "cycles_min": min(cycles) if cycles else None,
        "cycles_max": max(cycles) if cycles else None, "dut_cycles_port": sorted(set(dut_cycles)),
        "simulated_avatars_per_s": rate, "simulation_loop_s": sim_wall, "total_wall_s": total_wall,
        "verilog_s": t_verilog, "verilator_build_s": built.seconds, "verilator_build_reused": not built.compiled,
        "verilog": str(verilog), "build_dir": str(built.build_dir),
        "harness": f"fast path, {jobs} process(es)" if fast else "cocotb",
    }
    (stage / "simulate.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    md = [
        f"# {title}", "",
        f"- model: `{shown_model}`", f"- z: {what}",
        f"- bit-exact: **{'yes' if exact else 'NO'}** ({mismatches} mismatching pixels of {len(zq) * 3072})",
        f"- cycles per avatar: {cyc:.0f} (first z word taken to last pixel taken)",
        f"- simulated avatars/s (wall clock of the simulation loop): {rate:.2f}",
        f"- total wall time: {total_wall:.1f} s", "",
        "![hardware](hardware.png) ![golden](golden.png) ![difference](difference.png)", "",
    ] + [f"- {m}" for m in messages]
    (stage / "simulate.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    print(f"bit-exact: {'yes' if exact else 'NO'} ({len(zq)} avatars, {mismatches} mismatching pixels)")
    for m in messages[:3]:
        print(m)
    print(f"cycles per avatar: {cyc:.0f}")
    print(f"simulated avatars/s: {rate:.2f} (simulation loop {sim_wall:.2f} s; total {total_wall:.1f} s)")
    print(f"images: {out / 'hardware.png'}, {out / 'golden.png'}, {out / 'difference.png'}")
    return dict(summary, hardware=hw, golden=ref)
