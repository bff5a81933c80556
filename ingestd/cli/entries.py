"""``ingestd entries``: list entries, show one with its revisions, and the entries whose
article page failed (list them, retry them)."""

from __future__ import annotations

import argparse
import difflib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from ingestd.cli.runtime import open_runtime
from ingestd.cli.search import add_search, search
from ingestd.config import Settings
from ingestd.errors import ConfigError
from ingestd.store import EntryRecord, FailedEntry, RevisionRecord, Store

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_arguments(sub: Subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``entries`` command and its actions; returns its parser."""
    cmd = sub.add_parser(
        "entries",
        aliases=["entry"],
        parents=[common],
        help="list entries, show revisions, list and retry failed pages",
        description="The archived entries, their revisions, and the entries ingestd could not "
        "archive yet because their article page failed.",
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list archived entries (id, revisions, file)",
        description="The entries of the named feeds (or all), newest file first.",
    )
    listing.add_argument("names", nargs="*", metavar="FEED")
    listing.add_argument("--revised", action="store_true", help="only entries with revisions")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    show = actions.add_parser(
        "show",
        parents=[common],
        help="show one entry; --revisions adds every revision as a unified diff",
        description="One entry: its feed, title, link, file and revisions.",
    )
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument(
        "--revisions", action="store_true", help="each revision's changes as a unified diff"
    )
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
    add_search(actions, common)
    return cmd


def command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``entries`` action; the exit status."""
    names = list(getattr(args, "names", []))  # `show` names no feed
    unknown = sorted(set(names) - {f.spec.name for f in settings.feeds})
    if unknown:
        raise ConfigError(f"no feed named {', '.join(map(repr, unknown))} in {settings.path}")
    runtime = open_runtime(settings, sync=False)
    try:
        if args.action == "retry":
            return _retry(runtime.store, names)
        if args.action == "search":
            return search(runtime, args)
        if args.action == "list":
            return _list(runtime.store, names, revised=args.revised, as_json=args.json)
        if args.action == "show":
            return _show(runtime.store, settings.archive_dir, args.id, revisions=args.revisions)
        return _failed(runtime.store, names, as_json=args.json)
    finally:
        runtime.close()


def _list(store: Store, names: list[str], *, revised: bool, as_json: bool) -> int:
    rows = [_entry_row(name, entry) for name, entry in store.list_entries(names, revised=revised)]
    if as_json:
        print(json.dumps({"entries": rows}, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['id']}\t{row['feed']}\t{row['revisions']}\t{row['path']}\t{row['title']}")
    return 0


def _entry_row(feed: str, entry: EntryRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "feed": feed,
        "title": entry.title,
        "link": entry.link,
        "published": _iso(entry.published_at),
        "revisions": entry.current_revision,
        "path": entry.archive_path,
    }


def _show(store: Store, archive_dir: Path, entry_id: int, *, revisions: bool) -> int:
    entry = store.get_entry(entry_id)
    if entry is None:
        raise ConfigError(f"no entry with id {entry_id} in {store.target}")
    feed = store.get_feed_by_id(entry.feed_id)
    print(f"entry {entry.id} of feed {feed.name if feed else entry.feed_id}")
    for key in ("title", "link", "guid", "archive_path", "current_revision"):
        print(f"  {key}: {getattr(entry, key)}")
    print(f"  published: {_iso(entry.published_at)}; first seen: {_iso(entry.first_seen_at)}")
    if revisions:
        history = store.revisions(entry.id)
        for line in revision_diffs(history, _archived_text(archive_dir, entry)):
            print(line, end="")
    return 0


def _archived_text(archive_dir: Path, entry: EntryRecord) -> str | None:
    if not entry.archive_path:
        return None
    try:
        return (archive_dir / entry.archive_path).read_text(encoding="utf-8")
    except OSError:
        return None


#: Where a format-A content line is broken for reading a diff: after block-level tags.
_BLOCK_END = re.compile(
    r"(</(?:p|div|h[1-6]|li|ul|ol|blockquote|figure|table|tr)>|<br\s*/?>)(?!\n|$)"
)


def revision_diffs(history: list[RevisionRecord], archived: str | None) -> Iterator[str]:
    """Each revision's header and its unified diff against the one before.

    Revision 1 without a text of its own is the archive file (``archived``). The long
    content line of format A is broken after block-level tags for reading; the texts
    themselves are kept exactly.
    """
    previous: tuple[str, list[str]] | None = None
    for revision in history:
        text = revision.text if revision.text is not None or revision.revision > 1 else archived
        label = f"revision {revision.revision} ({_iso(revision.seen_at)})"
        if text is None:
            yield f"{label}: text not kept (recorded before ingestd kept revision texts)\n"
            previous = None
            continue
        lines = [line + "\n" for line in _BLOCK_END.sub("\\1\n", text).splitlines()]
        if previous is None:
            yield f"{label}:\n" + "".join(f"  {line}" for line in lines)
        else:
            yield from difflib.unified_diff(previous[1], lines, previous[0], label)
        previous = (label, lines)


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
