"""The floor every other room stands on: errors, file output, hashing, the hardware contract.

``base`` imports nothing of this project; ``golden``, ``rtl``, ``gen``, ``sim`` and the command line
(``avatargan``) all may import it (docs/ARCHITECTURE.md, "Rooms and import directions").
"""

__version__ = "0.1.0"
