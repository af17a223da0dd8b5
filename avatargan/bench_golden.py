"""``avatargan bench golden``: RGB avatars per second of the integer golden model.

A batch (default 1 000) of random z through :func:`golden.fixed.fixed_rgb`, split over one
single-threaded-BLAS worker process per usable core (all cores); see :mod:`golden.bench_golden`.
Goal (issue 4): >= 1 000 avatars/s on 2 cores.
"""

from __future__ import annotations

HELP = "RGB avatars/s of the bit-exact integer golden model (batch 1000, all cores)"


def configure(parser) -> None:
    parser.add_argument("--model", metavar="MODEL",
                        help="quantized-model file (default: a random default-size model)")
    parser.add_argument("--batch", type=int, default=1000, help="avatars per timed batch (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed batches; the best counts (default 3)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: the usable cores)")


def run(args) -> dict:
    from base.errors import UserError
    from golden.bench_golden import bench_golden

    for name in ("batch", "repeat"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    return bench_golden(args)
