"""The ECP5 targets (boards) the flow knows: part, nextpnr options and the model each is meant for.

Read by the synthesis flow (:mod:`gen.synth`) and the floorplan's site probe (:mod:`gen.floorplan`);
the lanes per device are a contract fact (:data:`base.contract.DEVICE_LANES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from base.contract import DEFAULT_CHANNELS

__all__ = ["Device", "DEVICES"]


@dataclass(frozen=True)
class Device:
    """One ECP5 target.

    Attributes
    ----------
    key : str
        The ``--device`` name (``"85F"``).
    part : str
        Lattice part number.
    nextpnr_size : str
        nextpnr-ecp5's size option (``"--85k"``).
    package, speed : str
        Package (nextpnr name) and speed grade.
    channels : tuple
        The model configuration that this device is meant for (documentation and default).
    """

    key: str
    part: str
    nextpnr_size: str
    package: str
    speed: str
    channels: tuple


#: The two supported boards: the ULX3S 85F (default model) and the ULX3S 45F (smaller model:
#: 72 DP16KD and 72 MULT18X18D on the 45F against 208 and 156 on the 85F).
DEVICES = {
    "85F": Device("85F", "LFE5U-85F-6BG381C", "--85k", "CABGA381", "6", DEFAULT_CHANNELS),
    "45F": Device("45F", "LFE5U-45F-6BG381C", "--45k", "CABGA381", "6", (100, 64, 32, 16, 1)),
}
