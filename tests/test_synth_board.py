"""Board top logic (rtl/board.py) and host protocol (gen/boardlink.py) in amaranth.sim.

The Generator is replaced here by a small test double with the same ports (docs/ARCHITECTURE.md),
so that the serial framing is checked on its own; the loopback with the real Generator is in
tests/test_synth_loopback.py.
"""

import numpy as np
import pytest
from amaranth.hdl import Array, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from base.errors import UserError
from gen.boardlink import decode_reply, encode_request, reply_size
from rtl.board import BoardLogic, PIXELS

DIV = 4
NZ = 3


class EchoCore(wiring.Component):
    """Test double of the Generator: pixel i = (z[i mod nz] + i) mod 256, with x/y/plane/last bits."""

    def __init__(self, nz):
        self.nz = nz
        super().__init__({
            "z": In(stream.Signature(16)),
            "pixel": Out(stream.Signature(21)),
            "busy": Out(1), "done": Out(1), "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        zs = Array(Signal(16, name=f"z{i}") for i in range(self.nz))
        n = Signal(range(self.nz + 1))
        i = Signal(12)
        count = Signal(32)
        with m.If(self.busy):
            m.d.sync += count.eq(count + 1)
        with m.FSM():
            with m.State("Z"):
                m.d.comb += self.z.ready.eq(1)
                with m.If(self.z.valid):
                    m.d.sync += [zs[n].eq(self.z.payload), n.eq(n + 1), self.busy.eq(1)]
                    with m.If(n == 0):
                        m.d.sync += count.eq(1)
                    with m.If(n == self.nz - 1):
                        m.d.sync += [n.eq(0), i.eq(0)]
                        m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [
                    self.pixel.valid.eq(1),
                    self.pixel.payload[0:8].eq(zs[i % self.nz] + i),
                    self.pixel.payload[8:13].eq(i[0:5]),
                    self.pixel.payload[13:18].eq(i[5:10]),
                    self.pixel.payload[18:20].eq(i[10:12]),
                    self.pixel.payload[20].eq(i == PIXELS - 1),
                ]
                with m.If(self.pixel.ready):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == PIXELS - 1):
                        m.d.comb += self.done.eq(1)
                        m.d.sync += [self.busy.eq(0), self.cycles.eq(count + 1)]
                        m.next = "Z"
        return m


def echo_expected(zq):
    i = np.arange(PIXELS)
    return ((zq.astype(np.int64)[i % len(zq)] + i) & 0xFF).astype(np.uint8).reshape(3, 32, 32)


def uart_levels(data, divisor):
    """Per-clock line levels for bytes ``data`` (8N1, one idle bit between frames)."""
    out = []
    for b in data:
        for lv in [0] + [(b >> k) & 1 for k in range(8)] + [1, 1]:
            out += [lv] * divisor
    return out


def run_board(requests, timeout_cycles=200, gap=0):
    """Send each request (bytes) into BoardLogic+EchoCore; return (tx bytes, led, core cycles)."""
    dut = BoardLogic(EchoCore(NZ), nz=NZ, divisor=DIV, timeout_cycles=timeout_cycles)
    rx_bytes = []
    state = {}
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def host(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(10)
        for req in requests:
            for lv in uart_levels(req, DIV):
                ctx.set(dut.uart_rx, lv)
                await ctx.tick()
            ctx.set(dut.uart_rx, 1)
            if gap:
                await ctx.tick().repeat(gap)
        # Wait for the replies (decoded by `listen`).
        want = reply_size() * sum(1 for r in requests if len(r) == 1 + 2 * NZ)
        t = 0
        while len(rx_bytes) < want and t < 12 * DIV * (want + 10):
            await ctx.tick().repeat(100)
            t += 100
        await ctx.tick().repeat(20)
        state["led"] = ctx.get(dut.led)
        state["cycles"] = ctx.get(dut.core.cycles)

    async def listen(ctx):
        prev = 1
        while True:
            await ctx.tick()
            now = ctx.get(dut.uart_tx)
            if now == 0 and prev == 1:
                await ctx.tick().repeat(DIV // 2)
                bits = []
                for _ in range(9):
                    await ctx.tick().repeat(DIV)
                    bits.append(ctx.get(dut.uart_tx))
                assert bits[8] == 1, "stop bit"
                rx_bytes.append(sum(b << k for k, b in enumerate(bits[:8])))
                now = bits[8]
            prev = now

    sim.add_testbench(host)
    sim.add_testbench(listen, background=True)
    sim.run()
    return bytes(rx_bytes), state["led"], state["cycles"]


def test_request_encoding():
    zq = np.array([1, -1, 0x1234, -32768], dtype=np.int16)
    assert encode_request(zq) == bytes([0x5A, 1, 0, 0xFF, 0xFF, 0x34, 0x12, 0x00, 0x80])
    with pytest.raises(UserError):
        encode_request(np.array([40000]))
    with pytest.raises(UserError):
        encode_request(np.zeros((2, 2), dtype=np.int16))


def test_decode_reply_rejects_short():
    with pytest.raises(UserError):
        decode_reply(bytes(reply_size() - 1))
    rgb, cycles = decode_reply(bytes(range(256)) * 12 + (1234567).to_bytes(4, "little"))
    assert rgb.shape == (3, 32, 32) and rgb[0, 0, 5] == 5 and rgb[2, 31, 31] == 255
    assert cycles == 1234567


def test_board_round_trip_with_junk_and_timeout():
    zq = np.array([0x0102, -3, 0x7F00], dtype=np.int16)
    # Junk before the command byte is ignored; a partial request times out and is dropped.
    partial = encode_request(zq)[:4]
    data, led, core_cycles = run_board([b"\x00\xff" + partial, encode_request(zq)],
                                       timeout_cycles=100, gap=300)
    rgb, cycles = decode_reply(data)
    assert np.array_equal(rgb, echo_expected(zq))
    assert cycles == core_cycles > PIXELS
    assert led & (1 << 3), "the timeout lights the error LED"
    assert (led >> 4) == 1, "one avatar made"
    # The comparison above must fail for another z.
    assert not np.array_equal(rgb, echo_expected(zq + 1))
