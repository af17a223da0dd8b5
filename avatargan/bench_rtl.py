"""``avatargan bench rtl``: cycles per RGB avatar of the Generator core, MAC utilization, avatars/s.

Prints, for the chosen model (default: a random model of the default channels, base.contract.DEFAULT_CHANNELS) and
``P`` lanes: the analytic cycle count (:mod:`gen.cycles`), the MAC bound (useful multiplies / P), the
utilization, avatars/s of the routed bitstream (:mod:`gen.routed`) and at ``--fmax``; and the cycle count *measured* in amaranth.sim
on a small configuration (``--sim-channels``, ``--sim-lanes``) next to the model's prediction for it.
``--sim-full`` also simulates the benchmarked model itself (slow: minutes to hours in amaranth.sim).
"""

from __future__ import annotations

from base.contract import DEFAULT_CHANNELS, DEFAULT_LANES

HELP = "Generator core: cycles/avatar (model + amaranth.sim), MAC utilization, avatars/s"


def configure(parser) -> None:
    parser.add_argument("--model", help="quantized model .npz (default: random model of --channels)")
    parser.add_argument("--channels", default=",".join(map(str, DEFAULT_CHANNELS)), help="channels of the random model")
    parser.add_argument("--lanes", type=int, default=DEFAULT_LANES, help=f"P, multiply lanes (default {DEFAULT_LANES})")
    parser.add_argument("--fmax", type=float, default=None, help="also report avatars/s at this clock (MHz), "
                        "e.g. the Fmax that `avatargan synth` measured")
    parser.add_argument("--sim-channels", default="8,8,4,4,1", help="channels of the simulated small model")
    parser.add_argument("--sim-lanes", type=int, default=16, help="P of the simulated small model")
    parser.add_argument("--sim-full", action="store_true", help="also simulate the benchmarked model (slow)")
    parser.add_argument("--verilator", action="store_true",
                        help="also build the benchmarked model's Verilog with Verilator (a few minutes) and "
                             "measure cycles/avatar of the full design, bit-exact check included")
    parser.add_argument("--work", default="build/bench_rtl", help="folder for --verilator (default build/bench_rtl)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random models and z")


def _channels(text: str) -> tuple:
    from base.errors import UserError

    try:
        ch = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"channels must be comma-separated integers, got {text!r}") from None
    if len(ch) != 5 or min(ch) < 1:
        raise UserError(f"channels must be 5 positive integers (nz,c1,c2,c3,1), got {text!r}")
    if max(ch) > 1024:
        raise UserError(f"channels must be at most 1024 wide (as `avatargan train --channels`), got {text!r}")
    return ch


def _simulate(qm, lanes: int, seed: int) -> dict:
    import time

    import numpy as np

    from gen.cycles import cycles_per_avatar
    from sim.rtlsim import simulate
    from golden.fixed import fixed_rgb
    from rtl.top import Generator

    zq = np.random.default_rng(seed).integers(-2 ** 15, 2 ** 15, (1, qm.nz))
    dut = Generator.from_model(qm, lanes=lanes)
    t = time.monotonic()
    res = simulate(dut, zq)
    wall = time.monotonic() - t
    exact = bool(np.array_equal(res.rgb, fixed_rgb(qm, zq).astype(np.int64)))
    return {"channels": qm.channels, "lanes": lanes, "simulated_cycles": res.cycles[0],
            "model_cycles": cycles_per_avatar(qm.header, lanes), "bit_exact": exact, "sim_wall_s": round(wall, 1)}


def _verilator(qm, lanes: int, seed: int, work: str) -> dict:
    import sys
    import time
    from pathlib import Path

    import numpy as np

    from base.fileio import ensure_dir
    from gen.cycles import cycles_per_avatar
    from gen.verilog import write_design
    from golden.fixed import fixed_rgb
    from sim import runner

    work = ensure_dir(work)
    print("bench rtl: writing Verilog", file=sys.stderr)
    write_design(qm, work, lanes=lanes, rtlil=False)
    print("bench rtl: building with Verilator (minutes)", file=sys.stderr)
    t = time.monotonic()
    built = runner.build_soak(Path(work) / "generator.v", build_root=Path(work) / "vl")
    build_s = time.monotonic() - t
    rng = np.random.default_rng(seed)
    zq = np.stack([rng.integers(-2 ** 15, 2 ** 15, qm.nz),
                   np.where(np.arange(qm.nz) % 2, 2 ** 15 - 1, -2 ** 15)]).astype(np.int64)
    ref = fixed_rgb(qm, zq)
    # The fast path of the simulation harness compares every pixel and its x, y, plane, last fields.
    res = runner.soak(built, zq, ref)
    res_bp = runner.soak(built, zq, ref, output_stall=0.7, seed=seed)
    return {"simulated_cycles": res.cycles[0], "all_cycles": res.cycles,
            "model_cycles": cycles_per_avatar(qm.header, lanes),
            "bit_exact": bool(res.passed), "in_order": bool(res.passed and res_bp.passed),
            "cycles_backpressure": res_bp.cycles, "bit_exact_backpressure": bool(res_bp.passed),
            "build_s": round(build_s, 1)}


def run(args) -> dict:
    from base.errors import UserError
    from gen.cycles import cycle_model
    from gen.routed import routed_line
    from golden.qmodel import load_qmodel
    from golden.random_models import random_qmodel
    from rtl.config import weight_codebooks

    if args.model:
        qm = load_qmodel(args.model)
    else:
        qm = random_qmodel(_channels(args.channels), seed=args.seed, n_calib=8)
    try:
        cm = cycle_model(qm.header, args.lanes)
    except ValueError as e:
        raise UserError(str(e)) from None
    out = {"lanes": args.lanes, "channels": qm.channels, "cycles_per_avatar_model": cm["cycles_per_avatar"],
           "mac_bound_cycles": cm["mac_bound_cycles"], "useful_macs_per_avatar": cm["useful_macs_per_avatar"],
           "utilization": cm["utilization"],
           "routed": routed_line(qm.channels, args.lanes, cm["cycles_per_avatar"],
                                 w_bits=weight_codebooks([qm.w[l] for l in range(1, len(qm.channels))])[0]),
           "layers": cm["layers"]}
    if args.fmax:
        out["fmax_mhz"] = args.fmax
        out["avatars_per_s_fmax"] = args.fmax * 1e6 / cm["cycles_per_avatar"]
    small = random_qmodel(_channels(args.sim_channels), seed=args.seed, n_calib=8)
    try:
        out["simulated_small"] = _simulate(small, args.sim_lanes, args.seed)
        if args.sim_full:
            out["simulated_full"] = _simulate(qm, args.lanes, args.seed)
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.verilator:
        out["verilator_full"] = _verilator(qm, args.lanes, args.seed, args.work)

    print(f"P (lanes)                 {args.lanes}")
    print(f"channels                  {'-'.join(map(str, qm.channels))}")
    for r in cm["layers"]:
        print(f"  layer {r['layer']}: {r['ocp']:>3} x {r['icp']:<3} x {r['tp']} taps, lanes busy {r['busy_lanes']:>3}, "
              f"steps {r['steps']:>6}, gap {r['gap']}")
    print(f"cycles/avatar (model)     {cm['cycles_per_avatar']}")
    print(f"MAC bound (useful/P)      {cm['mac_bound_cycles']}  ({cm['useful_macs_per_avatar']} useful MACs)")
    print(f"MAC utilization           {100 * cm['utilization']:.2f} %")
    print(f"bitstream                 {out['routed']}")
    if args.fmax:
        print(f"avatars/s at {args.fmax:g} MHz     {out['avatars_per_s_fmax']:.1f}")
    for key in ("simulated_small", "simulated_full"):
        if key in out:
            s = out[key]
            print(f"amaranth.sim {'-'.join(map(str, s['channels']))} P={s['lanes']}: {s['simulated_cycles']} cycles "
                  f"(model {s['model_cycles']}), bit-exact {s['bit_exact']}, {s['sim_wall_s']} s")
    if "verilator_full" in out:
        s = out["verilator_full"]
        print(f"Verilator {'-'.join(map(str, qm.channels))} P={args.lanes}: cycles {s['simulated_cycles']} "
              f"(model {s['model_cycles']}), bit-exact {s['bit_exact']}, order {s['in_order']}; "
              f"with ready p=0.3: {s['cycles_backpressure']} cycles, bit-exact {s['bit_exact_backpressure']} "
              f"(build {s['build_s']} s)")
    return out
