"""constraints/ulx3s.lpf against the ULX3S pinout and the board top's ports."""

import re
from pathlib import Path

import pytest

LPF = Path(__file__).resolve().parent.parent / "constraints" / "ulx3s.lpf"

#: ULX3S pins (ulx3s_v20.lpf of the board's maintainers; amaranth-boards ulx3s.py agrees).
ULX3S = {
    "clk25": "G2", "uart_tx": "L4", "uart_rx": "M1", "btn_reset": "R1",
    "led[0]": "B2", "led[1]": "C2", "led[2]": "C1", "led[3]": "D2",
    "led[4]": "D1", "led[5]": "E2", "led[6]": "E1", "led[7]": "H3",
}


def parse_lpf(text):
    """LOCATE sites, IOBUF attributes and FREQUENCY constraints of an LPF text."""
    locate, iobuf, freq = {}, {}, {}
    for stmt in re.sub(r"#[^\n]*", "", text).split(";"):
        s = " ".join(stmt.split())
        if not s:
            continue
        if m := re.fullmatch(r'LOCATE COMP "([^"]+)" SITE "([A-Z]+\d+)"', s):
            if m.group(1) in locate:
                raise ValueError(f"{m.group(1)} located twice")
            locate[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r'IOBUF PORT "([^"]+)"((?: \w+=\w+)+)', s):
            iobuf[m.group(1)] = dict(kv.split("=") for kv in m.group(2).split())
        elif m := re.fullmatch(r'FREQUENCY PORT "([^"]+)" ([\d.]+) MHZ', s):
            freq[m.group(1)] = float(m.group(2))
        elif s.startswith("SYSCONFIG"):
            continue
        else:
            raise ValueError(f"unknown LPF statement: {s}")
    return locate, iobuf, freq


def check_lpf(text):
    locate, iobuf, freq = parse_lpf(text)
    assert locate == ULX3S
    for port in locate:
        assert iobuf[port]["IO_TYPE"] == "LVCMOS33", port
    assert freq == {"clk25": 25.0}


def test_lpf_matches_ulx3s():
    check_lpf(LPF.read_text())


def test_check_fails_on_a_wrong_pin():
    text = LPF.read_text().replace('"uart_tx" SITE "L4"', '"uart_tx" SITE "M1"')
    with pytest.raises(AssertionError):
        check_lpf(text)
    with pytest.raises(ValueError):
        parse_lpf(LPF.read_text() + '\nLOCATE COMP "led[0]" SITE "A1";\n')


def test_lpf_names_the_board_ports():
    from amaranth.back import rtlil

    from golden.random_models import random_qmodel
    from rtl.board import Board
    from rtl.top import Generator

    qm = random_qmodel((4, 4, 4, 2, 1), seed=3)
    text = rtlil.convert(Board(Generator.from_model(qm, lanes=2, mult="ecp5"), qm.nz, baud=1_000_000),
                         name="board")
    top = text[text.index("module \\board\n"):]
    top = top[:top.index("\nend\n")]
    ports = {}
    for width, name in re.findall(r"wire width (\d+) (?:input|output) \d+\s+\\(\S+)", top):
        ports[name] = int(width)
    bits = {f"{n}[{i}]" if w > 1 else n for n, w in ports.items() for i in range(w)}
    assert bits == set(ULX3S)
