"""The CPU-bound steps of a poll, as functions a process pool can run.

Parsing a feed, identifying its entries, rendering archive files (``ingestd.render``)
and writing them are work on bytes and strings. The pipeline
sends them here through its executor (worker processes in production), so the
process that talks HTTP and writes the database only waits for the results, and
both cores are busy during a big poll.

Everything in and out is plain picklable data. The workers also write the archive
files (not synced; the store thread syncs and records them), so file texts never
travel back. This module imports only the pure stages and the archive folder: a pool
worker never loads the database or HTTP stacks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import ada_url

from ingestd import archive, decide, render
from ingestd.parse import parse_feed
from ingestd.types import EntryData, FeedSpec, ParsedFeed


@dataclass(frozen=True)
class ReadFeed:
    """A parsed feed document: its hints (``feed.entries`` is empty) and keyed entries."""

    feed: ParsedFeed
    keyed: tuple[decide.Keyed, ...]
    cpu_seconds: float = 0.0  # CPU time parsing took (feedparser and conversion), not identifying


def read_feed(content: bytes, headers: Mapping[str, str], base: str) -> ReadFeed:
    """Parse a feed document and give every entry its identity key and content hash.

    Relative item links are resolved against ``base`` (the feed's URL) first, so
    identities and files hold absolute links.
    """
    started = time.process_time()
    parsed = parse_feed(content, dict(headers))
    parse_seconds = time.process_time() - started
    entries = [
        replace(entry, link=absolute(base, entry.link)) if entry.link else entry
        for entry in parsed.entries
    ]
    keyed = tuple(decide.identify(entries))
    return ReadFeed(replace(parsed, entries=()), keyed, parse_seconds)


@dataclass(frozen=True)
class FirstRead:
    """A feed with nothing stored yet, parsed and written in one step (``read_new_feed``).

    ``written`` pairs each entry to archive (its ``content`` and ``summary`` dropped: the
    file holds them) with its file, oldest first. The files are temporaries: the
    pipeline names them one batch at a time, just before the batch's rows are committed
    (``archive.name_written``), so a crash never leaves more than one batch of files
    without rows. ``new_entries`` counts every entry of the document, also those beyond
    the per-poll cap.
    """

    feed: ParsedFeed
    written: tuple[tuple[decide.Keyed, str], ...]
    new_entries: int
    cpu_seconds: float = 0.0

    @property
    def files(self) -> list[tuple[str, None]]:
        """The temporaries written, without numbers yet."""
        return [(temporary, None) for _item, temporary in self.written]


def read_new_feed(
    content: bytes,
    headers: Mapping[str, str],
    base: str,
    root: Path,
    spec: FeedSpec,
    cap: int,
    fallback: datetime,
) -> FirstRead:
    """``read_feed`` and the rendering and writing of ``write_items`` in one step, for a
    feed with no stored entries.

    With nothing stored every entry is new, so no lookup stands between parsing and
    writing: the entries never travel to the main process and back, only what their
    rows record. At most ``cap`` entries, oldest first.
    """
    read = read_feed(content, headers, base)
    plan = decide.plan(read.keyed, {}, {})
    chosen = decide.archive_order(plan.new, fallback)[:cap]
    texts = render.render_items(spec, [k.entry for k in chosen], fallback)
    temporaries = archive.write_unnamed(root, spec.name, texts)
    light = [replace(k, entry=replace(k.entry, content="", summary="")) for k in chosen]
    return FirstRead(
        read.feed, tuple(zip(light, temporaries, strict=True)), len(plan.new), read.cpu_seconds
    )


def write_items(
    root: Path, next_id: int, spec: FeedSpec, entries: Sequence[EntryData], fallback: datetime
) -> list[tuple[str, int]]:
    """Render entries archived from the feed alone and write their files (not synced).

    Numbered down from ``next_id`` in the feed's folder; returns (relative path, id)
    per entry, in order (see ``archive.write_numbered``).
    """
    return archive.write_numbered(
        root, spec.name, next_id, render.render_items(spec, entries, fallback)
    )


@dataclass(frozen=True)
class PageWritten:
    """An entry archived from its page: its file, and the feed item's own text (revision 1
    of the entry, which the file, built from the page, does not hold)."""

    files: list[tuple[str, int]]
    item_text: str


def write_page(
    root: Path,
    next_id: int,
    spec: FeedSpec,
    entry: EntryData,
    fallback: datetime,
    page: bytes,
    content_type: str,
    url: str,
) -> PageWritten:
    """``render_page``, then its file written as ``write_items`` writes them."""
    text = render.render_page(spec, entry, fallback, page, content_type, url)
    files = archive.write_numbered(root, spec.name, next_id, [text])
    return PageWritten(files, render.render_items(spec, [entry], fallback)[0])


def absolute(base: str, link: str) -> str:
    """``link`` resolved against ``base``; kept as written when it cannot be parsed."""
    try:
        return str(ada_url.join_url(base, link.strip()))
    except ValueError:
        return link
