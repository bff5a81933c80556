"""``ingestd entries search TEXT``: the entries whose title or archived text holds TEXT.

Entries not in the search index yet (written since the daemon last indexed, or archived
before the index existed) are indexed first, so the answer covers the whole archive.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ingestd import indexer
from ingestd.cli.runtime import Runtime
from ingestd.store import EntryRecord

#: Characters of context shown on each side of a match.
CONTEXT = 30


def add_search(actions: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    """The ``entries search`` action."""
    search = actions.add_parser(
        "search",
        parents=[common],
        help="find entries by a phrase of their title or text (any script, Chinese included)",
        description="Entries whose title or archived text holds TEXT (ASCII case ignored), "
        "newest first, with the text around the match.",
    )
    search.add_argument("text", metavar="TEXT")
    search.add_argument(
        "--feed", action="append", default=[], dest="names", metavar="NAME",
        help="only this feed (repeatable)",
    )  # fmt: skip
    search.add_argument(
        "--since", type=moment, metavar="DATE",
        help="only entries first seen at or after DATE (ISO 8601; UTC without a zone)",
    )  # fmt: skip
    search.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (50)")
    search.add_argument("--json", action="store_true", help="print one JSON object")


def search(runtime: Runtime, args: argparse.Namespace) -> int:
    """Run ``entries search``; 0 when something was found, 1 when nothing was."""
    root = runtime.settings.archive_dir
    added = indexer.catch_up(runtime.store, root)
    if added:
        print(f"indexed {added} entries new to the search index", file=sys.stderr)
    phrase = args.text.strip()
    found = runtime.store.search_entries(phrase, args.names, since=args.since, limit=args.limit)
    texts = runtime.store.indexed_texts([entry.id for _feed, entry in found])
    rows = [_row(feed, entry, texts.get(entry.id, ""), phrase) for feed, entry in found]
    if args.json:
        print(json.dumps({"entries": rows}, ensure_ascii=False))
    else:
        for row in rows:
            print(f"{row['id']}\t{row['feed']}\t{row['path']}\t{row['title']}")
            if row["context"]:
                print(f"\t…{row['context']}…")
        print(f"{len(rows)} entries found", file=sys.stderr)
    return 0 if rows else 1


def _row(feed: str, entry: EntryRecord, indexed: str, phrase: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "feed": feed,
        "title": entry.title,
        "link": entry.link,
        "published": entry.published_at.isoformat() if entry.published_at else None,
        "path": entry.archive_path,
        "context": _context(indexed, phrase),
    }


def _context(indexed: str, phrase: str) -> str:
    """The text around the first match in the entry's indexed text (its file's words, as
    the index holds them; empty: the title matched)."""
    text = " ".join(indexed.split())
    at = text.lower().find(phrase.lower())
    if at < 0:
        return ""
    return text[max(0, at - CONTEXT) : at + len(phrase) + CONTEXT]


def moment(value: str) -> datetime:
    """An ISO 8601 date or time argument, UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
