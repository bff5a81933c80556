"""Pure rules of keeping up: how late the daemon's schedule runs and why, and how much
of the fetch log to keep. No I/O, no clock: the caller passes what it measured."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# --- keeping up with the schedule -----------------------------------------------------------

#: A daemon whose oldest due feed waits longer than this (seconds) is behind its schedule.
BEHIND_AFTER = 2.0


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The value below which ``fraction`` of ``values`` lie (nearest rank); None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, min(len(ordered), -(-len(ordered) * fraction // 1)))
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class Load:
    """What a daemon knows about why feeds may wait: its slots and its last lease."""

    running: int
    concurrency: int
    busy_hosts: tuple[str, ...] = ()  # hosts running their per-host share of polls
    lease_seconds: float = 0.0  # how long the last lease query took
    tick: float = 5.0


def behind_reason(lateness: float | None, load: Load) -> str | None:
    """Why a daemon is behind its schedule, or None when it is not.

    ``lateness`` is how long the oldest due feed nobody polls has been waiting. The
    reason names what held it back: every slot busy, hosts at their per-host limit, a
    slow database, else the process itself (a busy CPU or event loop).
    """
    if lateness is None or lateness <= max(BEHIND_AFTER, 0.0):
        return None
    if load.running >= load.concurrency:
        return (
            f"all {load.concurrency} slots busy: feeds fall due faster than polls end "
            "(raise [fetch] concurrency, or see which polls are slow)"
        )
    if load.busy_hosts:
        shown = ", ".join(load.busy_hosts[:3]) + (" ..." if len(load.busy_hosts) > 3 else "")
        return f"per-host limit: {shown} already run [fetch] per_host polls"
    if load.lease_seconds >= 1.0:
        return f"database slow: leasing due feeds took {load.lease_seconds:.1f} s"
    return (
        f"{load.running} of {load.concurrency} slots busy, yet due feeds wait: "
        "the daemon's process is slow (CPU-bound?)"
    )


# --- how much history to keep -------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """The ``[history]`` rule: every fetch of the last ``keep`` seconds, and at least the
    newest ``keep_last`` of each feed however old."""

    keep: float = 7 * 86400.0
    keep_last: int = 10


def history_cutoff(now: datetime, retention: Retention) -> datetime:
    """Fetch log rows started before this may go (a feed's newest ``keep_last`` stay)."""
    return now - timedelta(seconds=retention.keep)
