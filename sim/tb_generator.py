"""cocotb testbench of the Generator top (Verilog module ``generator``, docs/ARCHITECTURE.md).

Structured like cocotb's ``matrix_multiplier`` example:

* :class:`ZDriver` — stream source on ``z``: 100 words per avatar, element 0 first, with an
  optional seeded pause generator that inserts idle cycles between words;
* :class:`PixelMonitor` — stream sink on ``pixel``: collects every transfer, with an optional
  seeded pause generator on ``ready`` (the 0 %, 50 %, 90 % stall cases, cocotbext-axi style);
* the reference: the integer golden model (``golden.fixed.fixed_rgb``) on the scenario's z codes
  (or a precomputed expected array);
* :class:`Scoreboard` — in order: for each avatar, the 3 072 transfers must be plane R, G, B, each
  in raster order, with the right ``x``, ``y``, ``plane``, ``last`` fields and pixel values equal to
  the reference. It reports the first mismatch by avatar, plane, x, y and the total.

The scenario comes from the JSON file named by the environment variable
``AVATARGAN_SIM_SCENARIO`` (written by :func:`sim.runner.run`):

``z`` or ``z_npy``
    z codes ``S(16,12)``: a list of lists, or a ``.npy`` path to an int array ``(N, nz)``.
``model`` or ``expected_npy``
    quantized model for the golden reference, or a precomputed ``(N, 3, 32, 32)`` uint8 array.
``input_pause``, ``output_stall``
    probabilities (0..1) of an idle cycle on the z stream and of ``ready`` low on the pixel stream.
``seed``
    seed of both pause generators.
``reset_after_pixels``
    if set: avatar 0 is started, ``rst`` is asserted after that many pixels of it were taken
    (a reset in the middle of a pass), and only avatars 1.. are checked afterwards.
``max_cycles``
    simulation time-out in clock cycles for the whole run.
``out_dir``, ``clock_ns``
    where ``result.json``, ``pixels.npy``, ``expected.npy`` go; the clock period.

The speed matters (the full model runs ~10^5..10^6 cycles per avatar): the clock is cocotb's C++
clock, and the Python side wakes up only on stream events (a ``valid``/``ready`` edge, or one clock
edge per transfer), never once per idle cycle.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from base.contract import decode_pixel_words
from sim.result import verdict_message

#: Pixels per plane and per RGB avatar (docs/NUMERICS.md rule 7).
PLANE = 32 * 32
AVATAR = 3 * PLANE


#: Split raw ``pixel__payload`` words into their fields (docs/ARCHITECTURE.md).
decode = decode_pixel_words


def expected_fields() -> dict[str, np.ndarray]:
    """Fields ``x``, ``y``, ``plane``, ``last`` of the 3 072 transfers of one avatar, in order."""
    i = np.arange(AVATAR)
    last = np.zeros(AVATAR, dtype=np.int64)
    last[-1] = 1
    return {"x": i % 32, "y": (i // 32) % 32, "plane": i // PLANE, "last": last}


class PauseGenerator:
    """Seeded Bernoulli pause source: ``next()`` is True (pause) with probability ``rate``."""

    def __init__(self, rate: float, seed: int):
        self.rate = float(rate)
        self.rng = random.Random(seed)

    def __next__(self) -> bool:
        return self.rate > 0 and self.rng.random() < self.rate

    def __iter__(self):
        return self


class ZDriver:
    """Stream source for ``z``: sends the 100 words of each avatar, pausing when told to."""

    def __init__(self, dut, pause: PauseGenerator | None, clock_ns: float):
        self.dut = dut
        self.pause = pause
        self.clock_ns = clock_ns
        #: Clock-edge index of the first z word taken, per avatar.
        self.first_edge: list[int] = []

    async def send(self, words: np.ndarray) -> None:
        """Send avatars ``words`` (N, nz) of signed codes; returns after the last word is taken."""
        dut = self.dut
        clk, valid, ready, payload = dut.clk, dut.z__valid, dut.z__ready, dut.z__payload
        for row in words:
            for k, w in enumerate(row.tolist()):
                if self.pause is not None:
                    while next(self.pause):
                        valid.value = 0
                        await RisingEdge(clk)
                payload.value = int(w) & 0xFFFF
                valid.value = 1
                while True:
                    await ReadOnly()
                    if ready.value == 1:
                        break
                    await RisingEdge(ready)     # the engine is busy: sleep until it can take z
                await RisingEdge(clk)           # the transfer happens on this edge
                if k == 0:
                    self.first_edge.append(self.edge_index())
        valid.value = 0

    def edge_index(self) -> int:
        return round(get_sim_time("ns") / self.clock_ns)


class PixelMonitor:
    """Stream sink for ``pixel``: records every transfer (payload and clock-edge index)."""

    def __init__(self, dut, stall: PauseGenerator | None, clock_ns: float, on_avatar):
        self.dut = dut
        self.stall = stall
        self.clock_ns = clock_ns
        self.on_avatar = on_avatar
        self.words: list[int] = []
        self.count = 0
        self.watch: tuple[int, Event] | None = None

    async def run(self) -> None:
        dut = self.dut
        clk, valid, ready, payload = dut.clk, dut.pixel__valid, dut.pixel__ready, dut.pixel__payload
        stall = self.stall
        ready.value = 1 if stall is None else 0
        current_ready = 1 if stall is None else 0
        words = self.words
        while True:
            # Here writes are allowed (just after a clock edge or a valid edge): choose ready for
            # the coming cycle, then look at the settled values of that cycle.
            if stall is not None:
                r = 0 if next(stall) else 1
                if r != current_ready:
                    ready.value = r
                    current_ready = r
            await ReadOnly()
            if valid.value != 1:
                await RisingEdge(valid)         # nothing offered: sleep until a pixel is
                continue
            word = payload.value.to_unsigned()
            take = current_ready
            await RisingEdge(clk)               # the transfer happens on this edge if ready was high
            if take:
                words.append(word)
                self.count += 1
                if self.watch is not None and self.count >= self.watch[0]:
                    self.watch[1].set()
                if len(words) == AVATAR:
                    self.on_avatar(words, round(get_sim_time("ns") / self.clock_ns))
                    self.words = words = []


class Scoreboard:
    """In-order comparison of each avatar's 3 072 transfers with the golden reference."""

    def __init__(self, expected: np.ndarray):
        self.expected = expected.astype(np.int64)            # (N, 3, 32, 32)
        self.flat = self.expected.reshape(len(expected), AVATAR)
        self.order = expected_fields()
        self.hardware = np.zeros_like(expected, dtype=np.uint8)
        self.received = 0
        self.last_edge: list[int] = []
        self.mismatches = 0
        self.first: dict | None = None
        self.extra = 0
        self.all_done = Event()

    def add(self, words: list[int], edge: int) -> None:
        n = self.received
        if n >= len(self.expected):
            self.extra += len(words)
            return
        f = decode(np.array(words, dtype=np.int64))
        self.hardware[n] = f["pixel"].reshape(3, 32, 32).astype(np.uint8)
        bad = f["pixel"] != self.flat[n]
        for name in ("x", "y", "plane", "last"):
            bad |= f[name] != self.order[name]
        nbad = int(bad.sum())
        self.mismatches += nbad
        if nbad and self.first is None:
            i = int(np.argmax(bad))
            o = self.order
            self.first = {
                "avatar": n, "index": i,
                "plane": int(o["plane"][i]), "x": int(o["x"][i]), "y": int(o["y"][i]),
                "expected_pixel": int(self.flat[n][i]),
                "got": {k: int(v[i]) for k, v in f.items()},
            }
        self.last_edge.append(edge)
        self.received += 1
        if self.received == len(self.expected):
            self.all_done.set()

    def message(self) -> str:
        return verdict_message(len(self.expected), self.received, self.mismatches, self.first, self.extra)


def load_scenario() -> dict:
    path = os.environ.get("AVATARGAN_SIM_SCENARIO")
    if not path:
        raise RuntimeError("AVATARGAN_SIM_SCENARIO is not set (run through sim.runner.run)")
    return json.loads(Path(path).read_text())


def scenario_z(sc: dict) -> np.ndarray:
    if "z_npy" in sc:
        return np.load(sc["z_npy"]).astype(np.int64)
    return np.array(sc["z"], dtype=np.int64)


def reference(sc: dict, z: np.ndarray) -> np.ndarray:
    """Expected RGB pixels (N, 3, 32, 32) uint8 from the integer golden model."""
    if "expected_npy" in sc:
        return np.load(sc["expected_npy"]).astype(np.uint8)
    from golden.fixed import fixed_rgb
    from golden.qmodel import load_qmodel

    return np.asarray(fixed_rgb(load_qmodel(sc["model"]), z), dtype=np.uint8)


async def reset(dut, cycles: int = 4) -> None:
    """Synchronous reset with both streams idle."""
    dut.rst.value = 1
    dut.z__valid.value = 0
    dut.z__payload.value = 0
    dut.pixel__ready.value = 0
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def count_done(dut, dut_cycles: list[int], done_edges: list[int], clock_ns: float) -> None:
    """Count ``done`` pulses and read the ``cycles`` port after each one."""
    while True:
        await RisingEdge(dut.done)
        done_edges.append(round(get_sim_time("ns") / clock_ns))
        await ClockCycles(dut.clk, 2)
        dut_cycles.append(int(dut.cycles.value.to_unsigned()))


@cocotb.test()
async def check_avatars(dut):
    """Drive the scenario's avatars through the Generator and compare every pixel."""
    sc = load_scenario()
    out = Path(sc["out_dir"])
    clock_ns = float(sc.get("clock_ns", 10))
    seed = int(sc.get("seed", 0))
    z = scenario_z(sc)
    reset_after = sc.get("reset_after_pixels")
    checked = z[1:] if reset_after is not None else z
    expected = reference(sc, checked)
    if expected.shape != (len(checked), 3, 32, 32):
        raise RuntimeError(f"reference has shape {expected.shape}, expected {(len(checked), 3, 32, 32)}")
    np.save(out / "expected.npy", expected)
    dut._log.info("scenario: %d avatar(s), input pause %.0f %%, output stall %.0f %%, seed %d%s",
                  len(checked), 100 * sc.get("input_pause", 0), 100 * sc.get("output_stall", 0), seed,
                  f", reset after {reset_after} pixels" if reset_after is not None else "")

    Clock(dut.clk, clock_ns, unit="ns").start()
    await reset(dut)
    t0 = time.perf_counter()
    c0 = time.process_time()
    edge0 = round(get_sim_time("ns") / clock_ns)
    max_cycles = int(sc.get("max_cycles", 50_000_000))

    def pauses(rate, salt):
        return PauseGenerator(rate, seed * 1000 + salt) if rate else None

    if reset_after is not None:
        # A pass interrupted by reset: the pixels of avatar 0 are thrown away.
        sink = PixelMonitor(dut, None, clock_ns, lambda w, e: None)
        reached = Event()
        sink.watch = (int(reset_after), reached)
        mon = cocotb.start_soon(sink.run())
        drv = cocotb.start_soon(ZDriver(dut, None, clock_ns).send(z[:1]))
        await with_timeout(reached.wait(), max_cycles * clock_ns, "ns")
        drv.cancel()
        mon.cancel()
        await reset(dut, int(sc.get("reset_cycles", 3)))

    board = Scoreboard(expected)
    dut_cycles: list[int] = []
    done_edges: list[int] = []
    monitor = PixelMonitor(dut, pauses(sc.get("output_stall", 0), 2), clock_ns, board.add)
    driver = ZDriver(dut, pauses(sc.get("input_pause", 0), 1), clock_ns)
    done_task = cocotb.start_soon(count_done(dut, dut_cycles, done_edges, clock_ns))
    mon_task = cocotb.start_soon(monitor.run())
    drv_task = cocotb.start_soon(driver.send(checked))
    timed_out = False
    try:
        await with_timeout(board.all_done.wait(), max_cycles * clock_ns, "ns")
    except Exception as e:  # SimTimeoutError
        timed_out = True
        dut._log.error("time-out after %d cycles: %s", max_cycles, e)
    sim_wall = time.perf_counter() - t0
    sim_cpu = time.process_time() - c0
    if not timed_out:
        await ClockCycles(dut.clk, int(sc.get("idle_cycles_after", 64)))   # stray pixels would show here
    drv_task.cancel()
    mon_task.cancel()
    done_task.cancel()

    cycles = [le - fe + 1 for fe, le in zip(driver.first_edge, board.last_edge)]
    checks = []
    if timed_out:
        checks.append(f"time-out after {max_cycles} cycles")
    if len(done_edges) != board.received:
        checks.append(f"{len(done_edges)} done pulses for {board.received} avatars")
    if monitor.words:
        checks.append(f"{len(monitor.words)} stray pixel transfer(s) after the last complete avatar")
    if int(dut.busy.value) != 0:
        checks.append("busy still high after the last avatar")
    passed = board.first is None and board.extra == 0 and board.received == len(expected) and not checks
    message = board.message() + "".join(f"; {c}" for c in checks)
    result = {
        "passed": passed, "message": message, "mismatches": board.mismatches, "first_mismatch": board.first,
        "avatars": len(expected), "received": board.received, "cycles": cycles, "dut_cycles": dut_cycles,
        "sim_wall_s": sim_wall, "sim_cpu_s": sim_cpu, "sim_cycles": round(get_sim_time("ns") / clock_ns) - edge0,
        "checks": checks,
    }
    np.save(out / "pixels.npy", board.hardware)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    dut._log.info("%s; cycles/avatar %s; %.2f s wall", message, cycles[:4], sim_wall)
    assert passed, message
