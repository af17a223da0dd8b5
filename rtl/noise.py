"""The on-chip z source: xorshift32 uniforms, a sum-of-twelve Gaussian and the latent walk.

Bit-exact twin of :mod:`golden.noise` (the definitions, in exact integers, are written there once):

* :class:`GaussianSource` -- one xorshift32 step per cycle; every 12 steps one ``S(16,12)`` code
  ``u_1 + ... + u_12 − 24570`` with ``u`` the top 12 bits of each new state;
* :class:`LatentWalk` -- holds ``z1`` and ``z2`` (two ``nz × 16`` RAMs, which one is ``z1`` is a bank
  bit, so ``z1 ← z2`` is a bank flip), emits ``z(k) = z1 + rshift_rnd(k·(z2 − z1), s)`` as a stream of
  ``nz`` words per avatar, steps ``k`` and draws a new ``z2`` when ``k`` wraps.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.noise import DEFAULT_SEED, OFFSET, TERMS, UNIFORM_BITS, Z_BITS, check_steps_log2

__all__ = ["GaussianSource", "LatentWalk", "xorshift32_hdl"]


def xorshift32_hdl(x):
    """One xorshift32 step (13, 17, 5) of a 32-bit value, as a combinational expression."""
    a = (x ^ (x << 13))[:32]
    b = a ^ (a >> 17)
    return (b ^ (b << 5))[:32]


class GaussianSource(wiring.Component):
    """Draws ``S(16,12)`` codes: :data:`~golden.noise.TERMS` xorshift32 steps per code.

    Members
    -------
    seed : In(32)
        Loaded by ``load`` (0 loads :data:`golden.noise.DEFAULT_SEED`).
    load : In(1)
        Load ``seed`` into the state (one cycle; any draw in progress restarts).
    draw : In(1)
        Start one code while idle (``busy`` low).
    busy : Out(1)
        A code is being drawn.
    code_valid : Out(1)
        One-cycle pulse: ``code`` holds a new code (the consumer takes it in that cycle).
    code : Out(signed(16))
        The last code drawn, ``S(16,12)``.

    Latency: ``code_valid`` rises :attr:`latency` cycles after ``draw``; a new ``draw`` is accepted
    the cycle after ``code_valid``.
    """

    def __init__(self):
        super().__init__({
            "seed": In(32),
            "load": In(1),
            "draw": In(1),
            "busy": Out(1),
            "code_valid": Out(1),
            "code": Out(signed(Z_BITS)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``draw`` to ``code_valid``: one xorshift step per uniform, ``TERMS = 12``."""
        return TERMS

    def elaborate(self, platform):
        m = Module()
        state = Signal(32, init=DEFAULT_SEED)
        acc = Signal(range(TERMS << UNIFORM_BITS))
        term = Signal(range(TERMS))
        busy = Signal()
        nxt = Signal(32)
        u = Signal(UNIFORM_BITS)
        total = Signal(range(TERMS << UNIFORM_BITS))
        m.d.comb += [nxt.eq(xorshift32_hdl(state)), u.eq(nxt[32 - UNIFORM_BITS:]), total.eq(acc + u),
                     self.busy.eq(busy)]
        m.d.sync += self.code_valid.eq(0)
        with m.If(self.load):
            m.d.sync += [state.eq(Mux(self.seed.any(), self.seed, DEFAULT_SEED)), busy.eq(0), acc.eq(0),
                         term.eq(0)]
        with m.Elif(busy | self.draw):
            m.d.sync += [state.eq(nxt), busy.eq(1)]
            with m.If(term == TERMS - 1):
                m.d.sync += [self.code.eq(total - OFFSET), self.code_valid.eq(1), acc.eq(0), term.eq(0),
                             busy.eq(0)]
            with m.Else():
                m.d.sync += [acc.eq(total), term.eq(term + 1)]
        return m


class LatentWalk(wiring.Component):
    """The latent walk of :mod:`golden.noise` as a z stream (``nz`` words per avatar, element 0 first).

    Parameters
    ----------
    nz : int
        Length of z.
    steps_log2 : int
        ``s``: ``2^s`` avatars from ``z1`` to ``z2`` (1..15).
    seed : int
        Seed used after reset (0..2^32−1; 0 means :data:`golden.noise.DEFAULT_SEED`).

    Members
    -------
    z : Out(stream.Signature(signed(16)))
        The words of ``z(k)``; after the last word of an avatar ``k`` steps on.
    run : In(1)
        Emit avatars one after the other while high.
    step : In(1)
        A one-cycle pulse: emit one avatar (used while ``run`` is low: pause and step).
    reseed : In(1)
        A one-cycle pulse: restart the walk from ``seed_in`` (new ``z1``, ``z2``; ``k = 0``) before the
        next avatar (an avatar being emitted is finished first).
    seed_in : In(32)
    busy : Out(1)
        Drawing Gaussians (after reset or a reseed, and when ``k`` wraps).
    k : Out(steps_log2)
        The step of the next avatar.

    Timing: an element takes ``TERMS + 1 = 13`` cycles to draw (12 xorshift steps, one cycle to take
    the code); after reset or a reseed ``2 · nz · 13`` cycles draw ``z1`` and ``z2``, a wrap of ``k``
    draws a new ``z2`` in ``nz · 13`` cycles (1 300 for nz = 100, about 1.3 % of one avatar at 128 lanes). The emission pipeline has :attr:`latency` = 4 cycles.
    """

    def __init__(self, nz: int, steps_log2: int = 7, seed: int = 1):
        self._MustUse__silence = True       # a refused component is not an unused one
        if not isinstance(nz, int) or isinstance(nz, bool) or nz < 1:
            raise ValueError(f"nz must be an integer >= 1, got {nz!r}")
        check_steps_log2(steps_log2)
        if not isinstance(seed, int) or not 0 <= seed <= 0xFFFF_FFFF:
            raise ValueError(f"seed must be an integer in 0..2^32-1, got {seed!r}")
        self._MustUse__silence = False
        self.nz, self.s, self.seed = nz, steps_log2, seed
        self.gauss = GaussianSource()
        super().__init__({
            "z": Out(stream.Signature(signed(Z_BITS))),
            "run": In(1),
            "step": In(1),
            "reseed": In(1),
            "seed_in": In(32),
            "busy": Out(1),
            "k": Out(steps_log2),
        })

    @property
    def latency(self) -> int:
        """Cycles from an element's read address to its word on ``z``: read (1), ``z2 − z1`` (1),
        ``k · (z2 − z1)`` (1), ``z1 + rshift_rnd(·, s)`` (1) = 4."""
        return 4

    def elaborate(self, platform):
        m = Module()
        nz, s = self.nz, self.s
        m.submodules.gauss = g = self.gauss
        mems = [Memory(shape=signed(Z_BITS), depth=nz, init=[]) for _ in range(2)]
        m.submodules.mem_a, m.submodules.mem_b = mems
        wps = [mem.write_port() for mem in mems]
        rps = [mem.read_port() for mem in mems]

        bank = Signal()                       # mems[bank] holds z1
        k = Signal(s)
        m.d.comb += self.k.eq(k)
        widx = Signal(range(nz + 1))          # element being drawn
        wsel = Signal()                       # memory being drawn into
        second = Signal()                     # INIT: z2 still to draw
        pend_seed = Signal(init=1)            # reseed requested (after reset: load self.seed)
        seed_r = Signal(32, init=self.seed)
        pend_step = Signal()

        with m.If(self.reseed):
            m.d.sync += [pend_seed.eq(1), seed_r.eq(self.seed_in)]
        with m.If(self.step):
            m.d.sync += pend_step.eq(1)

        for i in range(2):
            m.d.comb += [wps[i].addr.eq(widx), wps[i].data.eq(g.code), wps[i].en.eq(g.code_valid & (wsel == i))]

        # ---------------------------------------------------------------- emission pipeline
        adv = Signal()
        m.d.comb += adv.eq(~self.z.valid | self.z.ready)
        ridx = Signal(range(nz + 1))
        issue = Signal()
        v1, v2, v3 = Signal(), Signal(), Signal()
        d2 = Signal(signed(Z_BITS + 1))
        z1_2 = Signal(signed(Z_BITS))
        z1_3 = Signal(signed(Z_BITS))
        p3 = Signal(signed(Z_BITS + 1 + s + 1))
        taken = Signal(range(nz + 1))
        for i in range(2):
            m.d.comb += [rps[i].addr.eq(ridx), rps[i].en.eq(adv)]
        z1_1 = Mux(bank, rps[1].data, rps[0].data)
        z2_1 = Mux(bank, rps[0].data, rps[1].data)
        with m.If(adv):
            m.d.sync += [v1.eq(issue), v2.eq(v1), v3.eq(v2),
                         d2.eq(z2_1 - z1_1), z1_2.eq(z1_1),
                         p3.eq(k * d2), z1_3.eq(z1_2),
                         self.z.valid.eq(v3),
                         self.z.payload.eq(z1_3 + ((p3 + (1 << (s - 1))) >> s))]
            with m.If(issue):
                m.d.sync += ridx.eq(ridx + 1)
        with m.If(self.z.valid & self.z.ready):
            m.d.sync += taken.eq(taken + 1)

        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(pend_seed | self.reseed):
                    m.d.comb += [g.seed.eq(Mux(self.reseed, self.seed_in, seed_r)), g.load.eq(1)]
                    m.d.sync += [pend_seed.eq(0), k.eq(0), bank.eq(0), wsel.eq(0), widx.eq(0), second.eq(1),
                                 busy.eq(1)]
                    m.next = "DRAW"
                with m.Elif(self.run | pend_step):
                    m.d.sync += [pend_step.eq(0), ridx.eq(0), taken.eq(0)]
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += issue.eq(ridx != nz)
                with m.If(self.z.valid & self.z.ready & (taken == nz - 1)):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == (1 << s) - 1):
                        # t reaches 1: z1 <- z2 (bank flip), a new z2 into the old z1's memory.
                        m.d.sync += [bank.eq(~bank), wsel.eq(bank), widx.eq(0), second.eq(0), busy.eq(1)]
                        m.next = "DRAW"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("DRAW"):
                m.d.comb += g.draw.eq(~g.busy & ~g.code_valid & (widx != nz))
                with m.If(g.code_valid):
                    m.d.sync += widx.eq(widx + 1)
                    with m.If(widx == nz - 1):
                        with m.If(second):
                            m.d.sync += [second.eq(0), wsel.eq(~wsel), widx.eq(0)]
                        with m.Else():
                            m.d.sync += busy.eq(0)
                            m.next = "IDLE"
        return m
