"""``avatargan quantize CHECKPOINT -o MODEL [--calib N] [--report DIR]``."""

from __future__ import annotations

import sys
from pathlib import Path

from base.fileio import legacy_owner

NAME = "quantize"
HELP = "float checkpoint -> quantized-model file (the contract of golden model and Verilog)"
DESCRIPTION = (
    "Quantize the Generator of a float checkpoint into the versioned quantized-model file of "
    "docs/NUMERICS.md: 8-bit weights with one power-of-two scale per layer, 16-bit activations "
    "calibrated on N random z (all three passes), derived accumulator widths, the Tanh table. "
    "--report DIR also profiles every layer's ranges against its formats over N random z."
)


#: Most calibration z: 100 000 already take minutes and change no format against 1 000.
MAX_CALIB = 100_000


#: A --report folder written before manifests: its own files and nothing else.
_legacy_report = legacy_owner(NAME, "report.json", r"^(report\.(json|md)|layer\d\.png)$")


def configure(p):
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", default=None,
                   help="float checkpoint (.npz) from avatargan train (default: the shipped models/default.npz)")
    p.add_argument("-o", "--output", metavar="MODEL", required=True, help="quantized-model file to write (.npz)")
    p.add_argument("--calib", metavar="N", type=int, default=1000,
                   help=f"random z for calibration and for the report, 1..{MAX_CALIB} (default 1000)")
    p.add_argument("--weight-rule", choices=("max", "mse"), default=None,
                   help="weight fraction bits: 'max' = largest with no weight saturating (the default, the rule "
                        "of docs/NUMERICS.md; --codebook-bits needs it); 'mse' = least squared weight error among "
                        "F0..F0+2 (may saturate outliers)")
    p.add_argument("--codebook-bits", metavar="B", type=int, default=None,
                   help="first fine-tune the float Generator so that each layer uses at most 2**B weight codes "
                        "(1..7; distillation from the checkpoint itself, golden/codebook.py): the engine then "
                        "stores B-bit indices, less block RAM (5: 108 instead of 171 weight RAMs at 128 lanes)")
    p.add_argument("--finetune-iters", metavar="N", type=int, default=1000,
                   help="distillation steps for --codebook-bits (default 1000, about 2 minutes on one core)")
    p.add_argument("--save-float", metavar="CKPT",
                   help="with --codebook-bits: where the fine-tuned float Generator goes, the quantized model's "
                        "source (default: MODEL with the suffix .float.npz)")
    p.add_argument("--report", metavar="DIR", help="write a range profile (report.md, report.json, PNGs) here")


def _finetune(args) -> str:
    """Distil the checkpoint into codebook weights (:func:`golden.codebook.distill`); returns the path
    of the fine-tuned float checkpoint (``--save-float``)."""
    from tqdm import tqdm

    from golden.checkpoint import load_generator, save_generator
    from golden.codebook import distill

    teacher = load_generator(args.checkpoint)
    with tqdm(total=args.finetune_iters, desc=f"codebook fine-tuning ({args.codebook_bits}-bit)", unit="step",
              file=sys.stderr) as bar:
        student = distill(teacher, args.codebook_bits, iterations=args.finetune_iters, progress=bar.update)
    meta = {k: v for k, v in teacher.meta.items() if k != "channels"}
    meta["codebook"] = {"bits": args.codebook_bits, "iterations": args.finetune_iters,
                        "teacher": str(args.checkpoint)}
    save_generator(args.save_float, student, meta)
    print(f"wrote {args.save_float} (the fine-tuned float Generator)")
    return args.save_float


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from avatargan.commands._avatars import SHIPPED_MODEL
    from base.errors import UserError
    from base.fileio import check_output_file, check_output_folder, staged_folder
    from golden.profile import profile, text_table, write_report
    from golden.qmodel import fmt_name, save_qmodel
    from golden.quantize import WEIGHT_RULE, quantize_checkpoint

    if not 1 <= args.calib <= MAX_CALIB:
        raise UserError(f"--calib must be between 1 and {MAX_CALIB} (more changes no format and takes "
                        f"minutes), got {args.calib}")
    if args.checkpoint is None:
        args.checkpoint = str(SHIPPED_MODEL)
    check_output_file(args.output, inputs=[args.checkpoint], flag="-o")
    if args.codebook_bits is None:
        if args.save_float:
            raise UserError("--save-float needs --codebook-bits (without it there is no fine-tuned model)")
    else:
        if not 1 <= args.codebook_bits <= 7:
            raise UserError(f"--codebook-bits must be between 1 and 7, got {args.codebook_bits}")
        if not 1 <= args.finetune_iters <= 100_000:
            raise UserError(f"--finetune-iters must be between 1 and 100000, got {args.finetune_iters}")
        if args.weight_rule == "mse":
            raise UserError("--codebook-bits needs --weight-rule max (the mse rule may saturate codebook values)")
        if not args.save_float:
            args.save_float = str(Path(args.output).with_suffix(".float.npz"))
        check_output_file(args.save_float, inputs=[args.checkpoint, args.output], flag="--save-float")
    if args.report:
        check_output_folder(args.report, NAME, inputs=[args.checkpoint, args.output], legacy=_legacy_report,
                            flag="--report")
    source = args.checkpoint
    if args.codebook_bits is not None:
        source = _finetune(args)
    rule = args.weight_rule or WEIGHT_RULE
    qm, stats, _ = quantize_checkpoint(source, n_calib=args.calib, weight_rule=rule)
    if args.codebook_bits is not None:
        distinct = [len(np.unique(qm.w[l])) for l in range(1, len(qm.channels))]
        if max(distinct) > 1 << args.codebook_bits:       # the max rule keeps the codes (a guard)
            raise UserError(f"quantizing the fine-tuned model gave {distinct} distinct codes per layer, "
                            f"more than {1 << args.codebook_bits}")
    save_qmodel(qm, args.output)
    print(f"wrote {args.output} (format_version {qm.header['format_version']}, channels {qm.channels})")
    if args.codebook_bits is not None:
        from golden.checkpoint import load_generator
        from golden.fidelity import fidelity

        fid = fidelity(load_generator(args.checkpoint), qm, n=300)
        print(f"  codebooks: {distinct} distinct weight codes per layer ({args.codebook_bits}-bit indices); "
              f"PSNR of this fixed-point model against the original float model {fid['psnr_db']:.2f} dB "
              f"(300 z, worst avatar {fid['psnr_min_db']:.2f} dB)")
    for l, rec in enumerate(qm.layers, start=1):
        print(f"  layer {l}: weight {fmt_name(rec['weight'])}  acc {fmt_name(rec['acc'])}  "
              f"output {fmt_name(rec['output'])}  shift {rec['shift']}"
              + (f"  calib max {stats['act_max'][l - 1]:.4g}" if l < 4 else ""))
    if any(stats["w_saturated"]):
        print(f"  weights saturated to +-127 by the least-squared-error scale choice, per layer: "
              f"{stats['w_saturated']}")
    if any(stats["bias_saturated"]) or stats["v_saturated"]:
        print(f"warning: saturated while quantizing: biases per layer {stats['bias_saturated']}, "
              f"v elements {stats['v_saturated']}", file=sys.stderr)
    if args.report:
        with tqdm(total=3 * args.calib, desc="profiling planes", unit="plane", file=sys.stderr) as bar:
            prof = profile(qm, n=args.calib, progress=bar.update)
        for l in range(4):  # saturations made while quantizing (weights by choice, biases by range)
            prof["layers"][l]["weight"]["saturated"] = stats["w_saturated"][l]
            prof["layers"][l]["bias"]["saturated"] = stats["bias_saturated"][l]
        prof["v_saturated"] = stats["v_saturated"]
        prof["model"] = str(args.output)
        prof["source"] = qm.header["source"]
        with staged_folder(args.report, NAME, inputs=[args.checkpoint, args.output], legacy=_legacy_report,
                           flag="--report") as stage:
            paths = write_report(prof, stage, title=f"Range profile of {args.output}")
        paths = [Path(args.report) / p.name for p in paths]
        print(text_table(prof))
        print(f"z saturated: {prof['z_saturated']}, z+v saturated: {prof['pass_saturated']}")
        print(f"report: {paths[0]} (+ report.json, {len(paths) - 2} PNG)")
    return 0
