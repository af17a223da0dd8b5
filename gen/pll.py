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

__all__ = ["PLLConfig", "ecppll_config", "parse_ecppll_verilog"]


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
