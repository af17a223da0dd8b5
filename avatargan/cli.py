"""The ``avatargan`` command line.

Each subcommand is a module in :mod:`avatargan.commands` that defines

``NAME``
    the subcommand name (``"dataset"``, ``"train"``, ...);
``HELP``
    a one-line summary shown by ``avatargan --help``;
``configure(parser)``
    adds the subcommand's arguments to an :class:`argparse.ArgumentParser`;
``run(args) -> int``
    does the work and returns the exit status.

Modules are discovered automatically, so adding a subcommand touches no other file. Command
modules import heavy libraries (Amaranth, cocotb) inside ``run`` so that ``--help`` stays fast.

User mistakes raise :class:`base.errors.UserError`; they are printed as one line on stderr
with exit status 2, as is any ``OSError`` (full disk, permissions) or ``MemoryError`` that no
check caught. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from avatargan import __version__
from base.errors import UserError

#: The order of subcommands in ``--help``: the data path first, then the tools around it.
ORDER = ["demo", "dataset", "train", "sample", "interpolate", "augment", "evaluate", "quantize",
         "verilog", "simulate", "synth", "board", "bench"]


def _command_modules():
    import avatargan.commands as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"avatargan.commands.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    rank = {name: i for i, name in enumerate(ORDER)}
    mods.sort(key=lambda m: (rank.get(m.NAME, len(ORDER)), m.NAME))
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatargan",
        description="GAN avatar generator: dataset -> train -> quantize -> verilog -> simulate -> synth.",
    )
    parser.add_argument("--version", action="version", version=f"avatargan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not end in a traceback
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._run(args)
    except UserError as e:
        print(f"avatargan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avatargan {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a fault no check caught (full disk, permissions): still one line
        where = f": {e.filename}" if e.filename is not None else ""
        print(f"avatargan {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"avatargan {args.command}: error: out of memory (choose smaller sizes)", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
