"""The one result type of every simulation of the Generator (amaranth.sim, cocotb on Verilator, the C++ fast path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SimResult", "verdict_message"]


@dataclass
class SimResult:
    """What one simulation run produced.

    The Verilator paths (:func:`sim.runner.run`, :func:`sim.runner.soak`) compare every pixel with the
    golden model and fill the verdict; the amaranth.sim driver (:func:`sim.rtlsim.simulate`) only
    records what arrived (``passed`` is None: its callers compare).
    """

    #: Hardware pixels ``(N, 3, 32, 32)`` by plane, y, x: uint8 from the Verilator paths; int64 from
    #: amaranth.sim with ``-1`` where nothing arrived. None if not collected.
    pixels: np.ndarray | None
    #: Cycles per avatar: first z word taken to last pixel taken, inclusive (amaranth.sim: the ``cycles`` port).
    cycles: list[int] = field(default_factory=list)
    #: Cycles per avatar read from the design's ``cycles`` port after each avatar.
    dut_cycles: list[int] = field(default_factory=list)
    #: True when every pixel of every avatar matched and no check failed; None when not compared.
    passed: bool | None = None
    #: Human-readable summary: first mismatch (avatar, plane, x, y), total mismatches, failed checks.
    message: str = ""
    #: Expected pixels from the golden model ``(N, 3, 32, 32)`` uint8.
    expected: np.ndarray | None = None
    #: Number of mismatching transfers over all avatars and planes.
    mismatches: int = 0
    #: Wall-clock seconds of the simulation loop (excluding start-up and the golden model).
    sim_wall_s: float = 0.0
    #: CPU seconds of the simulator over the same loop (load-independent speed measure).
    sim_cpu_s: float = 0.0
    #: Run folder (``result.json``, pixels, waves if requested).
    run_dir: Path | None = None
    #: The wave file (FST, or VCD where liblz4-dev is missing), if waves were requested.
    waves: Path | None = None
    #: ``(plane, y, x, last)`` of each transfer, in order (amaranth.sim only).
    order: list = field(default_factory=list)
    #: Per avatar, the activation buffers after it finished (amaranth.sim with ``peek_buffers``).
    buffers: list = field(default_factory=list)
    #: Everything else the run reported (its ``result.json``).
    raw: dict = field(default_factory=dict)

    @property
    def rgb(self) -> np.ndarray | None:
        """The hardware pixels (the amaranth.sim driver's name for :attr:`pixels`)."""
        return self.pixels


def verdict_message(avatars: int, received: int, mismatches: int, first: dict | None, extra: int = 0) -> str:
    """One line: ``bit-exact: ...``, or the first mismatch, the count, missing and extra pixels.

    ``first`` has ``avatar``, ``plane``, ``x``, ``y``, ``expected_pixel`` and ``got`` (the decoded word).
    Failed checks of the run (time-out, done pulses, ...) are appended by the caller, ``"; "``-separated.
    """
    per = 3 * 32 * 32
    if first is None and extra == 0 and received == avatars:
        return f"bit-exact: {avatars} avatar(s), {avatars * per} pixels, 0 mismatches"
    parts = []
    if first is not None:
        g = first["got"]
        parts.append(
            f"first mismatch: avatar {first['avatar']}, plane {'RGB'[first['plane']]} ({first['plane']}), "
            f"x {first['x']}, y {first['y']}: expected pixel {first['expected_pixel']}, got pixel {g['pixel']} "
            f"(x {g['x']}, y {g['y']}, plane {g['plane']}, last {g['last']})")
    parts.append(f"{mismatches} mismatching pixel(s) of {received * per} received")
    if received < avatars:
        parts.append(f"only {received} of {avatars} avatars received")
    if extra:
        parts.append(f"{extra} unexpected extra pixel(s) after the last avatar")
    return "; ".join(parts)
