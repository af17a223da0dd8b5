"""TMDS coding of DVI 1.0 (section 3.2.2, the encoder flowchart), written from the specification.

The reference for ``rtl/tmds.py`` and the decoder the video tests use. Bit 0 of a 10-bit symbol
is sent first.

Encoding of a data byte ``D`` with running disparity ``cnt`` (ones minus zeros sent so far on the
channel, an even number):

1. transition minimisation: ``q_m[0] = D[0]``, then ``q_m[i] = q_m[i−1] XNOR D[i]`` if ``D`` has more
   than four ones (or exactly four and ``D[0] = 0``), with ``q_m[8] = 0``; else XOR, with ``q_m[8] = 1``;
2. DC balance: if ``cnt = 0`` or ``q_m[0:8]`` has as many ones as zeros, bit 9 = ``¬q_m[8]``, bits
   0..7 = ``q_m[0:8]`` inverted when ``q_m[8] = 0``; otherwise the byte is inverted (bit 9 = 1) when
   that brings ``cnt`` towards 0, and the disparity is updated with every bit sent;
3. during blanking (DE low) one of four control symbols carries ``(C1, C0)`` and ``cnt`` returns to 0.
"""

from __future__ import annotations

__all__ = ["CTRL", "encode", "decode", "Encoder", "transitions"]

#: Control symbols (q_out[9:0]) for (C1, C0) = 00, 01, 10, 11.
CTRL = (0b1101010100, 0b0010101011, 0b0101010100, 0b1010101011)


def _ones(x: int, n: int) -> int:
    return sum((x >> i) & 1 for i in range(n))


def encode(d: int, de: int, c: int, cnt: int) -> tuple[int, int]:
    """One symbol: ``(q_out, new_cnt)`` for data byte ``d``, display enable ``de``, control ``c``
    (``C1 << 1 | C0``) and running disparity ``cnt``."""
    if not de:
        return CTRL[c & 3], 0
    d &= 0xFF
    n1d = _ones(d, 8)
    xnor = n1d > 4 or (n1d == 4 and (d & 1) == 0)
    q = d & 1
    for i in range(1, 8):
        prev = (q >> (i - 1)) & 1
        bit = (d >> i) & 1
        q |= ((1 - (prev ^ bit)) if xnor else (prev ^ bit)) << i
    q8 = 0 if xnor else 1
    n1 = _ones(q, 8)
    n0 = 8 - n1
    if cnt == 0 or n1 == n0:
        out9 = 1 - q8
        low = q if q8 else (~q & 0xFF)
        cnt = cnt + (n1 - n0 if q8 else n0 - n1)
        return (out9 << 9) | (q8 << 8) | low, cnt
    if (cnt > 0 and n1 > n0) or (cnt < 0 and n0 > n1):
        return (1 << 9) | (q8 << 8) | (~q & 0xFF), cnt + 2 * q8 + (n0 - n1)
    return (q8 << 8) | q, cnt - 2 * (1 - q8) + (n1 - n0)


class Encoder:
    """One channel's encoder with its running disparity."""

    def __init__(self):
        self.cnt = 0

    def __call__(self, d: int, de: int, c: int = 0) -> int:
        sym, self.cnt = encode(d, de, c, self.cnt)
        return sym


def decode(sym: int) -> tuple[str, int]:
    """``("ctrl", c)`` for a control symbol, ``("data", byte)`` otherwise (inverse of step 1 and 2).

    Raises ValueError for a 10-bit value outside 0..1023.
    """
    if not 0 <= sym < 1024:
        raise ValueError(f"a TMDS symbol is 10 bits, got {sym!r}")
    if sym in CTRL:
        return "ctrl", CTRL.index(sym)
    q = sym & 0xFF
    if (sym >> 9) & 1:
        q = ~q & 0xFF
    xor = (sym >> 8) & 1
    d = q & 1
    for i in range(1, 8):
        a, b = (q >> i) & 1, (q >> (i - 1)) & 1
        d |= ((a ^ b) if xor else (1 - (a ^ b))) << i
    return "data", d


def transitions(sym: int, n: int = 10) -> int:
    """Number of bit changes within the first ``n`` bits of a symbol."""
    return sum(((sym >> i) ^ (sym >> (i + 1))) & 1 for i in range(n - 1))
