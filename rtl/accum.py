"""Accumulators fixed to one adder-tree level: bias preload, accumulate, hold bank that shifts out drain words."""

from __future__ import annotations

from contextlib import nullcontext

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from rtl.hdlutil import eq_const

#: Accumulators served by one copy of the early flags and the layer number (the last copies of the
#: flags, the layer and the group number are per accumulator).
ACC_GROUP = 8
#: Accumulators served by one copy of the step's flags and group number, from which the groups copy
#: the flags and each accumulator the group number: the step comes from the metadata pipeline at
#: the die's centre, and one hop from there to every group (up to half the die) was a 128-lane
#: run's critical path (9.1 ns, 8.2 ns on one net).
ACC_REGION = 4 * ACC_GROUP


class AccumulatorBank(wiring.Component):
    """``n`` accumulators wired to nodes ``0 .. n-1`` of one adder-tree level, for the layers using it.

    Every layer whose input word has ``ICP = 2**level`` lanes sums its ``OCP ≤ n`` output channels at
    the same tree nodes, so accumulator ``o`` always reads node ``o`` of its level: no accumulator
    picks among tree levels spread over the lanes, and its bias table and drain shift are local.

    Parameters
    ----------
    n : int
        Accumulators (the widest ``OCP`` of the bank's layers).
    width : int
        Accumulator width (also holds the requantiser's rounding constant, folded into the bias).
        Sums are taken modulo ``2**width``, so it may be narrower than ``tree_width``: exact as
        long as every sum of the bank's layers fits (:func:`rtl.config.sum_bits`).
    tree_width : int
        Width of the tree-node inputs (only their low ``width`` bits are registered).
    layers : dict of int to (list of int, int)
        For each layer index served: the per-``(g, o)`` preload values ``bias + 2**(shift-1)``
        (``ocg · ocp`` of them, group-major; channels ``o ≥ ocp`` preload 0) and the drain shift
        ``ICP`` of the next layer (1 for the last layer).
    step_layout : data.StructLayout
        The engine's step metadata (``valid``, ``first``, ``last``, ``g`` at least).
    n_layers : int
        Layers of the whole engine (width of ``layer``).

    Members
    -------
    tree : In(ArrayLayout(signed(tree_width), n))
        The level's tree nodes (registers), one cycle after the step's metadata was on ``step``.
    step : In(step_layout)
        The step's metadata :attr:`step_lead` cycles *before* its tree nodes are on ``tree`` (so that the flags
        reach each accumulator through two copies, one per :data:`ACC_REGION` accumulators, then
        one per :data:`ACC_GROUP`, and the group number through one per region, then one per
        accumulator).
    layer : In(range(n_layers))
        The engine's current layer number (constant while steps are in flight).
    hold : Out(ArrayLayout(signed(width), n))
        The hold bank: the sums of a pixel, copied from the accumulators the cycle after its last
        step was accumulated, shifted down by the drain shift every later cycle, so the word to
        drain is always ``hold[0 .. ICP_next)``.
    cap : Out(1)
        A pixel's sums are being captured into ``hold`` at the next edge.
    cap_step : Out(step_layout)
        The metadata of the step that ``cap`` captures.
    pending : Out(1)
        A pixel's last step is being accumulated: ``cap`` follows in the next cycle.
    """

    def __init__(self, n: int, width: int, tree_width: int, layers: dict, step_layout, n_layers: int):
        try:
            _check_bank(n, width, tree_width, layers, n_layers)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self.n, self.width, self.layers, self.n_layers = n, width, dict(layers), n_layers
        super().__init__({
            "tree": In(data.ArrayLayout(signed(tree_width), n)),
            "step": In(step_layout),
            "layer": In(range(max(2, n_layers))),
            "hold": Out(data.ArrayLayout(signed(width), n)),
            "cap": Out(1),
            "cap_step": Out(step_layout),
            "pending": Out(1),
        })

    @property
    def step_lead(self) -> int:
        """Cycles by which ``step`` comes before its tree nodes: ``2`` (a copy per region, then one
        per group, before the SEL stage)."""
        return 2

    @property
    def latency(self) -> int:
        """Cycles from ``tree`` to ``cap``: ``2`` (tree node, bias and flags registered: the SEL
        stage, whose sum the accumulator takes; then the hold bank takes the accumulator, so no
        adder sits in front of the hold registers); ``step`` is one cycle earlier."""
        return 2

    def elaborate(self, platform):
        m = Module()
        n, A = self.n, self.width
        mine = sorted(self.layers)
        # ``step`` comes two cycles before the tree nodes, so the flags and the group number reach
        # each accumulator through a register tree with no extra latency: copies per region, then
        # per group (flags) or per accumulator (group number), then the bias, flags and node
        # registers (SEL stage).
        st_p = Signal.like(self.step, name="st_p")
        st_e = Signal.like(self.step, name="st_e")
        st = Signal.like(self.step, name="st")
        active_p, active_e, active = Signal(), Signal(), Signal()
        m.d.sync += [st_p.eq(self.step), st_e.eq(st_p), st.eq(st_e),
                     active_p.eq(self.step.valid & _is_one_of(self.layer, mine)), active_e.eq(active_p),
                     active.eq(active_e)]
        regions = {}
        for reg in range(0, n, ACC_REGION):
            r_valid = Signal(name=f"r_valid_{reg}", attrs={"keep": 1})
            r_first, r_last = (Signal(name=f"r_{f}_{reg}", reset_less=True, attrs={"keep": 1}) for f in ("first", "last"))
            r_g = Signal(len(self.step.g), name=f"r_g_{reg}", reset_less=True, attrs={"keep": 1})
            m.d.sync += [r_valid.eq(self.step.valid), r_first.eq(self.step.first), r_last.eq(self.step.last),
                         r_g.eq(self.step.g)]
            regions[reg] = (r_valid, r_first, r_last, r_g)
        # The capture follows the pixel's last accumulation by a cycle (the hold bank copies the
        # accumulators, not the adders' outputs).
        cap = Signal(name="cap")
        cap_step = Signal.like(self.step, name="cap_step", reset_less=True)
        m.d.sync += [cap.eq(active & st.last), cap_step.eq(st)]
        m.d.comb += [self.pending.eq(active & st.last), self.cap.eq(cap), self.cap_step.eq(cap_step)]

        tsel = [Signal(signed(min(len(self.tree[0]), A)), name=f"tsel{o}", reset_less=True) for o in range(n)]
        # ``keep``: two accumulators whose preload tables agree would otherwise share one bias
        # register (yosys merges flip-flops with equal inputs), placed beside one of them.
        bias = [Signal(signed(A), name=f"bias{o}", reset_less=True, attrs={"keep": 1}) for o in range(n)]
        acc = [Signal(signed(A), name=f"acc{o}", reset_less=True) for o in range(n)]
        hold = [Signal(signed(A), name=f"hold{o}", reset_less=True) for o in range(n)]
        m.d.sync += [t.eq(self.tree[o]) for o, t in enumerate(tsel)]
        m.d.comb += [self.hold[o].eq(h) for o, h in enumerate(hold)]
        shifts = sorted({self.layers[l][1] for l in mine})

        for grp in range(0, n, ACC_GROUP):
            outs = range(grp, min(n, grp + ACC_GROUP))
            # This group's copies (``keep``: yosys must not merge them, gen/ilpatch.py keep_registers):
            # the layer (one cycle late, safe as the layer changes only while no step is in flight),
            # whether it is one of the bank's layers and the early flags; then the flags, the group
            # number and the layer per accumulator (below).
            # No reset here: e_valid (nothing accumulates while it is 0) is 0 two cycles into any
            # reset, as the region's valid copy (which has one) is 0 one cycle in, and every reset
            # lasts longer (configuration sets the initial values); the others are data it gates.
            # A reset net to every group crossed the die (critical paths of 128-lane runs, the last
            # 8.6 ns at 110 MHz).
            def kept(name, shape=1, reset_less=True):
                return Signal(shape, name=f"{name}_{grp}", attrs={"keep": 1}, reset_less=reset_less)
            lay = kept("layer", range(max(2, self.n_layers)))
            ours = kept("ours")
            e_valid, e_first, e_last = kept("e_valid"), kept("e_first"), kept("e_last")
            r_valid, r_first, r_last, r_g = regions[grp - grp % ACC_REGION]
            m.d.sync += [lay.eq(self.layer), ours.eq(_is_one_of(lay, mine)),
                         e_valid.eq(r_valid & ours), e_first.eq(r_first),
                         e_last.eq(r_last)]
            for o in outs:
                # The flags each drive a whole accumulator word (a multiplexer select, a clock enable),
                # so the last copy is per accumulator, next to its word: the group's copy only feeds
                # ACC_GROUP registers, which may sit rows apart (lanes fill the DSP rows of a column).
                # No reset on these (a reset net to every accumulator would cross the die): they copy
                # the group's reset flags a cycle later, so they are 0 by the end of any reset of two
                # or more cycles (the board's ResetSynchronizer holds it for two).
                v_o = Signal(name=f"acc_valid{o}", reset_less=True, attrs={"keep": 1})
                f_o = Signal(name=f"acc_first{o}", reset_less=True, attrs={"keep": 1})
                c_o = Signal(name=f"acc_cap{o}", reset_less=True, attrs={"keep": 1})
                h_o = Signal(name=f"acc_hold{o}", reset_less=True, attrs={"keep": 1})
                m.d.sync += [v_o.eq(e_valid), f_o.eq(e_first), c_o.eq(e_valid & e_last), h_o.eq(c_o)]
                # The bias table and the drain shift read the group number and the layer from this
                # accumulator's own copies: the group's copies fed every bit of ACC_GROUP bias and
                # hold registers (about 250 loads a net; 8.3 and 7.6 ns in 128-lane runs). The group
                # number is copied from the region's, in step with the group's copy; the layer a
                # cycle after the group's (it settles long before the layer's first step).
                g_o = Signal(len(self.step.g), name=f"acc_g{o}", reset_less=True, attrs={"keep": 1})
                m.d.sync += g_o.eq(r_g)
                if len(mine) > 1:
                    lay_o = Signal(lay.shape(), name=f"acc_layer{o}", reset_less=True, attrs={"keep": 1})
                    m.d.sync += lay_o.eq(lay)
                for l in mine:
                    pre, _ = self.layers[l]
                    with (m.If(eq_const(lay_o, l)) if len(mine) > 1 else nullcontext()):
                        with m.Switch(g_o):
                            for gg in range(len(pre) // n):
                                with m.Case(gg):
                                    m.d.sync += bias[o].eq(pre[gg * n + o])
                s = Signal(signed(A), name=f"sum{o}")
                m.d.comb += s.eq(Mux(f_o, bias[o], acc[o]) + tsel[o])
                with m.If(v_o):
                    m.d.sync += acc[o].eq(s)
                # The pixel's sum is in acc the cycle after its last step (h_o); the next pixel's
                # first step may overwrite acc at the same edge, which reads the old value.
                with m.If(h_o):
                    m.d.sync += hold[o].eq(acc[o])
                with m.Else():
                    if len(shifts) == 1:
                        src = o + shifts[0]
                        m.d.sync += hold[o].eq(hold[src] if src < n else 0)
                    else:
                        with m.Switch(lay_o):
                            for l in mine:
                                with m.Case(l):
                                    src = o + self.layers[l][1]
                                    m.d.sync += hold[o].eq(hold[src] if src < n else 0)
        return m


def _is_one_of(value, consts):
    """``value`` equals one of ``consts``."""
    return Cat(*[eq_const(value, c) for c in consts]).any()


def _check_bank(n, width, tree_width, layers, n_layers):
    """Raise ValueError naming the first bad :class:`AccumulatorBank` parameter."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(width, int) or width < 2:
        raise ValueError(f"width must be an integer >= 2, got {width!r}")
    if not layers:
        raise ValueError("layers must name at least one layer")
    for l, (pre, shift) in layers.items():
        if not 0 <= l < n_layers:
            raise ValueError(f"layers: layer index {l} is outside 0 .. {n_layers - 1}")
        if len(pre) % n:
            raise ValueError(f"layers[{l}]: preload values must be a multiple of n={n}, got {len(pre)}")
        if not 1 <= shift <= n:
            raise ValueError(f"layers[{l}]: drain shift must be in 1 .. n={n}, got {shift}")
        lim = 1 << (width - 1)
        if any(not -lim <= v < lim for v in pre):
            raise ValueError(f"layers[{l}]: a preload value does not fit {width} signed bits")
