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


def run(args) -> int:
    from avatargan.fileio import atomic_write

    figures = args._bench.run(args)
    if args.json:
        atomic_write(args.json, json.dumps(figures, indent=2) + "\n")
    return 0
