"""What commands print: fetch results and feed status, as text, a table or JSON."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from ingestd.store import FailureCounts, FeedRecord, Store
from ingestd.types import PollOutcome, PollResult
from ingestd.upkeep import percentile


def fetch_summary(results: list[PollResult], seconds: float) -> dict[str, Any]:
    """The JSON summary of one ``ingestd fetch``."""
    return {
        "feeds": len(results),
        "ok": sum(r.outcome == PollOutcome.OK for r in results),
        "not_modified": sum(r.outcome == PollOutcome.NOT_MODIFIED for r in results),
        "failed": sum(r.outcome == PollOutcome.FAILED for r in results),
        "busy": sum(r.outcome == PollOutcome.BUSY for r in results),
        "new_entries": sum(r.new_entries for r in results),
        "archived": sum(r.archived for r in results),
        "errors": [{"feed": r.feed, "error": r.error} for r in results if r.error],
        # Entries whose article page failed in this run (the run exits 1), and the
        # feeds' entries still waiting for a retry or given up after it.
        "entries_failed": sum(r.pages_failed for r in results),
        "entries_waiting": sum(r.entries_waiting for r in results),
        "entries_given_up": sum(r.entries_given_up for r in results),
        "entry_errors": [
            {
                "feed": r.feed,
                "link": p.link,
                "error": p.error,
                "attempts": p.attempts,
                "next_retry": _iso(p.next_retry_at),
                "given_up": p.given_up,
            }
            for r in results
            for p in r.page_problems
        ],
        "warnings": [{"feed": r.feed, "warning": w} for r in results for w in r.warnings],
        "seconds": round(seconds, 3),
        # CPU time spent parsing feed documents (feedparser and the conversion of its
        # result), summed over the processes that did it.
        "parse_cpu_seconds": round(sum(r.parse_seconds for r in results), 3),
    }


def print_fetch(results: list[PollResult], summary: dict[str, Any]) -> None:
    """One line per feed, then the summary line."""
    width = max([len(r.feed) for r in results] + [4])
    for r in results:
        line = f"{r.feed:<{width}}  {r.outcome:<12}  {r.new_entries} new, {r.archived} archived"
        if r.revised:
            line += f", {r.revised} revised"
        if r.pages_failed:
            line += f", {r.pages_failed} pages failed"
        if r.entries_waiting or r.entries_given_up:
            line += f"; {_unarchived(r.entries_waiting, r.entries_given_up)}"
        if r.error:
            line += f"  ({r.error})"
        print(line)
        for warning in r.warnings:
            print(f"{'':<{width}}  warning: {warning}")
    print(
        f"{summary['feeds']} feeds: {summary['ok']} ok, {summary['not_modified']} not modified, "
        f"{summary['failed']} failed; {summary['archived']} entries archived "
        f"in {summary['seconds']:.1f} s"
    )
    if summary["entries_failed"]:
        print(
            f"{summary['entries_failed']} entries not archived: their pages failed "
            "(`ingestd entries failed` lists every entry waiting or given up)"
        )


def _unarchived(waiting: int, given_up: int) -> str:
    parts = [f"{waiting} waiting for a retry"] if waiting else []
    parts += [f"{given_up} given up"] if given_up else []
    return ", ".join(parts)


def feed_state(feed: FeedRecord, unarchived: FailureCounts | None = None) -> str:
    """ok, not modified, failing since ..., or disabled (reason); then how many of its
    entries are not archived because their pages failed, if any."""
    state = _poll_state(feed)
    if unarchived is not None and (unarchived.waiting or unarchived.given_up):
        waiting, given_up = unarchived.waiting, unarchived.given_up
        state += f"; {waiting + given_up} entries not archived ({_unarchived(waiting, given_up)})"
    return state


def _poll_state(feed: FeedRecord) -> str:
    if not feed.enabled:
        return f"disabled ({feed.disabled_reason or 'no reason'})"
    if feed.consecutive_errors:
        since = feed.failing_since.isoformat(timespec="seconds") if feed.failing_since else "?"
        return f"failing since {since}"
    if feed.last_fetch_at is None:
        return "never polled"
    if feed.last_status == 304:
        return "not modified"
    return "ok"


def status_rows(store: Store, now: datetime) -> list[dict[str, Any]]:
    """One row per stored feed, for ``ingestd status``."""
    counts = store.entry_counts()
    by_daemon = store.archived_by_counts()
    unarchived = store.failure_counts()
    rows = []
    for feed in store.list_feeds():
        failed = unarchived.get(feed.name, FailureCounts())
        rows.append(
            {
                "name": feed.name,
                "url": feed.url,
                "moved_from": feed.original_url if feed.original_url != feed.url else None,
                "state": feed_state(feed, failed),
                "enabled": feed.enabled,
                "last_fetch": _iso(feed.last_fetch_at),
                "last_status": feed.last_status,
                "consecutive_errors": feed.consecutive_errors,
                "last_error": feed.last_error,
                "entries": counts.get(feed.name, 0),
                "entries_waiting": failed.waiting,
                "entries_given_up": failed.given_up,
                "last_entry_error": failed.last_error,
                "next_entry_retry": _iso(failed.next_retry_at),
                "archived_by": by_daemon.get(feed.name, {}),
                "polled_by": feed.lease_owner
                if feed.lease_expires_at and feed.lease_expires_at > now
                else None,
                # A disabled feed is not checked at all, whatever its stored next check.
                "next_check": _iso(feed.next_check_at) if feed.enabled else None,
                "due": feed.enabled and (feed.next_check_at is None or feed.next_check_at <= now),
            }
        )
    return rows


def schedule_summary(store: Store, now: datetime) -> dict[str, Any]:
    """How far behind the daemons are: feeds due and waiting, how long the oldest has
    waited, and the start delay (due -> polled) of the last 1,000 polls."""
    lag = store.schedule_lag(now)
    delays = store.recent_start_delays(1000)
    oldest = lag.oldest_due_at
    return {
        "due_waiting": lag.due,
        "oldest_due_seconds": None if oldest is None else round((now - oldest).total_seconds(), 1),
        "start_delay_p50": _rounded(percentile(delays, 0.5)),
        "start_delay_p99": _rounded(percentile(delays, 0.99)),
        "polls_measured": len(delays),
    }


def schedule_line(summary: dict[str, Any]) -> str:
    """``schedule: 3 feeds due, the oldest for 4.2 s; start delay p50 0.05 s, p99 1.2 s``."""
    if summary["due_waiting"]:
        due = (
            f"{summary['due_waiting']} feeds due, the oldest for "
            f"{summary['oldest_due_seconds']:g} s"
        )
    else:
        due = "no feed waiting"
    if summary["polls_measured"]:
        delay = (
            f"start delay p50 {summary['start_delay_p50']:g} s, p99 "
            f"{summary['start_delay_p99']:g} s over the last {summary['polls_measured']} polls"
        )
    else:
        delay = "no start delay measured yet"
    return f"schedule: {due}; {delay}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


#: The plain form's columns, tab-separated, for scripts (``--json`` has every field).
STATUS_COLUMNS = (
    "name", "state", "entries", "last_fetch", "last_status", "next_check", "last_error",
)  # fmt: skip


def print_status(
    rows: list[dict[str, Any]], now: datetime, schedule: dict[str, Any] | None = None
) -> None:
    """A table on a terminal (times relative to ``now``), tab-separated lines otherwise;
    then the schedule line (on stderr in the tab-separated form, which scripts read)."""
    if sys.stdout.isatty():
        _status_table(rows, now)
        if schedule is not None:
            print(schedule_line(schedule))
        return
    print("\t".join(STATUS_COLUMNS))
    for row in rows:
        print("\t".join("-" if row[c] is None else str(row[c]) for c in STATUS_COLUMNS))
    if schedule is not None:
        print(schedule_line(schedule), file=sys.stderr)


def _status_table(rows: list[dict[str, Any]], now: datetime) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for title in ("feed", "state", "entries", "last poll", "HTTP", "next poll", "last error"):
        # Wrapped, never cut: a cut time or error is one that cannot be read.
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"], row["state"], str(row["entries"]),
            _relative(row["last_fetch"], now), str(row["last_status"] or "-"),
            "due" if row["due"] else _relative(row["next_check"], now),
            row["last_error"] or row["last_entry_error"] or "",
        )  # fmt: skip
    Console().print(table)


def _relative(iso: str | None, now: datetime) -> str:
    """``5m ago``, ``in 25m``, ``3d ago``; ``-`` for no time."""
    if iso is None:
        return "-"
    seconds = (datetime.fromisoformat(iso) - now).total_seconds()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            amount = f"{span / size:.0f}{unit}"
            break
    else:
        return "now"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
