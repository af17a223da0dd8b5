"""cocotb loopback testbench of the board logic (Verilog module ``board_logic``, rtl/board.py).

The host side is simulated at the line level: each request (``gen.boardlink.encode_request``) is
shifted into ``uart_rx`` bit by bit (8N1, ``divisor`` clocks per bit); a receiver coroutine samples
``uart_tx`` in the middle of each bit, checks start and stop bits and collects the bytes; each
reply is decoded with ``gen.boardlink.decode_reply`` and compared, every pixel, with the expected
avatars (the integer golden model, computed by the caller).

Scenario (JSON named by ``AVATARGAN_SIM_SCENARIO``, written by :func:`sim.board_loopback.run_loopback`):
``z`` (list of lists of codes), ``expected_npy`` (uint8 ``(N, 3, 32, 32)``), ``divisor``,
``max_cycles``, ``out_dir``, ``clock_ns``. Writes ``result.json`` and ``pixels.npy`` to ``out_dir``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, with_timeout

from gen.boardlink import decode_reply, encode_request, reply_size


async def send_bytes(dut, data: bytes, divisor: int) -> None:
    """Drive ``data`` on ``uart_rx``: start bit, 8 data bits LSB first, stop bit, one idle bit."""
    for b in data:
        for level in [0] + [(b >> k) & 1 for k in range(8)] + [1, 1]:
            dut.uart_rx.value = level
            await ClockCycles(dut.clk, divisor)


class LineReceiver:
    """Decodes ``uart_tx`` into bytes; counts framing errors (bad start or stop bit)."""

    def __init__(self, dut, divisor: int):
        self.dut, self.divisor = dut, divisor
        self.data = bytearray()
        self.framing_errors = 0
        self.got = Event()
        self.want = 0

    async def run(self) -> None:
        dut, div = self.dut, self.divisor
        while True:
            await FallingEdge(dut.uart_tx)
            await ClockCycles(dut.clk, div // 2)
            if int(dut.uart_tx.value) != 0:
                self.framing_errors += 1
                continue
            byte = 0
            for k in range(8):
                await ClockCycles(dut.clk, div)
                byte |= int(dut.uart_tx.value) << k
            await ClockCycles(dut.clk, div)
            if int(dut.uart_tx.value) != 1:
                self.framing_errors += 1
            self.data.append(byte)
            if self.want and len(self.data) >= self.want:
                self.got.set()


@cocotb.test()
async def loopback(dut):
    """Requests in, replies out, every pixel compared with the expected avatars."""
    sc = json.loads(Path(os.environ["AVATARGAN_SIM_SCENARIO"]).read_text())
    out = Path(sc["out_dir"])
    div = int(sc["divisor"])
    clock_ns = float(sc.get("clock_ns", 10))
    zs = [np.array(z, dtype=np.int64) for z in sc["z"]]
    expected = np.load(sc["expected_npy"])

    Clock(dut.clk, clock_ns, unit="ns").start()
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)

    rx = LineReceiver(dut, div)
    task = cocotb.start_soon(rx.run())
    pixels, cycles, timed_out = [], [], False
    for i, z in enumerate(zs):
        rx.got.clear()
        rx.want = (i + 1) * reply_size()
        await send_bytes(dut, encode_request(z), div)
        try:
            if len(rx.data) < rx.want:
                await with_timeout(rx.got.wait(), int(sc["max_cycles"]) * clock_ns, "ns")
        except Exception as e:  # SimTimeoutError
            dut._log.error("no full reply for request %d: %s", i, e)
            timed_out = True
            break
        rgb, n = decode_reply(bytes(rx.data[i * reply_size():(i + 1) * reply_size()]))
        pixels.append(rgb)
        cycles.append(n)
    await ClockCycles(dut.clk, 20 * div)
    task.cancel()

    got = np.array(pixels, dtype=np.uint8).reshape(-1, 3, 32, 32)
    np.save(out / "pixels.npy", got)
    mismatches = int(np.count_nonzero(got != expected[:len(got)])) + (len(expected) - len(got)) * 3072
    extra = len(rx.data) - len(zs) * reply_size()
    passed = mismatches == 0 and not timed_out and rx.framing_errors == 0 and extra == 0
    message = (f"{len(got)} of {len(zs)} replies, {mismatches} pixel mismatches, "
               f"{rx.framing_errors} framing errors, {extra} extra bytes")
    (out / "result.json").write_text(json.dumps(
        {"passed": passed, "message": message, "mismatches": mismatches, "cycles": cycles,
         "framing_errors": rx.framing_errors, "extra_bytes": extra}, indent=1))
    assert passed, message
