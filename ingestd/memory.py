"""Freed heap memory given back to the system (glibc's ``malloc_trim``).

glibc keeps what a thread frees for that thread's next allocations, in an arena per
thread (at most 8 per core). The daemon's threads (the store thread, asyncio's
``to_thread`` pool) all work SQLite and lxml, so each arena stays at the largest moment
its thread has had: RSS that grows for the first minutes of a run while nothing in use
grows, and stays up after a burst such as the indexer's start-up catch-up
(bench/RESULTS.md, issue 19). That is a bound (the arenas' high-water marks), not a
leak; ``give_back`` returns the free pages, about a millisecond per MB given back (so
the daemon calls it from a thread, off its event loop). Elsewhere than glibc it does
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
