"""Host side of the board's serial protocol (see :mod:`rtl.board`): request bytes, reply decoding."""

from __future__ import annotations

import numpy as np

from base.errors import UserError
from rtl.board import CMD_Z, PIXELS

__all__ = ["encode_request", "reply_size", "decode_reply"]


def encode_request(zq) -> bytes:
    """The request for one avatar: ``CMD_Z`` then each ``S(16,12)`` code as 2 bytes little-endian.

    Raises
    ------
    UserError
        If ``zq`` is not a 1-D array of integers in the 16-bit signed range.
    """
    z = np.asarray(zq)
    if z.ndim != 1 or z.size == 0 or not np.issubdtype(z.dtype, np.integer):
        raise UserError(f"z codes must be a non-empty 1-D integer array, got {z.dtype} {z.shape}")
    if z.min() < -(1 << 15) or z.max() >= (1 << 15):
        raise UserError("z codes must lie in the S(16,12) range -32768..32767")
    return bytes([CMD_Z]) + z.astype("<i2").tobytes()


def reply_size() -> int:
    """Bytes in one reply: 3072 pixels and the 4-byte cycle count."""
    return PIXELS + 4


def decode_reply(data: bytes) -> tuple[np.ndarray, int]:
    """Split a reply into the ``(3, 32, 32)`` uint8 planes (R, G, B) and the cycle count.

    Raises
    ------
    UserError
        If ``data`` is not exactly :func:`reply_size` bytes (a short read from the board).
    """
    if len(data) != reply_size():
        raise UserError(f"the board sent {len(data)} bytes, expected {reply_size()} (3072 pixels + 4)")
    rgb = np.frombuffer(bytes(data[:PIXELS]), dtype=np.uint8).reshape(3, 32, 32).copy()
    cycles = int.from_bytes(bytes(data[PIXELS:]), "little")
    return rgb, cycles
