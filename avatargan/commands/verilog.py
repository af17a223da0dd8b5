"""``avatargan verilog MODEL -o DIR``: elaborate the Generator core with a quantized model."""

from __future__ import annotations

import re

from base.contract import DEFAULT_LANES

NAME = "verilog"
HELP = "elaborate the hardware Generator with a quantized model: Verilog, RTLIL, resource summary"
DESCRIPTION = (
    "Writes DIR/generator.v (module `generator`, generic multipliers, for Verilator/cocotb), "
    "DIR/generator.il (RTLIL for yosys, ECP5 MULT18X18D multipliers by default) and DIR/summary.md + "
    "summary.json (lanes, memories and expected DP16KD, multipliers, predicted cycles per avatar, MAC utilization)."
)


def configure(parser):
    parser.add_argument("model", nargs="?", default=None,
                        help="quantized model file (.npz from `avatargan quantize`) or a float checkpoint (quantized "
                             "and cached); default: the shipped models/default.npz")
    parser.add_argument("-o", "--out", default="build/verilog", help="output folder (default: build/verilog)")
    parser.add_argument("--lanes", type=int, default=DEFAULT_LANES,
                        help=f"parallel multiply lanes P, a power of two up to 256 (default {DEFAULT_LANES})")
    parser.add_argument("--il-mult", choices=("ecp5", "generic"), default="ecp5",
                        help="multipliers in the RTLIL: ECP5 MULT18X18D instances (default) or generic `*`")
    parser.add_argument("--no-verilog", action="store_true", help="skip generator.v")
    parser.add_argument("--no-rtlil", action="store_true", help="skip generator.il")


_OWN = re.compile(r"^(generator\.(v|il)|summary\.(md|json))$")


def _legacy_verilog(files: list[str]) -> str | None:
    """A folder written by `avatargan verilog` before manifests: its own files and nothing else."""
    return NAME if "summary.json" in files and all(_OWN.match(f) for f in files) else None


def run(args) -> int:
    import sys
    from pathlib import Path

    from avatargan.commands._avatars import lanes_arg, quantized_model
    from base.errors import UserError
    from base.fileio import check_output_folder, staged_folder
    from gen.verilog import write_design
    from golden.qmodel import load_qmodel

    lanes = lanes_arg(args.lanes)
    check_output_folder(args.out, NAME, inputs=[args.model], legacy=_legacy_verilog)
    model = quantized_model(args.model, NAME)
    qm = load_qmodel(model)
    with staged_folder(args.out, NAME, inputs=[args.model, model], legacy=_legacy_verilog) as stage:
        try:
            s = write_design(qm, stage, lanes=lanes, il_mult=args.il_mult, verilog=not args.no_verilog,
                             rtlil=not args.no_rtlil,
                             log=lambda msg: print(f"avatargan verilog: {msg}".replace(str(stage), args.out),
                                                   file=sys.stderr))
        except ValueError as e:
            raise UserError(f"{model}: {e}") from None
    print(f"wrote {Path(args.out)}: P={s['lanes']}, {s['cycles_per_avatar']} cycles/avatar, "
          f"utilization {100 * s['utilization']:.2f} %, DP16KD ~{s['dp16kd_expected']}, "
          f"MULT18X18D {s['mult18x18d_expected']}")
    print(s["routed"])
    return 0
