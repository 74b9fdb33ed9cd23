"""Give freed memory back to the operating system after a tick.

A tick decodes blocks and builds arrays that are freed when it ends, but glibc's allocator
keeps the freed pages for reuse, so a long-running service would idle at its peak.
``malloc_trim(0)`` returns them; elsewhere (musl, macOS) it is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

__all__ = ["release_memory"]


def _trimmer() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_TRIM = _trimmer()


def release_memory() -> None:
    """Collect cycles, then return the allocator's free pages (glibc only)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
