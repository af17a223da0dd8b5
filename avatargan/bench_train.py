"""``avatargan bench train``: seconds per training iteration, NumPy vs PyTorch CPU.

Times :meth:`golden.train.GAN.step` of a preset (default: ``default``, batch 64) on random
avatars, and the same iteration written in PyTorch (same networks, same losses, same
DiffAugment, same Adam), each in a fresh child process with the same number of threads
(``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and ``torch.set_num_threads``).
PyTorch is imported only inside the child that measures it, and only if it is installed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

HELP = "seconds per training iteration of a preset, NumPy vs PyTorch CPU"


def configure(parser) -> None:
    parser.add_argument("--preset", default="default", help="training preset to time (default: default)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for BLAS and PyTorch (default: all cores)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch measurement")


# --------------------------------------------------------------------------- children

def _numpy_seconds(preset, batch, iterations, warmup) -> float:
    import numpy as np

    from golden.train import GAN, make_config

    cfg = make_config(preset, batch=batch)
    gan = GAN(cfg)
    data = (np.random.default_rng(1).random((275, 3, 32, 32)) * 2 - 1).astype(np.float32)
    for _ in range(warmup):
        gan.step(data)
    t = time.perf_counter()
    for _ in range(iterations):
        gan.step(data)
    return (time.perf_counter() - t) / iterations


def _torch_seconds(preset, batch, iterations, warmup, threads) -> float:
    import torch
    import torch.nn.functional as F

    from golden.train import make_config

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = make_config(preset, batch=batch)
    c, dc = cfg.channels, cfg.d_channels

    def gen():
        return torch.nn.Sequential(
            torch.nn.ConvTranspose2d(c[0], c[1], 4, 1, 0), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(c[1], c[2], 4, 2, 1), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(c[2], c[3], 4, 2, 1), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(c[3], c[4], 4, 2, 1), torch.nn.Tanh())

    def disc(in_ch):
        layers, prev = [], in_ch
        for i, ch in enumerate(dc):
            layers.append(torch.nn.Conv2d(prev, ch, 4, 2, 1, bias=(i == 0)))
            if i:
                layers.append(torch.nn.BatchNorm2d(ch))
            layers.append(torch.nn.LeakyReLU(0.2))
            prev = ch
        side = 32 // 2 ** len(dc)
        return torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(prev * side * side, 1))

    G, Dg, Dc = gen(), disc(1), disc(3)
    v = torch.randn(2, c[0])
    betas = (cfg.beta1, cfg.beta2)
    oG = torch.optim.Adam(G.parameters(), cfg.lr_g, betas)
    oDg = torch.optim.Adam(Dg.parameters(), cfg.lr_d, betas)
    oDc = torch.optim.Adam(Dc.parameters(), cfg.lr_d, betas)
    ops = [p for p in cfg.augment.split(",") if p]

    def augment(x):
        n, _, h, w = x.shape
        if "color" in ops:
            x = x + (torch.rand(n, 1, 1, 1) - 0.5)
            m = x.mean(1, keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1) * 2) + m
            m = x.mean((1, 2, 3), keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1) + 0.5) + m
        if "translation" in ops:
            s = int(h * 0.125 + 0.5)
            ty = torch.randint(-s, s + 1, (n,))
            tx = torch.randint(-s, s + 1, (n,))
            xp = F.pad(x, (s, s, s, s))
            iy = (torch.arange(h)[None, :] + ty[:, None] + s)[:, None, :, None].expand(n, x.shape[1], h, w + 2 * s)
            x = torch.gather(xp, 2, iy)
            ix = (torch.arange(w)[None, :] + tx[:, None] + s)[:, None, None, :].expand(n, x.shape[1], h, w)
            x = torch.gather(x, 3, ix)
        if "cutout" in ops:
            ch = int(h * 0.5 + 0.5)
            cy = torch.randint(0, h + 1 - ch % 2, (n,))
            cx = torch.randint(0, w + 1 - ch % 2, (n,))
            ry = torch.arange(h)[None, :] - (cy[:, None] - ch // 2)
            rx = torch.arange(w)[None, :] - (cx[:, None] - ch // 2)
            inside = ((ry >= 0) & (ry < ch))[:, :, None] & ((rx >= 0) & (rx < ch))[:, None, :]
            x = x * (~inside).float()[:, None]
        return x

    data = torch.rand(275, 3, 32, 32) * 2 - 1
    bce = F.binary_cross_entropy_with_logits
    m = batch
    rows = torch.arange(m)

    def rgb(z):
        u = torch.cat([z, z + v[0], z + v[1]]).reshape(3 * m, c[0], 1, 1)
        return G(u).reshape(3, m, 32, 32).transpose(0, 1)

    def d_step(D, opt, real, fake):
        opt.zero_grad()
        lr = D(augment(real))
        lf = D(augment(fake))
        (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))).backward()
        opt.step()

    def step():
        real = data[torch.randint(0, len(data), (m,))]
        with torch.no_grad():
            fake = rgb(torch.randn(m, c[0]))
        d_step(Dc, oDc, real, fake)
        d_step(Dg, oDg, real[rows, torch.randint(0, 3, (m,))][:, None],
               fake[rows, torch.randint(0, 3, (m,))][:, None])
        oG.zero_grad()
        for p in list(Dg.parameters()) + list(Dc.parameters()):
            p.requires_grad_(False)
        fake = rgb(torch.randn(m, c[0]))
        lc = Dc(augment(fake))
        lg = Dg(augment(fake[rows, torch.randint(0, 3, (m,))][:, None]))
        (bce(lc, torch.ones_like(lc)) + bce(lg, torch.ones_like(lg))).backward()
        oG.step()
        for p in list(Dg.parameters()) + list(Dc.parameters()):
            p.requires_grad_(True)

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - t) / iterations


def _child(impl, args) -> dict:
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(args.threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, "-m", "avatargan.bench_train", impl, args.preset, str(args.batch),
           str(args.iterations), str(args.warmup), str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench child {impl} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def run(args) -> dict:
    """Measure; print a small table; return the figures."""
    from avatargan.errors import UserError

    if args.iterations < 1 or args.batch < 2 or args.threads < 1 or args.warmup < 0:
        raise UserError("--iterations and --threads must be ≥ 1, --batch ≥ 2, --warmup ≥ 0")
    res = {
        "target": "train", "preset": args.preset, "batch": args.batch, "threads": args.threads,
        "iterations": args.iterations, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
    }
    child = _child("numpy", args)
    res["numpy_s_per_it"], res["numpy_version"] = child["seconds"], child["version"]
    print(f"numpy  : {res['numpy_s_per_it']:.4f} s/iteration ({args.preset}, batch {args.batch}, "
          f"{args.threads} threads)")
    if not args.no_torch and torch_available():
        child = _child("torch", args)
        res["torch_s_per_it"], res["torch_version"] = child["seconds"], child["version"]
        res["ratio_numpy_over_torch"] = res["numpy_s_per_it"] / res["torch_s_per_it"]
        print(f"pytorch: {res['torch_s_per_it']:.4f} s/iteration (CPU, {args.threads} threads)")
        print(f"ratio  : {res['ratio_numpy_over_torch']:.2f} x (goal <= 1.25)")
    else:
        print("pytorch: not measured (not installed or --no-torch)")
    return res


if __name__ == "__main__":
    _impl, _preset, _batch, _its, _warm, _threads = sys.argv[1:7]
    if _impl == "numpy":
        import numpy

        secs, version = _numpy_seconds(_preset, int(_batch), int(_its), int(_warm)), numpy.__version__
    else:
        import torch

        secs = _torch_seconds(_preset, int(_batch), int(_its), int(_warm), int(_threads))
        version = torch.__version__
    print(json.dumps({"seconds": secs, "version": version}))
