"""Video out: raster timing, the double-buffered avatar frame buffer and the scaled-up picture.

* :class:`VideoTiming` -- the numbers of one video mode (default 640×480 at 60 Hz, 25 MHz pixels:
  800 × 525 clocks, sync pulses 96 clocks and 2 lines, both negative);
* :class:`FrameBuffer` -- two ``size × size`` RGB banks (24-bit words) in one dual-clock block RAM:
  the Generator's pixel stream writes one bank in the ``sync`` domain while the video reads the
  other in the ``pix`` domain; banks swap at the end of a video frame;
* :class:`VideoOut` -- the raster counters, the avatar scaled by an integer factor in the middle of
  the picture (black around it), RGB with sync and DE.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.layouts import PIXEL_WORD_BITS, pixel_layout

__all__ = ["VideoTiming", "VGA_640x480", "pixel_layout", "rgb_layout", "FrameBuffer", "VideoOut",
           "PIXEL_WORD_BITS"]


def rgb_layout() -> data.StructLayout:
    """One video pixel with its sync signals."""
    return data.StructLayout({"r": 8, "g": 8, "b": 8, "hsync": 1, "vsync": 1, "de": 1})


@dataclass(frozen=True)
class VideoTiming:
    """One video mode: active, front porch, sync, back porch per axis (clocks, lines), sync polarity.

    ``VideoTiming()`` is 640×480 at 60 Hz (VESA DMT / CEA-861 format 1): 25.175 MHz nominal, run at
    25 MHz (59.5 Hz frame rate, which monitors accept). Smaller modes are for simulation only.
    """

    h_active: int = 640
    h_front: int = 16
    h_sync: int = 96
    h_back: int = 48
    v_active: int = 480
    v_front: int = 10
    v_sync: int = 2
    v_back: int = 33
    sync_negative: bool = True

    def __post_init__(self):
        for name in ("h_active", "h_front", "h_sync", "h_back", "v_active", "v_front", "v_sync", "v_back"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"VideoTiming.{name} must be an integer >= 1, got {v!r}")

    @property
    def h_total(self) -> int:
        return self.h_active + self.h_front + self.h_sync + self.h_back

    @property
    def v_total(self) -> int:
        return self.v_active + self.v_front + self.v_sync + self.v_back

    def scale(self, size: int) -> int:
        """The integer zoom of a ``size × size`` avatar: ``min(h_active, v_active) // size`` (≥ 1)."""
        s = min(self.h_active, self.v_active) // size
        if s < 1:
            raise ValueError(f"the active area {self.h_active}x{self.v_active} is smaller than the {size}x{size} avatar")
        return s

    def origin(self, size: int) -> tuple[int, int]:
        """Top-left corner ``(x0, y0)`` of the centred, scaled avatar."""
        side = size * self.scale(size)
        return (self.h_active - side) // 2, (self.v_active - side) // 2


#: The standard mode of the standalone top.
VGA_640x480 = VideoTiming()


class FrameBuffer(wiring.Component):
    """Two banks of ``size × size`` RGB words; writes in ``sync``, reads in ``pix``; swap at frame end.

    Write side (``sync``): the Generator's ``pixel`` stream (plane R, G, B in raster order). A word's
    byte ``plane`` is written at ``bank·size² + y·size + x`` of the bank being written. After the last
    pixel of an avatar the bank is handed to the video (``show``), and ``pixel.ready`` stays low until
    the video has switched to it (``shown``, synchronised back), so the Generator never writes the
    bank on the screen.

    Read side (``pix``): ``r_x``, ``r_y`` address the shown bank; ``r_data`` follows one cycle later
    (:attr:`read_latency`). ``frame_end`` (a one-cycle pulse in ``pix``, outside the active picture)
    takes the last bank handed over.

    Block RAM: ``2 · size² × 24`` bits (2048 × 24 = 48 Kbit for 32×32: three DP16KD as 2048 × 9).

    Members
    -------
    pixel : In(stream.Signature(pixel_layout()))
    r_x, r_y : In(range(size))   (``pix`` domain)
    frame_end : In(1)             (``pix`` domain)
    r_data : Out(24)              (``pix`` domain) R in bits 0–7, G 8–15, B 16–23
    avatars : Out(16)             avatars written (``sync``; wraps)
    waiting : Out(1)              an avatar is complete and waits for the frame end (``sync``)
    """

    def __init__(self, size: int = 32):
        if not isinstance(size, int) or size < 1 or size & (size - 1) or size > 32:
            self._MustUse__silence = True
            raise ValueError(f"size must be a power of two in 1..32, got {size!r}")
        self.size = size
        super().__init__({
            "pixel": In(stream.Signature(pixel_layout())),
            "r_x": In(range(size)),
            "r_y": In(range(size)),
            "frame_end": In(1),
            "r_data": Out(24),
            "avatars": Out(16),
            "waiting": Out(1),
        })

    @property
    def read_latency(self) -> int:
        """Cycles (``pix``) from ``r_x``/``r_y`` to ``r_data``: the block RAM's synchronous read, 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n = self.size * self.size
        abits = ceil_log2(n)
        m.submodules.mem = mem = Memory(shape=24, depth=2 * n, init=[])
        wp = mem.write_port(granularity=8)
        rp = mem.read_port(domain="pix")

        wbank = Signal(init=1)        # bank being written (sync)
        show = Signal()               # bank handed to the video (sync)
        shown = Signal()              # bank on the screen (pix)
        shown_s = Signal()            # ... synchronised to sync
        show_p = Signal()             # show synchronised to pix
        m.submodules.sync_show = FFSynchronizer(show, show_p, o_domain="pix")
        m.submodules.sync_shown = FFSynchronizer(shown, shown_s, o_domain="sync")

        wait = Signal()
        m.d.comb += self.waiting.eq(wait)
        p = self.pixel.payload
        take = Signal()
        m.d.comb += [self.pixel.ready.eq(~wait), take.eq(self.pixel.valid & ~wait)]
        addr = Signal(abits + 1)
        m.d.comb += [addr.eq(Cat(p.x[:ceil_log2(self.size)], p.y[:ceil_log2(self.size)], wbank)
                             if self.size > 1 else wbank),
                     wp.addr.eq(addr), wp.data.eq(p.pixel.replicate(3))]
        for i in range(3):
            m.d.comb += wp.en[i].eq(take & (p.plane == i))
        with m.If(take & p.last):
            m.d.sync += [show.eq(wbank), wait.eq(1), self.avatars.eq(self.avatars + 1)]
        with m.If(wait & (shown_s == show)):
            m.d.sync += [wait.eq(0), wbank.eq(~show)]

        with m.If(self.frame_end):
            m.d.pix += shown.eq(show_p)
        bits = ceil_log2(self.size)
        m.d.comb += [rp.addr.eq(Cat(self.r_x[:bits], self.r_y[:bits], shown) if self.size > 1 else shown),
                     self.r_data.eq(rp.data)]
        return m


class VideoOut(wiring.Component):
    """Raster counters and the avatar scaled up in the middle of the picture (domain ``pix``).

    Parameters
    ----------
    timing : VideoTiming
    size : int
        Side of the avatar in pixels (32).
    read_latency : int
        Cycles from ``r_x``/``r_y`` to ``r_data`` of the frame buffer (1).

    Members
    -------
    r_x, r_y : Out(range(size))
        Frame-buffer address of the avatar pixel under the beam.
    r_data : In(24)
    frame_end : Out(1)
        The last clock of a frame (outside the active area).
    out : Out(rgb_layout())
        The picture with its sync and DE, :attr:`latency` cycles after the raster position.

    Scaling: avatar pixel ``(x, y)`` covers the ``scale × scale`` screen pixels at
    ``(x0 + x·scale, y0 + y·scale)`` with ``scale`` and ``(x0, y0)`` of :meth:`VideoTiming.scale` and
    :meth:`VideoTiming.origin`; found with counters, no multiplier.
    """

    def __init__(self, timing: VideoTiming = VGA_640x480, size: int = 32, read_latency: int = 1):
        self._MustUse__silence = True       # a refused component is not an unused one
        if not isinstance(timing, VideoTiming):
            raise TypeError("timing must be a VideoTiming")
        if read_latency != 1:
            raise ValueError(f"read_latency must be 1 (a synchronous block-RAM read), got {read_latency!r}")
        self.zoom = timing.scale(size)
        self._MustUse__silence = False
        self.timing, self.size = timing, size
        self.x0, self.y0 = timing.origin(size)
        super().__init__({
            "r_x": Out(range(size)),
            "r_y": Out(range(size)),
            "r_data": In(24),
            "frame_end": Out(1),
            "out": Out(rgb_layout(), init={"hsync": int(timing.sync_negative), "vsync": int(timing.sync_negative)}),
        })

    @property
    def latency(self) -> int:
        """Cycles from a raster position to its pixel on ``out``: the frame-buffer read (1) and the
        output register (1) = 2; sync and DE are delayed alike."""
        return 2

    def elaborate(self, platform):
        m = Module()
        t, size, zoom = self.timing, self.size, self.zoom
        hc = Signal(range(t.h_total))
        vc = Signal(range(t.v_total))
        line_end = hc == t.h_total - 1
        frame_end = line_end & (vc == t.v_total - 1)
        m.d.comb += self.frame_end.eq(frame_end)
        with m.If(line_end):
            m.d.pix += hc.eq(0)
            m.d.pix += vc.eq(Mux(vc == t.v_total - 1, 0, vc + 1))
        with m.Else():
            m.d.pix += hc.eq(hc + 1)

        # Avatar coordinates under the beam: sub-pixel counters (zoom) and pixel counters.
        sx = Signal(range(zoom))
        sy = Signal(range(zoom))
        xi = Signal(range(size + 1))
        yi = Signal(range(size + 1))
        in_x = (hc >= self.x0) & (hc < self.x0 + size * zoom)
        in_y = (vc >= self.y0) & (vc < self.y0 + size * zoom)
        with m.If(line_end):
            m.d.pix += [sx.eq(0), xi.eq(0)]
            with m.If(vc == t.v_total - 1):
                m.d.pix += [sy.eq(0), yi.eq(0)]
            with m.Elif(in_y):
                with m.If(sy == zoom - 1):
                    m.d.pix += [sy.eq(0), yi.eq(yi + 1)]
                with m.Else():
                    m.d.pix += sy.eq(sy + 1)
        with m.Elif(in_x):
            with m.If(sx == zoom - 1):
                m.d.pix += [sx.eq(0), xi.eq(xi + 1)]
            with m.Else():
                m.d.pix += sx.eq(sx + 1)
        m.d.comb += [self.r_x.eq(xi), self.r_y.eq(yi)]

        pol = 1 if t.sync_negative else 0
        hs = (hc >= t.h_active + t.h_front) & (hc < t.h_active + t.h_front + t.h_sync)
        vs = (vc >= t.v_active + t.v_front) & (vc < t.v_active + t.v_front + t.v_sync)
        de = (hc < t.h_active) & (vc < t.v_active)
        # Stage 1 (read in flight), stage 2 (output register).
        hs1, vs1, de1, img1 = Signal(), Signal(), Signal(), Signal()
        m.d.pix += [hs1.eq(hs), vs1.eq(vs), de1.eq(de), img1.eq(in_x & in_y)]
        o = self.out
        m.d.pix += [o.hsync.eq(hs1 ^ pol), o.vsync.eq(vs1 ^ pol), o.de.eq(de1)]
        m.d.pix += [o.r.eq(Mux(img1, self.r_data[0:8], 0)), o.g.eq(Mux(img1, self.r_data[8:16], 0)),
                    o.b.eq(Mux(img1, self.r_data[16:24], 0))]
        return m
