"""``avatargan bench golden``: RGB avatars per second of the integer golden model.

A batch of random z codes (default 1 000) goes through :func:`golden.fixed.fixed_rgb`, split over
one worker process per usable core, each with single-threaded BLAS (no oversubscription, and the
element-wise work runs in parallel too); the best of a few repeats is reported with the machine.
Pool start-up and model loading are not timed (a warm-up batch runs first).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import multiprocessing as mp

import numpy as np

from base.environ import environment


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_QM = None
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(qm):
    global _QM
    _QM = qm


def _work(zq):
    from golden.fixed import fixed_rgb

    t0 = time.process_time()
    rgb = fixed_rgb(_QM, zq)
    return rgb, time.process_time() - t0


class GoldenPool:
    """``workers`` processes computing :func:`golden.fixed.fixed_rgb` on parts of a batch.

    The processes are spawned with single-threaded BLAS (environment set before they import
    NumPy). Use as a context manager; :meth:`rgb` returns exactly ``fixed_rgb(qm, zq)``.
    """

    def __init__(self, qm, workers: int):
        self.workers = workers
        with environment({k: "1" for k in _BLAS_ENV}):
            self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(qm,))

    def rgb(self, zq) -> np.ndarray:
        return self.rgb_cpu(zq)[0]

    def rgb_cpu(self, zq):
        """``(rgb, cpu_seconds)``: the result and the CPU time the workers spent on it."""
        parts = np.array_split(np.asarray(zq), self.workers)
        res = self.pool.map(_work, parts)
        return np.concatenate([r[0] for r in res]), sum(r[1] for r in res)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.terminate()
        self.pool.join()


def cpu_name() -> str:
    """The CPU model name (Linux ``/proc/cpuinfo``), else the platform's machine string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def bench_golden(args) -> dict:
    """Measure and print RGB avatars/s of the integer model.

    Parameters
    ----------
    args : argparse.Namespace
        Optional attributes: ``model`` (quantized-model path; default: a random default-size
        model), ``batch`` (1000), ``repeat`` (3), ``workers`` (usable cores; processes).

    Returns
    -------
    dict
        ``{"what": "golden", "avatars_per_s" (wall clock), "avatars_per_cpu_s", "avatars_per_s_if_idle"
        (per CPU-second times workers), "batch", "seconds", "workers", "cores", "machine", "load_avg_1min"}``.
    """
    from golden.fixed import quantize_z
    from golden.qmodel import load_qmodel
    from golden.random_models import random_qmodel

    model = getattr(args, "model", None)
    batch = int(getattr(args, "batch", None) or 1000)
    repeat = int(getattr(args, "repeat", None) or 3)
    cores = usable_cores()
    workers = int(getattr(args, "workers", None) or cores)
    qm = load_qmodel(model) if model else random_qmodel(seed=0, n_calib=32)
    zq, _ = quantize_z(np.random.default_rng(0).standard_normal((batch, qm.nz)), qm.nz)
    times, cpus = [], []
    with GoldenPool(qm, workers) as pool:
        pool.rgb(zq[: 8 * workers])  # warm-up: imports, first allocations
        for _ in range(repeat):
            t0 = time.perf_counter()
            _, cpu = pool.rgb_cpu(zq)
            times.append(time.perf_counter() - t0)
            cpus.append(cpu)
    best = min(times)
    per_cpu_s = batch / min(cpus)
    machine = f"{cpu_name()}, {platform.machine()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    res = {"load_avg_1min": load, "what": "golden", "avatars_per_s": batch / best,
           "avatars_per_cpu_s": per_cpu_s, "avatars_per_s_if_idle": per_cpu_s * workers,
           "batch": batch, "seconds": best, "workers": workers,
           "cores": cores, "machine": machine, "model": model or "random default-size model"}
    print(f"golden: {res['avatars_per_s']:.0f} RGB avatars/s  (batch {batch}, best of {repeat}: {best:.3f} s; "
          f"{workers} worker processes on {cores} usable cores, {machine}, load average {load}; "
          f"model: {res['model']})")
    print(f"golden: {per_cpu_s:.0f} avatars per CPU-second of the workers, i.e. {per_cpu_s * workers:.0f} avatars/s "
          f"if the {workers} cores were idle (the wall-clock figure above counts other load on the machine)")
    sys.stdout.flush()
    return res
