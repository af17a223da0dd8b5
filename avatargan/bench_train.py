"""``avatargan bench train``: seconds per training iteration, NumPy vs PyTorch CPU, at 1 and 2 threads.

Times :meth:`golden.train.GAN.step` of a preset (default: ``default``, batch 64) on random
avatars, and the same iteration written in PyTorch (same networks, same losses, same
DiffAugment, same Adam), each in a fresh child process. For every thread count of ``--threads``
(default ``1,2``) the NumPy and PyTorch children run one after the other, ``--rounds`` times in
turn, so that both see the same load; the fastest round of each counts. The NumPy child sets its
threads with :func:`golden.threads.set_threads` (threadpoolctl), the PyTorch child with
``torch.set_num_threads`` (and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``). The report names the BLAS
library and kernel in use (threadpoolctl's ``threadpool_info``), the thread count that
:func:`golden.threads.default_threads` picks now, the machine's load, and with ``--profile`` a
breakdown of the NumPy iteration by layer type (measured in extra iterations after the timed ones).
The NumPy child also reports its CPU seconds per iteration, of all its threads and of the main
thread alone: on a machine shared with other work the wall time depends on the others, the CPU
time much less, and the main thread's CPU time bounds what a second thread can gain (the main
thread runs everything that is not split, plus its share of what is).
PyTorch is imported only inside the child that measures it, and only if it is installed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

HELP = "seconds per training iteration of a preset at 1 and 2 threads, NumPy vs PyTorch CPU"


def configure(parser) -> None:
    parser.add_argument("--preset", default="default", help="training preset to time (default: default)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per child (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--threads", default="1,2", metavar="N[,N...]",
                        help="thread counts to measure, side by side (default 1,2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="NumPy/PyTorch alternations per thread count; the fastest counts (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also break the NumPy iteration down by layer type")
    parser.add_argument("--owner", choices=["pool", "blas"], default="pool",
                        help="who runs the NumPy products on several threads: golden.nn's pool with BLAS on "
                             "one thread (default, what training uses) or BLAS's own threads (for comparison)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch measurement")
    parser.add_argument("--out", metavar="FOLDER", help="also write bench_train.md and bench_train.json there")


# --------------------------------------------------------------------------- children

def _numpy_run(preset, batch, iterations, warmup, threads, profile, owner="pool") -> dict:
    import numpy as np

    from golden import threads as gt
    from golden.train import GAN, make_config

    gt.set_threads(threads, owner)
    cfg = make_config(preset, batch=batch)
    gan = GAN(cfg)
    data = (np.random.default_rng(1).random((275, 3, 32, 32)) * 2 - 1).astype(np.float32)
    for _ in range(warmup):
        gan.step(data)
    t, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(iterations):
        gan.step(data)
    out = {"seconds": (time.perf_counter() - t) / iterations, "version": np.__version__,
           "cpu_seconds": (time.process_time() - cpu) / iterations,
           "main_thread_cpu_seconds": (time.thread_time() - main) / iterations, "blas": gt.blas_info()}
    if profile:
        out["profile"] = _profile_steps(gan, data, iterations)
    return out


#: Prefix of the profile rows that are part of another row (im2col/col2im run inside the convolutions).
INSIDE = "inside the convolutions: "


def _profile_steps(gan, data, iterations) -> dict:
    """Seconds per iteration spent in each layer type (forward, backward), DiffAugment, Adam and the rest.

    Wraps the layers' methods (and :func:`golden.nn.im2col` and the col2im adds, which run inside
    the convolutions) with timers for ``iterations`` extra steps; the wrappers cost a few
    microseconds per call. A row is the time summed over the threads that ran it: at 2 threads
    the two discriminators' tasks (:func:`golden.nn.run_tasks`) overlap, so the rows can add up
    to more than the iteration. "The rest" is what the main thread spent outside the rows.
    """
    import threading

    from golden import augment, nn

    acc: dict[str, float] = {}
    main, main_inner = threading.get_ident(), [0.0]     # seconds the main thread spent inside the rows
    lock = threading.Lock()

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t
                with lock:
                    acc[key] = acc.get(key, 0.0) + dt
                    if threading.get_ident() == main and not key.startswith(INSIDE):
                        main_inner[0] += dt
        return wrapper

    saved = [(nn, "im2col", nn.im2col), (nn, "col2im_into", nn.col2im_into), (nn.Adam, "step", nn.Adam.step),
             (augment.DiffAugment, "apply", augment.DiffAugment.apply),
             (augment.DiffAugment, "backward", augment.DiffAugment.backward)]
    nn.im2col = timed(nn.im2col, INSIDE + "im2col")
    nn.col2im_into = timed(nn.col2im_into, INSIDE + "col2im")
    nn.Adam.step = timed(nn.Adam.step, "Adam")
    augment.DiffAugment.apply = timed(augment.DiffAugment.apply, "DiffAugment forward")
    augment.DiffAugment.backward = timed(augment.DiffAugment.backward, "DiffAugment backward")
    for net in (gan.G.net, gan.D_grey.net, gan.D_color.net):
        for layer in net.layers:
            name = type(layer).__name__
            layer.forward = timed(layer.forward, f"{name} forward")
            layer.backward = timed(layer.backward, f"{name} backward")
    try:
        t = time.perf_counter()
        for _ in range(iterations):
            gan.step(data)
        total = time.perf_counter() - t
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
        for net in (gan.G.net, gan.D_grey.net, gan.D_color.net):
            for layer in net.layers:
                del layer.forward, layer.backward
    rows = {k: v / iterations for k, v in acc.items()}
    rows["rest of the step (main thread: batches, z, losses, copies between layers)"] = \
        (total - main_inner[0]) / iterations
    return {"seconds_per_iteration": total / iterations, "rows": rows}


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


def _child(impl, args, threads) -> dict:
    env = dict(os.environ)
    if impl == "torch":
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, "-m", "avatargan.bench_train", impl, args.preset, str(args.batch),
           str(args.iterations), str(args.warmup), str(threads), "1" if args.profile else "0", args.owner]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench child {impl} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def thread_counts(text) -> list[int]:
    """``"1,2"`` → ``[1, 2]``; a one-line :class:`UserError` for anything else."""
    from base.errors import UserError

    try:
        counts = [int(t) for t in str(text).split(",")]
    except ValueError:
        raise UserError(f"--threads must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 1 or max(counts) > 1024:
        raise UserError(f"--threads must be between 1 and 1024, got {text!r}")
    return sorted(set(counts))


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor() or ''}".strip()


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run(args) -> dict:
    """Measure; print a Markdown table; return the figures."""
    from base.errors import UserError
    from golden import threads as gt

    if args.iterations < 1 or args.batch < 2 or args.warmup < 0 or args.rounds < 1:
        raise UserError("--iterations and --rounds must be ≥ 1, --batch ≥ 2, --warmup ≥ 0")
    counts = thread_counts(args.threads)
    use_torch = not args.no_torch and torch_available()
    res = {
        "target": "train", "preset": args.preset, "batch": args.batch, "threads": counts, "owner": args.owner,
        "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
        "machine": f"{platform.machine()}, {_cpu_model()}", "cpu_count": os.cpu_count(),
        "usable_cores": len(gt.available_cores()), "load_before": _load(),
        "default_threads": gt.default_threads(), "runs": [],
    }
    from tqdm import tqdm

    bar = tqdm(total=len(counts) * args.rounds * (2 if use_torch else 1), desc="bench train", unit="child",
               file=sys.stderr, dynamic_ncols=True, leave=False)
    for t in counts:
        run_t = {"threads": t}
        for _ in range(args.rounds):
            bar.set_postfix_str(f"NumPy, {t} thread{'s' if t > 1 else ''}")
            child = _child("numpy", args, t)
            bar.update(1)
            if child["seconds"] < run_t.get("numpy_s_per_it", float("inf")):
                run_t["numpy_s_per_it"] = child["seconds"]
                run_t["numpy_cpu_s_per_it"] = child["cpu_seconds"]
                run_t["numpy_main_thread_cpu_s_per_it"] = child["main_thread_cpu_seconds"]
                run_t["profile"] = child.get("profile")
            res["numpy_version"], res["blas"] = child["version"], child["blas"]
            if use_torch:
                bar.set_postfix_str(f"PyTorch, {t} thread{'s' if t > 1 else ''}")
                child = _child("torch", args, t)
                bar.update(1)
                run_t["torch_s_per_it"] = min(child["seconds"], run_t.get("torch_s_per_it", float("inf")))
                res["torch_version"] = child["version"]
        if use_torch:
            run_t["ratio_numpy_over_torch"] = run_t["numpy_s_per_it"] / run_t["torch_s_per_it"]
        if run_t["profile"] is None:
            del run_t["profile"]
        res["runs"].append(run_t)
    bar.close()
    res["load_after"] = _load()
    base = res["runs"][0]
    for r in res["runs"]:
        r["numpy_speedup_vs_first"] = base["numpy_s_per_it"] / r["numpy_s_per_it"]
        if use_torch:
            r["torch_speedup_vs_first"] = base["torch_s_per_it"] / r["torch_s_per_it"]
    text = markdown(res)
    print(text, end="")
    if args.out:
        from base.fileio import atomic_write, ensure_dir

        folder = ensure_dir(args.out)
        atomic_write(folder / "bench_train.json", json.dumps(res, indent=2) + "\n")
        atomic_write(folder / "bench_train.md", text)
    return res


def _blas_line(blas: list[dict]) -> str:
    libs = [f"{b.get('internal_api')} {b.get('version') or ''} ({b.get('threading_layer', '-')}, "
            f"kernel {b.get('architecture', '-')})" for b in blas if b.get("user_api") == "blas"]
    return ", ".join(libs) or "none found"


def markdown(res: dict) -> str:
    """The figures as Markdown: one column per thread count, then the profile if measured."""
    runs = res["runs"]
    head = "| | " + " | ".join(f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in runs) + " |"
    lines = [f"# avatargan bench train: preset {res['preset']}, batch {res['batch']}", "",
             f"{res['machine']}, {res['usable_cores']} usable cores of {res['cpu_count']}; load average "
             f"{res['load_before']} before, {res['load_after']} after; NumPy {res.get('numpy_version')}, "
             f"BLAS {_blas_line(res.get('blas', []))}"
             + (f", PyTorch {res['torch_version']}" if "torch_version" in res else "") + ".",
             f"{res['iterations']} timed iterations after {res['warmup']} untimed, fastest of "
             f"{res['rounds']} alternating round(s). NumPy threads owned by: {res['owner']}. "
             f"Default thread count now: {res['default_threads']}.", "",
             head, "|---" * (len(runs) + 1) + "|",
             "| NumPy s/iteration | " + " | ".join(f"{r['numpy_s_per_it']:.4f}" for r in runs) + " |",
             "| NumPy speed-up over the first column | "
             + " | ".join(f"{r['numpy_speedup_vs_first']:.2f} ×" for r in runs) + " |",
             "| NumPy CPU s/iteration, all threads | "
             + " | ".join(f"{r['numpy_cpu_s_per_it']:.4f}" for r in runs) + " |",
             "| NumPy CPU s/iteration, main thread | "
             + " | ".join(f"{r['numpy_main_thread_cpu_s_per_it']:.4f}" for r in runs) + " |"]
    if "torch_version" in res:
        lines += ["| PyTorch s/iteration | " + " | ".join(f"{r['torch_s_per_it']:.4f}" for r in runs) + " |",
                  "| PyTorch speed-up over the first column | "
                  + " | ".join(f"{r['torch_speedup_vs_first']:.2f} ×" for r in runs) + " |",
                  "| NumPy / PyTorch (goal ≤ 1.25) | "
                  + " | ".join(f"{r['ratio_numpy_over_torch']:.2f} ×" for r in runs) + " |"]
    else:
        lines.append("")
        lines.append("PyTorch: not measured (not installed or --no-torch).")
    profiled = [r for r in runs if r.get("profile")]
    if profiled:
        first = profiled[0]["profile"]["rows"]
        keys = sorted({k for r in profiled for k in r["profile"]["rows"]},
                      key=lambda k: (k.startswith(INSIDE), -first.get(k, 0.0)))
        lines += ["", "NumPy iteration by layer type (seconds per iteration summed over the threads that ran them, "
                  "share of the profiled iteration; at 2 threads the discriminators' tasks overlap, so rows can "
                  "add up to more than 100 %; im2col/col2im run inside the convolutions):", "",
                  "| | " + " | ".join(f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in profiled)
                  + " |", "|---" * (len(profiled) + 1) + "|"]
        for k in keys:
            cells = []
            for r in profiled:
                v, tot = r["profile"]["rows"].get(k, 0.0), r["profile"]["seconds_per_iteration"]
                cells.append(f"{v:.4f} ({100 * v / tot:.0f} %)")
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("| profiled iteration | " + " | ".join(
            f"{r['profile']['seconds_per_iteration']:.4f}" for r in profiled) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    _impl, _preset, _batch, _its, _warm, _threads, _profile, _owner = sys.argv[1:9]
    if _impl == "numpy":
        print(json.dumps(_numpy_run(_preset, int(_batch), int(_its), int(_warm), int(_threads), _profile == "1",
                                    _owner)))
    else:
        import torch

        secs = _torch_seconds(_preset, int(_batch), int(_its), int(_warm), int(_threads))
        print(json.dumps({"seconds": secs, "version": torch.__version__}))
