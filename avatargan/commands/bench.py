"""``avatargan bench TARGET``: speed measurements (never timed tests).

Targets are discovered, so every part of the project adds its own without touching this file:
a module ``avatargan/bench_<target>.py`` (for example ``bench_train.py``; others may add
``bench_golden.py``, ``bench_rtl.py``, ``bench_sim.py``) defines

``HELP``
    one line for ``avatargan bench --help``;
``configure(parser)``
    adds the target's options to its own sub-parser;
``run(args) -> dict``
    measures, prints a short human-readable table and returns the figures (JSON-serialisable).

Target modules must import only the standard library at module level (``--help`` imports all of
them); heavy imports (NumPy, PyTorch, Amaranth) go inside ``run``. Every target gets ``--json
PATH``, which writes the returned figures atomically.
"""

from __future__ import annotations

import importlib
import json
import pkgutil

NAME = "bench"
HELP = "speed benchmarks (train; other parts add golden, rtl, sim)"


def targets() -> dict:
    """``{target name: module}`` for every ``avatargan/bench_<target>.py``."""
    import avatargan

    out = {}
    for info in sorted(pkgutil.iter_modules(avatargan.__path__), key=lambda i: i.name):
        if info.name.startswith("bench_"):
            mod = importlib.import_module(f"avatargan.{info.name}")
            if hasattr(mod, "run") and hasattr(mod, "configure"):
                out[info.name[len("bench_"):]] = mod
    return out


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True
    for name, mod in targets().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.configure(p)
        p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
        p.set_defaults(_bench=mod)


#: Limits of the benches' sizes: option -> (least, most, why). A bench is a measurement of
#: seconds to minutes; beyond these it runs for hours or exhausts memory.
LIMITS = {
    "batch": (1, 100_000, "memory grows with the batch"),
    "repeat": (1, 1000, "the best of 1000 runs is as good as of more"),
    "workers": (1, 256, "more processes than any machine here has cores"),
    "count": (1, 10_000, "the simulator draws a few avatars a second"),
    "iterations": (1, 100_000, "at ~0.2 s each, hours"),
    "warmup": (0, 10_000, "at ~0.2 s each, beyond half an hour"),
    "threads": (1, 1024, "more threads than any machine here has cores"),
    "rounds": (1, 100, "every round runs each child again"),
    "seed": (0, 2 ** 63 - 1, "a non-negative 64-bit seed"),
}


def check_sizes(args) -> None:
    """Refuse, in one line, a bench size beyond :data:`LIMITS` or a lane count beyond ``MAX_LANES``."""
    from avatargan.commands._avatars import lanes_arg
    from base.errors import UserError

    for name, (lo, hi, why) in LIMITS.items():
        value = getattr(args, name, None)
        if isinstance(value, int) and not lo <= value <= hi:
            raise UserError(f"--{name} must be between {lo} and {hi:,} ({why}), got {value}")
    for name in ("lanes", "sim_lanes"):
        if isinstance(getattr(args, name, None), int):
            lanes_arg(getattr(args, name))


def run(args) -> int:
    from base.fileio import atomic_write

    check_sizes(args)
    figures = args._bench.run(args)
    if args.json:
        atomic_write(args.json, json.dumps(figures, indent=2) + "\n")
    return 0
