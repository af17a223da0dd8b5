"""``avatargan verilog MODEL -o DIR``: elaborate the Generator core with a quantized model."""

from __future__ import annotations

NAME = "verilog"
HELP = "elaborate the hardware Generator with a quantized model: Verilog, RTLIL, resource summary"
DESCRIPTION = (
    "Writes DIR/generator.v (module `generator`, generic multipliers, for Verilator/cocotb), "
    "DIR/generator.il (RTLIL for yosys, ECP5 MULT18X18D multipliers by default) and DIR/summary.md + "
    "summary.json (lanes, memories and expected DP16KD, multipliers, predicted cycles per avatar, MAC utilization)."
)


def configure(parser):
    parser.add_argument("model", help="quantized model file (.npz from `avatargan quantize`)")
    parser.add_argument("-o", "--out", default="build/verilog", help="output folder (default: build/verilog)")
    parser.add_argument("--lanes", type=int, default=128, help="parallel multiply lanes P, a power of two (default 128)")
    parser.add_argument("--il-mult", choices=("ecp5", "generic"), default="ecp5",
                        help="multipliers in the RTLIL: ECP5 MULT18X18D instances (default) or generic `*`")
    parser.add_argument("--no-verilog", action="store_true", help="skip generator.v")
    parser.add_argument("--no-rtlil", action="store_true", help="skip generator.il")


def run(args) -> int:
    import sys

    from avatargan.errors import UserError
    from gen.verilog import write_design
    from golden.qmodel import load_qmodel

    qm = load_qmodel(args.model)
    try:
        s = write_design(qm, args.out, lanes=args.lanes, il_mult=args.il_mult, verilog=not args.no_verilog,
                         rtlil=not args.no_rtlil, log=lambda msg: print(f"avatargan verilog: {msg}", file=sys.stderr))
    except ValueError as e:
        raise UserError(f"{args.model}: {e}") from None
    print(f"wrote {args.out}: P={s['lanes']}, {s['cycles_per_avatar']} cycles/avatar, "
          f"utilization {100 * s['utilization']:.2f} %, DP16KD ~{s['dp16kd_expected']}, "
          f"MULT18X18D {s['mult18x18d_expected']}")
    print(s["routed"])
    return 0
