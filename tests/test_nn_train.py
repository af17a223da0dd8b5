"""Training: a short run, determinism, kill -9 / Ctrl-C then --resume, NaN stop, D_grey's inputs.

All runs use tiny networks on 64 synthetic 32×32 avatars so the file stays fast on 2 cores.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatargan import cli
from base.errors import UserError
from golden import train as T
from golden.checkpoint import load_generator, read_checkpoint
from golden.models import Generator

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--channels", "16,8,4,4,1", "--d-channels", "4,8", "--batch", "8"]


def synthetic_avatars(n=64, seed=0):
    """Discs of random colour on random backgrounds: uint8 (n, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    imgs = np.empty((n, 32, 32, 3), np.uint8)
    for i in range(n):
        imgs[i] = rng.integers(0, 256, 3)
        cy, cx = rng.integers(8, 24, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(16, 100)
        imgs[i][disc] = rng.integers(0, 256, 3)
    return imgs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "avatars.npz"
    np.savez(p, images=synthetic_avatars())
    return p


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _same_state(a_path, b_path):
    a, b = _arrays(a_path), _arrays(b_path)
    assert sorted(a) == sorted(b)
    for k in a:
        if k == "meta":
            continue
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ma, mb = (json.loads(x["meta"].tobytes()) for x in (a, b))
    assert ma["rng"] == mb["rng"] and ma["iteration"] == mb["iteration"]


def test_short_training_run(data, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--data", str(data), "--out", str(out), "--iterations", "30",
                       "--checkpoint-every", "10", "--no-progress", *TINY])
    assert status == 0
    assert "trained 30 iterations" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "generator.npz", "losses.csv", "losses.png"]
    meta, arrays = read_checkpoint(out / "checkpoint.npz", need_all=True)
    assert meta["iteration"] == 30 and meta["preset"] == "default"
    assert meta["config"]["augment"] == "color,translation,cutout"
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[0].split(",") == T.COLUMNS and len(rows) == 31
    vals = np.array([[float(v) for v in r.split(",")] for r in rows[1:]])
    assert np.all(np.isfinite(vals)) and np.all(vals[:, 4:] > 0) and np.all(vals[:, 4:] < 1)
    with Image.open(out / "losses.png") as png:
        assert png.format == "PNG" and png.size == (900, 420)
    gen = load_generator(out / "generator.npz")
    assert gen.channels == [16, 8, 4, 4, 1]
    fresh = T.GAN(T.make_config("default", channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8))
    assert not np.array_equal(gen.params["w1"], fresh.G.params["w1"])  # training moved the weights
    np.testing.assert_array_equal(gen.v, fresh.G.v)                     # v is fixed, drawn at init
    rgb = gen.rgb(np.zeros((2, 16), np.float32))
    assert rgb.shape == (2, 3, 32, 32) and np.all(np.abs(rgb) <= 1)


def test_deterministic_for_a_seed(data, tmp_path):
    cfg = dict(channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8, iterations=6)
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        T.train(data, tmp_path / name, T.make_config("default", seed=seed, **cfg), progress=False)
        runs[name] = tmp_path / name / "checkpoint.npz"
    _same_state(runs["a"], runs["b"])
    assert not np.array_equal(_arrays(runs["a"])["G.w2"], _arrays(runs["c"])["G.w2"])


def test_same_state_at_one_and_two_threads(data, tmp_path):
    """OpenBLAS splits a product over threads by output blocks, and golden.nn splits its copies by
    channels, so the thread count does not change a single bit (default-size networks, so that
    BLAS really uses its second thread)."""
    from golden import threads

    before = threads.get_threads()
    try:
        for n in (1, 2):
            T.train(data, tmp_path / f"t{n}", T.make_config("default", batch=16, iterations=2), progress=False,
                    threads=n)
            assert threads.get_threads() == n
    finally:
        threads.set_threads(before)
    _same_state(tmp_path / "t1" / "checkpoint.npz", tmp_path / "t2" / "checkpoint.npz")


def _start(data, out, iterations):
    cmd = [sys.executable, "-m", "avatargan", "train", "--data", str(data), "--out", str(out),
           "--iterations", str(iterations), "--checkpoint-every", "5", "--no-progress", *TINY]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), env


def _wait_for_checkpoint(proc, path, timeout=60):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.005)


def test_kill_and_ctrl_c_then_resume_match_an_uninterrupted_run(data, tmp_path):
    n = 150
    ref = tmp_path / "ref"
    proc, env = _start(data, ref, n)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    for how in ("kill", "sigint"):
        out = tmp_path / how
        proc, env = _start(data, out, n)
        _wait_for_checkpoint(proc, out / "checkpoint.npz")
        proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        rc = proc.returncode
        stopped_at = read_checkpoint(out / "checkpoint.npz", need_all=True)[0]["iteration"]
        assert 0 < stopped_at < n
        if how == "kill":
            assert rc == -signal.SIGKILL
            assert stopped_at % 5 == 0
        else:
            assert rc == 130, err
            assert f"interrupted at iteration {stopped_at}" in err
            assert not (out / "generator.npz").exists()
        res = subprocess.run([sys.executable, "-m", "avatargan", "train", "--data", str(data), "--out", str(out),
                              "--resume", "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert f"resuming {out} at iteration {stopped_at}" in res.stderr
        _same_state(ref / "checkpoint.npz", out / "checkpoint.npz")
        assert (ref / "losses.csv").read_text() == (out / "losses.csv").read_text()


def test_resume_and_overwrite_guards(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="does not exist"):
        T.train(data, out, None, resume=True, progress=False)
    cfg = T.make_config("default", channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8, iterations=2)
    T.train(data, out, cfg, progress=False)
    with pytest.raises(UserError, match="use --resume"):
        T.train(data, out, cfg, progress=False)
    other = tmp_path / "other.npz"
    np.savez(other, images=synthetic_avatars(seed=1))
    with pytest.raises(UserError, match="not the dataset"):
        T.train(other, out, T.make_config("default", iterations=4), resume=True, progress=False)
    assert cli.main(["train", "--data", str(data), "--out", str(out), "--resume", "--batch", "4"]) == 2


def test_bad_data_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 32, 32, 3), np.float32))
    for path in (bad, tmp_path / "missing.npz"):
        with pytest.raises(UserError):
            T.load_training_images(path)


def test_nan_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    real_g_loss = T.GAN._g_loss

    def poisoned(self, D, fake, aug):
        loss, dx, p = real_g_loss(self, D, fake, aug)
        return (float("nan") if self.iteration == 7 else loss), dx, p

    monkeypatch.setattr(T.GAN, "_g_loss", poisoned)
    out = tmp_path / "run"
    cfg = T.make_config("default", channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8,
                        iterations=20, checkpoint_every=3)
    with pytest.raises(UserError) as e:
        T.train(data, out, cfg, progress=False)
    msg = str(e.value)
    assert "iteration 8" in msg and "NaN" in msg.replace("nan", "NaN") and "(iteration 6) is kept" in msg
    meta, arrays = read_checkpoint(out / "checkpoint.npz", need_all=True)  # valid and finite
    assert meta["iteration"] == 6
    assert not (out / "generator.npz").exists()


def test_d_grey_sees_single_planes_of_real_avatars_and_generator_planes(data):
    """Our reading of the seed: D_grey's reals are R, G or B planes of real avatars, its fakes
    single passes of G; D_color's are RGB avatars vs [G(z), G(z+v1), G(z+v2)]."""
    cfg = T.make_config("seed", channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8)
    assert cfg.augment == "" and cfg.lr_d == 1e-6 and cfg.lr_g == 1e-4
    gan = T.GAN(cfg)
    imgs = T.load_training_images(data)
    zs, seen = [], []
    forward_rgb = gan.G.forward_rgb

    def record_z(z):
        zs.append(np.array(z, copy=True))
        return forward_rgb(z)

    def spy(D, opt, real, fake, aug_real, aug_fake):   # the two run as tasks: maybe side by side
        assert aug_real is None and aug_fake is None      # the seed's preset does not augment
        seen.append((D, real.copy(), fake.copy(), zs[-1]))
        return 0.0, 0.5, 0.5

    gan.G.forward_rgb = record_z
    gan._d_update = spy
    channels = set()
    for _ in range(4):
        g_before = {k: a.copy() for k, a in gan.G.params.items()}
        gan.step(imgs)
        (dc, real_c, fake_c, z), (dg, real_g, fake_g, _) = sorted(seen[-2:], key=lambda e: e[0] is gan.D_grey)
        assert dc is gan.D_color and dg is gan.D_grey
        assert real_c.shape == (8, 3, 32, 32) and real_g.shape == fake_g.shape == (8, 1, 32, 32)
        for img in real_c:  # real RGB avatars from the dataset
            assert any(np.array_equal(img, x) for x in imgs)
        for plane, rgb_img in zip(real_g[:, 0], real_c):  # a colour plane of the same avatar
            hits = [c for c in range(3) if np.array_equal(plane, rgb_img[c])]
            assert hits
            channels.update(hits)
        # fakes: the three passes z, z+v1, z+v2 of G as RGB; one pass per sample for D_grey
        g = Generator(cfg.channels)
        for k, a in g.params.items():
            a[...] = g_before[k]
        g.v[...] = gan.G.v
        for c, u in enumerate((z, z + g.v[0], z + g.v[1])):
            np.testing.assert_allclose(fake_c[:, c], g.plane(u), rtol=0, atol=1e-6)
        for plane, rgb_img in zip(fake_g[:, 0], fake_c):
            assert any(np.array_equal(plane, rgb_img[c]) for c in range(3))
    assert channels == {0, 1, 2}


# --------------------------------------------------------------------------- moving average of G (--ema)

TINY_CFG = dict(channels=[16, 8, 4, 4, 1], d_channels=[4, 8], batch=8)


def test_ema_is_on_in_default_off_in_seed_and_off_leaves_no_arrays(data, tmp_path):
    assert T.make_config("default").ema == 0.999 and T.make_config("seed").ema == 0.0
    assert T.make_config("default").iterations == 30_000 and T.make_config("seed").iterations == 10_000
    T.train(data, tmp_path / "r", T.make_config("default", iterations=2, ema=0.0, **TINY_CFG), progress=False)
    assert not any(k.startswith("ema.") for k in _arrays(tmp_path / "r" / "checkpoint.npz"))


def test_ema_is_the_moving_average_and_does_not_change_training(data):
    x = T.load_training_images(data)
    on, off = T.GAN(T.make_config("default", ema=0.9, **TINY_CFG)), T.GAN(T.make_config("default", ema=0.0, **TINY_CFG))
    want = {k: a.astype(np.float64) for k, a in off.G.params.items()}  # starts at the initial weights
    for _ in range(3):
        on.step(x)
        off.step(x)
        for k, a in off.G.params.items():
            want[k] = 0.9 * want[k] + 0.1 * a.astype(np.float64)  # reference in float64
    for k in want:
        np.testing.assert_array_equal(on.G.params[k], off.G.params[k])  # the average feeds nothing back
        # float32 running average vs the float64 reference: a few float32 ulps per step
        np.testing.assert_allclose(on.ema[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)
        assert not np.allclose(on.ema[k], on.G.params[k], rtol=1e-3)  # it is not just G


def test_ema_resumes_bit_for_bit_and_is_what_generator_npz_holds(data, tmp_path):
    cfg = dict(TINY_CFG, ema=0.8, checkpoint_every=2)
    T.train(data, tmp_path / "straight", T.make_config("default", iterations=4, **cfg), progress=False)
    T.train(data, tmp_path / "halves", T.make_config("default", iterations=2, **cfg), progress=False)
    T.train(data, tmp_path / "halves", T.make_config("default", iterations=4), resume=True, progress=False)
    _same_state(tmp_path / "straight" / "checkpoint.npz", tmp_path / "halves" / "checkpoint.npz")
    state = _arrays(tmp_path / "straight" / "checkpoint.npz")
    assert sorted(k for k in state if k.startswith("ema.")) == [f"ema.{k}" for k in sorted(Generator(TINY_CFG["channels"]).params)]
    gen = load_generator(tmp_path / "halves" / "generator.npz")
    for k, a in gen.params.items():
        np.testing.assert_array_equal(a, state[f"ema.{k}"])
        assert not np.array_equal(a, state[f"G.{k}"])
    np.testing.assert_array_equal(gen.v, state["v"])
    assert "moving average" in gen.meta["weights"]


def test_ema_bad_values_are_one_line(data, tmp_path, capsys):
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(UserError, match="--ema"):
            T.make_config("default", ema=bad)
    out = tmp_path / "r"
    argv = ["train", "--data", str(data), "--out", str(out), "--iterations", "1", "--no-progress", *TINY]
    assert cli.main([*argv, "--ema", "1.5"]) == 2
    assert cli.main([*argv, "--ema", "0.5"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--out", str(out), "--resume", "--ema", "0.9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ema cannot change on --resume" in err[0]
    meta, arrays = read_checkpoint(out / "checkpoint.npz", need_all=True)
    meta["config"]["ema"] = 2.0  # a damaged checkpoint
    from golden.checkpoint import save_checkpoint

    save_checkpoint(out / "checkpoint.npz", arrays, meta)
    assert cli.main(["train", "--data", str(data), "--out", str(out), "--resume", "--iterations", "3"]) == 2
    assert "configuration ema" in capsys.readouterr().err


def test_minibatch_std_option_trains_resumes_and_is_kept(data, tmp_path, capsys):
    """--minibatch-std: both discriminators get the extra feature map (their Linear layers one
    4×4 map wider), the run resumes bit for bit, and the option cannot change on --resume."""
    cfg = dict(TINY_CFG, mbstd=True, checkpoint_every=2)
    T.train(data, tmp_path / "straight", T.make_config("default", iterations=4, **cfg), progress=False)
    T.train(data, tmp_path / "halves", T.make_config("default", iterations=2, **cfg), progress=False)
    T.train(data, tmp_path / "halves", T.make_config("default", iterations=4), resume=True, progress=False)
    _same_state(tmp_path / "straight" / "checkpoint.npz", tmp_path / "halves" / "checkpoint.npz")
    meta, arrays = read_checkpoint(tmp_path / "straight" / "checkpoint.npz", need_all=True)
    assert meta["config"]["mbstd"] is True
    side = 32 // 2 ** len(TINY_CFG["d_channels"])
    for name in ("D_grey", "D_color"):
        linear_w = [a for k, a in arrays.items() if k.startswith(f"{name}.") and a.ndim == 2]
        assert [a.shape for a in linear_w] == [(1, (TINY_CFG["d_channels"][-1] + 1) * side * side)]
    out = tmp_path / "cli"
    argv = ["train", "--data", str(data), "--out", str(out), "--iterations", "1", "--no-progress", *TINY]
    assert cli.main([*argv, "--minibatch-std"]) == 0
    assert read_checkpoint(out / "checkpoint.npz", need_all=True)[0]["config"]["mbstd"] is True
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--out", str(out), "--resume", "--minibatch-std"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--minibatch-std cannot change on --resume" in err[0]


def test_augment_option_sets_the_policy_and_refuses_bad_ones(data, tmp_path, capsys):
    """--augment POLICY: a subset of the DiffAugment policy, or 'none'; kept in the checkpoint,
    not changeable on --resume; an unknown name is one line and exit 2."""
    argv = ["train", "--data", str(data), "--iterations", "1", "--no-progress", *TINY]
    for policy, saved in (("translation,cutout", "translation,cutout"), ("none", "")):
        out = tmp_path / policy.replace(",", "_")
        assert cli.main([*argv, "--out", str(out), "--augment", policy]) == 0
        assert read_checkpoint(out / "checkpoint.npz", need_all=True)[0]["config"]["augment"] == saved
    capsys.readouterr()
    for bad in ("colour", "color,,cutout"):
        assert cli.main([*argv, "--out", str(tmp_path / "bad"), "--augment", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--augment must be" in err[0], err
    assert not (tmp_path / "bad" / "checkpoint.npz").exists()
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "none"), "--resume",
                     "--augment", "cutout"]) == 2
    assert "--augment cannot change on --resume" in capsys.readouterr().err
