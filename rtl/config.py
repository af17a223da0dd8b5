"""The engine's plan: how a quantized model is laid out on P multiply lanes (pure Python, no HDL).

Everything the hardware needs is derived here from the quantized model (``golden.qmodel.QModel`` or
anything with the same ``header``, ``w``, ``b``, ``v``, ``tanh_lut`` members) and one parameter, the
number of lanes ``P``. The same plan drives the Amaranth design (:mod:`rtl.engine`), the ROM images,
the analytic cycle model (:mod:`gen.cycles`) and the resource summary (:mod:`gen.verilog`).

Lane split
----------
Each layer ``l`` uses ``OCP_l · ICP_l ≤ P`` lanes: every cycle, ``ICP_l`` input activations (one word of
the layer's input buffer) are broadcast over ``OCP_l`` output channels and multiplied by ``P`` weights
(one ROM word); an adder tree sums groups of ``ICP_l`` lanes (tree level ``k_l = log2(ICP_l)``) into
``OCP_l`` accumulators.

* ``OCP_l`` = the largest divisor of ``OC_l`` that is ≤ ``P``;
* ``ICP_l`` = the largest power of two that divides ``IC_l``, is ≤ ``P // OCP_l`` and (for ``l ≥ 2``)
  divides ``OCP_(l-1)`` (so that the previous layer's drain writes whole words).

Schedule
--------
For each output pixel (raster order), each output-channel group ``g < OCG_l = OC_l / OCP_l``, each
*valid* tap of that pixel (1 for the dense layer 1; 1, 2 or 4 for stride-2 layers, phase
decomposition of NUMERICS.md) and each input-channel group ``c < ICG_l = IC_l / ICP_l``: one cycle.
Taps outside the input are never visited, so no multiply is spent on padding or inserted zeros.

Tap-parallel layers
-------------------
A stride-2 layer with one output-channel group and one input-channel group whose lanes fit four
times (``4 · OCP_l · ICP_l ≤ P``: the default model's last layer, 1 × 32 lanes of 128) runs its
four taps in one step (``TP_l = 4``): one step per output pixel. Lane ``j = o·4·ICP + t·ICP + i``
multiplies tap slot ``t = 2a + b`` — input row ``a`` (0: ``m = oy // 2``; 1: ``m − 1`` for even
``oy``, ``m + 1`` for odd) and input column ``b`` of the column window (0: the lower, 1: the upper
of the two columns the pixel reads) — so the layer looks like one with ``4·ICP`` input channels
per step to the adder tree and the accumulators (level ``log2(4·ICP)``). The input buffer is still
read once a cycle: each column enters a register window once per row and serves two pixels
(:mod:`rtl.engine`), with the reads running :data:`TP_LEAD` steps ahead of the pixels (a prologue
of that many read-only cycles at the layer's start). Slots outside the input hold zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.utils import ceil_log2

from base.contract import ACT_BITS, DEFAULT_LANES, KERNEL, TANH_INDEX, WEIGHT_BITS, XY_BITS, Z_FMT

#: Width of the multiplier's data input: U16 zero-extended or S16 sign-extended.
X_BITS = ACT_BITS + 1
#: Weight width, S(8, Fw).
W_BITS = WEIGHT_BITS
#: Product width: 17-bit signed × 8-bit signed.
PROD_BITS = X_BITS + W_BITS
#: Tanh-table index width S(11, 8).
TANH_BITS = TANH_INDEX["bits"]


#: Taps per step of a tap-parallel layer (the 2 × 2 input positions of a stride-2, kernel-4 pixel).
TAP_SLOTS = 4
#: Steps the input-buffer reads of a tap-parallel layer run ahead of its pixels: the start of a row
#: needs columns 0 and 1 (four reads) by its second pixel.
TP_LEAD = 4


def tap_slot_kernel(a: int, b: int, py: int, px: int) -> tuple[int, int]:
    """``(ky, kx)`` of tap slot ``(a, b)`` (input row 0/1, window column lower/upper) of a pixel with
    output phases ``py = oy % 2``, ``px = ox % 2`` (stride 2, pad 1, kernel 4; NUMERICS.md).

    Rows: slot 0 is ``m = oy // 2`` (``ky`` 1 for even ``oy``, 2 for odd), slot 1 is ``m − 1`` (``ky`` 3) or
    ``m + 1`` (``ky`` 0). Columns: the window holds columns ``(ox − 1) // 2`` and one more; for even
    ``ox = 2n`` those are ``n − 1`` (``kx`` 3) and ``n`` (``kx`` 1), for odd ``ox`` ``n`` (2) and ``n + 1`` (0).
    """
    ky = (1, 3)[a] if py == 0 else (2, 0)[a]
    kx = (3, 1)[b] if px == 0 else (2, 0)[b]
    return ky, kx


def _largest_divisor_le(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _largest_pow2_dividing(n: int, limit: int, also: int | None = None) -> int:
    p = 1
    while p * 2 <= limit and n % (p * 2) == 0 and (also is None or also % (p * 2) == 0):
        p *= 2
    return p


def valid_taps(stride: int, pad: int, in_size: int, out_size: int, o: int) -> list[tuple[int, int]]:
    """The ``(k, i)`` pairs (kernel index, input index) that reach output index ``o`` in one dimension.

    Ordered as the engine visits them: for stride 2 the tap with input index ``m = o // 2`` first.
    """
    if stride == 1:
        return [(o + pad, 0)] if in_size == 1 else [
            (k, o + pad - k) for k in range(KERNEL) if 0 <= o + pad - k < in_size]
    m, phase = divmod(o, 2)
    if phase == 0:
        cand = [(1, m), (3, m - 1)]
    else:
        cand = [(2, m), (0, m + 1)]
    return [(k, i) for k, i in cand if 0 <= i < in_size]


@dataclass
class LayerPlan:
    """How one layer runs on the lanes.

    Members
    -------
    index : int
        0-based layer index (layer ``index + 1`` of NUMERICS.md).
    ic, oc, in_size, out_size, stride, pad : int
        From the header.
    dense : bool
        Layer 1 kind: 1×1 input, every output pixel has exactly one tap.
    ocp, icp : int
        Output channels and input channels processed per cycle (per tap slot when ``tp = 4``).
    tp : int
        Taps per step: 1, or :data:`TAP_SLOTS` for a tap-parallel layer (module docstring).
    ocg, icg : int
        ``oc // ocp`` and ``ic // icp`` groups.
    level : int
        Adder-tree level ``log2(tp · icp)`` whose sums feed the accumulators.
    taps : int
        Valid taps summed over all output pixels (16, 196, 900, 3844 for the default sizes).
    min_taps : int
        Fewest valid taps of any output pixel.
    steps : int
        Engine cycles of the layer without overheads: ``taps · ocg · icg``, or for a tap-parallel
        layer ``out_size² + TP_LEAD`` (one step per pixel and the read-ahead prologue).
    drain_words : int
        Words the drain writes per (pixel, group): ``ocp // icp_next`` (1 for the last layer).
    shift : int
        Requantisation (or Tanh-index) right shift.
    acc_bits : int
        Accumulator width from the header.
    relu : bool
        True for requantise + ReLU layers, False for the final Tanh layer.
    weight_base : int
        First weight-ROM word of the layer.
    useful_macs : int
        Products that reach a kept output: ``taps · ic · oc``.
    """

    index: int
    ic: int
    oc: int
    in_size: int
    out_size: int
    stride: int
    pad: int
    dense: bool
    ocp: int
    icp: int
    ocg: int
    icg: int
    level: int
    taps: int
    min_taps: int
    steps: int
    drain_words: int
    shift: int
    acc_bits: int
    relu: bool
    weight_base: int
    useful_macs: int
    tp: int = 1

    @property
    def lanes_per_group(self) -> int:
        """Lanes summed into one output channel per step: ``tp · icp``."""
        return self.tp * self.icp

    @property
    def step_cycles_per_pixel(self) -> int:
        """Fewest steps of any (pixel, group): ``min_taps · icg``, 1 for a tap-parallel layer."""
        return 1 if self.tp > 1 else self.min_taps * self.icg

    @property
    def icg_bits(self) -> int:
        """Address bits given to the input-channel group in the input buffer (power-of-two padding)."""
        return ceil_log2(self.icg)

    @property
    def in_bits(self) -> int:
        """Address bits of one input coordinate (``in_size`` is a power of two)."""
        return ceil_log2(self.in_size)

    @property
    def weight_words(self) -> int:
        """Weight-ROM words of the layer: ``ocg · 16 · icg``, or 4 (one per output phase) when tap-parallel."""
        return 4 if self.tp > 1 else self.ocg * KERNEL * KERNEL * self.icg


@dataclass
class EnginePlan:
    """The whole engine's plan for one quantized model and ``lanes`` multipliers.

    Members
    -------
    lanes : int
        ``P``, a power of two.
    nz : int
        Length of z.
    layers : list of LayerPlan
    weight_rom : list of int
        ROM words, ``P × w_bits`` bits each; lane ``j`` in bits ``[j·w_bits, (j+1)·w_bits)``: its
        8-bit weight code, or with :attr:`codebooks` its index into the layer's codebook.
    bias : list of numpy.ndarray
        Per layer, int64 bias codes ``(OC,)``.
    v_rom : list of int
        v1 words then v2 words, ``icp_1 × 16`` bits each (two's complement lanes).
    tanh_lut : list of int
        2048 pixel values.
    w_bits : int
        Bits per lane of a ROM word: 8 (the codes themselves) or the index width of the codebooks.
    codebooks : list of list of int, or None
        Per layer, the distinct 8-bit weight codes in increasing order, when every layer has at
        most ``2**b`` of them for some ``b < 8`` (:func:`weight_codebooks`); the ROM then holds
        ``b``-bit indices and the multipliers see ``codebooks[l][index]``: the same codes, so the
        golden model is unchanged by construction. ``None`` for a model with more distinct codes.
    tree_levels : int
        ``log2(P)``.
    acc_bits : int
        Width of the accumulators: the widest layer's ``acc_bits``.
    sum_bits : list of int
        Per layer, the signed width that holds every sum the layer's accumulators can take for any
        input in range (:func:`sum_bits`: bias and rounding constant plus any subset of a pixel's
        products): what the RTL's accumulators of that layer need, at most ``acc_bits + 1``.
    """

    lanes: int
    nz: int
    layers: list
    weight_rom: list = field(repr=False)
    bias: list = field(repr=False)
    v_rom: list = field(repr=False)
    tanh_lut: list = field(repr=False)
    w_bits: int = W_BITS
    codebooks: list | None = field(default=None, repr=False)
    sum_bits: list = field(default_factory=list, repr=False)

    @property
    def tree_levels(self) -> int:
        return ceil_log2(self.lanes)

    @property
    def acc_bits(self) -> int:
        return max(lp.acc_bits for lp in self.layers)

    @property
    def icp_max(self) -> int:
        """Widest input word (activations per cycle) of any layer."""
        return max(lp.icp for lp in self.layers)

    @property
    def ocp_max(self) -> int:
        return max(lp.ocp for lp in self.layers)

    @property
    def useful_macs_per_plane(self) -> int:
        return sum(lp.useful_macs for lp in self.layers)

    @property
    def steps_per_plane(self) -> int:
        return sum(lp.steps for lp in self.layers)

    def buffer_shape(self, l: int) -> tuple[int, int]:
        """``(width_bits, depth)`` of the input buffer of layer ``l ≥ 1`` (0-based)."""
        lp = self.layers[l]
        return lp.icp * ACT_BITS, (lp.in_size * lp.in_size) << lp.icg_bits


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def plan_layers(header: dict, lanes: int = DEFAULT_LANES, tap_parallel: bool = True) -> list:
    """The per-layer lane split and schedule (:class:`LayerPlan` list) of a quantized-model header.

    Parameters
    ----------
    header : dict
        The quantized model's header (NUMERICS.md).
    lanes : int
        ``P``: a power of two ≥ 1.
    tap_parallel : bool
        Run the layers that allow it four taps per step (module docstring); ``False`` keeps one tap
        per step everywhere (the earlier schedule, for comparison).

    Raises
    ------
    ValueError
        If the model does not fit the engine's assumptions (named in the message).
    """
    _check(isinstance(lanes, int) and not isinstance(lanes, bool) and lanes >= 1 and lanes & (lanes - 1) == 0,
           f"lanes must be a power of two >= 1, got {lanes!r}")
    h = header
    nz = int(h["nz"])
    hl = h["layers"]
    n = len(hl)
    _check(n >= 2, "the engine needs at least two layers")
    _check(int(h.get("kernel", KERNEL)) == KERNEL, "kernel must be 4")
    for l, rec in enumerate(hl):
        if l == 0:
            _check(rec["in_size"] == 1 and rec["stride"] == 1 and rec["pad"] == 0 and rec["out_size"] == KERNEL,
                   "layer 1 must be 1x1 -> 4x4, stride 1, pad 0")
        else:
            _check(rec["stride"] == 2 and rec["pad"] == 1 and rec["out_size"] == 2 * rec["in_size"],
                   f"layer {l + 1} must be stride 2, pad 1, size doubling")
            _check(rec["in_size"] & (rec["in_size"] - 1) == 0, f"layer {l + 1}: in_size must be a power of two")
            _check(rec["input"]["bits"] == ACT_BITS and not rec["input"]["signed"],
                   f"layer {l + 1}: input must be U(16, F)")
            _check(rec["ic"] == hl[l - 1]["oc"] and rec["in_size"] == hl[l - 1]["out_size"],
                   f"layer {l + 1} does not continue layer {l}")
        _check(rec["weight"]["bits"] == W_BITS, f"layer {l + 1}: weights must be 8 bits")
        _check(int(rec["shift"]) >= 1, f"layer {l + 1}: shift must be >= 1")
        _check(int(rec["shift"]) < int(rec["acc"]["bits"]), f"layer {l + 1}: shift must be below the acc width")
        if l < n - 1:
            _check(rec["activation"] == "relu", f"layer {l + 1}: activation must be relu")
        else:
            _check(rec["activation"] == "tanh_lut" and rec["oc"] == 1, "last layer must be tanh_lut with 1 channel")
            _check(rec["out_size"] <= 1 << XY_BITS, "output planes are at most 32x32")
    _check(hl[0]["input"]["bits"] == ACT_BITS and hl[0]["input"]["signed"], "layer 1 input must be S(16, F)")
    _check(hl[0]["ic"] == nz, "layer 1 ic must equal nz")

    ocps = [_largest_divisor_le(int(r["oc"]), lanes) for r in hl]
    # Layer 1 takes layer 2's output-channel parallelism (and so more input channels per step)
    # where that keeps as many lanes busy: it then sums at layer 2's tree level and uses layer 2's
    # accumulators instead of a bank of its own (at 128 lanes: (64, 2) instead of (128, 1), 128
    # accumulators of 27 bits, their hold, bias and node registers fewer beside the DSPs, and a
    # drain of 32 words a pixel instead of 64).
    if n >= 2 and ocps[1] < ocps[0] and int(hl[0]["oc"]) % ocps[1] == 0:
        busy_now = ocps[0] * _largest_pow2_dividing(nz, lanes // ocps[0])
        if ocps[1] * _largest_pow2_dividing(nz, lanes // ocps[1]) >= busy_now:
            ocps[0] = ocps[1]
    icps = []
    for l, r in enumerate(hl):
        limit = lanes // ocps[l]
        icps.append(_largest_pow2_dividing(int(r["ic"]), limit, None if l == 0 else ocps[l - 1]))

    layers, base = [], 0
    for l, r in enumerate(hl):
        ic, oc, ins, outs = int(r["ic"]), int(r["oc"]), int(r["in_size"]), int(r["out_size"])
        ocp, icp = ocps[l], icps[l]
        ocg, icg = oc // ocp, ic // icp
        per_dim = [len(valid_taps(r["stride"], r["pad"], ins, outs, o)) for o in range(outs)]
        taps = sum(per_dim) ** 2
        min_taps = min(per_dim) ** 2
        drain_words = ocp // icps[l + 1] if l < n - 1 else 1
        tp = TAP_SLOTS if (tap_parallel and l > 0 and ocg == 1 and icg == 1 and ins >= 2
                           and TAP_SLOTS * ocp * icp <= lanes) else 1
        steps = outs * outs + TP_LEAD if tp > 1 else taps * ocg * icg
        per_pixel = 1 if tp > 1 else min_taps * icg
        _check(drain_words <= per_pixel,
               f"layer {l + 1}: the drain ({drain_words} words) is slower than the shortest pixel "
               f"({per_pixel} cycles); use more lanes or other channel counts")
        lp = LayerPlan(index=l, ic=ic, oc=oc, in_size=ins, out_size=outs, stride=int(r["stride"]),
                       pad=int(r["pad"]), dense=l == 0, ocp=ocp, icp=icp, ocg=ocg, icg=icg,
                       level=ceil_log2(tp * icp), taps=taps, min_taps=min_taps, steps=steps,
                       drain_words=drain_words, shift=int(r["shift"]), acc_bits=int(r["acc"]["bits"]),
                       relu=l < n - 1, weight_base=base, useful_macs=taps * ic * oc, tp=tp)
        layers.append(lp)
        base += lp.weight_words
    return layers


def plan_engine(model, lanes: int = DEFAULT_LANES, tap_parallel: bool = True) -> EnginePlan:
    """Build the :class:`EnginePlan` (schedule and ROM images) of ``model`` on ``lanes`` multipliers.

    Parameters
    ----------
    model
        A validated quantized model: ``header`` (dict), ``w`` and ``b`` (dicts keyed by layer 1..L),
        ``v`` (int16 ``(2, nz)``), ``tanh_lut`` (uint8 ``(2048,)``).
    lanes : int
        ``P``: a power of two ≥ 1.
    tap_parallel : bool
        See :func:`plan_layers`.

    Raises
    ------
    ValueError
        If the model does not fit the engine's assumptions (named in the message).
    """
    layers = plan_layers(model.header, lanes, tap_parallel)
    nz = int(model.header["nz"])
    ws = []
    for lp in layers:
        w = np.asarray(model.w[lp.index + 1]).astype(np.int64)
        _check(w.shape == (lp.ic, lp.oc, KERNEL, KERNEL), f"w{lp.index + 1} has shape {w.shape}")
        ws.append(w)
    w_bits, books = weight_codebooks(ws)
    words = []
    for lp, w in zip(layers, ws):
        if books is not None:       # codes -> their indices in the layer's (sorted) codebook
            w = np.searchsorted(np.asarray(books[lp.index]), w)
        words.extend(_weight_words(w, lp, lanes, w_bits))
    v = np.asarray(model.v).astype(np.int64)
    _check(v.shape == (2, nz), f"v has shape {v.shape}, expected (2, {nz})")
    icp0 = layers[0].icp
    v_rom = [pack_words(v[p, c * icp0:(c + 1) * icp0], ACT_BITS) for p in range(2) for c in range(layers[0].icg)]
    lut = [int(x) for x in np.asarray(model.tanh_lut).reshape(-1)]
    _check(len(lut) == 1 << TANH_BITS, "tanh_lut must have 2048 entries")
    bias = []
    for lp in layers:
        b = np.asarray(model.b[lp.index + 1]).astype(np.int64)
        _check(b.shape == (lp.oc,), f"b{lp.index + 1} has shape {b.shape}")
        bias.append(b)
    sums = [sum_bits(w, b, lp) for lp, w, b in zip(layers, ws, bias)]
    return EnginePlan(lanes=lanes, nz=nz, layers=layers, weight_rom=words, bias=bias, v_rom=v_rom, tanh_lut=lut,
                      w_bits=w_bits, codebooks=books, sum_bits=sums)


def sum_bits(w, b, lp) -> int:
    """The signed width that holds every partial sum of layer ``lp``'s accumulators, for any input.

    An accumulator of output channel ``o`` starts at ``b[o] + 2**(shift-1)`` (the rounding constant
    folded into the bias) and adds products ``w · x`` of one output pixel's taps: with
    ``|x| ≤ 2**15`` (layer 1's S16 input) or ``x ≤ 2**16 - 1`` (U16 activations), any partial sum
    lies within ``|b[o]| + 2**(shift-1) + xmax · Σ |w|`` over the taps of the output phase with the
    largest total (one tap per output pixel for the dense layer 1, ``(ky, kx)`` of one parity pair
    for a stride-2 layer). The header's ``acc_bits`` bounds the same sums by the formats' extremes
    (all weights -128, the bias format's full range); this bound uses the model's own weights and
    biases, so the accumulators (and their hold registers and carry chains) are narrower and
    still never wrap (tests/test_rtl_config.py checks it against the golden model's sums).

    Parameters
    ----------
    w : numpy.ndarray
        int64 weight codes ``(IC, OC, K, K)``.
    b : numpy.ndarray
        int64 bias codes ``(OC,)``.
    lp : LayerPlan
    """
    w = np.abs(np.asarray(w, dtype=np.int64))
    xmax = 1 << (Z_FMT["bits"] - 1) if lp.index == 0 else (1 << ACT_BITS) - 1     # S16 z + v, or U16
    if lp.dense and lp.in_size == 1:            # every output pixel takes one tap
        per = w.sum(axis=0).reshape(lp.oc, -1).max(axis=1)
    elif lp.stride == 2:                        # a pixel's taps share the parity of (ky, kx)
        per = np.max([w[:, :, py::2, px::2].sum(axis=(0, 2, 3)) for py in range(2) for px in range(2)], axis=0)
    else:                                       # any other shape: all taps
        per = w.sum(axis=(0, 2, 3))
    bound = int((np.abs(b) + (1 << (lp.shift - 1)) + xmax * per).max())
    return min(bound.bit_length() + 1, lp.acc_bits + 1)


def weight_codebooks(weights) -> tuple[int, list | None]:
    """``(w_bits, codebooks)`` of the layers' integer weight codes ``weights`` (one array per layer).

    ``b = max(1, ceil_log2(max_l n_l))`` for ``n_l`` distinct codes in layer ``l``: where ``b < 8``
    the ROM holds ``b``-bit indices into per-layer codebooks (each layer's distinct codes, sorted),
    ``(b, codebooks)``; otherwise the 8-bit codes themselves, ``(8, None)``.
    """
    books = [sorted(int(c) for c in np.unique(np.asarray(w))) for w in weights]
    b = max(1, ceil_log2(max(len(bk) for bk in books)))
    return (b, books) if b < W_BITS else (W_BITS, None)


def pack_words(values, bits: int) -> int:
    """Pack integers (two's complement, ``bits`` each) into one word, element 0 in the low bits."""
    word, mask = 0, (1 << bits) - 1
    for i, x in enumerate(values):
        word |= (int(x) & mask) << (bits * i)
    return word


def _weight_words(w: np.ndarray, lp: LayerPlan, lanes: int, bits: int = W_BITS) -> list[int]:
    """ROM words of one layer in address order ``((g·4 + ky)·4 + kx)·icg + c``, ``bits`` per lane.

    Lane ``j = o·icp + i`` holds ``w[c·icp + i, g·ocp + o, ky, kx]``; unused lanes hold 0 (their
    activation operand is 0, so with a codebook index 0 stands for any code). A tap-parallel layer
    has one word per output phase, address ``py·2 + px``: lane ``j = o·4·icp + t·icp + i`` holds
    ``w[i, o, ky, kx]`` of tap slot ``t = 2a + b`` (:func:`tap_slot_kernel`).
    """
    out = []
    if lp.tp > 1:
        for py in range(2):
            for px in range(2):
                kern = [tap_slot_kernel(t >> 1, t & 1, py, px) for t in range(TAP_SLOTS)]
                lane_vals = [int(w[i, o, ky, kx]) for o in range(lp.ocp) for ky, kx in kern for i in range(lp.icp)]
                out.append(pack_words(lane_vals, bits))
        return out
    for g in range(lp.ocg):
        for ky in range(KERNEL):
            for kx in range(KERNEL):
                for c in range(lp.icg):
                    blk = w[c * lp.icp:(c + 1) * lp.icp, g * lp.ocp:(g + 1) * lp.ocp, ky, kx]  # (icp, ocp)
                    lane_vals = blk.T.reshape(-1)  # o-major: j = o*icp + i
                    out.append(pack_words(lane_vals, bits))
    return out
