"""The command line: every subcommand has --help; user errors are one line and exit 2."""

import subprocess
import sys
import types

import pytest

from avatargan import cli
from base.errors import UserError


def test_every_subcommand_has_help(capsys):
    parser = cli.build_parser()
    names = [m.NAME for m in cli._command_modules()]
    for name in names:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0
        assert name in capsys.readouterr().out


def test_all_subcommands_of_the_data_path_exist():
    # the list plus the demo and the board host: all of them must be there, in ORDER
    names = [m.NAME for m in cli._command_modules()]
    assert names == cli.ORDER
    for want in ("demo", "dataset", "train", "sample", "interpolate", "augment", "evaluate", "quantize",
                 "verilog", "simulate", "synth", "bench"):
        assert want in names


def test_bench_targets_exist(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["bench", "--help"])
    out = capsys.readouterr().out
    for target in ("train", "golden", "rtl", "sim"):
        assert target in out


def _fake(run):
    return types.SimpleNamespace(NAME="fake", HELP="a fake command", configure=lambda p: None, run=run)


def test_user_error_is_one_line_exit_2(monkeypatch, capsys):
    def boom(args):
        raise UserError("bad thing happened")

    monkeypatch.setattr(cli, "_command_modules", lambda: [_fake(boom)])
    status = cli.main(["fake"])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == ["avatargan fake: error: bad thing happened"]


def test_bug_is_not_hidden(monkeypatch):
    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_command_modules", lambda: [_fake(bug)])
    with pytest.raises(ZeroDivisionError):
        cli.main(["fake"])


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "avatargan", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "avatargan" in out.stdout
