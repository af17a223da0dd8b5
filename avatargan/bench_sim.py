"""``avatargan bench sim``: Verilator build time of the full default model and simulated avatars/s.

The measurement itself lives in :mod:`sim.bench_sim` (heavy imports stay there).
"""

from base.contract import DEFAULT_CHANNELS, DEFAULT_LANES

HELP = ("Verilator build time of the full default model and simulated RGB avatars/s, through cocotb and "
        "through the harness's fast path")


def configure(parser) -> None:
    parser.add_argument("--model", default=None,
                        help=f"quantized model (default: a random model with channels {'-'.join(map(str, DEFAULT_CHANNELS))})")
    parser.add_argument("--lanes", type=int, default=None, help=f"multiply lanes P (default {DEFAULT_LANES})")
    parser.add_argument("--count", type=int, default=20, help="avatars to simulate through cocotb (default 20)")
    parser.add_argument("--fast-count", type=int, default=60,
                        help="avatars to simulate through the fast path (default 60; 0: skip it)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes of the fast path (default: the usable cores no other process keeps busy)")
    parser.add_argument("--out", default=None, help="folder for bench_sim.json / bench_sim.md")


def run(args) -> dict:
    from sim.bench_sim import bench_sim

    return bench_sim(args)
