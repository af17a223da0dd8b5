"""UART receiver/transmitter (rtl/uart.py) in amaranth.sim, bit-level against a Python line model."""

import pytest
from amaranth.sim import Simulator

from rtl.uart import UARTRx, UARTTx, uart_divisor

DIV = 8


def line_bits(byte, stop=1):
    """The 8N1 line levels of one frame: start, 8 data bits LSB first, stop."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def test_divisor():
    assert uart_divisor(150e6, 3e6) == 50
    assert uart_divisor(25e6, 115200) == 217
    with pytest.raises(ValueError):
        uart_divisor(25e6, 3e6 * 1.1)   # 25e6 / 3.3e6 = 7.58 -> 8: 5 % off
    with pytest.raises(ValueError):
        uart_divisor(10e6, 5e6)         # divisor 2 < 4


def run_rx(frames, divisor=DIV, ready_always=True, gap_bits=1, offset=0):
    """Drive ``frames`` (lists of line levels) into a UARTRx; return the bytes and error pulses."""
    dut = UARTRx(divisor)
    got, errors, overruns = [], [], []
    levels = []
    for f in frames:
        levels += f + [1] * gap_bits
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def drive(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5 + offset)
        for lv in levels:
            ctx.set(dut.rx, lv)
            await ctx.tick().repeat(divisor)
        await ctx.tick().repeat(3 * divisor)

    async def sink(ctx):
        ctx.set(dut.data.ready, 1 if ready_always else 0)
        async for clk, rst, fe, ov, valid, payload in ctx.tick().sample(
                dut.frame_error, dut.overrun, dut.data.valid, dut.data.payload):
            if fe:
                errors.append(len(got))
            if ov:
                overruns.append(len(got))
            if valid and ready_always:
                got.append(payload)

    sim.add_testbench(drive)
    sim.add_process(sink)
    sim.run()
    return got, errors, overruns


@pytest.mark.parametrize("offset", [0, 3])
def test_rx_bytes(offset):
    data = [0x00, 0xFF, 0x55, 0xA5, 0x01, 0x80, 0x3C]
    got, errors, overruns = run_rx([line_bits(b) for b in data], offset=offset)
    assert got == data
    assert errors == [] and overruns == []


def rx_clocked(levels, divisor=DIV):
    """Drive the line with ``levels``, one per clock, into a UARTRx (always ready); return the bytes."""
    dut = UARTRx(divisor)
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def drive(ctx):
        for lv in levels:
            ctx.set(dut.rx, lv)
            await ctx.tick()

    async def sink(ctx):
        ctx.set(dut.data.ready, 1)
        async for clk, rst, valid, payload in ctx.tick().sample(dut.data.valid, dut.data.payload):
            if valid:
                got.append(payload)

    sim.add_testbench(drive)
    sim.add_process(sink)
    sim.run()
    return got


def test_rx_back_to_back_with_clock_mismatch():
    # Sender 3 % slow: 8.25 clocks per bit approximated by stretching every 4th bit by one clock.
    data = list(range(0, 256, 17))
    bits = [lv for b in data for lv in line_bits(b)]
    levels = [1] * 7 + [lv for i, lv in enumerate(bits) for _ in range(DIV + (1 if i % 4 == 3 else 0))]
    assert rx_clocked(levels + [1] * 4 * DIV) == data


def test_rx_frame_error_and_glitch():
    frames = [line_bits(0x12, stop=0), [1] * 3, line_bits(0x34)]
    got, errors, overruns = run_rx(frames)
    assert got == [0x34]
    assert errors == [0]
    # A glitch of 2 clocks (< divisor / 2) on an idle line is no start bit.
    assert not rx_accepts_pulse(2)


def test_rx_overrun_keeps_first_byte():
    dut = UARTRx(DIV)
    levels = line_bits(0x11) + [1] + line_bits(0x22) + [1]
    events = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def drive(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        for lv in levels:
            ctx.set(dut.rx, lv)
            await ctx.tick().repeat(DIV)
        await ctx.tick().repeat(2 * DIV)
        assert ctx.get(dut.data.valid) == 1
        assert ctx.get(dut.data.payload) == 0x11
        ctx.set(dut.data.ready, 1)
        await ctx.tick()
        ctx.set(dut.data.ready, 0)
        await ctx.tick()
        assert ctx.get(dut.data.valid) == 0

    async def watch(ctx):
        async for clk, rst, ov in ctx.tick().sample(dut.overrun):
            if ov:
                events.append("overrun")

    sim.add_testbench(drive)
    sim.add_process(watch)
    sim.run()
    assert events == ["overrun"]


def decode_line(samples, divisor):
    """Decode a per-clock list of tx levels into bytes (mid-bit sampling); check stop bits."""
    out, i = [], 0
    while i < len(samples):
        if samples[i] == 0:
            mid = i + divisor // 2
            bits = [samples[mid + k * divisor] for k in range(10)]
            assert bits[0] == 0, "start bit"
            assert bits[9] == 1, "stop bit"
            out.append(sum(b << k for k, b in enumerate(bits[1:9])))
            i = mid + 9 * divisor
        else:
            i += 1
    return out


def tx_line(data, divisor=DIV, stall=0):
    """Offer ``data`` to a UARTTx (``stall`` idle clocks after each byte is taken); return the line, one
    level per clock, until 12 bit times after the last byte was taken."""
    dut = UARTTx(divisor)
    samples = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def source(ctx):
        for b in data:
            ctx.set(dut.data.payload, b)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)
            ctx.set(dut.data.valid, 0)
            if stall:
                await ctx.tick().repeat(stall)
        await ctx.tick().repeat(12 * divisor)

    async def probe(ctx):
        async for clk, rst, tx in ctx.tick().sample(dut.tx):
            samples.append(tx)

    sim.add_testbench(source)
    sim.add_process(probe)
    sim.run()
    return samples


@pytest.mark.parametrize("stall", [0, 13])
def test_tx_bytes(stall):
    data = [0x00, 0xFF, 0x5A, 0xC3, 0x7E]
    samples = tx_line(data, stall=stall)
    assert samples[0] == 1
    assert decode_line(samples, DIV) == data


def test_decode_line_rejects_bad_stop_bit():
    # The checker used above must fail on a wrong line.
    samples = [1] * 4 + sum(([lv] * DIV for lv in line_bits(0x42, stop=0)), []) + [1] * 20
    with pytest.raises(AssertionError):
        decode_line(samples, DIV)
    good = [1] * 4 + sum(([lv] * DIV for lv in line_bits(0x42)), []) + [1] * 20
    assert decode_line(good, DIV) == [0x42]


def test_tx_into_rx():
    tx, rx = UARTTx(11), UARTRx(11)
    from amaranth.hdl import Module
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(256))
    got = []
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def source(ctx):
        for b in data:
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(12 * 11)

    async def sink(ctx):
        ctx.set(rx.data.ready, 1)
        async for clk, rst, valid, payload in ctx.tick().sample(rx.data.valid, rx.data.payload):
            if valid:
                got.append(payload)

    sim.add_testbench(source)
    sim.add_process(sink)
    sim.run()
    assert got == data


def rx_accepts_pulse(width, divisor=DIV):
    """Drive one low pulse of ``width`` clocks on an idle line; True if UARTRx took it for a start bit
    (it then reads an all-ones byte from the idle line)."""
    got = rx_clocked([1] * 5 + [0] * width + [1] * 12 * divisor, divisor)
    assert got in ([], [0xFF])
    return got == [0xFF]


@pytest.mark.parametrize("divisor", [4, 8, 9, 217])
def test_rx_samples_the_start_bit_at_half_a_bit(divisor):
    # The start bit is checked divisor // 2 clocks after the receiver sees its falling edge: a low
    # pulse of that length is a glitch, one clock longer is a start bit (the data bits are then
    # sampled a whole bit apart from that point, the middle of each bit).
    half = divisor // 2
    assert not rx_accepts_pulse(half, divisor)
    assert rx_accepts_pulse(half + 1, divisor)


@pytest.mark.parametrize("divisor", [2, 8, 9])
def test_tx_bit_periods_are_exact(divisor):
    # Clock for clock: each frame is its 10 line levels held for exactly ``divisor`` clocks each,
    # and back-to-back frames are one clock apart (the idle cycle in which the next byte is taken).
    data = [0x00, 0xFF, 0x5A]
    samples = tx_line(data, divisor)
    start = samples.index(0)
    expected = []
    for b in data:
        expected += [lv for lv in line_bits(b) for _ in range(divisor)] + [1]
    assert samples[start:start + len(expected)] == expected
    assert set(samples[start + len(expected):]) == {1}
