"""Freed heap memory given back to the system (glibc's ``malloc_trim``).

glibc keeps what a thread frees for that thread's next allocations, in an arena per
thread. The daemon's threads (the store thread, asyncio's ``to_thread`` pool) all work
SQLite and lxml, so each arena stays at the largest moment its thread has had: in a
1,000-feed soak the free part of the heap grew 2-3 MB over the first minutes, with
nothing in use growing (Python's blocks, SQLite's own memory), and it stayed about
35 MB after the indexer's start-up catch-up of 20,000 entries. The bound is the arenas'
high-water marks (at most 8 per core, one per thread here), not a leak; ``give_back``
returns their free pages, a few milliseconds each time. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # the process's own libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return trim


def give_back() -> bool:
    """Return the heap's free pages to the system; True if any went back."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
