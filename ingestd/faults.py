"""Named crash points: the crash test makes ingestd SIGKILL itself at a chosen one.

``INGESTD_CRASH_AT=NAME`` (or ``NAME@N``: the N-th time it is reached, from 1) arms one
point; ``config.crash_point`` reads the variable and the command line arms it. The
points sit where a crash tests the promise of start-up repair (files are written before
their rows, at most one batch at a time):

    first-poll-written  a feed's first poll: its pool step has written the files
    batch-synced        a batch's files are named and synced, its rows not committed
    batch-committed     a batch's rows are committed
    raw-half-written    half of a raw capture's WARC record is appended (``ingestd.capture``)

Unarmed, reaching a point costs one comparison. A test that kills from outside can
only hope to land in such a window; this hook lands in it whatever the machine's load.
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = frozenset({"first-poll-written", "batch-synced", "batch-committed", "raw-half-written"})

_lock = threading.Lock()
_armed: tuple[str, int] | None = None
_reached = 0


def arm(spec: str) -> None:
    """Arm the point ``NAME`` or ``NAME@N``; ValueError names a point that does not exist."""
    global _armed, _reached
    name, _, count = spec.partition("@")
    if name not in POINTS or (count and not count.isdigit()) or count == "0":
        raise ValueError(f"no crash point {spec!r} (known: {', '.join(sorted(POINTS))}[@N])")
    with _lock:
        _armed, _reached = (name, int(count or 1)), 0


def armed(name: str) -> bool:
    """Whether ``name`` is the armed point (for a point that needs a write split in two)."""
    return _armed is not None and _armed[0] == name


def crash_point(name: str) -> None:
    """SIGKILL this process if ``name`` is the armed point, reached for the N-th time."""
    global _reached
    if _armed is None or _armed[0] != name:
        return
    with _lock:
        _reached += 1
        if _reached == _armed[1]:
            os.kill(os.getpid(), signal.SIGKILL)
