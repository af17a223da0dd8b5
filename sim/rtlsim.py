"""Drive the Amaranth :class:`rtl.top.Generator` in ``amaranth.sim`` (tests and ``avatargan bench rtl``).

The result is the harness's one :class:`sim.result.SimResult` (``pixels``/``rgb``, ``order``, ``cycles``
and ``dut_cycles`` from the ``cycles`` port, ``buffers``); the caller compares with the golden model.

The driver checks the stream rules on the pixel output while it runs (valid never drops before a
transfer, payload stable while waiting) and records every transfer.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from base.contract import ACT_BITS, decode_pixel_word
from sim.result import SimResult


class StreamRuleError(AssertionError):
    """The pixel stream broke an Amaranth stream rule."""


def decode_buffer(plan, l: int, words) -> np.ndarray:
    """Unpack the input buffer of 0-based layer ``l ≥ 1`` into int64 ``(IC, H, W)``."""
    lp = plan.layers[l]
    out = np.zeros((lp.ic, lp.in_size, lp.in_size), dtype=np.int64)
    mask = (1 << ACT_BITS) - 1
    for iy in range(lp.in_size):
        for ix in range(lp.in_size):
            for c in range(lp.icg):
                word = int(words[(((iy << lp.in_bits) | ix) << lp.icg_bits) | c])
                for i in range(lp.icp):
                    out[c * lp.icp + i, iy, ix] = (word >> (ACT_BITS * i)) & mask
    return out


def simulate(dut, zq, ready_prob: float = 1.0, seed: int = 0, z_gap_prob: float = 0.0,
             peek_buffers: bool = False, max_cycles: int = 10_000_000) -> SimResult:
    """Feed each row of ``zq`` to ``dut`` and collect the pixels.

    Parameters
    ----------
    dut : rtl.top.Generator
    zq : array_like
        int ``(N, nz)`` z codes.
    ready_prob : float
        Probability that the consumer is ready on a cycle (1.0: always ready).
    seed : int
        Seed of the backpressure and z-gap draws.
    z_gap_prob : float
        Probability that ``z.valid`` is low on a cycle while z is sent.
    peek_buffers : bool
        Record the activation buffers after each avatar (:attr:`SimResult.buffers`).
    max_cycles : int
        Give up (AssertionError) after this many cycles.
    """
    zq = np.asarray(zq, dtype=np.int64)
    n, nz = zq.shape
    plan = dut.plan
    size = plan.layers[-1].out_size
    res = SimResult(pixels=np.full((n, 3, size, size), -1, dtype=np.int64))
    rng = np.random.default_rng(seed)
    state = {"avatar": 0, "cycle": 0}

    async def feed(ctx):
        for a in range(n):
            i = 0
            while i < nz:
                valid = int(rng.random() >= z_gap_prob)
                ctx.set(dut.z.valid, valid)
                ctx.set(dut.z.payload, int(zq[a, i]))
                _, _, ready = await ctx.tick().sample(dut.z.ready)
                if valid and ready:
                    i += 1
            ctx.set(dut.z.valid, 0)
            while state["avatar"] <= a:
                await ctx.tick()

    async def consume(ctx):
        held = None
        while state["avatar"] < n:
            ready = int(ready_prob >= 1.0 or rng.random() < ready_prob)
            ctx.set(dut.pixel.ready, ready)
            _, _, valid, payload, done, cycles = await ctx.tick().sample(
                dut.pixel.valid, Value.cast(dut.pixel.payload), dut.done, dut.cycles)
            state["cycle"] += 1
            if state["cycle"] > max_cycles:
                raise AssertionError(f"no result after {max_cycles} cycles")
            if held is not None and (not valid or payload != held):
                raise StreamRuleError("pixel stream: valid dropped or payload changed before the transfer")
            held = None
            if valid and ready:
                a = state["avatar"]
                f = decode_pixel_word(payload)
                pix, x, y, plane, last = f["pixel"], f["x"], f["y"], f["plane"], f["last"]
                res.order.append((plane, y, x, last))
                if res.rgb[a, plane, y, x] != -1:
                    raise AssertionError(f"pixel ({plane}, {y}, {x}) of avatar {a} arrived twice")
                res.rgb[a, plane, y, x] = pix
            elif valid:
                held = payload
            if done:
                res.cycles.append(int(cycles))
                res.dut_cycles.append(int(cycles))
                if peek_buffers:
                    snap = {}
                    for l, parts in dut.engine.buffers.items():
                        depth = parts[0][1].depth
                        words = [sum(ctx.get(mem.data[i]) << lo for lo, mem in parts) for i in range(depth)]
                        snap[l + 1] = decode_buffer(plan, l, words)
                    res.buffers.append(snap)
                state["avatar"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(consume)
    sim.run()
    return res
