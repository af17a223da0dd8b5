"""``avatargan bench golden``: RGB avatars per second of the integer golden model.

A batch of random z codes (default 1 000) goes through :func:`golden.fixed.fixed_rgb`; the batch
is split over one worker thread per usable core (NumPy releases the GIL in BLAS and in the
element-wise work), and the best of a few repeats is reported with the machine it ran on.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fixed_rgb_threads(qm, zq, workers: int) -> np.ndarray:
    """:func:`golden.fixed.fixed_rgb` with the batch split over ``workers`` threads (same result)."""
    from golden.fixed import fixed_rgb

    zq = np.asarray(zq)
    if workers <= 1 or len(zq) < 2 * workers:
        return fixed_rgb(qm, zq)
    parts = np.array_split(zq, workers)
    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(lambda p: fixed_rgb(qm, p), parts)))


def bench_golden(args) -> dict:
    """Measure and print RGB avatars/s of the integer model.

    Parameters
    ----------
    args : argparse.Namespace
        Optional attributes: ``model`` (quantized-model path; default: a random default-size
        model), ``batch`` (1000), ``repeat`` (3), ``workers`` (usable cores).

    Returns
    -------
    dict
        ``{"what": "golden", "avatars_per_s", "batch", "seconds", "workers", "cores", "machine"}``.
    """
    from golden.fixed import quantize_z
    from golden.qmodel import load_qmodel, random_qmodel

    model = getattr(args, "model", None)
    batch = int(getattr(args, "batch", None) or 1000)
    repeat = int(getattr(args, "repeat", None) or 3)
    cores = usable_cores()
    workers = int(getattr(args, "workers", None) or cores)
    qm = load_qmodel(model) if model else random_qmodel(seed=0, n_calib=32)
    zq, _ = quantize_z(np.random.default_rng(0).standard_normal((batch, qm.nz)), qm.nz)
    fixed_rgb_threads(qm, zq[: min(batch, 2 * workers)], workers)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fixed_rgb_threads(qm, zq, workers)
        times.append(time.perf_counter() - t0)
    best = min(times)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    res = {"what": "golden", "avatars_per_s": batch / best, "batch": batch, "seconds": best, "workers": workers,
           "cores": cores, "machine": machine, "model": model or "random default-size model"}
    print(f"golden: {res['avatars_per_s']:.0f} RGB avatars/s  (batch {batch}, best of {repeat}: {best:.3f} s; "
          f"{workers} worker threads on {cores} usable cores, {machine}; model: {res['model']})")
    sys.stdout.flush()
    return res
