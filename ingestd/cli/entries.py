"""``ingestd entries``: the entries whose article page failed, and retrying them."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, TypeAlias

from ingestd.cli.runtime import open_runtime
from ingestd.config import Settings
from ingestd.errors import ConfigError
from ingestd.store import FailedEntry, Store

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_arguments(sub: Subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``entries`` command and its actions; returns its parser."""
    cmd = sub.add_parser(
        "entries",
        aliases=["entry"],
        parents=[common],
        help="entries whose page failed; retry them",
        description="Entries ingestd could not archive yet because their article page failed.",
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    failed = actions.add_parser(
        "failed",
        parents=[common],
        help="list entries waiting for a page retry or given up",
        description="Every entry whose article page failed: attempts, next retry or why it "
        "was given up, and the last error.",
    )
    failed.add_argument("names", nargs="*", metavar="FEED")
    failed.add_argument("--json", action="store_true", help="print one JSON object")
    retry = actions.add_parser(
        "retry",
        parents=[common],
        help="try failed entries again at the next poll, given-up ones too",
        description="Make every failed entry of the named feeds (or of all) due now, given-up "
        "ones included, with their give-up span counted afresh; their feeds are due now.",
    )
    retry.add_argument("names", nargs="*", metavar="FEED")
    return cmd


def command(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``entries failed`` or ``entries retry``; the exit status."""
    names = list(args.names)
    unknown = sorted(set(names) - {f.spec.name for f in settings.feeds})
    if unknown:
        raise ConfigError(f"no feed named {', '.join(map(repr, unknown))} in {settings.path}")
    runtime = open_runtime(settings, sync=False)
    try:
        if args.action == "retry":
            return _retry(runtime.store, names)
        return _failed(runtime.store, names, as_json=args.json)
    finally:
        runtime.close()


def _retry(store: Store, names: list[str]) -> int:
    count = store.retry_failed_entries(names, datetime.now(UTC))
    print(f"{count} entries will be tried again at their feed's next poll (due now)")
    return 0


def _failed(store: Store, names: list[str], *, as_json: bool) -> int:
    rows = [_row(name, entry) for name, entry in store.failed_entries(names)]
    if as_json:
        print(json.dumps({"entries": rows}, ensure_ascii=False))
        return 0
    for row in rows:
        when = (
            f"given up: {row['given_up']}" if row["given_up"] else f"next try {row['next_retry']}"
        )
        print(f"{row['feed']}\t{row['link']}\t{row['attempts']} attempts\t{when}")
        print(f"\t{row['last_error']}")
    print(f"{len(rows)} entries not archived")
    return 0


def _row(feed: str, entry: FailedEntry) -> dict[str, Any]:
    failure = entry.failure
    return {
        "feed": feed,
        "link": entry.link,
        "title": entry.title,
        "attempts": failure.attempts,
        "first_failed": failure.first_failed_at.isoformat(timespec="seconds"),
        "last_failed": failure.last_failed_at.isoformat(timespec="seconds"),
        "next_retry": _iso(failure.next_retry_at),
        "given_up": failure.given_up_reason,
        "last_error": failure.last_error,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
