"""Issue 14: no input loses a user's file or ends in a traceback (docs/ROBUSTNESS.md).

One test per numbered case of the issue (``test_caseN_...``), each failing on the code before the
fix; the property-based tests of the parsers are in tests/test_robustness_props.py.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from base.errors import UserError
from base.fileio import atomic_path
from golden.checkpoint import read_checkpoint, save_checkpoint, save_generator
from golden.models import Generator
from golden.qmodel import save_qmodel
from golden.random_models import random_qmodel

CHANNELS = [8, 8, 4, 4, 1]
TINY_TRAIN = ["--channels", "16,8,4,4,1", "--d-channels", "4,8", "--batch", "8", "--no-progress"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny float checkpoint, a tiny quantized model and a 6-image dataset."""
    d = tmp_path_factory.mktemp("robust")
    ckpt = save_generator(d / "float.npz", Generator(CHANNELS, np.random.default_rng(0)))
    model = save_qmodel(random_qmodel(tuple(CHANNELS), seed=1, std=0.3), d / "q.npz")
    data = d / "avatars.npz"
    np.savez(data, images=np.random.default_rng(2).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8))
    return {"ckpt": ckpt, "model": model, "data": data}


def one_line(capsys, argv, needle="", status=2) -> str:
    """Run the CLI; it must exit with ``status`` and print exactly one error line containing ``needle``,
    as its last line (progress notes before it, such as a first Verilator build's, are allowed)."""
    assert cli.main([str(a) for a in argv]) == status
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    errors = [line for line in err if ": error:" in line or "Traceback" in line]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert errors[0].startswith(f"avatargan {argv[0]}: error:"), err
    assert needle in errors[0], errors[0]
    return errors[0]


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- data loss (1-3)

def test_case1_dataset_out_with_user_files_is_refused(tmp_path, capsys):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "dataset.json").write_text("{}")
    (out / "main.py").write_text("print('my work')\n")
    before = tree(out)
    one_line(capsys, ["dataset", "--count", "2", "--out", out, "--quiet"], "avatargan did not write")
    assert tree(out) == before
    # a dataset the tool wrote is still replaced, whole
    ds = tmp_path / "ds"
    assert cli.main(["dataset", "--count", "3", "--out", str(ds), "--quiet"]) == 0
    assert cli.main(["dataset", "--count", "2", "--seed", "1", "--out", str(ds), "--quiet"]) == 0
    assert sorted(p.name for p in (ds / "png").iterdir()) == ["0000.png", "0001.png"]
    # a dataset written before manifests existed (its own files only) is replaced too
    (ds / ".avatargan-manifest.json").unlink()
    assert cli.main(["dataset", "--count", "1", "--out", str(ds), "--quiet"]) == 0
    assert sorted(p.name for p in (ds / "png").iterdir()) == ["0000.png"]
    # ... but not once the user has put a file of their own in it
    (ds / "notes.txt").write_text("mine")
    one_line(capsys, ["dataset", "--count", "2", "--out", ds, "--quiet"], "avatargan did not write")
    assert (ds / "notes.txt").read_text() == "mine"


def test_case2_output_that_is_an_input_is_refused(files, tmp_path, capsys):
    ckpt = tmp_path / "float.npz"
    ckpt.write_bytes(files["ckpt"].read_bytes())
    one_line(capsys, ["quantize", ckpt, "-o", ckpt, "--calib", "4"], "is the input")
    assert ckpt.read_bytes() == files["ckpt"].read_bytes()
    link = tmp_path / "alias.npz"  # the same file under another name
    link.symlink_to(ckpt)
    one_line(capsys, ["quantize", ckpt, "-o", link, "--calib", "4"], "is the input")
    assert ckpt.read_bytes() == files["ckpt"].read_bytes()
    # a folder output may not hold an input either
    one_line(capsys, ["simulate", ckpt, "--out", tmp_path], "holds the input")


def test_case2_train_run_folder_may_not_hold_the_dataset(files, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "avatars.npz").write_bytes(files["data"].read_bytes())
    one_line(capsys, ["train", "--data", d, "--out", d, "--iterations", "1", *TINY_TRAIN], "holds the dataset")
    one_line(capsys, ["train", "--data", d / "avatars.npz", "--out", d, "--iterations", "1", *TINY_TRAIN],
             "holds the dataset")
    assert [p.name for p in d.iterdir()] == ["avatars.npz"]


def test_case3_augment_force_never_replaces_a_dataset(files, tmp_path, capsys):
    from base.fileio import MANIFEST

    d = tmp_path / "d"
    assert cli.main(["dataset", "--count", "3", "--out", str(d), "--quiet"]) == 0
    before = tree(d)
    one_line(capsys, ["augment", "--fixed", files["model"], "--count", "2", "--out", d, "--force"],
             "output of `avatargan dataset`")
    assert tree(d) == before
    # --force does replace earlier augment output, whole: no stale PNG, json or npz member survives
    a = tmp_path / "a"
    assert cli.main(["augment", "--fixed", str(files["model"]), "--count", "5", "--out", str(a)]) == 0
    assert cli.main(["augment", "--fixed", str(files["model"]), "--count", "2", "--out", str(a), "--force"]) == 0
    assert sorted(p.name for p in (a / "png").iterdir()) == ["0000.png", "0001.png"]
    assert sorted(p.name for p in a.iterdir()) == [MANIFEST, "augment.json", "avatars.npz", "png"]
    assert json.loads((a / "augment.json").read_text())["count"] == 2


# --------------------------------------------------------------------------- full disk (4)

@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past ``nbytes`` fail with EFBIG (RLIMIT_FSIZE), as on a full disk."""
    old_lim = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old_lim[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_lim)
        signal.signal(signal.SIGXFSZ, old_sig)


@pytest.mark.parametrize("argv, target", [
    (["quantize", "{ckpt}", "-o", "{out}/q.npz", "--calib", "4"], "q.npz"),
    (["sample", "--fixed", "{model}", "--out", "{out}/s.png", "--scale", "8"], "s.png"),
    (["verilog", "{model}", "-o", "{out}/v", "--lanes", "4"], "v"),
    (["augment", "--fixed", "{model}", "--count", "40", "--out", "{out}/a"], "a"),
    (["train", "--data", "{data}", "--out", "{out}/run", "--iterations", "2", *TINY_TRAIN], "run/checkpoint.npz"),
    (["interpolate", "--fixed", "{model}", "--out", "{out}/i.png", "--scale", "8"], "i.png"),
    (["evaluate", "--fixed", "{model}", "--data", "{data}", "--count", "8", "--repeats", "2", "--out", "{out}/e"], "e"),
    (["dataset", "--count", "8", "--out", "{out}/d", "--quiet"], "d"),
])
def test_case4_full_disk_is_one_line_and_leaves_nothing_half_written(files, tmp_path, capsys, argv, target):
    out = tmp_path / "o"
    out.mkdir()
    argv = [a.format(out=out, **files) for a in argv]
    with file_size_limit(1500):
        status = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len([e for e in err if "error:" in e]) == 1 and "file too large" in err[-1], err
    assert not (out / target).exists()
    leftovers = [p.name for p in out.rglob(".*") if p.name != ".avatargan.lock"]
    assert leftovers == []


def test_case4_enospc_while_simulating_leaves_no_output(files, tmp_path, capsys, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)  # simulate writes hardware.npy last
    out = tmp_path / "sim"
    one_line(capsys, ["simulate", files["model"], "--count", "1", "--lanes", "4", "--out", out],
             "no space left on the device")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


def test_case4_atomic_path_names_the_target_on_enospc(tmp_path):
    target = tmp_path / "r.bin"
    with pytest.raises(UserError, match=rf"cannot write {target}: no space left on the device"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- tracebacks (5-11)

def _npy_named_npz(tmp_path) -> Path:
    p = tmp_path / "model.npz"
    with open(p, "wb") as f:
        np.save(f, np.zeros((3, 4), np.float32))
    return p


@pytest.mark.parametrize("argv", [
    ["sample", "{x}", "--out", "{o}/s.png"],
    ["sample", "--fixed", "{x}", "--out", "{o}/s.png"],
    ["interpolate", "{x}", "--out", "{o}/i.png"],
    ["augment", "{x}", "--count", "2", "--out", "{o}/a"],
    ["evaluate", "--data", "{x}", "--out", "{o}/e"],
    ["quantize", "{x}", "-o", "{o}/q.npz"],
    ["verilog", "{x}", "-o", "{o}/v"],
    ["simulate", "{x}", "--out", "{o}/s"],
    ["synth", "{x}", "-o", "{o}/y"],
    ["demo", "--model", "{x}", "--out", "{o}/d"],
    ["train", "--data", "{x}", "--out", "{o}/r", "--iterations", "1"],
])
def test_case5_npy_named_npz_is_one_line_for_every_reader(tmp_path, capsys, argv):
    x = _npy_named_npz(tmp_path)
    one_line(capsys, [a.format(x=x, o=tmp_path) for a in argv], "is a single NumPy .npy array")


def _huge_member_npz(path: Path, name: str, shape=(1 << 40,)):
    """An .npz whose member ``name`` declares ``shape`` (terabytes) but holds 16 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.npy", buf.getvalue() + bytes(16))


def test_case6_declared_huge_shape_is_refused_before_allocating(files, tmp_path, capsys):
    from golden.dataset import load_images
    from golden.qmodel import load_qmodel

    bad = tmp_path / "huge.npz"
    _huge_member_npz(bad, "images")
    for reader in (read_checkpoint, load_qmodel, load_images):
        with pytest.raises(UserError, match=r"declares shape \(1099511627776,\)"):
            reader(bad)
    one_line(capsys, ["sample", bad, "--out", tmp_path / "s.png"], "declares shape")
    # a member that declares 3 floats but holds 4 is refused as well
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (3,)})
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("images.npy", buf.getvalue() + bytes(16))
    with pytest.raises(UserError, match="holds 16 bytes"):
        load_images(bad)


def test_case7_bad_z_files_are_refused_before_the_build(files, tmp_path, capsys, monkeypatch):
    from sim import flow

    def no_build(*a, **k):
        raise AssertionError("the Verilator flow must not start for a bad z file")

    monkeypatch.setattr(flow, "generate_verilog", no_build)
    cases = {
        "empty.npy": (lambda p: p.write_bytes(b""), "is an empty file"),
        "z.npz": (lambda p: np.savez(p, a=np.zeros((1, 8)), b=np.zeros((1, 8))), "without an array 'z'"),
        "rows0.npy": (lambda p: np.save(p, np.zeros((0, 8))), "holds 0 z vectors"),
        "text.npy": (lambda p: p.write_text("0.1 0.2\n"), "is a text file"),
        "wide.npy": (lambda p: np.save(p, np.zeros((2, 9))), "must have shape (N, 8)"),
    }
    for name, (make, needle) in cases.items():
        p = tmp_path / name
        make(p)
        one_line(capsys, ["simulate", files["model"], "--z", p, "--out", tmp_path / "o"], needle)
    assert not (tmp_path / "o").exists()
    # an .npz holding 'z' (as augment writes) is read
    from golden.npzfile import read_z

    np.savez(tmp_path / "ok.npz", images=np.zeros((2, 32, 32, 3), np.uint8), z=np.ones((2, 8)))
    assert read_z(tmp_path / "ok.npz", 8).shape == (2, 8)


@pytest.mark.parametrize("argv", [
    ["simulate", "{model}", "--seed", "-1", "--out", "{o}/s"],
    ["train", "--data", "{data}", "--out", "{o}/r", "--seed", "-1", "--iterations", "1"],
    ["demo", "--model", "{ckpt}", "--seed", "-1", "--out", "{o}/d"],
    ["synth", "{model}", "--seed", "-1", "-o", "{o}/y"],
])
def test_case8_negative_seed_is_one_line(files, tmp_path, capsys, argv):
    one_line(capsys, [a.format(o=tmp_path, **files) for a in argv], "--seed must be a non-negative integer")
    assert list(tmp_path.iterdir()) == []


def test_case9_output_file_that_is_a_folder(files, tmp_path, capsys):
    (tmp_path / "x.png").mkdir()
    one_line(capsys, ["sample", "--fixed", files["model"], "--out", tmp_path / "x.png"], "is a folder")
    (tmp_path / "q").mkdir()
    one_line(capsys, ["quantize", files["ckpt"], "-o", tmp_path / "q", "--calib", "4"], "is a folder")
    one_line(capsys, ["interpolate", "--fixed", files["model"], "--out", tmp_path / "x.png"], "is a folder")
    assert list((tmp_path / "q").iterdir()) == []


def _png(path, mode="RGB", value=128):
    Image.new(mode, (8, 8), value).save(path, format="PNG")


def test_case10_non_utf8_file_name_in_from_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    bad = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    _png(src / bad)
    out = tmp_path / "out"
    assert cli.main(["dataset", "--from", str(src), "--out", str(out), "--quiet"]) == 0
    rows = (out / "attributes.csv").read_text("utf-8")
    assert "caf\\xe9.png" in rows and "a.png" in rows


def test_case11_resume_with_unknown_config_key(files, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(files["data"]), "--out", str(run), "--iterations", "2",
                     *TINY_TRAIN]) == 0
    capsys.readouterr()
    meta, arrays = read_checkpoint(run / "checkpoint.npz", need_all=True)
    meta["config"]["warp_drive"] = True
    save_checkpoint(run / "checkpoint.npz", arrays, meta)
    one_line(capsys, ["train", "--data", files["data"], "--out", run, "--resume", "--iterations", "4"],
             "unknown configuration key(s) 'warp_drive'")


# --------------------------------------------------------------------------- silent wrong results (12-15)

def test_case12_16bit_grey_with_trns_is_on_white(tmp_path):
    from golden.dataset import read_image

    a = np.zeros((40, 40), np.uint16)
    a[10:30, 10:30] = 40000
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p, format="PNG", transparency=0)
    with Image.open(p) as im:
        assert im.mode == "I;16" and im.info["transparency"] == 0  # the case: 16-bit grey + tRNS
    img, _, _ = read_image(p)
    assert img[0, 0].tolist() == [255, 255, 255]               # transparent corner: white
    assert img[16, 16].tolist() == [156, 156, 156]             # opaque grey 40000 / 257


def test_case13_uint64_z_codes_are_range_checked_before_the_cast():
    from golden.fixed import check_zq

    qm = random_qmodel(tuple(CHANNELS), seed=1)
    bad = np.full((1, 8), 2 ** 64 - 1, np.uint64)  # int64 would read it as -1, a valid code
    with pytest.raises(UserError, match=r"\[18446744073709551615, 18446744073709551615\]"):
        check_zq(qm, bad)
    ok = np.full((1, 8), 32767, np.uint64)
    assert check_zq(qm, ok).dtype == np.int64 and check_zq(qm, ok)[0, 0] == 32767


def test_case14_huge_float_z_saturates_to_the_right_end():
    from golden.fixed import quantize_z
    from golden.qmodel import q_float

    zq, nsat = quantize_z(np.array([[2.3e15, 3e15, 1e300, -3e15, -1e300, 7.99, -8.0, 0.5]]), 8)
    assert zq[0].tolist() == [32767, 32767, 32767, -32768, -32768, 32727, -32768, 2048] and nsat == 5
    assert q_float(np.array([1e30]), 12)[0] > 0


def test_case15_numerics_states_the_default_weight_rule():
    import inspect

    from golden.quantize import quantize_checkpoint

    assert inspect.signature(quantize_checkpoint).parameters["weight_rule"].default == "max"
    text = (Path(__file__).parents[1] / "docs" / "NUMERICS.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| weights of layer l |"))
    rule = row.split("|", 3)[3]  # the last column (it holds |w_l| itself)
    assert "no weight saturates" in rule and rule.index("no weight saturates") < rule.index("least squared")
    assert "--weight-rule mse" in rule


# --------------------------------------------------------------------------- unbounded work (16)

@pytest.mark.parametrize("argv, needle", [
    (["verilog", "{model}", "-o", "{o}/v", "--lanes", "1048576"], "--lanes must be a power of two from 1 to 256"),
    (["simulate", "{model}", "--lanes", "3", "--out", "{o}/s"], "--lanes must be a power of two"),
    (["interpolate", "--fixed", "{model}", "--rows", "256", "--steps", "64", "--scale", "32", "--out", "{o}/i.png"],
     "the limit is 89,478,485"),
    (["sample", "--fixed", "{model}", "--count", "4096", "--scale", "32", "--out", "{o}/s.png"], "the limit is"),
    (["train", "--data", "{data}", "--out", "{o}/r", "--channels", "100000,8,4,4,1"], "at most 1024"),
    (["augment", "--fixed", "{model}", "--count", "1000000", "--out", "{o}/a"], "between 1 and 100000"),
    (["simulate", "{model}", "--count", "1000000", "--out", "{o}/s"], "between 1 and 100000"),
    (["quantize", "{ckpt}", "-o", "{o}/q.npz", "--calib", "10000000"], "between 1 and 100000"),
    (["synth", "{model}", "--freq", "nan", "-o", "{o}/y"], "--freq must be in (0, 400] MHz"),
    (["synth", "{model}", "--seed", str(2 ** 40), "-o", "{o}/y"], "32-bit integer"),
    (["board", "--port", "x", "--nz", "8", "--timeout", "nan", "--out", "{o}/b.png"], "--timeout must be in"),
    (["train", "--data", "{data}", "--out", "{o}/r", "--iterations", "10000000"], "at most 1,000,000"),
    (["bench", "golden", "--batch", "1000000000"], "--batch must be between 1 and 100,000"),
    (["bench", "train", "--iterations", "0"], "--iterations must be between 1 and 100,000"),
    (["bench", "rtl", "--lanes", "1048576"], "--lanes must be a power of two"),
    (["bench", "rtl", "--channels", "100000,8,4,4,1"], "at most 1024 wide"),
])
def test_case16_sizes_are_bounded_in_one_line(files, tmp_path, capsys, argv, needle):
    one_line(capsys, [a.format(o=tmp_path, **files) for a in argv], needle)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- leftovers and races (17-18)

def test_case17_temporaries_of_a_killed_writer_are_swept(files, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(files["data"]), "--out", str(run), "--iterations", "2",
                     *TINY_TRAIN]) == 0
    # a writer killed with SIGKILL in the middle of writing the checkpoint and the loss plot
    code = ("import os, sys; from base.fileio import atomic_path\n"
            "held = [atomic_path(os.path.join(sys.argv[1], n)) for n in ('checkpoint.npz', 'losses.png')]\n"
            "for cm in held: cm.__enter__().write_bytes(b'half')\n"
            "os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(run)], cwd=Path(__file__).parents[1])
    assert proc.returncode == -9
    left = sorted(p.name for p in run.iterdir() if p.name.startswith("."))
    assert len(left) == 2 and left[0].startswith(".checkpoint.npz.tmp") and left[1].startswith(".losses.png.tmp")
    (run / ".losses.csv.k3j2h1g0.csv").write_text("half")  # as versions before process-tagged names left them
    assert cli.main(["train", "--data", str(files["data"]), "--out", str(run), "--resume", "--iterations", "3",
                     "--no-progress"]) == 0
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


def test_case17_refused_lanes_leave_no_cache_folder(files, tmp_path):
    from sim import flow

    with pytest.raises(UserError):
        flow.generate_verilog(files["model"], lanes=3, cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_case18_second_train_into_a_locked_folder_is_refused(files, tmp_path, capsys):
    from base.fileio import folder_lock

    run = tmp_path / "run"
    with folder_lock(run, "train"):  # as a running train holds it
        one_line(capsys, ["train", "--data", files["data"], "--out", run, "--iterations", "2", *TINY_TRAIN],
                 "is in use by another train")
    assert not (run / "checkpoint.npz").exists()
    assert cli.main(["train", "--data", str(files["data"]), "--out", str(run), "--iterations", "2",
                     *TINY_TRAIN]) == 0  # free again once released


def test_case18_resume_with_fewer_iterations_is_refused(files, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(files["data"]), "--out", str(run), "--iterations", "3",
                     *TINY_TRAIN]) == 0
    capsys.readouterr()
    one_line(capsys, ["train", "--data", files["data"], "--out", run, "--resume", "--iterations", "2"],
             "--iterations 2 is not more than the 3 already done")
    assert read_checkpoint(run / "checkpoint.npz")[0]["config"]["iterations"] == 3


def test_case18_odd_entries_in_from_folder_are_warned_about(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "good.png")
    (src / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(src / "pipe.png")
    (src / "folder.png").mkdir()
    assert cli.main(["dataset", "--from", str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    for name in ("dangling.png", "pipe.png", "folder.png"):
        assert f"warning: skipping {src / name}: not a regular file" in err
    assert len(np.load(tmp_path / "out" / "avatars.npz")["images"]) == 1


# --------------------------------------------------------------------------- friction (19)

def test_case19_commands_default_to_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert cli.main(["sample", "--count", "2", "--out", str(out)]) == 0
    assert "models/default.npz" in capsys.readouterr().out and out.is_file()


def test_case19_hardware_commands_take_a_float_checkpoint(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the quantized-model cache lives under build/
    assert cli.main(["verilog", str(files["ckpt"]), "-o", "v", "--lanes", "4", "--no-rtlil"]) == 0
    err = capsys.readouterr().err
    assert "is a float checkpoint; using its quantized model" in err and "made now" in err
    assert (tmp_path / "v" / "generator.v").is_file()
    assert cli.main(["verilog", str(files["ckpt"]), "-o", "v", "--lanes", "4", "--no-rtlil"]) == 0
    assert "cached" in capsys.readouterr().err
    cached = list((tmp_path / "build" / "cache" / "quantized").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("float-")


def test_case19_simulate_and_synth_take_a_float_checkpoint(files, tmp_path, capsys, monkeypatch):
    import avatargan.commands.simulate as simulate
    import gen.synth
    from golden.qmodel import load_qmodel

    seen = []

    def stop(model, *a, **k):  # the hardware flows themselves are tested elsewhere
        seen.append(Path(model))
        raise UserError("stopped by the test")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(simulate, "simulate_to_folder", stop)
    monkeypatch.setattr(gen.synth, "synth_model", stop)
    for argv, made in ((["simulate", str(files["ckpt"]), "--count", "1"], "made now"),
                       (["synth", str(files["ckpt"])], "cached"),
                       (["simulate", "--count", "1"], "made now")):  # no MODEL: the shipped one
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and "is a float checkpoint; using its quantized model" in err[0] and made in err[0]
        assert err[1] == f"avatargan {argv[0]}: error: stopped by the test"
    assert seen[0] == seen[1] and load_qmodel(seen[0]).nz == CHANNELS[0]
    assert seen[2].name.startswith("default-") and load_qmodel(seen[2]).nz == 100


def test_board_z_file_and_out_are_checked(files, tmp_path, capsys):
    (tmp_path / "z.npy").write_bytes(b"")
    one_line(capsys, ["board", "--port", "x", "--model", files["model"], "--z", tmp_path / "z.npy",
                      "--out", tmp_path / "b.png"], "is an empty file")
    (tmp_path / "b.png").mkdir()
    one_line(capsys, ["board", "--port", "x", "--model", files["model"], "--out", tmp_path / "b.png"], "is a folder")
    one_line(capsys, ["board", "--port", "x", "--seed", "-1", "--nz", "8", "--out", tmp_path / "c.png"],
             "--seed must be a non-negative integer")


def test_case10_non_utf8_output_name_on_a_strict_terminal(files, tmp_path):
    name = os.fsdecode(b"caf\xe9.png")
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    proc = subprocess.run([sys.executable, "-m", "avatargan", "sample", "--fixed", str(files["model"]), "--count", "1",
                           "--out", name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          errors="backslashreplace")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "caf\\udce9.png" in proc.stdout and (tmp_path / name).is_file()


def test_case1_synth_never_writes_into_a_folder_of_user_files(files, tmp_path, capsys, monkeypatch):
    import gen.synth

    def fake_synth(model, device, *, out, **k):  # the flow writes its files into the build folder
        Path(out).mkdir(exist_ok=True)
        (Path(out) / "report.md").write_text("report")
        return {"build_dir": str(out), "resources": {}, "freq_constraint_mhz": 100.0,
                "performance": {"engine_clock": "clk", "fmax_mhz": 100.0}}

    monkeypatch.setattr(gen.synth, "synth_model", fake_synth)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my report")
    one_line(capsys, ["synth", files["model"], "-o", mine], "avatargan did not write")
    assert (mine / "report.md").read_text() == "my report"
    out = tmp_path / "b"
    for _ in range(2):  # its own build folder (manifest) may be written again
        assert cli.main(["synth", str(files["model"]), "-o", str(out)]) == 0
    from base.fileio import folder_owner

    assert folder_owner(out) == "synth"


def test_npy_header_with_a_nul_byte_is_one_line(tmp_path):
    """Found by the property test on a fresh clone: NumPy's header parser raises SyntaxError or
    tokenize.TokenError on a damaged literal; the reader turns it into one line."""
    import io
    import zipfile

    from golden.npzfile import read_npz

    buf = io.BytesIO()
    np.save(buf, np.zeros((8, 8, 4, 4), np.float32))
    raw = bytearray(buf.getvalue())
    raw[raw.index(b"(8, 8")] = 0
    p = tmp_path / "ckpt.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("G.w1.npy", bytes(raw))
    with pytest.raises(UserError, match="not a readable .npz archive"):
        read_npz(p, "checkpoint")
