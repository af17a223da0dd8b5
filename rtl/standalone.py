"""The standalone board: z from on-chip noise walking through latent space, avatars on a DVI monitor.

::

    LatentWalk ──z──► Generator ──pixels──► FrameBuffer ══(dual-clock BRAM)══► VideoOut ──► 3 × TMDSEncoder
      (sync)            (sync)                 (sync | pix)                       (pix)          (pix)
        ▲                                                                                          │
    Buttons: pause, step, re-seed                                             Serializer (shift, 5× pix)
                                                                              ──► 4 × ODDRX1F ──► GPDI

:class:`StandaloneLogic` is everything that simulates as it is (domains ``sync`` = engine clock and
``pix`` = pixel clock); it exposes both the pre-TMDS picture (``video``: RGB, sync, DE) and the three
10-bit TMDS symbols per pixel clock (``tmds``), which is what the tests capture and decode.
:class:`Standalone` is the ULX3S top: two PLLs (engine clock; 125 MHz shift and 25 MHz pixel clock),
reset synchronisers, the 10:1 serializer and the ECP5 ``ODDRX1F`` DDR outputs on the GPDI connector.

Buttons (ULX3S): FIRE1 reset, FIRE2 pause/run, RIGHT step one avatar (while paused), UP re-seed (the
seed is a free-running 32-bit counter at the moment of the press; ``seed`` shows the last one used).
LEDs: 0 Generator busy, 1 toggles with each new avatar on the screen, 2 PLLs locked, 3 paused,
4 drawing Gaussians, 5–7 the top three bits of the walk's step ``k``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Const, DomainRenamer, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from rtl.noise import LatentWalk
from rtl.tmds import TMDSEncoder
from rtl.video import VGA_640x480, FrameBuffer, VideoOut, VideoTiming, rgb_layout

__all__ = ["Buttons", "StandaloneLogic", "Serializer", "Standalone", "TMDS_CLOCK_SYMBOL", "BUTTONS"]

#: The TMDS clock channel's 10-bit pattern: five ones, five zeros (one pixel clock per symbol).
TMDS_CLOCK_SYMBOL = 0b0000011111
#: Button inputs of the standalone top, in the order of :class:`Buttons`.
BUTTONS = ("pause", "step", "reseed")


class Buttons(wiring.Component):
    """Synchronise, debounce and edge-detect ``n`` active-high buttons (domain ``sync``).

    A button's level is taken once it has differed from the debounced level for ``debounce``
    consecutive cycles; ``pressed`` pulses for one cycle when a debounced level rises.

    Members
    -------
    raw : In(n)
    pressed : Out(n)
    """

    def __init__(self, n: int, debounce: int):
        self._MustUse__silence = True       # a refused component is not an unused one
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not isinstance(debounce, int) or debounce < 1:
            raise ValueError(f"debounce must be an integer >= 1 (cycles), got {debounce!r}")
        self._MustUse__silence = False
        self.n, self.debounce = n, debounce
        super().__init__({"raw": In(n), "pressed": Out(n)})

    @property
    def latency(self) -> int:
        """Cycles from a clean press to ``pressed``: synchroniser (2) + ``debounce`` + edge register (1)."""
        return 2 + self.debounce + 1

    def elaborate(self, platform):
        m = Module()
        raw = Signal(self.n)
        m.submodules.sync = FFSynchronizer(self.raw, raw)
        for i in range(self.n):
            level = Signal(name=f"level{i}")
            cnt = Signal(range(self.debounce + 1), name=f"cnt{i}")
            m.d.sync += self.pressed[i].eq(0)
            with m.If(raw[i] == level):
                m.d.sync += cnt.eq(0)
            with m.Elif(cnt == self.debounce - 1):
                m.d.sync += [level.eq(raw[i]), cnt.eq(0), self.pressed[i].eq(raw[i])]
            with m.Else():
                m.d.sync += cnt.eq(cnt + 1)
        return m


class StandaloneLogic(wiring.Component):
    """Noise → latent walk → Generator → frame buffer → video → TMDS (domains ``sync`` and ``pix``).

    Parameters
    ----------
    core : wiring.Component
        The Generator (``rtl.top.Generator``): ``z`` and ``pixel`` streams, ``busy``, ``done``.
    nz : int
        Length of z.
    timing : VideoTiming
        Video mode (default 640×480 at 60 Hz; small modes make simulation fast).
    steps_log2 : int
        ``2^steps_log2`` avatars from one random z to the next (7: about 2 s at 60 avatars/s).
    seed : int
        The walk's seed after reset.
    debounce : int
        Button debounce, engine clock cycles.

    Members
    -------
    buttons : In(3)
        pause, step, reseed (active high, asynchronous).
    led : Out(8)
        LEDs 0, 1, 3–7 as in the module text (2 is the board's).
    seed : Out(32)
        The seed of the walk's current run (``seed`` after reset, then each re-seed's counter value).
    video : Out(rgb_layout())
        The picture before TMDS (``pix``).
    tmds : Out(30)
        Symbols of channels 0 (blue, carries HSYNC/VSYNC), 1 (green), 2 (red), 10 bits each (``pix``).
    """

    def __init__(self, core, nz: int, timing: VideoTiming = VGA_640x480, steps_log2: int = 7, seed: int = 1,
                 debounce: int = 250_000):
        self.core = core
        self.walk = LatentWalk(nz, steps_log2, seed)
        self.timing = timing
        size = core.plan.layers[-1].out_size if hasattr(core, "plan") else 32
        self.fb = FrameBuffer(size)
        self.vout = VideoOut(timing, size, self.fb.read_latency)
        self.buttons_c = Buttons(len(BUTTONS), debounce)
        self.init_seed = seed
        super().__init__({
            "buttons": In(len(BUTTONS)),
            "led": Out(8),
            "seed": Out(32, init=seed),
            "video": Out(rgb_layout()),
            "tmds": Out(30),
        })

    @property
    def tmds_latency(self) -> int:
        """Pixel clocks from ``video`` to ``tmds``: the encoder's :data:`TMDSEncoder.LATENCY` (2)."""
        return TMDSEncoder.LATENCY

    def elaborate(self, platform):
        m = Module()
        core, walk, fb, vout = self.core, self.walk, self.fb, self.vout
        m.submodules.core = core
        m.submodules.walk = walk
        m.submodules.fb = fb
        m.submodules.vout = vout = DomainRenamer("pix")(vout)
        m.submodules.buttons = btn = self.buttons_c

        # Controls.
        paused = Signal()
        counter = Signal(32)
        m.d.sync += counter.eq(counter + 1)
        m.d.comb += btn.raw.eq(self.buttons)
        with m.If(btn.pressed[0]):
            m.d.sync += paused.eq(~paused)
        m.d.comb += [walk.run.eq(~paused), walk.step.eq(btn.pressed[1]), walk.reseed.eq(btn.pressed[2]),
                     walk.seed_in.eq(counter)]
        with m.If(btn.pressed[2]):
            m.d.sync += self.seed.eq(counter)

        # z -> Generator -> frame buffer.
        wiring.connect(m, walk.z, core.z)
        m.d.comb += [fb.pixel.payload.eq(core.pixel.payload), fb.pixel.valid.eq(core.pixel.valid),
                     core.pixel.ready.eq(fb.pixel.ready)]

        # Video.
        m.d.comb += [fb.r_x.eq(vout.r_x), fb.r_y.eq(vout.r_y), fb.frame_end.eq(vout.frame_end),
                     vout.r_data.eq(fb.r_data), self.video.eq(vout.out)]
        v = vout.out
        for ch, (val, ctrl) in enumerate(((v.b, Cat(v.hsync, v.vsync)), (v.g, 0), (v.r, 0))):
            enc = TMDSEncoder()
            m.submodules[f"tmds{ch}"] = enc = DomainRenamer("pix")(enc)
            m.d.comb += [enc.inp.data.eq(val), enc.inp.de.eq(v.de), enc.inp.c.eq(ctrl),
                         self.tmds[10 * ch:10 * ch + 10].eq(enc.sym)]

        shown = Signal()
        with m.If(fb.pixel.valid & fb.pixel.ready & fb.pixel.payload.last):
            m.d.sync += shown.eq(~shown)
        m.d.comb += self.led.eq(Cat(core.busy, shown, Const(0, 1), paused, walk.busy, walk.k[-3:]
                                    if len(walk.k) >= 3 else walk.k))
        return m


class Serializer(wiring.Component):
    """10:1 serializer for four TMDS lanes, two bits per ``shift`` clock (DDR), ``shift`` = 5 × ``pix``.

    ``sym`` is sampled from the ``pix`` domain once every five ``shift`` cycles (the two clocks come
    from one PLL, so the crossing is timed like a synchronous path). ``ddr[2i]`` is the bit for the
    rising edge of lane ``i`` (sent first), ``ddr[2i+1]`` the falling edge's.

    Members
    -------
    sym : In(40)
        Lanes 0..3, 10 bits each, bit 0 first.
    ddr : Out(8)
    """

    def __init__(self):
        super().__init__({"sym": In(40), "ddr": Out(8)})

    @property
    def latency(self) -> int:
        """Shift clocks from the load of a symbol (every fifth clock) to its last pair on ``ddr``:
        bits 0–1 in the clock after the load, then one pair per clock, ``10 / 2 = 5``."""
        return 5

    def elaborate(self, platform):
        m = Module()
        ph = Signal(range(5))
        regs = [Signal(10, name=f"sh{i}") for i in range(4)]
        with m.If(ph == 4):
            m.d.shift += ph.eq(0)
            m.d.shift += [regs[i].eq(self.sym[10 * i:10 * i + 10]) for i in range(4)]
        with m.Else():
            m.d.shift += ph.eq(ph + 1)
            m.d.shift += [regs[i].eq(regs[i] >> 2) for i in range(4)]
        m.d.comb += self.ddr.eq(Cat(*[r[:2] for r in regs]))
        return m


class Standalone(wiring.Component):
    """The ULX3S top of the standalone mode (module ``standalone``; pins in constraints/ulx3s_standalone.lpf).

    Parameters
    ----------
    logic : StandaloneLogic
    engine_pll : gen.pll.PLLConfig or None
        EHXPLLL settings of the engine clock from the 25 MHz oscillator (``None``: the oscillator).
    video_pll : gen.pll.PLLConfig
        EHXPLLL settings with CLKOP = 125 MHz (shift clock) and CLKOS = 25 MHz (pixel clock).

    Members
    -------
    clk25, btn_reset, btn_pause, btn_step, btn_reseed : In(1)
    led : Out(8)
    gpdi_dp : Out(4)
        TMDS lanes 0 (blue), 1 (green), 2 (red), 3 (clock), driven as LVCMOS33D pseudo-differential
        pairs (the negative pins follow from the LPF).
    """

    def __init__(self, logic: StandaloneLogic, engine_pll, video_pll):
        if video_pll is None or "CLKOS_DIV" not in video_pll.params:
            self._MustUse__silence = True
            raise ValueError("video_pll must have a secondary output (CLKOS) for the pixel clock")
        self.logic, self.engine_pll, self.video_pll = logic, engine_pll, video_pll
        super().__init__({
            "clk25": In(1),
            "btn_reset": In(1),
            "btn_pause": In(1),
            "btn_step": In(1),
            "btn_reseed": In(1),
            "led": Out(8),
            "gpdi_dp": Out(4),
        })

    @staticmethod
    def _pll(cfg, clkin, clkop, locked, clkos=None):
        kwargs = {f"p_{k}": v for k, v in cfg.params.items()}
        kwargs.update({f"a_{k}": v for k, v in cfg.attrs.items()})
        if clkos is not None:
            kwargs["o_CLKOS"] = clkos
        return Instance(
            "EHXPLLL", **kwargs,
            i_RST=Const(0), i_STDBY=Const(0), i_CLKI=clkin, o_CLKOP=clkop, i_CLKFB=clkop,
            i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1), i_PHASESTEP=Const(1),
            i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0), o_LOCK=locked)

    def elaborate(self, platform):
        m = Module()
        m.domains += [ClockDomain(name) for name in ("sync", "pix", "shift")]
        lock_e, lock_v = Signal(), Signal()
        if self.engine_pll is None:
            m.d.comb += [ClockSignal("sync").eq(self.clk25), lock_e.eq(1)]
        else:
            m.submodules.pll_engine = self._pll(self.engine_pll, self.clk25, ClockSignal("sync"), lock_e)
        m.submodules.pll_video = self._pll(self.video_pll, self.clk25, ClockSignal("shift"), lock_v,
                                           clkos=ClockSignal("pix"))
        locked = lock_e & lock_v
        for name in ("sync", "pix", "shift"):
            m.submodules[f"rst_{name}"] = ResetSynchronizer(~locked | self.btn_reset, domain=name)

        m.submodules.logic = logic = self.logic
        m.d.comb += [logic.buttons.eq(Cat(self.btn_pause, self.btn_step, self.btn_reseed)),
                     self.led.eq(logic.led | (locked << 2))]
        m.submodules.ser = ser = Serializer()
        m.d.comb += ser.sym.eq(Cat(logic.tmds, Const(TMDS_CLOCK_SYMBOL, 10)))
        for i in range(4):
            m.submodules[f"oddr{i}"] = Instance(
                "ODDRX1F", i_SCLK=ClockSignal("shift"), i_RST=Const(0),
                i_D0=ser.ddr[2 * i], i_D1=ser.ddr[2 * i + 1], o_Q=self.gpdi_dp[i])
        return m
