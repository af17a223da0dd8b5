"""8N1 UART receiver and transmitter with Amaranth ``lib.stream`` interfaces.

Both run in the ``sync`` domain with a fixed integer clock divisor (clock cycles per bit):
``divisor = round(f_clk / baud)``; :func:`uart_divisor` computes it and refuses a rate whose
error would exceed 2 % (a UART frame of 10 bits tolerates about 4 % between both ends).

Line format: idle high, one start bit (low), 8 data bits LSB first, one stop bit (high).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["uart_divisor", "UARTRx", "UARTTx"]


def uart_divisor(clk_hz: float, baud: float, max_error: float = 0.02) -> int:
    """Clock cycles per UART bit for ``clk_hz`` and ``baud``.

    Raises
    ------
    ValueError
        If the divisor is below 4 (too few samples per bit) or the real baud rate differs from
        ``baud`` by more than ``max_error`` (relative).
    """
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"clock {clk_hz / 1e6:g} MHz is too slow for {baud:g} baud (divisor {divisor} < 4)")
    error = abs(clk_hz / divisor - baud) / baud
    if error > max_error:
        raise ValueError(f"{baud:g} baud from a {clk_hz / 1e6:g} MHz clock is off by {100 * error:.1f} % "
                         f"(divisor {divisor}); at most {100 * max_error:g} % allowed")
    return divisor


class UARTTx(wiring.Component):
    """UART transmitter: takes bytes from the ``data`` stream and shifts them out on ``tx``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 2).

    Attributes
    ----------
    data : In(stream.Signature(8))
        Bytes to send; a byte is taken when the transmitter is idle.
    tx : Out(1)
        The serial line (idle high).
    busy : Out(1)
        A frame is being sent.
    """

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"UART divisor must be >= 2, not {divisor}")
        self.divisor = int(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # Counts down to -1: the bit period ends when the sign bit is set, so the shift register's
        # enable is a flip-flop, not a comparison (``timer == 0`` through a carry chain, then the
        # enable of 13 flip-flops, was a 128-lane board's critical path, 8.4 ns).
        timer = Signal(range(-1, self.divisor - 1))
        shreg = Signal(10, init=0x3FF)      # stop bit, 8 data bits, start bit (LSB goes first)
        bits = Signal(range(11))            # bits left to send

        m.d.comb += [
            self.data.ready.eq(bits == 0),
            self.busy.eq(bits != 0),
            self.tx.eq(shreg[0]),
        ]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [
                    shreg.eq((1 << 9) | (self.data.payload << 1)),
                    bits.eq(10),
                    timer.eq(self.divisor - 2),
                ]
        with m.Else():
            with m.If(timer[-1]):
                m.d.sync += [
                    shreg.eq((shreg >> 1) | (1 << 9)),
                    bits.eq(bits - 1),
                    timer.eq(self.divisor - 2),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(wiring.Component):
    """UART receiver: samples ``rx`` in the middle of each bit and emits bytes on ``data``.

    The input goes through a two-flip-flop synchronizer. A start bit must still be low half a bit
    after its falling edge (glitch filter). A frame whose stop bit is low raises ``frame_error``
    for one cycle and is dropped. A byte that arrives while the previous one has not been taken
    raises ``overrun`` for one cycle and is dropped (the older byte is kept).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Attributes
    ----------
    rx : In(1)
        The serial line.
    data : Out(stream.Signature(8))
        Received bytes.
    frame_error, overrun : Out(1)
        One-cycle pulses.
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"UART divisor must be >= 4, not {divisor}")
        self.divisor = int(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(-1, self.divisor - 1))     # counts down to -1, as in UARTTx
        shreg = Signal(8)
        nbit = Signal(range(9))

        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 2)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer[-1]):
                    with m.If(rx):
                        m.next = "IDLE"             # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 2), nbit.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer[-1]):
                    m.d.sync += [
                        shreg.eq((shreg >> 1) | (rx << 7)),
                        timer.eq(self.divisor - 2),
                        nbit.eq(nbit + 1),
                    ]
                    with m.If(nbit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer[-1]):
                    with m.If(~rx):
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("BREAK"):
                # After a bad stop bit wait for the line to go idle before looking for a start bit.
                with m.If(rx):
                    m.next = "IDLE"
        return m
