"""The planned floorplan (gen/floorplan.py): the site table, the matching, the plan, the netlist pass."""

import itertools
import json
import random

import pytest

from gen.floorplan import (SITES_FILE, Site, _match, apply_floorplan, engine_cells, load_sites, plan,
                           probe_sites)
from gen.synth import DEVICES
from rtl.mac import lane_position
from rtl.weights import slice_ranges, storage_order

W = 8


def test_slices_are_cut_at_the_middle_ram_boundary():
    """Cut on the 18-bit block-RAM boundary nearest the word's middle, each half in 36-bit slices
    (two RAMs per address register)."""
    # 128 lanes of 8 bits: the middle, bit 512, is 8 bits past the RAM boundary at 504 (28 RAMs).
    assert slice_ranges(1024) == ([(lo, lo + 36) for lo in range(0, 504, 36)]
                                  + [(lo, lo + 36) for lo in range(504, 1008, 36)] + [(1008, 1024)])
    # 128 lanes of 5 bits (the codebook model): 640 bits, middle 320, nearest RAM boundary 324.
    assert slice_ranges(640) == ([(lo, lo + 36) for lo in range(0, 324, 36)]
                                 + [(lo, lo + 36) for lo in range(324, 612, 36)] + [(612, 640)])
    assert slice_ranges(512) == [(lo, lo + 36) for lo in range(0, 504, 36)] + [(504, 512)]
    assert slice_ranges(128) == [(0, 36), (36, 72), (72, 108), (108, 128)]
    assert slice_ranges(16) == [(0, 16)]                            # the middle RAM boundary is bit 0
    for width in (16, 32, 64, 128, 256, 512, 640, 1024, 2048):
        sl = slice_ranges(width)
        assert sl[0][0] == 0 and sl[-1][1] == width and all(a[1] == b[0] for a, b in zip(sl, sl[1:]))
        assert all(0 < hi - lo <= 36 for lo, hi in sl)
        # Every cut falls on a block-RAM boundary: the cut costs no block RAM.
        assert all(hi % 18 == 0 for lo, hi in sl[:-1])
        assert sum(-(-(hi - lo) // 18) for lo, hi in sl) == -(-width // 18)


def _weight_rams(lanes: int, banks: int, width: int = 18, w_bits: int = W) -> dict:
    """The weight RAMs of an engine with ``lanes`` lanes and ``banks`` banks, as the RTL cuts them:
    its slices of the word in storage order, each cut by yosys into ``width``-bit block RAMs;
    ``{(b, s, k): lanes}``."""
    out, order = {}, storage_order(lanes)
    for b in range(banks):
        for s, (s_lo, s_hi) in enumerate(slice_ranges(lanes * w_bits)):
            for k, lo in enumerate(range(s_lo, s_hi, width)):
                hi = min(lo + width, s_hi) - 1
                out[(b, s, k)] = tuple(sorted(order[i] for i in range(lo // w_bits, hi // w_bits + 1)))
    return out


def test_storage_order_keeps_neighbours_together():
    """Every lane once; consecutive lanes of the stored word sit in one DSP row and neighbouring
    columns, except at a row's turn (the next row, within two columns: a half's last pair of columns
    may fill only its first rows) and at the word's middle (the two halves' first columns, one row)."""
    for lanes in (16, 32, 64, 128, 130):
        order = storage_order(lanes)
        assert sorted(order) == list(range(lanes))
        for a, b in zip(order, order[1:]):
            (ha, ca, ra), (hb, cb, rb) = lane_position(lanes, a), lane_position(lanes, b)
            if ha != hb:
                assert ra == rb and ca <= 1 and cb == 0
            elif ra == rb:
                assert abs(ca - cb) == 1
            else:
                assert abs(ra - rb) == 1 and abs(ca - cb) <= 2     # a short last block: its edge


@pytest.mark.slow
@pytest.mark.parametrize("key", ["85F", "45F"])
def test_site_table_is_what_nextpnr_places(tmp_path, key):
    """The stored sites are exactly those nextpnr uses when a design fills every block of the device."""
    assert probe_sites(DEVICES[key], tmp_path) == json.loads(SITES_FILE.read_text())[key]


def test_site_table_shape():
    """85F: 156 MULT18X18D in 3 rows, 208 DP16KD in 4 rows, the same columns every 9 (a strip of 12
    multipliers and 16 block RAMs), as measured in docs/RESULTS.md."""
    sites = load_sites("85F")
    assert len(sites["MULT18X18D"]) == 156 and len(sites["DP16KD"]) == 208
    assert sorted({s.y for s in sites["MULT18X18D"]}) == [10, 34, 58]
    assert sorted({s.y for s in sites["DP16KD"]}) == [22, 46, 70, 82]
    assert len(set(sites["DP16KD"])) == 208
    assert load_sites("12F") is None
    assert Site.parse("X13/Y34/MULT18_0") == Site(13, 34, "MULT18_0") and Site(4, 22, "EBR0").bel == "X4/Y22/EBR0"
    with pytest.raises(ValueError, match="not a BEL"):
        Site.parse("R22C13")


def test_match_is_the_least_total_distance():
    """Against every order-preserving choice of slots (brute force) on random small cases."""
    rng = random.Random(5)
    for _ in range(200):
        m = rng.randint(1, 8)
        n = rng.randint(1, m)
        points = sorted(rng.uniform(0, 20) for _ in range(n))
        slots = sorted(rng.randint(0, 20) for _ in range(m))
        got = _match(points, slots)
        assert len(set(got)) == n and got == sorted(got)
        best = min(sum(abs(p - slots[j]) for p, j in zip(points, c)) for c in itertools.combinations(range(m), n))
        assert sum(abs(p - slots[j]) for p, j in zip(points, got)) == pytest.approx(best)
    with pytest.raises(ValueError):
        _match([1.0, 2.0], [1.0])


@pytest.mark.parametrize("lanes,banks,w_bits,near,rows", [
    (128, 3, 5, 1.0, 12),           # the codebook model: 108 weight RAMs
    (128, 3, 8, 0.5, 72), (64, 6, 8, 0.5, 72),        # 171 and 174: nearly every site outside the gap
    (16, 1, 8, 1.0, 12)])
def test_plan_keeps_each_ram_beside_its_lanes(lanes, banks, w_bits, near, rows):
    """``near``: the share of RAMs within 4 columns of one of their lanes; ``rows``: the most tile
    rows between a RAM and the farthest of its lanes (the block-RAM row next to their DSP row is 12
    away). Where the weight RAMs fill nearly every EBR site outside the gap, many go to farther rows
    and columns."""
    sites = load_sites("85F")
    rams = _weight_rams(lanes, banks, w_bits=w_bits)
    others = 25
    fp = plan(lanes, rams, others, sites)
    used = list(fp.lanes) + list(fp.rams.values())
    assert len(set(used)) == len(used) == lanes + len(rams), "every block on its own site"
    assert set(fp.lanes) <= set(sites["MULT18X18D"]) and set(fp.rams.values()) <= set(sites["DP16KD"])
    # Lanes from the centre outwards: 0 .. P/2-1 leftwards, the rest rightwards, in pairs of DSP
    # columns filled row by row (the first-level siblings 2n, 2n+1 side by side in one row), where
    # rtl.mac.lane_position says.
    xs = [s.x for s in sites["MULT18X18D"]]
    centre = (min(xs) + max(xs)) / 2
    h = lanes // 2
    assert all(s.x < centre for s in fp.lanes[:h]) and all(s.x > centre for s in fp.lanes[h:])
    for j in range(0, lanes, 2):
        a, b = fp.lanes[j], fp.lanes[j + 1]
        assert a.y == b.y and abs(a.x - b.x) == 1 and abs(a.x - centre) < abs(b.x - centre)
    dsp_rows = sorted({s.y for s in sites["MULT18X18D"]})
    for half, side in ((0, fp.lanes[:h]), (1, fp.lanes[h:])):
        cols = sorted({s.x for s in side}, key=lambda x: abs(x - centre))
        assert [lane_position(lanes, j) for j in range(half * h, half * h + len(side))] == \
            [(half, cols.index(s.x), dsp_rows.index(s.y)) for s in side]
    # RAMs within 4 columns of one of their lanes (measured here, not taken from the plan).
    dist = [min(abs(fp.rams[k].x - fp.lanes[j].x) for j in lanes_k) for k, lanes_k in rams.items()]
    assert sum(d <= 4 for d in dist) >= near * len(dist) and max(dist) == fp.max_distance
    rise = [max(abs(fp.rams[k].y - fp.lanes[j].y) for j in lanes_k) for k, lanes_k in rams.items()]
    assert max(rise) == fp.summary["max_ram_to_lane_rows"] == rows
    # The centre gap keeps at least the other RAMs' sites free, and no lane or weight RAM is in it.
    lo, hi = fp.reserved_x
    free = [s for s in sites["DP16KD"] if lo <= s.x <= hi]
    assert len(free) >= others and not any(lo <= s.x <= hi for s in used)
    assert lo <= centre <= hi


def test_plan_refuses_what_does_not_fit():
    sites = load_sites("85F")
    with pytest.raises(ValueError, match="157 lanes need 157 MULT18X18D; the device has 156"):
        plan(157, {}, 0, sites)
    with pytest.raises(ValueError, match="need 209 DP16KD; the device has 208"):
        plan(16, _weight_rams(16, 1), 208 - len(_weight_rams(16, 1)) + 1, sites)


def _netlist(lanes, rams):
    cells = {f"logic.core.engine.mac.mul{j}.dsp": {"type": "MULT18X18D", "attributes": {}, "parameters": {}}
             for j in range(lanes)}
    for (b, s, k) in rams:
        cells[f"logic.core.engine.weights.wrom{b}_{s}.0.{k}"] = {
            "type": "DP16KD", "attributes": {}, "parameters": {"DATA_WIDTH_A": "00000000000000000000000000010010"}}
    cells["logic.core.engine.buf1.0.0"] = {"type": "DP16KD", "attributes": {}, "parameters": {}}
    return {"modules": {"board": {"attributes": {"top": "00000000000000000000000000000001"}, "cells": cells}}}


def test_netlist_pass_pins_the_planned_cells():
    rams = _weight_rams(32, 2)
    net = _netlist(32, rams)
    mult, wrom, others = engine_cells(net["modules"]["board"], 32, slice_ranges(32 * W), W, storage_order(32))
    assert others == 1 and len(mult) == 32
    assert wrom == {f"logic.core.engine.weights.wrom{b}_{s}.0.{k}": lanes_k for (b, s, k), lanes_k in rams.items()}
    # The first RAM holds the stored word's first 18 bits, lanes 13, 12 and 7: the first half's top
    # row from its edge inwards (in the 16-lane half, lanes 0, 1 | 6, 7 | 12, 13 fill the top row of
    # the column pairs 0-1, 2-3, 4-5).
    assert wrom["logic.core.engine.weights.wrom0_0.0.0"] == (7, 12, 13)
    summary = apply_floorplan(net, 32, load_sites("85F"))
    cells = net["modules"]["board"]["cells"]
    bels = {n: c["attributes"].get("BEL") for n, c in cells.items()}
    assert bels["logic.core.engine.buf1.0.0"] is None, "RAMs other than the weights are left to the placer"
    pinned = [b for b in bels.values() if b]
    assert len(pinned) == len(set(pinned)) == 32 + len(rams) == summary["lanes"] + summary["weight_rams"]
    # A netlist whose lanes do not match is refused, not half pinned.
    wrong = _netlist(32, rams)
    with pytest.raises(ValueError, match="beyond 64 lanes|multipliers of lanes 0..63"):
        apply_floorplan(wrong, 64, load_sites("85F"))
    assert not any("BEL" in c["attributes"] for c in wrong["modules"]["board"]["cells"].values())
    with pytest.raises(ValueError, match=r"multipliers of lanes 0..31 .*found 31"):
        net31 = _netlist(32, rams)
        del net31["modules"]["board"]["cells"]["logic.core.engine.mac.mul7.dsp"]
        apply_floorplan(net31, 32, load_sites("85F"))
