"""How many threads NumPy training uses, and who owns them.

A process that trains calls :func:`set_threads` once. By default one owner runs everything
multi-threaded: :mod:`golden.nn` runs the two discriminators' work side by side
(:func:`golden.nn.run_tasks`) and its pool (:func:`golden.nn.parallel_blocks`) splits the matrix
products (:func:`golden.nn.matmul`), the im2col/col2im copies and the element-wise layers over
``n`` threads, and BLAS is limited to one thread per call through threadpoolctl (at run time,
whatever the environment said when NumPy loaded). The pool's idle threads sleep; OpenBLAS's own
threads spin for a while after each product, which on a machine shared with other work made two
threads several times slower than one (docs/RESULTS.md, "Training speed").

:func:`default_threads` is the count for a machine shared with other work: the cores this process
may run on (``os.sched_getaffinity``, and no more than a cgroup CPU quota) less those another
process keeps busy, measured from the per-CPU idle counters of ``/proc/stat`` over a short
interval. A thread more than there are free cores makes every split operation wait for the thread
that shares its core with the other process: with the pool that was 0–25 % slower than one thread
at batch 64 and up to 2.4 times at batch 8, with BLAS's spinning threads several times.
"""

from __future__ import annotations

import os
import time

#: Seconds over which :func:`busy_cores` samples ``/proc/stat``.
SAMPLE_SECONDS = 0.3
#: A core counts as busy when other work used more than this fraction of it during the sample.
BUSY_FRACTION = 0.5
#: Environment variable that overrides the measured default (scripts, tests).
ENV = "AVATARGAN_THREADS"

#: Who runs the matrix products on several threads: "pool" (default: BLAS on one thread, golden.nn
#: splits each product over its own pool, which also does the copies) or "blas" (BLAS's threads for
#: the products, the pool for the copies only; kept to measure the difference, see docs/RESULTS.md).
OWNERS = ("pool", "blas")

_threads: int | None = None
_owner = "pool"
_limiter = None


def available_cores() -> list[int]:
    """The CPU numbers this process may run on (its affinity mask)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """Whole CPUs the process's cgroup (v2) may use (``cpu.max``: quota over period, rounded up),
    or None where there is no limit or no such file (a container limited to 2 CPUs on a 16-core
    host sees 16 cores in its affinity mask)."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def _cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """``{cpu: (idle ticks, total ticks)}`` from the ``cpuN`` lines of ``/proc/stat``."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                ticks = [int(v) for v in vals[:8]]         # user nice system idle iowait irq softirq steal
                out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return out


def busy_cores(cores: list[int] | None = None, seconds: float = SAMPLE_SECONDS, read=_cpu_times) -> int:
    """How many of ``cores`` other processes kept busy (more than :data:`BUSY_FRACTION`) over ``seconds``.

    The caller sleeps during the sample, so what it measures is everybody else's work (niced
    work too: it is counted as busy). ``read`` returns the counters (:func:`_cpu_times`). Returns 0
    where ``/proc/stat`` cannot be read.
    """
    cores = available_cores() if cores is None else cores
    try:
        a = read()
        time.sleep(seconds)
        b = read()
    except (OSError, ValueError, IndexError):
        return 0
    busy = 0
    for cpu in cores:
        if cpu in a and cpu in b and b[cpu][1] > a[cpu][1]:
            idle = (b[cpu][0] - a[cpu][0]) / (b[cpu][1] - a[cpu][1])
            busy += (1 - idle) > BUSY_FRACTION
    return busy


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """The thread count to use and why: ``requested`` if given, else ``AVATARGAN_THREADS``, else
    the usable cores less the busy ones (at least 1)."""
    if requested is not None:
        return requested, "--threads"
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n, ENV
    cores = available_cores()
    busy = busy_cores(cores)
    n, why = max(1, len(cores) - busy), f"{len(cores)} usable cores, {busy} busy with other work"
    quota = cpu_quota()
    if quota is not None and quota < n:
        n, why = quota, why + f", a CPU quota of {quota}"
    return n, why


def default_threads() -> int:
    """:func:`choose_threads` without a request: the count alone."""
    return choose_threads()[0]


def set_threads(n: int, owner: str = "pool") -> int:
    """Use ``n`` threads from now on, owned by ``owner`` (:data:`OWNERS`). Returns ``n``.

    With ``"pool"`` BLAS is limited to one thread (threadpoolctl) and :mod:`golden.nn` splits
    products and copies over ``n`` threads of its own pool: one owner of the cores, whose idle
    threads sleep. With ``"blas"`` BLAS gets ``n`` threads for the products; between products
    OpenBLAS's threads spin before they sleep, taking the cores from the pool's copies and from
    other processes.
    """
    global _threads, _owner, _limiter
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    if owner not in OWNERS:
        raise ValueError(f"thread owner must be one of {OWNERS}, got {owner!r}")
    import numpy  # noqa: F401  - loads BLAS first: threadpoolctl limits only libraries already loaded
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=1 if owner == "pool" else n)
    _threads, _owner = n, owner
    return n


def pool_splits_products() -> bool:
    """Whether :func:`golden.nn.matmul` splits products over the pool: after ``set_threads(n)``
    with owner ``"pool"``. Before any :func:`set_threads` call BLAS keeps its own threads (and its
    own count), so the pool leaves the products to it rather than run BLAS threads in pool threads."""
    return _threads is not None and _owner == "pool"


def get_threads() -> int:
    """The count given to :func:`set_threads`; before any call, all usable cores (BLAS's own default)."""
    return _threads if _threads is not None else len(available_cores())


def blas_info() -> list[dict]:
    """threadpoolctl's description of the loaded thread pools (library, version, kernel, threads)."""
    from threadpoolctl import threadpool_info

    return threadpool_info()
