"""Analytic cycle model of the Generator core (exact for an always-ready consumer and a z word every cycle).

Schedule (see :mod:`rtl.config` and :mod:`rtl.engine`): an avatar runs ``PASSES`` passes, each pass runs the
layers one after the other; layer ``l`` issues ``S_l = taps_l · OCG_l · ICG_l`` steps (a tap-parallel layer
``out_l² + TP_LEAD``: one per pixel and the read-ahead prologue, :mod:`rtl.config`), one per cycle, and the
next layer's first step follows the last one after ``gap_l`` cycles (:meth:`rtl.engine.Engine.layer_gap`):

    gap_l = 3 + max(FRONT + D(log2 P), FRONT + SEL + D(k_l) + NW_l + DRAIN)

with ``FRONT = 14`` (issue to adder-tree level 0: the sum of the Sequencer, WeightStore and MacArray
latencies), ``SEL = 2`` (the accumulator bank's register stage, then the accumulators, whose sums the
hold bank copies), ``DRAIN = 3`` (the drain's front,
d0 and d1 registers), ``k_l = log2(TP_l · ICP_l)`` the adder-tree level of the layer, ``D(k) = 2k − 1``
(``D(0) = 0``) the cycles from tree level 0 to level ``k`` (:func:`rtl.mac.level_delay`) and ``NW_l``
the layer's drain words; all of them come from :mod:`rtl.engine` and :mod:`rtl.mac`. The ``cycles`` port counts from the first z
word taken to the last pixel taken, inclusive:

    cycles = nz                                   (z words)
           + 1                                    (start of the engine)
           + Σ_runs (S_r − 1 + gap_r) − gap_last  (all PASSES × L layer runs)
           + FRONT + SEL + D(k_L) + NW_L + DRAIN  (last step -> the last pixel's pix_valid)
           + OUTPUT_LATENCY + 1                   (write register, FIFO -> pixel stream, inclusive count)
"""

from __future__ import annotations

from amaranth.utils import ceil_log2

from base.contract import DEFAULT_LANES
from rtl.config import plan_layers
# The pipeline depths and the gap formula are the engine's own (one definition for both).
from rtl.engine import DRAIN, FRONT, PASSES, SEL
from rtl.engine import gap_after as layer_gap
from rtl.mac import level_delay
from rtl.top import OUTPUT_LATENCY

__all__ = ["FRONT", "SEL", "DRAIN", "PASSES", "OUTPUT_LATENCY", "layer_gap", "cycle_model", "cycles_per_avatar"]


def cycle_model(header: dict, lanes: int = DEFAULT_LANES) -> dict:
    """Per-layer and total cycle counts of one RGB avatar, and MAC utilization.

    Parameters
    ----------
    header : dict
        Quantized-model header.
    lanes : int
        ``P``.

    Returns
    -------
    dict
        ``lanes``, ``layers`` (list of dicts: ``steps``, ``gap``, ``ocp``, ``icp``, ``ocg``, ``icg``,
        ``tp``, ``busy_lanes``), ``cycles_per_plane`` (steps + gaps of one pass), ``cycles_per_avatar``,
        ``useful_macs_per_avatar``, ``mac_bound_cycles`` (useful MACs / P), ``utilization``.
    """
    layers = plan_layers(header, lanes)
    tree = ceil_log2(lanes)
    nz = int(header["nz"])
    rows = []
    for lp in layers:
        rows.append({"layer": lp.index + 1, "ocp": lp.ocp, "icp": lp.icp, "ocg": lp.ocg, "icg": lp.icg,
                     "tp": lp.tp, "busy_lanes": lp.ocp * lp.lanes_per_group, "taps": lp.taps, "steps": lp.steps,
                     "gap": layer_gap(lp, tree), "useful_macs": lp.useful_macs})
    per_plane = sum(r["steps"] - 1 + r["gap"] for r in rows)
    last = layers[-1]
    total = (nz + 1 + PASSES * per_plane - rows[-1]["gap"]
             + FRONT + SEL + level_delay(last.level) + last.drain_words + DRAIN + OUTPUT_LATENCY + 1)
    useful = PASSES * sum(lp.useful_macs for lp in layers)
    return {
        "lanes": lanes,
        "layers": rows,
        "steps_per_plane": sum(r["steps"] for r in rows),
        "cycles_per_plane": per_plane,
        "cycles_per_avatar": total,
        "useful_macs_per_avatar": useful,
        "mac_bound_cycles": -(-useful // lanes),
        "utilization": useful / (lanes * total),
    }


def cycles_per_avatar(header: dict, lanes: int = DEFAULT_LANES) -> int:
    """Cycles of one RGB avatar as the top's ``cycles`` port reports them (see :func:`cycle_model`)."""
    return cycle_model(header, lanes)["cycles_per_avatar"]
