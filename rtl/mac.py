"""The MAC array: activations and weights distributed to P multiplier lanes, and the adder tree."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import ACT_BITS, PROD_BITS, W_BITS, X_BITS, EnginePlan
from rtl.mult import Multiplier, check_mult_kind

#: Lanes per DSP column in the floorplan (gen/floorplan.py): one per DSP row of the die (the 85F's three).
LANES_PER_COLUMN = 3
#: Neighbouring DSP columns the floorplan fills row by row: the adder tree's first-level siblings
#: (lanes 2n and 2n + 1) side by side in one DSP row, not 24 tile rows apart.
PAIR_COLUMNS = 2
#: DSP columns served by one copy of the activations and of the layer number (in one DSP row).
GROUP_COLUMNS = 6
#: Copies of the input words (:attr:`MacArray.x`) per half of the array and DSP row: the row's lane
#: groups cut into this many runs of neighbouring columns (centre side, edge side), each fed by its
#: own copy. With one copy per half and row, the copy sat by its source and reached the groups at
#: the edge through one 8.8 ns net (a 128-lane run's critical path).
X_BLOCKS = 2
#: Copies of the input words in all: per half, DSP row and block of columns.
X_COPIES = 2 * LANES_PER_COLUMN * X_BLOCKS


def level_delay(k: int) -> int:
    """Cycles from adder-tree level 0 (the products) to the nodes of level ``k``: ``2k − 1`` for
    ``k ≥ 1``, ``0`` for ``k = 0``. Level 1 adds two lanes side by side; every node of a level
    ``k ≥ 1`` is copied into one more register before level ``k + 1`` adds it, because the nodes a
    level adds lie in DSP rows 24 or 48 tile rows apart, or columns apart (:func:`lane_position`):
    the copy lets the placer cut that route in two hops (the adders of levels 2 and 3 were late
    families of 128-lane runs, 7.2–7.3 ns)."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return max(0, 2 * k - 1)


def lane_position(lanes: int, j: int) -> tuple[int, int, int]:
    """Where the floorplan puts lane ``j``: ``(half, column, row)``. In each half of the array (lanes
    ``[0, P/2)`` and ``[P/2, P)``, the two sides of the die), lane ``k`` of the half sits in the block
    ``k // 6`` of :data:`PAIR_COLUMNS` neighbouring DSP columns counted from the centre, in DSP row
    ``(k % 6) // 2`` and column ``2·(k // 6) + k % 2``: a block's six lanes fill its two columns row
    by row, so lanes ``2n`` and ``2n + 1`` are side by side."""
    half = int(lanes >= 2 and j >= lanes // 2)
    k = j - half * (lanes // 2)
    block, r = divmod(k, PAIR_COLUMNS * LANES_PER_COLUMN)
    row, c = divmod(r, PAIR_COLUMNS)
    return half, PAIR_COLUMNS * block + c, row


def lane_groups(lanes: int) -> list[list[int]]:
    """The lanes that share one copy of the activations: a group is the lanes of one half and one DSP
    row in :data:`GROUP_COLUMNS` neighbouring columns (:func:`lane_position`; at most 6 lanes, all in
    one DSP row: a copy never feeds lanes in rows 24 tiles apart)."""
    groups = {}
    for j in range(lanes):
        half, col, row = lane_position(lanes, j)
        groups.setdefault((half, col // GROUP_COLUMNS, row), []).append(j)
    return [groups[key] for key in sorted(groups)]


def x_copy(lanes: int, j: int) -> int:
    """The copy of the input words (:data:`X_COPIES` of them) that lane ``j``'s group selects from:
    ``(half · LANES_PER_COLUMN + row) · X_BLOCKS + block``, the block being the lane's run of
    :data:`GROUP_COLUMNS`-column groups, counted from the centre (:func:`lane_position`)."""
    half, col, row = lane_position(lanes, j)
    cols = 1 + max(lane_position(lanes, k)[1] for k in range(lanes))    # DSP columns of a half
    n_groups = -(-cols // GROUP_COLUMNS)
    block = min(X_BLOCKS - 1, (col // GROUP_COLUMNS) * X_BLOCKS // n_groups)
    return (half * LANES_PER_COLUMN + row) * X_BLOCKS + block


def x_layout(plan: EnginePlan) -> data.StructLayout:
    """One input word per layer: ``layer1`` (the pass input, ICP_1 S16 lanes), ``layer2`` ... (U16 lanes;
    a tap-parallel layer's word is its four tap slots' words, slot ``t`` in activations ``t·ICP ..``)."""
    return data.StructLayout({f"layer{l + 1}": lp.lanes_per_group * ACT_BITS for l, lp in enumerate(plan.layers)})


class MacArray(wiring.Component):
    """``P`` multiplier lanes and the adder tree over them.

    In layer ``l``, lane ``j = o·G_l + i`` (``o < OCP_l``, ``G_l = TP_l·ICP_l`` lanes per output channel)
    multiplies activation ``i`` of the layer's input word by weight ``j`` of the ROM word; lanes
    ``j ≥ OCP_l·G_l`` multiply 0. Level ``k`` of the adder tree sums groups of ``2**k`` lanes, so
    output channel ``o`` of a layer with ``G = 2**k`` is node ``o`` of level ``k``.

    Pipeline (:attr:`latency` = 6 cycles from ``x``/``w`` to tree level 0, :func:`level_delay` more
    to level ``k``):

    1. distribution registers: each group of :func:`lane_groups` selects its own copy of the
       activations its lanes use in the layer in progress, and the weight word is registered, so
       no memory output drives sinks all over the die in one cycle;
    2. a second register for each of them (the group's copy, each lane's weight bits): a net from
       the centre, or from a weight RAM, to a lane crosses in two hops, and the placer can put the
       register between them (a lane group lies up to 48 tile rows and 46 columns from the
       activation buffers, and a tile row costs about 0.18 ns of routing: docs/RESULTS.md);
    3. operand registers, one x/w pair per lane, placed next to its DSP (``keep``: yosys must not
       merge the x registers of lanes that select the same words, :mod:`gen.ilpatch`); with
       codebooks, each lane's weight register is loaded from its own copy of the layer's codebook
       (a LUT ROM addressed by the lane's layer copy and index), so the lookup costs no cycle;
    4. the multiplier's input and output registers (:attr:`rtl.mult.Multiplier.latency` = 2);
    5. the product registered in the fabric (tree level 0): a DSP's output reaches the fabric
       late (4.5–5.3 ns after the clock in the 128-lane runs), too late for an adder behind it.

    Parameters
    ----------
    plan : EnginePlan
    mult : str
        ``"generic"`` or ``"ecp5"`` (:class:`rtl.mult.Multiplier`); same timing.

    Members
    -------
    layer : In(range(L))
        The layer in progress (constant while its steps are in flight).
    x : In(ArrayLayout(x_layout(plan), X_COPIES))
        The input words, one copy per half of the array, DSP row and block of columns
        (:func:`x_copy`; the same values, placed apart); only the layer in progress's is used.
    w : In(P × plan.w_bits)
        The weight word: lane ``j``'s 8-bit code in bits ``[8j, 8j+8)``, or, for a plan with
        codebooks, its index into the layer's codebook in bits ``[b·j, b·(j+1))``.
    level<k> : Out(ArrayLayout(signed(PROD_BITS + k), P >> k))
        For each tree level ``k`` that some layer reads: its nodes, :attr:`latency` ``+``
        :func:`level_delay` ``(k)`` cycles after ``x``/``w``.
    """

    def __init__(self, plan: EnginePlan, mult: str = "generic"):
        if not isinstance(plan, EnginePlan):
            self._MustUse__silence = True  # a refused component is not an unused one
            raise TypeError("plan must be an EnginePlan")
        check_mult_kind(mult)
        self.plan, self.mult = plan, mult
        self.levels_used = sorted({lp.level for lp in plan.layers})
        P = plan.lanes
        self.mults = [Multiplier(X_BITS, W_BITS, mult) for _ in range(P)]
        super().__init__({
            "layer": In(range(max(2, len(plan.layers)))),
            "x": In(data.ArrayLayout(x_layout(plan), X_COPIES)),
            "w": In(P * plan.w_bits),
            **{f"level{k}": Out(data.ArrayLayout(signed(PROD_BITS + k), P >> k)) for k in self.levels_used},
        })

    @property
    def latency(self) -> int:
        """Cycles from ``x``/``w`` to tree level 0: ``2 (distribution) + 1 (operands) + Multiplier.latency (2)
        + 1 (product register) = 6``."""
        return 4 + self.mults[0].latency

    def lane_source(self, l: int, j: int):
        """Activation index that lane ``j`` multiplies in layer ``l``, or None for an idle lane."""
        lp = self.plan.layers[l]
        n = lp.lanes_per_group
        return j % n if j < lp.ocp * n else None

    def elaborate(self, platform):
        plan, layers = self.plan, self.plan.layers
        L, P, K = len(layers), plan.lanes, plan.tree_levels
        m = Module()

        def x_word(l, i, copy):
            """Activation ``i`` of layer ``l``'s input word (copy ``copy``, :func:`x_copy`) as a
            multiplier operand (S16 or U16 -> 17 bits)."""
            w = self.x[copy][f"layer{l + 1}"][i * ACT_BITS:(i + 1) * ACT_BITS]
            return w.as_signed() if l == 0 else w

        # 1: distribution registers.
        groups = lane_groups(P)
        group_of = {j: g for g, lanes_g in enumerate(groups) for j in lanes_g}
        layer_g, layer_r = {}, {}
        for grp, lanes_g in enumerate(groups):
            # The group's copy of the layer number, from a copy per half and DSP row (two cycles
            # late: safe, as the layer changes only while no step is in flight and a step takes
            # more than two cycles to get here; no reset, it follows the layer register within
            # two cycles of a reset).
            half, _, row = lane_position(P, lanes_g[0])
            if (half, row) not in layer_r:
                layer_r[(half, row)] = Signal.like(self.layer, name=f"layer_r{half}{row}", reset_less=True,
                                                   attrs={"keep": 1})
                m.d.sync += layer_r[(half, row)].eq(self.layer)
            layer_g[grp] = Signal.like(self.layer, name=f"layer_x{grp}", reset_less=True, attrs={"keep": 1})
            m.d.sync += layer_g[grp].eq(layer_r[(half, row)])
        slots = {}                              # slots[grp][l]: activation indices held by the group copy
        x_grp = {}
        for grp, lanes_g in enumerate(groups):
            copy = x_copy(P, lanes_g[0])
            slots[grp] = [sorted({self.lane_source(l, j) for j in lanes_g} - {None}) for l in range(L)]
            width = max(1, max(len(sl) for sl in slots[grp]))
            x_sel = [Signal(signed(X_BITS), name=f"x_s{grp}_{t}", reset_less=True, attrs={"keep": 1})
                     for t in range(width)]
            for t, r in enumerate(x_sel):
                # Each slot selects with its own copy of the layer number, from the group's copy
                # (three cycles late: safe, as the layer changes only while no step is in flight
                # and a step takes more than three cycles to get here): one copy for a whole
                # group's selects was placed rows
                # away from most of them (the critical path, 5.9 ns on that one net), and copies
                # straight from the half and row's copy gave that one a fanout of 24.
                layer_s = Signal.like(self.layer, name=f"layer_s{grp}_{t}", reset_less=True, attrs={"keep": 1})
                m.d.sync += layer_s.eq(layer_g[grp])
                with m.Switch(layer_s):
                    for l in range(L):
                        with m.Case(l):
                            idx = slots[grp][l]
                            m.d.sync += r.eq(x_word(l, idx[t], copy) if t < len(idx) else 0)
            # 2: the group's copy, a register hop nearer its lanes.
            x_grp[grp] = [Signal(signed(X_BITS), name=f"x_g{grp}_{t}", reset_less=True, attrs={"keep": 1})
                          for t in range(width)]
            m.d.sync += [r.eq(s) for r, s in zip(x_grp[grp], x_sel)]
        b = plan.w_bits
        w_mid = Signal(P * b, name="w_mid", reset_less=True)
        m.d.sync += w_mid.eq(self.w)
        w_lane = [Signal(b, name=f"w_l{j}", reset_less=True, attrs={"keep": 1}) for j in range(P)]
        m.d.sync += [w_lane[j].eq(w_mid[j * b:(j + 1) * b]) for j in range(P)]

        # 3: operand registers. Each lane selects its activation with its own copy of the layer
        # number: lanes that select alike would otherwise share one multiplexer (yosys/ABC merge
        # identical logic), placed beside one of them and routed to the others rows away.
        x_op = [Signal(signed(X_BITS), name=f"x_op{j}", reset_less=True, attrs={"keep": 1}) for j in range(P)]
        w_op = [Signal(signed(W_BITS), name=f"w_op{j}", reset_less=True, attrs={"keep": 1}) for j in range(P)]
        for j in range(P):
            grp = group_of[j]
            layer_j = Signal.like(self.layer, name=f"layer_op{j}", reset_less=True, attrs={"keep": 1})
            # Three cycles late: safe, as the layer changes only while no step is in flight and a
            # step takes more than three cycles to get here. No reset (a reset net to every lane was
            # the critical path): a copy of a reset register, and no step is in flight after reset.
            m.d.sync += layer_j.eq(layer_g[grp])
            w_in = w_lane[j]
            if plan.codebooks is None:
                m.d.sync += w_op[j].eq(w_in.as_signed())
            with m.Switch(layer_j):
                for l in range(L):
                    with m.Case(l):
                        i = self.lane_source(l, j)
                        m.d.sync += x_op[j].eq(0 if i is None else x_grp[grp][slots[grp][l].index(i)])
                        if plan.codebooks is not None and i is not None:
                            with m.Switch(w_in):
                                for k, code in enumerate(plan.codebooks[l]):
                                    with m.Case(k):
                                        m.d.sync += w_op[j].eq(code)

        # 4: multipliers, 5: their products registered in the fabric beside them.
        prods = []
        for j, mul in enumerate(self.mults):
            m.submodules[f"mul{j}"] = mul
            m.d.comb += [mul.a.eq(x_op[j]), mul.b.eq(w_op[j])]
            p_f = Signal(signed(PROD_BITS), name=f"p{j}", reset_less=True)
            m.d.sync += p_f.eq(mul.p)
            prods.append(p_f)

        # The adder tree: each level's sums registered, then (below the root) copied once more for
        # the next level's adders (level_delay).
        levels, prev = [prods], prods
        for k in range(1, K + 1):
            cur = [Signal(signed(PROD_BITS + k), name=f"t{k}_{n}", reset_less=True) for n in range(len(prev) // 2)]
            m.d.sync += [s.eq(prev[2 * n] + prev[2 * n + 1]) for n, s in enumerate(cur)]
            levels.append(cur)
            if k < K:
                prev = [Signal.like(s, name=f"t{k}c_{n}", reset_less=True, attrs={"keep": 1}) for n, s in enumerate(cur)]
                m.d.sync += [c.eq(s) for c, s in zip(prev, cur)]
        for k in self.levels_used:
            out = getattr(self, f"level{k}")
            m.d.comb += [out[n].eq(v) for n, v in enumerate(levels[k])]
        return m
