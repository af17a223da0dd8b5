"""The PLL set after routing (``avatargan synth --freq fmax``, :func:`gen.pll.set_pll_words`)."""

import json

import pytest

from avatargan.cli import main
from gen.pll import PLLConfig, ecppll_config, fastest_pll_at_or_below, pll_words, set_pll_words

# ecppll's settings other than the divisors (the same for every CLKOP-only frequency).
_FIXED = {"PLLRST_ENA": "DISABLED", "CLKOP_ENABLE": "ENABLED", "FEEDBK_PATH": "CLKOP"}
_ATTRS = {"ICP_CURRENT": "12", "LPF_RESISTOR": "8"}


def _cfg(ci, fb, op, cphase, mhz):
    return PLLConfig(25.0, mhz, {**_FIXED, "CLKI_DIV": ci, "CLKFB_DIV": fb, "CLKOP_DIV": op,
                                 "CLKOP_CPHASE": cphase, "CLKOP_FPHASE": 0}, dict(_ATTRS))


def _group(words, mode="EHXPLLL"):
    lines = [".tile_group MIB_R4C0:PLL0_UL MIB_R5C0:PLL1_UL"]
    lines += [f"word: {k} {v}" for k, v in words.items()]
    lines += ["word: ICP_CURRENT 01100", f"enum: MODE {mode}", "enum: FEEDBK_PATH CLKOP"]
    return "\n".join(lines)


P100 = _cfg(1, 4, 6, 2, 100.0)          # 25 / 1 * 4, VCO 600
P95 = _cfg(6, 23, 7, 3, 95.8333)        # 25 / 6 * 23, VCO 670.8


def test_words_are_nextpnrs_encoding():
    # nextpnr-ecp5 (ecp5/bitstream.cc): the three dividers minus one in 7 bits, CPHASE in 7, FPHASE in 3.
    assert pll_words(P100) == {"CLKI_DIV": "0000000", "CLKFB_DIV": "0000011", "CLKOP_DIV": "0000101",
                               "CLKOP_CPHASE": "0000010", "CLKOP_FPHASE": "000"}
    assert pll_words(P95)["CLKFB_DIV"] == "0010110" and pll_words(P95)["CLKI_DIV"] == "0000101"
    with pytest.raises(ValueError):
        pll_words(_cfg(1, 200, 6, 2, 100.0))   # 199 does not fit 7 bits


def test_only_the_pll_made_for_the_route_is_rewritten():
    other = _group({"CLKI_DIV": "0000000"}, mode="EHXPLLL").replace("PLL0_UL", "PLL3_LR")
    text = "\n\n".join([".tile R1C1:PLC2\narc: A B", _group(pll_words(P95)), other, ".tile R2C2:PLC2\n"])
    out = set_pll_words(text, P95, P100)
    assert _group(pll_words(P100)) in out and _group(pll_words(P95)) not in out
    assert other in out and out.startswith(".tile R1C1:PLC2\narc: A B\n\n") and out.endswith(".tile R2C2:PLC2\n")
    assert len(out.splitlines()) == len(text.splitlines())
    # Back again: the same text.
    assert set_pll_words(out, P100, P95) == text


def test_refuses_what_it_cannot_find_or_say():
    text = _group(pll_words(P95))
    with pytest.raises(ValueError, match="0 EHXPLLL"):
        set_pll_words(text, P100, P95)                      # no group made for P100
    with pytest.raises(ValueError, match="2 EHXPLLL"):
        set_pll_words(text + "\n\n" + text, P95, P100)      # which one?
    with pytest.raises(ValueError, match="0 EHXPLLL"):
        set_pll_words(_group(pll_words(P95), mode="DCUA"), P95, P100)
    secondary = PLLConfig(25.0, 100.0, {**P100.params, "CLKOS_DIV": 30}, dict(_ATTRS))
    with pytest.raises(ValueError, match="more than their divisors"):
        set_pll_words(text, P95, secondary)


def test_fastest_pll_at_or_below():
    cfg = fastest_pll_at_or_below(109.7)
    assert 107.0 < cfg.clkout_mhz <= 109.7
    assert fastest_pll_at_or_below(cfg.clkout_mhz).clkout_mhz == cfg.clkout_mhz


@pytest.mark.slow
def test_fmax_mode_matches_a_design_routed_for_that_clock(tmp_path):
    """One run with ``--freq fmax`` gives a bitstream at the fastest PLL clock its routes meet, and
    its PLL configuration is what nextpnr itself writes for a PLL made for that clock."""
    args = ["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--no-floorplan"]
    assert main([*args, "--freq", "fmax", "--pnr-freq", "60", "-o", str(tmp_path / "a")]) == 0
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    fmax, clock = rep["performance"]["fmax_mhz"], rep["performance"]["bitstream_clock_mhz"]
    assert rep["freq_constraint_mhz"] == 60.0 and 60.0 < clock <= fmax
    # No clock ecppll makes lies between the bitstream's and the routed Fmax (asked every 0.25 MHz;
    # near 150 MHz its grid from 25 MHz has gaps of 3.125 MHz, so a fixed margin would not do).
    for i in range(1, int((fmax - clock) / 0.25) + 2):
        made = ecppll_config(25, clock + 0.25 * i).clkout_mhz
        assert not clock < made <= fmax, (clock, made, fmax)
    assert rep["performance"]["bitstream_meets_timing"]
    assert rep["pll_after_route"]["clock_mhz"] == clock == ecppll_config(25, clock).clkout_mhz
    assert "divisors set after routing" in (tmp_path / "a" / "report.md").read_text()
    # The oracle: nextpnr's own configuration of a PLL made for that clock.
    assert main([*args, "--freq", f"{clock:g}", "-o", str(tmp_path / "b")]) == 0

    def pll_group(folder):
        text = (tmp_path / folder / "design.config").read_text()
        i = text.index("enum: MODE EHXPLLL")
        return text[text.rindex("\n.tile_group", 0, i):text.index("\n\n", i)]
    assert pll_group("a") == pll_group("b")


def test_fmax_mode_is_board_only(tmp_path, capsys):
    assert main(["synth", "random:8,8,4,4,1:1", "--lanes", "4", "--freq", "fmax", "--top", "core",
                 "-o", str(tmp_path / "c")]) == 2
    assert "--freq fmax" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
