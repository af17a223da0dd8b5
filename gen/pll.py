"""ECP5 PLL settings from ``yowasp-ecppll`` (Project Trellis), as data for an EHXPLLL instance.

``ecppll`` writes a small Verilog module with one ``EHXPLLL`` instance; :func:`ecppll_config`
runs it and reads back the attributes, parameters and the achieved output frequency, which
:class:`rtl.board.Board` turns into an Amaranth ``Instance``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from base.errors import UserError
from gen.tools import tool_path

__all__ = ["PLLConfig", "ecppll_config", "fastest_pll_at_or_below", "parse_ecppll_verilog", "pll_words",
           "set_pll_words"]


@dataclass(frozen=True)
class PLLConfig:
    """One EHXPLLL configuration (input clock -> CLKOP only).

    Attributes
    ----------
    clkin_mhz, clkout_mhz : float
        Input frequency and the output frequency that the divisors really give.
    params : dict
        EHXPLLL parameters (``CLKI_DIV``, ``CLKFB_DIV``, ``CLKOP_DIV``, ...): str or int values.
    attrs : dict
        Synthesis attributes ecppll puts on the instance (``ICP_CURRENT``, ``FREQUENCY_PIN_CLKOP``...).
    """

    clkin_mhz: float
    clkout_mhz: float
    params: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


def parse_ecppll_verilog(text: str) -> PLLConfig:
    """Read an ecppll Verilog module (one EHXPLLL instance) into a :class:`PLLConfig`."""
    attrs = dict(re.findall(r'\(\*\s*(\w+)\s*=\s*"([^"]*)"\s*\*\)', text))
    m = re.search(r"EHXPLLL\s*#\((.*?)\)\s*\w+\s*\(", text, re.S)
    if not m:
        raise ValueError("no EHXPLLL instance in the ecppll output")
    params = {}
    for name, value in re.findall(r"\.(\w+)\(\s*(\"[^\"]*\"|-?\d+)\s*\)", m.group(1)):
        params[name] = value.strip('"') if value.startswith('"') else int(value)
    if params.get("FEEDBK_PATH") != "CLKOP":
        raise ValueError(f"unsupported PLL feedback path {params.get('FEEDBK_PATH')!r} (expected CLKOP)")
    try:
        clkin = float(attrs["FREQUENCY_PIN_CLKI"])
        clkout = float(attrs["FREQUENCY_PIN_CLKOP"])
    except KeyError as e:
        raise ValueError(f"ecppll output lacks the attribute {e}") from None
    # The real output: f_out = f_in / CLKI_DIV * CLKFB_DIV (feedback from CLKOP).
    real = clkin / params["CLKI_DIV"] * params["CLKFB_DIV"]
    if abs(real - clkout) > 1e-3 * clkout:
        clkout = real
    return PLLConfig(clkin_mhz=clkin, clkout_mhz=clkout, params=params, attrs=attrs)


def ecppll_config(clkin_mhz: float, clkout_mhz: float, clkout1_mhz: float | None = None) -> PLLConfig:
    """Run ``yowasp-ecppll`` for ``clkin_mhz`` -> ``clkout_mhz`` and return the settings.

    With ``clkout1_mhz`` the PLL also makes that frequency on its secondary output ``CLKOS`` (the
    standalone top's pixel clock beside the 5× shift clock); its real frequency is in
    ``attrs["FREQUENCY_PIN_CLKOS"]``.

    Raises
    ------
    UserError
        If ecppll cannot make that frequency (it reports an error) or is missing.
    """
    exe = tool_path("yowasp-ecppll")
    with tempfile.TemporaryDirectory(prefix="avatargan-pll-") as tmp:
        # ecppll (WebAssembly) can only write below its working folder: give it a relative name.
        cmd = [exe, "-i", f"{clkin_mhz:g}", "-o", f"{clkout_mhz:g}", "-f", "pll.v"]
        if clkout1_mhz is not None:
            cmd += ["--clkout1", f"{clkout1_mhz:g}"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        out = Path(tmp) / "pll.v"
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"ecppll cannot make {clkout_mhz:g} MHz from {clkin_mhz:g} MHz: {last}")
        cfg = parse_ecppll_verilog(out.read_text())
    if abs(cfg.clkout_mhz - clkout_mhz) > 0.02 * clkout_mhz:
        raise UserError(f"ecppll's nearest frequency to {clkout_mhz:g} MHz is {cfg.clkout_mhz:g} MHz")
    if clkout1_mhz is not None:
        p = cfg.params
        real1 = cfg.clkout_mhz * p["CLKOP_DIV"] / p["CLKOS_DIV"] if "CLKOS_DIV" in p else None
        if real1 is None or abs(real1 - clkout1_mhz) > 1e-3 * clkout1_mhz:
            raise UserError(f"ecppll cannot make {clkout1_mhz:g} MHz on CLKOS beside {clkout_mhz:g} MHz "
                            f"(got {real1!r})")
    return cfg


def fastest_pll_at_or_below(fmax_mhz: float, clkin_mhz: float = 25.0) -> PLLConfig:
    """The fastest CLKOP frequency ecppll makes from ``clkin_mhz`` at or below ``fmax_mhz``, searched
    downwards in 0.5 MHz steps (ecppll picks the nearest it can make to each request).

    Raises
    ------
    UserError
        If there is none from ``fmax_mhz`` down to 10 MHz.
    """
    import math

    f = math.floor(fmax_mhz * 2) / 2
    while f >= 10.0:
        try:
            cfg = ecppll_config(clkin_mhz, f)
        except UserError:
            cfg = None
        if cfg is not None and cfg.clkout_mhz <= fmax_mhz:
            return cfg
        f -= 0.5
    raise UserError(f"the PLL makes no clock at or below {fmax_mhz:.1f} MHz from {clkin_mhz:g} MHz")


#: The EHXPLLL configuration words the divisors set, as nextpnr-ecp5 writes them (ecp5/bitstream.cc):
#: word -> (parameter, value offset, bits). Every other PLL setting ecppll makes is the same for any
#: CLKOP-only frequency (:func:`ecppll_config`'s enums and attributes).
_DIVISOR_WORDS = {
    "CLKI_DIV": ("CLKI_DIV", -1, 7),
    "CLKFB_DIV": ("CLKFB_DIV", -1, 7),
    "CLKOP_DIV": ("CLKOP_DIV", -1, 7),
    "CLKOP_CPHASE": ("CLKOP_CPHASE", 0, 7),
    "CLKOP_FPHASE": ("CLKOP_FPHASE", 0, 3),
}


def pll_words(cfg: PLLConfig) -> dict:
    """The textual-configuration words (``word: NAME BITS``, most significant bit first) that
    nextpnr-ecp5 writes for ``cfg``'s divisors and output phase."""
    out = {}
    for word, (param, offset, bits) in _DIVISOR_WORDS.items():
        value = int(cfg.params.get(param, 0)) + offset
        if not 0 <= value < 2 ** bits:
            raise ValueError(f"PLL parameter {param}={cfg.params.get(param)} does not fit its {bits}-bit word")
        out[word] = format(value, f"0{bits}b")
    return out


def set_pll_words(config: str, old: PLLConfig, new: PLLConfig) -> str:
    """``config`` (nextpnr-ecp5's ``--textcfg`` output) with the EHXPLLL made for ``old`` set to
    ``new``'s divisors: how a routed design gets the clock its paths meet without routing again (the
    PLL's divisors change no route and no delay; nextpnr's timing does not depend on them).

    The PLL is found as the one EHXPLLL tile group whose divisor words are ``old``'s; its other
    settings are left as they are.

    Raises
    ------
    ValueError
        If no EHXPLLL tile group, or more than one, holds ``old``'s words, or ``old`` and ``new``
        differ in anything but their divisors and phases (so the words would not say all).
    """
    fixed = {k: v for k, v in old.params.items() if k not in {p for p, _, _ in _DIVISOR_WORDS.values()}}
    fixed_new = {k: v for k, v in new.params.items() if k not in {p for p, _, _ in _DIVISOR_WORDS.values()}}
    if fixed != fixed_new or old.attrs.get("ICP_CURRENT") != new.attrs.get("ICP_CURRENT") or \
            old.attrs.get("LPF_RESISTOR") != new.attrs.get("LPF_RESISTOR"):
        raise ValueError("the two PLL configurations differ in more than their divisors")
    want, put = pll_words(old), pll_words(new)
    lines = config.split("\n")
    groups, start = [], None
    for i, line in enumerate(lines + [""]):
        if line.startswith("."):
            if start is not None:
                groups.append((start, i))
            start = i
        elif not line.strip() and start is not None:
            groups.append((start, i))
            start = None
    hits = []
    for a, b in groups:
        body = lines[a + 1:b]
        if "enum: MODE EHXPLLL" not in body:
            continue
        words = dict(l.split()[1:3] for l in body if l.startswith("word: ") and len(l.split()) == 3)
        if all(words.get(k) == v for k, v in want.items()):
            hits.append((a, b))
    if len(hits) != 1:
        raise ValueError(f"{len(hits)} EHXPLLL tile groups hold the expected PLL words (need exactly one)")
    a, b = hits[0]
    for i in range(a + 1, b):
        parts = lines[i].split()
        if lines[i].startswith("word: ") and len(parts) == 3 and parts[1] in put:
            lines[i] = f"word: {parts[1]} {put[parts[1]]}"
    return "\n".join(lines)
