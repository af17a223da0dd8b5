"""The ULX3S board top: UART in (z) -> Generator -> UART out (three planes), PLL, reset, LEDs.

Serial protocol (8N1, :data:`DEFAULT_BAUD` = 3 Mbaud, the FT231X's top rate; host side in
:mod:`gen.boardlink`):

request (host -> board), ``1 + 2·nz`` bytes
    :data:`CMD_Z` (``0x5A``, ASCII ``Z``), then the ``nz`` words of z (``S(16,12)`` codes, element 0
    first), each as 2 bytes little-endian. Bytes before ``CMD_Z`` are ignored. If the line is idle
    for :data:`TIMEOUT_S` inside a request, the partial request is dropped (LED 3 lights) and the
    board waits for ``CMD_Z`` again. z is buffered whole before the Generator sees any of it.
reply (board -> host), ``3072 + 4`` bytes
    the 3072 pixels in the Generator's output order (plane R, G, B; raster order in each plane;
    one byte each), then the Generator's ``cycles`` count of this avatar (4 bytes little-endian).

The serial line limits the rate: one avatar moves ``(201 + 3076) · 10`` bits, so at 3 Mbaud at most
about 91 avatars/s reach the host, whatever the Generator's own rate (the ``cycles`` count in each
reply measures the latter).

LEDs: 0 Generator busy, 1 reply being sent, 2 PLL locked, 3 sticky error (UART framing error,
overrun or request timeout; cleared by reset), 4–7 the low 4 bits of the number of avatars made.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import AsyncFFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.layouts import pixel_layout
from rtl.uart import UARTRx, UARTTx, uart_divisor

__all__ = ["CMD_Z", "DEFAULT_BAUD", "TIMEOUT_S", "PIXELS", "BoardLogic", "Board"]

CMD_Z = 0x5A
DEFAULT_BAUD = 3_000_000
TIMEOUT_S = 0.05
PIXELS = 3 * 32 * 32


class BoardLogic(wiring.Component):
    """Everything of the board top that runs in the ``sync`` domain (simulated as it is).

    Parameters
    ----------
    core : wiring.Component
        The Generator (ports as in docs/ARCHITECTURE.md: ``z``, ``pixel``, ``busy``, ``done``,
        ``cycles``); it becomes a submodule.
    nz : int
        Words of z per avatar.
    divisor : int
        Clock cycles per UART bit.
    timeout_cycles : int
        Idle cycles inside a request after which it is dropped.

    Attributes
    ----------
    uart_rx : In(1)
    uart_tx : Out(1)
    led : Out(8)
        LEDs 0, 1, 3–7 as in the module text (LED 2 is driven by :class:`Board`).
    """

    def __init__(self, core, nz: int, divisor: int, timeout_cycles: int):
        self.core = core
        self.nz = int(nz)
        self.divisor = int(divisor)
        self.timeout_cycles = max(int(timeout_cycles), 1)
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "led": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.core = core
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        # Written only while a request is received, read only while it is fed to the core: no read
        # meets a write, so ``no_rw_check`` (gen/ilpatch.py) keeps yosys from adding bypass logic
        # between the RAM and z_q (which then could not become its output register).
        m.submodules.zbuf = zbuf = Memory(shape=16, depth=self.nz, init=[], attrs={"no_rw_check": 1})
        wr = zbuf.write_port()
        # A block RAM read through both its registers: the address (the synchronous read port) and
        # the word (``z_q``, no enable: gen/bramreg.py makes it the DP16KD's output register), then
        # taken into ``zword`` two cycles after its address. A word read straight into ``zword``
        # (a block RAM without output register: 5.8 ns clock to output) and a distributed RAM
        # (100 words: three multiplexer levels after the read) were each a 128-lane run's critical
        # path (8.7 and 8.9 ns).
        rd = zbuf.read_port()
        z_q = Signal(16, name="z_q", reset_less=True)
        m.d.sync += z_q.eq(rd.data)
        zword = Signal(16, name="z_word")
        rwait = Signal(2)                          # cycles since ``ridx`` was put on the read port

        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]

        error = Signal()
        count = Signal(4)
        sending = Signal()
        idle = Signal(range(self.timeout_cycles + 1))
        lo = Signal(8)
        widx = Signal(range(self.nz + 1))          # words received / words given to the core
        ridx = Signal(range(self.nz + 1))
        zvalid = Signal()
        cycles = Signal(32)
        nbyte = Signal(2)

        # Registered: the LED pins sit at the die's edge, far from the FSM (its LUT -> pin path was
        # 9.5 ns in a 128-lane run); a cycle's delay is invisible to the eye.
        m.d.sync += self.led.eq(core.busy | (sending << 1) | (error << 3) | (count << 4))
        # The avatar count steps a cycle after the FSM's decision, from a register of its own: the
        # decision's enable reached the count (beside the LED register at the die's edge) and the
        # cycle-count register in one net (7.6 ns in a 128-lane run).
        counted = Signal()
        m.d.sync += [counted.eq(0), count.eq(count + counted)]
        with m.If(rx.frame_error | rx.overrun):
            m.d.sync += error.eq(1)

        m.d.comb += [
            wr.addr.eq(widx),
            wr.data.eq((rx.data.payload << 8) | lo),
            rd.addr.eq(ridx),
            core.z.payload.eq(zword),
            core.z.valid.eq(zvalid),
        ]

        # The core's pixel words through a register (``word``, valid while ``full``): the FSM and
        # the transmitter see flip-flops, not the core's output stream across the die (a 105 MHz
        # run's late family: the FSM's enable, 8.6 ns). One word per two cycles is plenty for a
        # byte-wide serial line.
        word = Signal(pixel_layout(), name="pixel_word")
        full = Signal()
        m.d.comb += core.pixel.ready.eq(~full)
        with m.If(core.pixel.valid & ~full):
            m.d.sync += [word.eq(core.pixel.payload), full.eq(1)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += rx.data.ready.eq(1)
                m.d.sync += [widx.eq(0), idle.eq(0)]
                with m.If(rx.data.valid & (rx.data.payload == CMD_Z)):
                    m.next = "LO"
            for state, nxt in (("LO", "HI"), ("HI", "LO")):
                with m.State(state):
                    m.d.comb += rx.data.ready.eq(1)
                    with m.If(rx.data.valid):
                        m.d.sync += idle.eq(0)
                        if state == "LO":
                            m.d.sync += lo.eq(rx.data.payload)
                            m.next = "HI"
                        else:
                            m.d.comb += wr.en.eq(1)
                            m.d.sync += widx.eq(widx + 1)
                            with m.If(widx == self.nz - 1):
                                m.d.sync += [ridx.eq(0), rwait.eq(0)]
                                m.next = "FEED"
                            with m.Else():
                                m.next = "LO"
                    with m.Elif(idle == self.timeout_cycles):
                        m.d.sync += error.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += idle.eq(idle + 1)
            with m.State("FEED"):
                # zword is the word offered to the core (zvalid). While none is offered, word ridx
                # is read: its address on the port (rwait 0), the RAM's registered word (1), z_q
                # (2), then taken into zword. Four cycles a word: the serial line brought each in
                # 20 bit times, and the core's cycle count starts at the first word taken.
                take = zvalid & core.z.ready
                with m.If(take):
                    m.d.sync += zvalid.eq(0)
                    with m.If(ridx == self.nz):
                        m.next = "PIXELS"
                with m.If(~zvalid & (ridx != self.nz)):
                    with m.If(rwait == 2):
                        m.d.sync += [zword.eq(z_q), zvalid.eq(1), ridx.eq(ridx + 1), rwait.eq(0)]
                    with m.Else():
                        m.d.sync += rwait.eq(rwait + 1)
            with m.State("PIXELS"):
                m.d.comb += [
                    sending.eq(1),
                    tx.data.payload.eq(word.pixel),
                    tx.data.valid.eq(full),
                ]
                with m.If(full & tx.data.ready):
                    m.d.sync += full.eq(0)
                    with m.If(word.last):
                        m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += sending.eq(1)
                with m.If(~core.busy):
                    m.d.sync += [cycles.eq(core.cycles), nbyte.eq(0), counted.eq(1)]
                    m.next = "CYCLES"
            with m.State("CYCLES"):
                m.d.comb += [
                    sending.eq(1),
                    tx.data.payload.eq(cycles.word_select(nbyte, 8)),
                    tx.data.valid.eq(1),
                ]
                with m.If(tx.data.ready):
                    m.d.sync += nbyte.eq(nbyte + 1)
                    with m.If(nbyte == 3):
                        m.next = "IDLE"
        return m


class Board(wiring.Component):
    """The FPGA top for the ULX3S: 25 MHz in, PLL to the core clock, reset, :class:`BoardLogic`.

    Parameters
    ----------
    core : wiring.Component
        The Generator.
    nz : int
        Words of z per avatar.
    pll : gen.pll.PLLConfig or None
        EHXPLLL settings for the core clock; ``None`` runs the core from the 25 MHz input.
    baud : int
        Serial rate.

    Attributes
    ----------
    clk25, btn_reset, uart_rx : In(1)
    uart_tx : Out(1)
    led : Out(8)
        Port names match constraints/ulx3s.lpf.
    """

    def __init__(self, core, nz: int, pll=None, baud: int = DEFAULT_BAUD, clkin_hz: float = 25e6):
        self.pll = pll
        self.clk_hz = pll.clkout_mhz * 1e6 if pll is not None else clkin_hz
        self.logic = BoardLogic(core, nz, uart_divisor(self.clk_hz, baud),
                                round(TIMEOUT_S * self.clk_hz))
        super().__init__({
            "clk25": In(1),
            "btn_reset": In(1),
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "led": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        locked = Signal()
        if self.pll is None:
            m.d.comb += [ClockSignal("sync").eq(self.clk25), locked.eq(1)]
        else:
            p = self.pll.params
            kwargs = {f"p_{k}": v for k, v in p.items()}
            kwargs.update({f"a_{k}": v for k, v in self.pll.attrs.items()})
            m.submodules.pll = Instance(
                "EHXPLLL",
                **kwargs,
                i_RST=Const(0), i_STDBY=Const(0), i_CLKI=self.clk25,
                o_CLKOP=ClockSignal("sync"), i_CLKFB=ClockSignal("sync"),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0), o_LOCK=locked,
            )
        # The reset is synchronised to the clock (asserted at once, released on an edge: what
        # ResetSynchronizer does), then reaches every flip-flop of ``sync`` through a DCCA on a
        # global network: as a fabric net from one register it spanned the die (a 115.9 MHz run's
        # critical path: a 6.8 ns hop, 8.6 ns).
        rst_sync = Signal(name="rst_sync")
        m.submodules.rst_sync = AsyncFFSynchronizer(~locked | self.btn_reset, rst_sync, o_domain="sync")
        m.submodules.rst_global = Instance("DCCA", i_CLKI=rst_sync, i_CE=Const(1), o_CLKO=ResetSignal("sync"))
        m.submodules.logic = logic = self.logic
        m.d.comb += [
            logic.uart_rx.eq(self.uart_rx),
            self.uart_tx.eq(logic.uart_tx),
            self.led.eq(logic.led | (locked << 2)),
        ]
        return m
