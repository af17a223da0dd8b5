"""Process environment changes that are undone: one helper for every place that needs one."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set each variable of ``values`` (``None``: remove it) for the duration of the block.

    Afterwards every named variable has its previous value again, or is absent if it was absent,
    also when the block raises.
    """
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


__all__ = ["environment"]
