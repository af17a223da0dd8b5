"""The training thread policy (golden.threads): the default leaves out cores other work keeps busy,
the count reaches BLAS through threadpoolctl, and bad counts are one-line errors.

The default's choice is checked against a real competing process (a busy loop pinned to one core),
not by timing anything; speed is for `avatargan bench train`.
"""

import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

from avatargan import cli
from golden import threads

BUSY_LOOP = ("import os, sys; os.sched_setaffinity(0, {%d}); print('ready', flush=True)\n"
             "while True: pass\n")


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture
def busy_core():
    """A Python busy loop pinned to the last usable core; killed whatever the test does."""
    cores = threads.available_cores()
    if len(cores) < 2:
        pytest.skip("needs a machine with at least 2 usable cores")
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP % cores[-1]], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield cores[-1]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_default_leaves_out_a_core_another_process_keeps_busy(busy_core, monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.busy_cores([busy_core]) == 1
    n, why = threads.choose_threads()
    assert 1 <= n <= len(threads.available_cores()) - 1, why
    assert "busy" in why


def _stat(*cores):
    """Counters as :func:`golden.threads._cpu_times` returns them: ``{cpu: (idle, total)}``."""
    return dict(enumerate(cores))


def test_busy_cores_counts_only_cores_mostly_used_by_others(monkeypatch):
    # core 0: 90 of 100 ticks busy; core 1: 10 of 100; core 2: exactly half (not more than half: free)
    snaps = iter([_stat((0, 0), (0, 0), (0, 0)), _stat((10, 100), (90, 100), (50, 100))])
    assert threads.busy_cores([0, 1, 2], seconds=0, read=lambda: next(snaps)) == 1
    snaps = iter([_stat((0, 0), (0, 0)), _stat((5, 100), (20, 100))])
    assert threads.busy_cores([0, 1], seconds=0, read=lambda: next(snaps)) == 2
    snaps = iter([_stat((0, 0), (0, 0)), _stat((5, 100), (20, 100))])
    assert threads.busy_cores([1], seconds=0, read=lambda: next(snaps)) == 1   # only the cores asked about
    monkeypatch.setattr(threads, "available_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "busy_cores", lambda cores: 3)
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.choose_threads()[0] == 1
    monkeypatch.setattr(threads, "busy_cores", lambda cores: 1)
    assert threads.choose_threads()[0] == 3
    assert threads.choose_threads(2) == (2, "--threads")
    monkeypatch.setenv(threads.ENV, "4")
    assert threads.choose_threads()[0] == 4


def test_a_cgroup_cpu_quota_caps_the_default(tmp_path, monkeypatch):
    f = tmp_path / "cpu.max"
    for text, want in (("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2),
                       ("50000 100000\n", 1), ("garbage\n", None)):
        f.write_text(text)
        assert threads.cpu_quota(str(f)) == want, text
    assert threads.cpu_quota(str(tmp_path / "missing")) is None
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: list(range(16)))
    monkeypatch.setattr(threads, "busy_cores", lambda cores: 0)
    monkeypatch.setattr(threads, "cpu_quota", lambda: 2)
    n, why = threads.choose_threads()
    assert n == 2 and "quota" in why
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    assert threads.choose_threads()[0] == 16


def test_one_owner_of_the_cores(monkeypatch):
    """Owner "pool": BLAS on one thread, products split by golden.nn's pool; owner "blas": BLAS's
    threads, products in one call (the pool never splits a product on top of BLAS's threads)."""
    import numpy as np

    from golden import nn

    calls = []
    real = nn.parallel_blocks
    monkeypatch.setattr(nn, "parallel_blocks", lambda fn, n, size: (calls.append(n), real(fn, n, size)))
    monkeypatch.setattr(nn, "_SPLIT_EXACT", True)      # as on a BLAS whose blocks are exact (the routing is tested here)
    a, b = np.ones((256, 512), np.float32), np.ones((512, 1024), np.float32)
    before = threads.get_threads()
    try:
        for n in (1, 2):
            threads.set_threads(n)
            assert threads.get_threads() == n and set(_blas_threads()) == {1}
            calls.clear()
            np.testing.assert_array_equal(nn.matmul(a, b), a @ b)
            assert calls == [1024 // nn.MATMUL_ALIGN]
            threads.set_threads(n, "blas")
            assert threads.get_threads() == n and set(_blas_threads()) == {n}
            calls.clear()
            np.testing.assert_array_equal(nn.matmul(a, b), a @ b)
            assert calls == []
    finally:
        threads.set_threads(before)
    with pytest.raises(ValueError):
        threads.set_threads(0)
    with pytest.raises(ValueError):
        threads.set_threads(1, "both")


@pytest.mark.parametrize("argv", [["train", "--data", "x", "--out", "y", "--threads", "0"],
                                  ["bench", "train", "--threads", "0"],
                                  ["bench", "train", "--threads", "1,two"]])
def test_bad_thread_counts_are_one_line_errors(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0], err


def _blocks_by_hand(a, b, count, align):
    """``a @ b`` as ``count`` blocks of the longer side at multiples of ``align``, one np.matmul each."""
    import numpy as np

    m, n = a.shape[0], b.shape[1]
    units = -(-max(m, n) // align)
    cuts = [min(max(m, n), units * i // count * align) for i in range(count + 1)]
    if n >= m:
        return np.concatenate([a @ b[:, c0:c1] for c0, c1 in zip(cuts, cuts[1:]) if c1 > c0], axis=1)
    return np.concatenate([a[c0:c1] @ b for c0, c1 in zip(cuts, cuts[1:]) if c1 > c0], axis=0)


def _products_at(a, b, counts=(1, 2, 3)):
    from golden import nn

    out = []
    for t in counts:
        threads.set_threads(t)
        out.append(nn.matmul(a, b))
    return out


SHAPES = ((16, 200, 4096), (4096, 64, 32), (192, 1024, 384))


@pytest.mark.parametrize("forced", [False, True], ids=["this BLAS's path", "fixed blocks forced"])
def test_products_do_not_depend_on_the_thread_count(monkeypatch, forced):
    """golden.nn.matmul gives the same bits at 1, 2 and 3 threads. On the path this BLAS gets
    (blocks per thread where the probe found blocks exact, then equal to one whole call too) and,
    forced, on the other one: the same FIXED_BLOCKS blocks at any thread count, equal to those
    blocks computed here one np.matmul each."""
    import numpy as np

    from golden import nn

    if forced:
        monkeypatch.setattr(nn, "split_products_are_exact", lambda: False)
    before = threads.get_threads()
    rng = np.random.default_rng(3)
    try:
        for m, k, n in SHAPES:
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            one, *more = _products_at(a, b)
            assert all(np.array_equal(one, r) for r in more), (m, k, n)
            if not nn.split_products_are_exact():
                assert np.array_equal(one, _blocks_by_hand(a, b, nn.FIXED_BLOCKS, nn.MATMUL_ALIGN)), (m, k, n)
            else:
                assert np.array_equal(one, np.matmul(a, b)), (m, k, n)
    finally:
        threads.set_threads(before)


def test_tasks_run_side_by_side_with_their_share_of_the_threads():
    """golden.nn.run_tasks: results in task order; at 2 threads the two tasks run on two threads at
    once with one thread each for their own blocks; at 1 thread one after the other in the caller."""
    import threading

    from golden import nn

    before = threads.get_threads()
    try:
        for count in (1, 2, 4):
            threads.set_threads(count)
            barrier = threading.Barrier(2, timeout=10) if count > 1 else None
            seen = []

            def task(tag):
                seen.append((tag, threading.get_ident(), nn.thread_budget()))
                if barrier is not None:
                    barrier.wait()          # only returns if the other task runs at the same time
                return tag

            assert nn.run_tasks(lambda: task("a"), lambda: task("b")) == ["a", "b"]
            idents = {ident for _, ident, _ in seen}
            budgets = {budget for *_, budget in seen}
            if count == 1:
                assert idents == {threading.get_ident()} and budgets == {1}
            else:
                assert len(idents) == 2 and budgets == {count // 2}
            assert nn.thread_budget() == count                 # the caller's budget is back
    finally:
        threads.set_threads(before)
