"""GAN training of the seed (Algorithm 1) in pure NumPy, with checkpoints and exact resume.

One iteration, as Algorithm 1 of the seed:

1. **D step** — sample m real avatars x and m noise vectors z ~ N(0, I); the Generator draws
   RGB fakes ``[G(z), G(z+v1), G(z+v2)]``.

   * ``D_color`` sees real RGB avatars (label 1) and the stacked fakes (label 0).
   * ``D_grey`` sees *single colour planes*: for every real avatar one of its R, G or B planes,
     chosen uniformly at random, is a real grey sample; for every fake one of its three passes,
     chosen uniformly at random, is a fake grey sample. This is our reading of the seed's
     "grey images (R, G, B) output by the Generator, compared with grey correct images": the
     Generator only ever draws single planes, so D_grey compares them with the planes of real
     avatars (shape, not colour), and both sides are the same mixture over the three channels.

   Each discriminator minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` (eqs. 7, 9, 10) with its own
   Adam; real and fake batches go through separately (separate BatchNorm statistics).
2. **G step** — fresh z; the Generator minimises the non-saturating loss (eq. 11)
   ``BCE(D_color(rgb), 1) + BCE(D_grey(plane), 1)``, the sum of both discriminators' losses;
   the gradient flows back through the discriminators (not updated) into the three passes.

Presets (``PRESETS``): ``seed`` is the paper's table 2 (lr_G 1e-4, lr_D 1e-6, batch 64, 10 000
iterations, Adam β 0.5/0.999), nothing added. ``default`` is what ships: DiffAugment
(colour, translation, cutout) on real and fake inputs of both discriminators, back-propagated
into G, with the learning rates rebalanced, 30 000 iterations and a moving average of G's
weights as the Generator it writes (see ``PRESETS``). The Generator's topology is the seed's in
both.

All randomness (initialisation, v, batches, z, plane choices, augmentation) comes from one
``numpy.random.Generator`` (PCG64) seeded by ``--seed``; its state is saved in every checkpoint
with the optimiser moments, so ``--resume`` continues bit-for-bit as if never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from base.errors import UserError
from base.fileio import atomic_path, atomic_write, ensure_dir, folder_lock, sha256_file, sweep_temporaries
from golden import nn
from golden.augment import DiffAugment
from golden.checkpoint import generator_arrays, read_checkpoint, save_checkpoint
from golden.models import DEFAULT_CHANNELS, DEFAULT_D_CHANNELS, Discriminator, Generator


@dataclass
class Config:
    """Everything that defines a training run (saved in the checkpoint's meta)."""

    preset: str = "default"
    iterations: int = 10_000
    batch: int = 64
    seed: int = 0
    lr_g: float = 2e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    augment: str = "color,translation,cutout"
    channels: list = field(default_factory=lambda: list(DEFAULT_CHANNELS))
    d_channels: list = field(default_factory=lambda: list(DEFAULT_D_CHANNELS))
    checkpoint_every: int = 500
    #: Decay of the exponential moving average of G's weights kept for sampling (0 = none): after
    #: every G step ``ema = ema·β + θ·(1 − β)``, starting from the initial weights. With β > 0 the
    #: final ``generator.npz`` holds the average; the checkpoint keeps both. 0.999 in the
    #: ``default`` preset (measured better, docs/RESULTS.md), off in ``seed``.
    ema: float = 0.0
    #: Both discriminators see the batch's standard deviation as one more feature map before their
    #: last layer (ProGAN's minibatch standard deviation, :class:`golden.nn.MinibatchStd`).
    mbstd: bool = False


#: Named presets. ``seed`` reproduces the paper's table 2. ``default`` keeps the seed's
#: Generator and batch and adds what small-data GANs need: DiffAugment on both discriminators
#: (real and fake, differentiable) and DCGAN's learning rate for G with a discriminator half as
#: fast (lr_D = lr_G / 2) so that D cannot overpower G on 275 images; it trains 30 000 iterations
#: and samples from a moving average of G's weights (decay 0.999), each measured better on the
#: evaluation protocol (docs/RESULTS.md, "Moving average of G's weights"; 40 000 were no better).
PRESETS = {
    "seed": dict(lr_g=1e-4, lr_d=1e-6, augment="", iterations=10_000, ema=0.0),
    "default": dict(lr_g=2e-4, lr_d=1e-4, augment="color,translation,cutout", iterations=30_000, ema=0.999),
}

#: Columns of ``losses.csv`` (one row per iteration).
COLUMNS = ["iteration", "loss_D_grey", "loss_D_color", "loss_G", "Dx_grey", "Dx_color",
           "DGz_grey", "DGz_color"]

CHECKPOINT = "checkpoint.npz"
GENERATOR = "generator.npz"
LOSSES_CSV = "losses.csv"
LOSSES_PNG = "losses.png"


def make_config(preset: str = "default", **overrides) -> Config:
    """A :class:`Config` for ``preset`` with ``overrides`` (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = Config(preset=preset, **PRESETS[preset])
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    if cfg.iterations < 1 or cfg.batch < 2 or cfg.checkpoint_every < 1:
        raise UserError("--iterations and --checkpoint-every must be ≥ 1 and --batch ≥ 2")
    if not (isinstance(cfg.ema, (int, float)) and 0.0 <= cfg.ema < 1.0):
        raise UserError(f"--ema must be a decay from 0 (off) up to but not including 1, got {cfg.ema!r}")
    return cfg


# --------------------------------------------------------------------------- data

def load_training_images(path) -> np.ndarray:
    """Training avatars as float32 NCHW in [−1, 1] (``x / 127.5 − 1``).

    Uses ``golden.dataset.load_images(path)`` when that module exists; otherwise reads the
    dataset ``.npz`` itself (``images``: uint8 (N, 32, 32, 3); a folder means
    ``<folder>/avatars.npz``).
    """
    try:
        from golden.dataset import load_images  # the dataset owner's loader, when present
    except ImportError:
        load_images = _read_dataset_npz
    imgs = load_images(path)
    imgs = np.asarray(imgs)
    if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[1:] != (32, 32, 3) or len(imgs) < 1:
        raise UserError(f"{path}: expected uint8 images of shape (N, 32, 32, 3), got {imgs.dtype} {imgs.shape}")
    return (imgs.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - np.float32(1))


def _read_dataset_npz(path) -> np.ndarray:
    p = Path(path)
    if p.is_dir():
        p = p / "avatars.npz"
    if not p.is_file():
        raise UserError(f"dataset {p} does not exist (give the .npz from `avatargan dataset` or its folder)")
    from golden.npzfile import read_npz

    arrays = read_npz(p, "dataset")
    if "images" not in arrays:
        raise UserError(f"{p} has no 'images' array")
    return arrays["images"]


def file_sha256(path) -> str:
    """SHA-256 of a dataset: the file, or a dataset folder's ``avatars.npz``."""
    p = Path(path)
    return sha256_file(p / "avatars.npz" if p.is_dir() else p)


# --------------------------------------------------------------------------- the GAN

class NonFiniteLoss(Exception):
    """A loss became NaN or Inf."""


class GAN:
    """Generator, both discriminators, their optimisers and the RNG: the whole training state."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.G = Generator(cfg.channels, self.rng)
        self.D_grey = Discriminator(1, cfg.d_channels, self.rng, mbstd=cfg.mbstd)
        self.D_color = Discriminator(3, cfg.d_channels, self.rng, mbstd=cfg.mbstd)
        betas = (cfg.beta1, cfg.beta2)
        self.opt = {
            "G": nn.Adam(self.G.net.params_list(), cfg.lr_g, betas),
            "D_grey": nn.Adam(self.D_grey.net.params_list(), cfg.lr_d, betas),
            "D_color": nn.Adam(self.D_color.net.params_list(), cfg.lr_d, betas),
        }
        self.aug = DiffAugment(cfg.augment)
        self.iteration = 0
        # the moving average of G's weights (uses no randomness: the run is the same with or without it)
        self.ema = {k: a.copy() for k, a in self.G.params.items()} if cfg.ema else None

    # ---- helpers
    def _draw(self, x):
        """Draw an augmentation for the batch ``x`` now (None without a policy)."""
        return DiffAugment(self.cfg.augment).draw(x.shape, x.dtype, self.rng) if self.aug.ops else None

    def _d_update(self, D: Discriminator, opt: nn.Adam, real, fake, aug_real, aug_fake):
        """One discriminator step on a real and a fake batch, augmented by the drawn ``aug_*``;
        return (loss, D(x), D(G(z)))."""
        if aug_real is not None:
            real, fake = aug_real.apply(real), aug_fake.apply(fake)
        lr = D.forward(real)
        loss_r, g = nn.bce_with_logits(lr, 1.0)
        D.backward(g)
        grads = [gr.copy() for gr in D.net.grads_list()]
        lf = D.forward(fake)
        loss_f, g = nn.bce_with_logits(lf, 0.0)
        D.backward(g)
        for acc, gr in zip(grads, D.net.grads_list()):
            acc += gr
        opt.step(grads)
        return loss_r + loss_f, float(nn.sigmoid(lr).mean()), float(nn.sigmoid(lf).mean())

    def _g_loss(self, D: Discriminator, fake, aug):
        """Non-saturating G loss through ``D`` (``fake`` augmented by the drawn ``aug``); return
        (loss, dL/dfake, D(G(z)))."""
        x = fake if aug is None else aug.apply(fake)
        D.net.set_frozen(True)
        logits = D.forward(x, need_dx=True)
        loss, g = nn.bce_with_logits(logits, 1.0)
        dx = D.backward(g)
        D.net.set_frozen(False)
        return loss, (dx if aug is None else aug.backward(dx)), float(nn.sigmoid(logits).mean())

    # ---- Algorithm 1
    def step(self, data: np.ndarray) -> list[float]:
        """One iteration (D step, then G step); return the ``COLUMNS`` values of this iteration.

        All random numbers are drawn here, in a fixed order; the two discriminators' work (their
        update; their part of G's loss) then runs as two independent tasks
        (:func:`golden.nn.run_tasks`: concurrently when there are two threads or more), so the
        result does not depend on the thread count.
        """
        cfg, rng = self.cfg, self.rng
        m, nz = cfg.batch, self.G.nz
        rows = np.arange(m)
        # D step
        idx = rng.choice(len(data), size=m, replace=len(data) < m)
        real = data[idx]
        z = rng.standard_normal((m, nz), dtype=np.float32)
        fake = self.G.forward_rgb(z)
        real_planes = real[rows, rng.integers(0, 3, m)][:, None]
        fake_planes = fake[rows, rng.integers(0, 3, m)][:, None]
        augs = [self._draw(x) for x in (real, fake, real_planes, fake_planes)]
        (ld_c, dx_c, dgz_c), (ld_g, dx_g, dgz_g) = nn.run_tasks(
            lambda: self._d_update(self.D_color, self.opt["D_color"], real, fake, *augs[:2]),
            lambda: self._d_update(self.D_grey, self.opt["D_grey"], real_planes, fake_planes, *augs[2:]))
        # G step
        z = rng.standard_normal((m, nz), dtype=np.float32)
        fake = self.G.forward_rgb(z)
        pick = rng.integers(0, 3, m)
        planes = np.ascontiguousarray(fake[rows, pick][:, None])
        aug_c, aug_g = self._draw(fake), self._draw(planes)
        (lg_c, d_rgb, _), (lg_g, d_plane, _) = nn.run_tasks(
            lambda: self._g_loss(self.D_color, fake, aug_c),
            lambda: self._g_loss(self.D_grey, planes, aug_g))
        d_rgb = np.array(d_rgb, copy=True)
        d_rgb[rows, pick] += d_plane[:, 0]
        self.G.backward_rgb(d_rgb)
        self.opt["G"].step(self.G.net.grads_list())
        if self.ema is not None:
            beta = np.float32(self.cfg.ema)
            for k, e in self.ema.items():
                e *= beta
                e += self.G.params[k] * (np.float32(1) - beta)
        self.iteration += 1
        vals = [self.iteration, ld_g, ld_c, lg_c + lg_g, dx_g, dx_c, dgz_g, dgz_c]
        if not all(math.isfinite(v) for v in vals[1:4]):
            raise NonFiniteLoss(f"loss is not finite at iteration {self.iteration}: "
                                + ", ".join(f"{k}={v}" for k, v in zip(COLUMNS[1:4], vals[1:4])))
        return vals

    # ---- state
    def arrays(self) -> dict[str, np.ndarray]:
        out = generator_arrays(self.G)
        for name, D in (("D_grey", self.D_grey), ("D_color", self.D_color)):
            for k, a in D.net.state().items():
                out[f"{name}.{k}"] = a
        for name, opt in self.opt.items():
            for k, a in opt.state().items():
                out[f"opt.{name}.{k}"] = a
        for k, a in (self.ema or {}).items():
            out[f"ema.{k}"] = a
        return out

    def ema_generator(self) -> Generator:
        """A Generator with the moving-average weights (and G's ``v``); only when ``cfg.ema`` > 0."""
        gen = Generator(self.cfg.channels)
        for k, a in gen.params.items():
            a[...] = self.ema[k]
        gen.v[...] = self.G.v
        return gen

    def meta(self) -> dict:
        return {
            "iteration": self.iteration,
            "channels": list(self.cfg.channels),
            "preset": self.cfg.preset,
            "config": asdict(self.cfg),
            "rng": self.rng.bit_generator.state,
        }

    def load(self, meta: dict, arrays: dict[str, np.ndarray], path) -> None:
        """Restore the state saved by :meth:`arrays` / :meth:`meta`."""
        try:
            for k, a in self.G.params.items():
                a[...] = arrays[f"G.{k}"]
            self.G.v[...] = arrays["v"]
            for name, D in (("D_grey", self.D_grey), ("D_color", self.D_color)):
                for k, a in D.net.state().items():
                    a[...] = arrays[f"{name}.{k}"]
            for name, opt in self.opt.items():
                prefix = f"opt.{name}."
                opt.load_state({k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)})
            for k, a in (self.ema or {}).items():
                if arrays[f"ema.{k}"].shape != a.shape:
                    raise ValueError(f"ema.{k} has shape {arrays[f'ema.{k}'].shape}, expected {a.shape}")
                a[...] = arrays[f"ema.{k}"]
            self.rng.bit_generator.state = meta["rng"]
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"{path}: training state does not match the configuration ({e})") from None
        self.iteration = meta["iteration"]




# --------------------------------------------------------------------------- outputs

def write_losses_csv(path, hist: np.ndarray) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in hist:
        w.writerow([int(row[0])] + [f"{v:.6g}" for v in row[1:]])
    atomic_write(path, buf.getvalue())


def plot_losses(path, hist: np.ndarray, title: str = "") -> None:
    """Loss curves (moving average over ~1 % of the run) as a PNG drawn with Pillow."""
    from PIL import Image, ImageDraw

    W, H, L, R, T, B = 900, 420, 60, 170, 30, 40
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((L, 8), title or "training losses", fill="black")
    series = [("loss_D_grey", (31, 119, 180)), ("loss_D_color", (44, 160, 44)), ("loss_G", (214, 39, 40))]
    if len(hist):
        it = hist[:, 0]
        win = max(1, len(hist) // 100)
        ys = {}
        for name, _ in series:
            v = hist[:, COLUMNS.index(name)]
            if win > 1:
                v = np.convolve(v, np.ones(win) / win, mode="valid")
            ys[name] = v
        xs = it[win - 1:] if win > 1 else it
        ymax = max(float(np.max(v)) for v in ys.values()) * 1.05 or 1.0
        x0, x1 = float(it[0]), float(max(it[-1], it[0] + 1))

        def px(x, y):
            return (L + (x - x0) / (x1 - x0) * (W - L - R), H - B - y / ymax * (H - T - B))

        for k in range(6):  # y grid and labels
            y = ymax * k / 5
            _, yy = px(x0, y)
            d.line([(L, yy), (W - R, yy)], fill=(225, 225, 225))
            d.text((5, yy - 6), f"{y:.2f}", fill="black")
        d.text((L, H - B + 8), f"{int(x0)}", fill="black")
        d.text((W - R - 40, H - B + 8), f"{int(x1)}", fill="black")
        d.text(((W - R) // 2, H - B + 20), "iteration", fill="black")
        for j, (name, col) in enumerate(series):
            pts = [px(x, y) for x, y in zip(xs, ys[name])]
            if len(pts) > 1:
                d.line(pts, fill=col, width=2)
            d.line([(W - R + 15, T + 20 * j + 6), (W - R + 35, T + 20 * j + 6)], fill=col, width=3)
            d.text((W - R + 40, T + 20 * j), name, fill="black")
    d.rectangle([L, T, W - R, H - B], outline="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


# --------------------------------------------------------------------------- the loop

class _Interrupt:
    """Turns the first Ctrl-C into a flag checked between iterations; a second one aborts."""

    def __init__(self):
        self.hit = False

    def __enter__(self):
        try:
            self.old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self.old = None
        return self

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def _saved_config(meta: dict, path) -> Config:
    """The :class:`Config` stored in a checkpoint's meta, or a one-line refusal."""
    from dataclasses import fields

    saved = meta.get("config")
    if not isinstance(saved, dict):
        raise UserError(f"{path}: no training configuration in the checkpoint; it cannot be resumed")
    unknown = sorted(set(saved) - {f.name for f in fields(Config)})
    if unknown:
        raise UserError(f"{path}: unknown configuration key(s) {', '.join(map(repr, unknown))} "
                        "(written by another version?); it cannot be resumed")
    try:
        cfg = Config(**saved)
    except TypeError as e:
        raise UserError(f"{path}: unreadable training configuration ({e})") from None
    for key in ("iterations", "batch", "seed", "checkpoint_every"):
        if not isinstance(getattr(cfg, key), int) or isinstance(getattr(cfg, key), bool):
            raise UserError(f"{path}: configuration {key} must be an integer, got {getattr(cfg, key)!r}")
    if (not isinstance(cfg.ema, (int, float)) or isinstance(cfg.ema, bool) or not 0.0 <= cfg.ema < 1.0):
        raise UserError(f"{path}: configuration ema must be a number from 0 up to 1, got {cfg.ema!r}")
    if not isinstance(cfg.mbstd, bool):
        raise UserError(f"{path}: configuration mbstd must be true or false, got {cfg.mbstd!r}")
    return cfg


def train(data_path, out_dir, cfg: Config | None = None, resume: bool = False,
          progress: bool = True, log=None, threads: int | None = None) -> dict:
    """Train (or resume) in ``out_dir`` while holding its lock (:func:`base.fileio.folder_lock`).

    A second train into the same folder is refused in one line; temporaries left in it by a
    killed run are swept first. ``threads``: BLAS and copy threads (default:
    :func:`golden.threads.choose_threads`, the free cores); results do not depend on it. See :func:`_train`.
    """
    from golden.threads import choose_threads, set_threads

    n, why = choose_threads(threads)
    set_threads(n)
    (log or (lambda msg: print(msg, file=sys.stderr)))(f"{n} thread{'s' if n > 1 else ''} ({why})")
    out = ensure_dir(out_dir)
    with folder_lock(out, "train"):
        sweep_temporaries(out)
        for p in out.iterdir():  # left by versions before process-tagged names; no train runs here now
            if _OLD_TMP.match(p.name) and p.is_file():
                p.unlink()
        return _train(data_path, out, cfg, resume, progress, log)


#: Temporaries of the run files as earlier versions named them (``.checkpoint.npz.k3j2h1g0.npz``).
_OLD_TMP = re.compile(r"^\.(checkpoint\.npz|generator\.npz|losses\.csv|losses\.png)\.[a-z0-9_]{8}\.(npz|csv|png)$")


def _train(data_path, out_dir, cfg: Config | None = None, resume: bool = False,
           progress: bool = True, log=None) -> dict:
    """Train (or resume) in ``out_dir``; return a summary dict.

    Files in ``out_dir``: ``checkpoint.npz`` (whole state, every ``checkpoint_every`` iterations
    and at the end), ``generator.npz`` (Generator only, at the end), ``losses.csv``,
    ``losses.png``. With ``resume`` the configuration comes from the checkpoint (``cfg`` may
    only extend ``iterations``).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = ensure_dir(out_dir)
    ckpt = out / CHECKPOINT
    data = load_training_images(data_path)
    data_hash = file_sha256(data_path) if Path(data_path).exists() else ""
    if resume:
        if not ckpt.is_file():
            raise UserError(f"--resume: {ckpt} does not exist")
        meta, arrays = read_checkpoint(ckpt, need_all=True)
        saved = _saved_config(meta, ckpt)
        if cfg is not None and cfg.iterations != saved.iterations:
            if cfg.iterations <= meta["iteration"]:
                raise UserError(f"--resume: --iterations {cfg.iterations} is not more than the "
                                f"{meta['iteration']} already done in {ckpt}; give a larger total")
            saved.iterations = cfg.iterations
        cfg = saved
        if meta.get("data_sha256") and meta["data_sha256"] != data_hash:
            raise UserError(f"--resume: {data_path} is not the dataset this run was trained on")
        gan = GAN(cfg)
        gan.load(meta, arrays, ckpt)
        hist = arrays.get("hist", np.zeros((0, len(COLUMNS))))
        hist = list(map(list, hist[: gan.iteration]))
        log(f"resuming {out} at iteration {gan.iteration} of {cfg.iterations}")
    else:
        if ckpt.exists():
            raise UserError(f"{ckpt} exists; use --resume to continue it or choose another --out")
        cfg = cfg or make_config()
        gan = GAN(cfg)
        hist = []

    def save():
        arrays = gan.arrays()
        arrays["hist"] = np.array(hist, dtype=np.float64).reshape(-1, len(COLUMNS))
        save_checkpoint(ckpt, arrays, dict(gan.meta(), data_sha256=data_hash))
        write_losses_csv(out / LOSSES_CSV, arrays["hist"])
        plot_losses(out / LOSSES_PNG, arrays["hist"], f"avatargan train --preset {cfg.preset}")

    from tqdm import tqdm

    t0 = time.perf_counter()
    start = gan.iteration
    status = "done"
    bar = tqdm(total=cfg.iterations, initial=start, disable=not progress, file=sys.stderr,
               desc="train", unit="it", dynamic_ncols=True)
    with _Interrupt() as stop, bar:
        while gan.iteration < cfg.iterations:
            try:
                row = gan.step(data)
            except NonFiniteLoss as e:
                kept = f"the last good checkpoint {ckpt} (iteration {_ckpt_iteration(ckpt)}) is kept" \
                    if ckpt.exists() else "no checkpoint was written yet"
                raise UserError(f"training diverged: {e}; stopped, {kept}") from None
            hist.append(row)
            bar.update(1)
            if gan.iteration % 10 == 0 or gan.iteration == cfg.iterations:
                bar.set_postfix(D=f"{row[1] + row[2]:.3f}", G=f"{row[3]:.3f}",
                                Dx=f"{row[5]:.2f}", DGz=f"{row[7]:.2f}", refresh=False)
            if gan.iteration % cfg.checkpoint_every == 0 and gan.iteration < cfg.iterations:
                save()
            if stop.hit:
                status = "interrupted"
                break
    save()
    if status == "done":
        from golden.checkpoint import save_generator
        meta = {"iteration": gan.iteration, "preset": cfg.preset, "config": asdict(cfg)}
        if gan.ema is not None:
            meta["weights"] = f"exponential moving average of G's weights, decay {cfg.ema}"
        save_generator(out / GENERATOR, gan.ema_generator() if gan.ema is not None else gan.G, meta)
    elapsed = time.perf_counter() - t0
    done = gan.iteration - start
    summary = {"status": status, "iteration": gan.iteration, "iterations": cfg.iterations,
               "seconds": elapsed, "seconds_per_iteration": elapsed / done if done else None,
               "checkpoint": str(ckpt)}
    if status == "interrupted":
        log(f"interrupted at iteration {gan.iteration}; checkpoint saved to {ckpt}; "
            f"continue with --resume")
    return summary


def _ckpt_iteration(path) -> int | str:
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(z["meta"].tobytes().decode())["iteration"]
    except Exception:  # noqa: BLE001 - only for the message
        return "?"
