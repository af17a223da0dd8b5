"""gen/bramreg.py and gen/ilpatch.py: block-RAM output registers, read-collision relaxing, kept registers."""

import copy

import pytest

from gen.bramreg import absorb_output_registers

CLK, OTHER_CLK = 2, 3


def _ff(di, q, clk=CLK, **params):
    p = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}
    p.update(params)
    return {"type": "TRELLIS_FF", "parameters": p,
            "port_directions": {"CLK": "input", "DI": "input", "Q": "output"},
            "connections": {"CLK": [clk], "DI": [di], "Q": [q]}}


def _netlist(width_b="00000000000000000000000000010010"):
    """One DP16KD read through port B: DOB0 -> ff0 -> LUT, DOB1 -> ff1 -> LUT; port A writes only."""
    bram = {"type": "DP16KD",
            "parameters": {"DATA_WIDTH_A": "00000000000000000000000000010010", "DATA_WIDTH_B": width_b,
                           "REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKBMUX": "CLKB"},
            "port_directions": {**{f"DO{x}{k}": "output" for x in "AB" for k in range(18)},
                                "CLKA": "input", "CLKB": "input"},
            "connections": {**{f"DOA{k}": [100 + k] for k in range(18)},
                            **{f"DOB{k}": [200 + k] for k in range(18)},
                            "CLKA": [CLK], "CLKB": [CLK], "OCEA": ["1"], "OCEB": ["1"],
                            "RSTA": ["0"], "RSTB": ["0"]}}
    lut = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "B": "input", "Z": "output"},
           "connections": {"A": [300], "B": [301], "Z": [400]}}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": {"ram": bram, "ff0": _ff(200, 300), "ff1": _ff(201, 301), "lut": lut}}}}


def _cells(n):
    return n["modules"]["top"]["cells"]


@pytest.mark.parametrize("lsr", [None, ["0"]], ids=["no-lsr", "lsr-tied-low"])
def test_plain_registers_are_absorbed(lsr):
    n = _netlist()
    if lsr is not None:
        _cells(n)["ff0"]["connections"]["LSR"] = lsr
    stats = absorb_output_registers(n)
    c = _cells(n)
    assert stats["ports"] == 1 and stats["flip_flops"] == 2 and stats["dp16kd"] == 1
    assert "ff0" not in c and "ff1" not in c
    assert c["ram"]["parameters"]["REGMODE_B"] == "OUTREG" and c["ram"]["parameters"]["REGMODE_A"] == "NOREG"
    # The block RAM now drives the nets the flip-flops drove; the logic after them is untouched.
    assert c["ram"]["connections"]["DOB0"] == [300] and c["ram"]["connections"]["DOB1"] == [301]
    assert c["lut"]["connections"]["A"] == [300]


@pytest.mark.parametrize("change", [
    "clock enable", "set/reset", "other clock", "inverted clock", "second load", "logic before the register",
    "pseudo-dual-port, two clocks", "output clock enable", "output reset",
])
def test_unsafe_cases_are_left_alone(change):
    n = _netlist()
    c = _cells(n)
    if change == "clock enable":
        c["ff1"]["parameters"]["CEMUX"] = "CE"
        c["ff1"]["connections"]["CE"] = [7]
    elif change == "set/reset":
        c["ff1"]["connections"]["LSR"] = [8]
    elif change == "other clock":
        c["ff1"]["connections"]["CLK"] = [OTHER_CLK]
    elif change == "inverted clock":
        c["ff1"]["parameters"]["CLKMUX"] = "INV"
    elif change == "second load":
        c["lut"]["connections"]["B"] = [201]          # DOB1 also feeds a LUT
    elif change == "logic before the register":
        c["ff1"]["connections"]["DI"] = [400]        # ff1 registers the LUT; DOB1 goes to the LUT only
        c["lut"]["connections"]["B"] = [201]
    elif change == "pseudo-dual-port, two clocks":
        c["ram"]["parameters"]["DATA_WIDTH_B"] = "00000000000000000000000000100100"
        c["ram"]["connections"]["CLKA"] = [OTHER_CLK]
    elif change == "output clock enable":
        c["ram"]["connections"]["OCEB"] = [9]
    elif change == "output reset":
        c["ram"]["connections"]["RSTB"] = ["1"]
    before = copy.deepcopy(n)
    stats = absorb_output_registers(n)
    assert stats["ports"] == 0 and stats["flip_flops"] == 0 and sum(stats["skipped"].values()) == 1
    assert n == before


def test_pseudo_dual_port_is_converted_as_one_read():
    """36-bit shape: {DOB, DOA} is one read word; both register settings change together."""
    n = _netlist(width_b="00000000000000000000000000100100")
    c = _cells(n)
    c["ram"]["connections"]["OCEA"] = ["0"]           # yosys ties the write port's OCE low
    c["ff2"] = _ff(100, 302)                          # DOA0 is used too
    stats = absorb_output_registers(n)
    assert stats["ports"] == 1 and stats["flip_flops"] == 3
    p, k = c["ram"]["parameters"], c["ram"]["connections"]
    assert p["REGMODE_A"] == p["REGMODE_B"] == "OUTREG" and k["OCEA"] == ["1"]
    assert k["DOA0"] == [302] and k["DOB0"] == [300] and "ff2" not in c


def test_needs_one_top_module():
    with pytest.raises(ValueError):
        absorb_output_registers({"modules": {"a": {"attributes": {}, "cells": {}}}})


def _rtlil(marked: bool) -> str:
    from amaranth.back import rtlil
    from amaranth.hdl import Module, Signal
    from amaranth.lib.memory import Memory

    m = Module()
    m.submodules.mem = mem = Memory(shape=16, depth=64, init=[], attrs={"no_rw_check": 1} if marked else None)
    r, w = mem.read_port(), mem.write_port()
    a, b, d, o = Signal(6), Signal(6), Signal(16), Signal(16)
    m.d.comb += [r.addr.eq(a), w.addr.eq(b), w.data.eq(d), w.en.eq(1)]
    m.d.sync += o.eq(r.data)
    return rtlil.convert(m, ports=[a, b, d, o])


def test_relax_read_collisions_only_on_marked_memories():
    from gen.ilpatch import relax_read_collisions

    text, n = relax_read_collisions(_rtlil(True))
    assert n == 1 and "COLLISION_X_MASK 1'1" in text and "COLLISION_X_MASK 1'0" not in text
    plain = _rtlil(False)
    assert relax_read_collisions(plain) == (plain, 0)


def test_keep_registers_marks_only_kept_flip_flops():
    """Two registers with the same input: yosys would merge them; ``keep`` signals get kept cells."""
    from amaranth.back import rtlil
    from amaranth.hdl import Cat, Module, Signal

    from gen.ilpatch import keep_registers

    m = Module()
    a, o = Signal(8), Signal(24)
    r1, r2, r3 = Signal(8, attrs={"keep": 1}), Signal(8, attrs={"keep": 1}), Signal(8)
    m.d.sync += [r1.eq(a + 1), r2.eq(a + 1), r3.eq(a + 1)]
    m.d.comb += o.eq(Cat(r1, r2, r3))
    text, n = keep_registers(rtlil.convert(m, ports=[a, o]))
    assert n == 2 and text.count("attribute \\keep 1\n  cell $dff") == 2
