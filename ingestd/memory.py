"""The daemon's heap kept to what it uses (glibc's ``mallopt`` and ``malloc_trim``).

glibc gives each thread that allocates at once with another an arena of its own (up to
8 per core) and keeps what a thread frees there for that arena's next allocations. The
daemon's threads (the store thread, asyncio's ``to_thread`` pool) all work SQLite and
lxml, so each arena grows to the largest moment its thread has had: RSS that climbs for
the first minutes of a run while nothing in use grows (bench/RESULTS.md, issue 19). The
bound is the arenas' high-water marks, not a leak. ``limit_arenas`` makes the threads
share few arenas (their free space serves each other); ``give_back`` returns whole
free pages, about a millisecond per MB given back. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

#: Arenas the daemon's threads share (glibc's default: up to 8 per core). One arena
#: kept the soak's RSS flat; glibc's per-thread cache spares most allocations its lock.
DAEMON_ARENAS = 1
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.cache
def _libc(name: str) -> Callable[..., Any] | None:
    try:
        function: Callable[..., Any] = getattr(ctypes.CDLL(None), name)  # the process's libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return function


def limit_arenas(count: int = DAEMON_ARENAS) -> bool:
    """Let threads started from now on share at most ``count`` malloc arenas; call it
    before the first thread starts. True if glibc took it."""
    mallopt = _libc("mallopt")
    return bool(mallopt(_M_ARENA_MAX, count)) if mallopt is not None else False


def give_back() -> bool:
    """Return the heap's free pages to the system; True if any went back."""
    trim = _libc("malloc_trim")
    return bool(trim(0)) if trim is not None else False
