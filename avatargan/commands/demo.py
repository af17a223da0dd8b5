"""``avatargan demo``: the main job on the shipped default model, end to end.

float Generator (``models/default.npz``) → quantize → Verilog → Verilator simulation of RGB avatars
under cocotb → PNGs, a bit-exact verdict and the cycle count per avatar, checked against the cycle
model. ``make demo`` runs this with its defaults.
"""

from __future__ import annotations

from pathlib import Path

from avatargan.commands._avatars import SHIPPED_MODEL  # the shipped float model (default)
from base.fileio import legacy_owner

NAME = "demo"
HELP = "the main job on the shipped model: quantize -> Verilog -> Verilator -> PNGs, bit-exact verdict, cycles"
DESCRIPTION = (
    "Quantize a float Generator (default: the shipped models/default.npz), generate its Verilog, "
    "simulate COUNT random RGB avatars in Verilator under cocotb and compare every pixel with the "
    "integer golden model. Writes to --out: model_q.npz (the quantized model), hardware.png, "
    "golden.png, difference.png, float.png (the float model on the same z), demo.md and demo.json. "
    "Exit status 0 only if the hardware is bit-exact and its cycle count equals the cycle model."
)

#: The files demo writes (besides the manifest of base.fileio).
_OWN = (r"^(model_q\.npz|hardware\.(png|npy)|golden\.png|difference\.png|float\.png|"
        r"simulate\.(json|md)|demo\.(json|md))$")
#: A folder written by `avatargan demo` before manifests: its own files and nothing else.
_legacy_demo = legacy_owner(NAME, "demo.json", _OWN)


def configure(parser) -> None:
    parser.add_argument("--model", default=None, metavar="CHECKPOINT",
                        help="float checkpoint (.npz from `avatargan train`; default: the shipped models/default.npz)")
    parser.add_argument("--count", type=int, default=8, help="RGB avatars to simulate (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random z, N(0, 1) (default 0)")
    parser.add_argument("--lanes", type=int, default=None, help="multiply lanes P (default: the generator's default)")
    parser.add_argument("--calib", type=int, default=1000, help="random z for quantization calibration (default 1000)")
    parser.add_argument("--out", default="build/demo", help="output folder (default build/demo)")


def _fmt_table(qm) -> list[str]:
    from golden.qmodel import fmt_name

    rows = ["| layer | weights | accumulator | output | shift |", "|---|---|---|---|---|"]
    for l, rec in enumerate(qm.layers, start=1):
        rows.append(f"| {l} | {fmt_name(rec['weight'])} | {fmt_name(rec['acc'])} | {fmt_name(rec['output'])} "
                    f"| {rec['shift']} |")
    return rows


def run(args) -> int:
    from avatargan.commands._avatars import lanes_arg
    from base.errors import UserError
    from base.fileio import check_output_folder, staged_folder
    from golden.checkpoint import read_checkpoint

    model = Path(args.model) if args.model else SHIPPED_MODEL
    if not model.is_file():
        raise UserError(f"model {model} does not exist")
    if not 1 <= args.count <= 1000:
        raise UserError(f"--count must be between 1 and 1000, got {args.count}")
    if not 1 <= args.calib <= 100_000:
        raise UserError(f"--calib must be between 1 and 100000, got {args.calib}")
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    lanes_arg(args.lanes)
    out = check_output_folder(args.out, NAME, inputs=[model], legacy=_legacy_demo)
    meta, _ = read_checkpoint(model)
    with staged_folder(out, NAME, inputs=[model], legacy=_legacy_demo) as stage:
        return _demo(args, model, meta, out, stage)


def _demo(args, model: Path, meta: dict, out: Path, stage: Path) -> int:
    """The demo proper, writing into ``stage`` (which becomes ``out`` when it returns)."""
    import json
    import time

    import numpy as np

    from avatargan.commands.simulate import simulate_to_folder
    from golden.fidelity import psnr
    from golden.fixed import quantize_z
    from golden.qmodel import save_qmodel
    from golden.quantize import float_rgb_pixels, quantize_checkpoint
    from sim import images

    t_all = time.perf_counter()

    print(f"1/3 quantize {model} (trained {meta.get('iteration', '?')} iterations, preset "
          f"{meta.get('preset', '?')}) with {args.calib} calibration z")
    qm, stats, gen = quantize_checkpoint(model, n_calib=args.calib)
    qpath = stage / "model_q.npz"
    save_qmodel(qm, qpath)

    rng = np.random.default_rng(args.seed)
    zq, nsat = quantize_z(rng.standard_normal((args.count, qm.nz)), qm.nz)
    what = f"{args.count} random z (N(0,1), seed {args.seed}), quantized to S(16,12) ({nsat} saturated)"
    print("2/3 Verilog (cached per model and design sources) and Verilator build (cached)")
    print(f"3/3 simulate {args.count} RGB avatars under cocotb and compare every pixel with the golden model")
    sim = simulate_to_folder(qpath, zq, what, out, lanes=args.lanes, seed=args.seed, title="avatargan demo: simulation",
                             into=stage)

    vsum = json.loads((Path(sim["verilog"]).parent / "summary.json").read_text())
    predicted = int(vsum["cycles_per_avatar"])
    # The routed figure comes from the committed reports now, not from the (cached) Verilog summary.
    from gen.routed import routed_line
    vsum["routed"] = routed_line(vsum["channels"], vsum["lanes"], predicted, w_bits=vsum.get("weight_index_bits", 8))
    measured = sim["cycles_min"], sim["cycles_max"]
    cycles_ok = measured == (predicted, predicted) and set(sim["dut_cycles_port"]) == {predicted}

    fl = float_rgb_pixels(gen, zq.astype(np.float64) / 2 ** 12)
    images.write_png(stage / "float.png", images.grid(fl[:64]))
    fidelity = psnr(sim["golden"], fl)
    ok = sim["bit_exact"] and cycles_ok
    wall = time.perf_counter() - t_all

    report = {
        "float_model": str(model), "iteration": meta.get("iteration"), "preset": meta.get("preset"),
        "channels": list(qm.channels), "quantized_model": str(out / qpath.name),
        "lanes": vsum["lanes"], "weight_rom_bits": vsum["weight_rom_bits"], "rom_bits": vsum["rom_bits"],
        "dp16kd_expected": vsum["dp16kd_expected"], "mult18x18d_expected": vsum["mult18x18d_expected"],
        "avatars": args.count, "seed": args.seed, "bit_exact": sim["bit_exact"],
        "mismatching_pixels": sim["mismatching_pixels"], "cycles_predicted": predicted,
        "cycles_measured": sorted(set(measured)), "cycles_port": sim["dut_cycles_port"], "cycles_match": cycles_ok,
        "utilization": vsum["utilization"], "psnr_fixed_vs_float_db": fidelity,
        "verilator_build_s": sim["verilator_build_s"], "verilator_build_reused": sim["verilator_build_reused"],
        "simulated_avatars_per_s": sim["simulated_avatars_per_s"], "wall_s": wall, "passed": ok,
    }
    (stage / "demo.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md = [
        "# avatargan demo", "",
        f"Float model `{model.name}`: {meta.get('iteration', '?')} training iterations, preset "
        f"`{meta.get('preset', '?')}`, channels {'→'.join(map(str, qm.channels))}.", "",
        "## Fixed-point formats (docs/NUMERICS.md)", "", *_fmt_table(qm), "",
        "## Hardware", "",
        f"- {vsum['lanes']} multiply lanes; weight ROM {vsum['weight_rom_bits']} bits; "
        f"{vsum['dp16kd_expected']} DP16KD and {vsum['mult18x18d_expected']} MULT18X18D expected on the LFE5U-85F",
        f"- cycles per RGB avatar: predicted {predicted}, measured {', '.join(map(str, sorted(set(measured))))} "
        f"(testbench), `cycles` port {', '.join(map(str, sim['dut_cycles_port']))} → "
        f"**{'match' if cycles_ok else 'MISMATCH'}**; MAC utilization {100 * vsum['utilization']:.2f} %",
        f"- {vsum['routed']}", "",
        "## Verdict", "",
        f"- bit-exact: **{'yes' if sim['bit_exact'] else 'NO'}** — {args.count} avatars, "
        f"{sim['mismatching_pixels']} mismatching pixels of {args.count * 3072}",
        f"- fixed point vs float on the same z: PSNR {fidelity:.2f} dB (these avatars; the model's figure, "
        f"over 1 000 avatars: `avatargan evaluate --fixed`, docs/NUMERICS.md)", "",
        "| Verilator (hardware) | golden model | difference | float model |", "|---|---|---|---|",
        "| ![hardware](hardware.png) | ![golden](golden.png) | ![difference](difference.png) | ![float](float.png) |",
        "", f"Wall time {wall:.1f} s.",
    ]
    (stage / "demo.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"cycles per avatar: predicted {predicted}, measured {sorted(set(measured))}: "
          f"{'match' if cycles_ok else 'MISMATCH'}")
    print(f"fixed vs float PSNR: {fidelity:.2f} dB over these {args.count} avatars "
          f"(the model's, over 1 000: avatargan evaluate --fixed)")
    print(f"demo {'PASSED' if ok else 'FAILED'} in {wall:.1f} s; report {out / 'demo.md'}")
    return 0 if ok else 1
