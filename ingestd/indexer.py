"""The search index kept in step with the archive: entries are indexed after they are
written, from their archive files, a chunk per transaction.

Why not in the write's own transaction: indexing an entry's text by trigrams costs
about 2.4 ms on SQLite (the corpus's Chinese articles), as much again as archiving it,
so a cold cycle of 20,000 entries would take several times as long. Instead the daemon
indexes in the background (``keep_in_step``), ``ingestd entries search`` first indexes
whatever is still missing (``catch_up``), and ``ingestd reprocess`` re-indexes what it
rewrites. An entry whose row is committed but not indexed yet is simply found in the
next catch-up: a crash loses nothing.

Blocking (files, database) but for ``keep_in_step``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path

from ingestd import archive
from ingestd.errors import ArchiveError, StorageError
from ingestd.store import Store

log = logging.getLogger("ingestd.indexer")

#: Entries indexed per transaction: about 0.1 s of SQLite's write lock.
CHUNK = 50
_TAG = re.compile(r"<[^>]*>")
#: Entries a background round indexes at most before it gives the loop a turn.
ROUND = 10 * CHUNK
#: Seconds the background indexer rests when nothing is left to index.
PAUSE = 5.0
#: Background rounds per look at every entry (about every 5 minutes; the others look
#: only at entries newer than the last one indexed).
FULL_LOOK_EVERY = 60


def findable(file_text: str) -> str:
    """The text an archive file is found by: its words, without HTML markup."""
    if "<" not in file_text:
        return file_text
    import lxml.etree  # on first use: a command that only lists entries never needs it
    import lxml.html

    try:
        return str(lxml.html.fromstring(file_text).text_content())
    except (ValueError, lxml.etree.ParserError):  # no element at all (only a comment)
        return _TAG.sub("", file_text)


def catch_up(
    store: Store,
    root: Path,
    *,
    chunk: int = CHUNK,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Index this folder's entries that have no index row yet; returns how many.

    At most ``limit`` (all when None); ``progress`` is told the count after each chunk.
    """
    return _index_from(store, root, 0, chunk, limit, progress)[0]


def _index_from(
    store: Store,
    root: Path,
    after: int,
    chunk: int = CHUNK,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> tuple[int, int]:
    """``catch_up`` of the entries above id ``after``: (how many, the last id indexed)."""
    archive_id = archive.archive_identity(root)
    done = 0
    while limit is None or done < limit:
        wanted = chunk if limit is None else min(chunk, limit - done)
        # From the last chunk's end: the rows before it are indexed (the query gives the
        # lowest ids first), and reading them again per chunk would make this quadratic.
        rows = store.unindexed(archive_id, wanted, after_id=after)
        if not rows:
            break
        store.index_texts(
            [(entry_id, title or "", _body(root, path)) for entry_id, path, title in rows]
        )
        done += len(rows)
        after = rows[-1][0]
        if progress is not None:
            progress(done)
    return done, after


def index_file(store: Store, entry_id: int, title: str | None, file_text: str) -> None:
    """Index one entry's new text (a reprocessed file)."""
    store.index_texts([(entry_id, title or "", findable(file_text))])


async def keep_in_step(
    store: Store, root: Path, pause: float = PAUSE, full_look_every: int = FULL_LOOK_EVERY
) -> None:
    """Index new entries in the background until cancelled (the daemon runs this).

    A round looks only above the last entry it indexed, so an idle daemon's round costs
    nothing however large the archive; every ``full_look_every`` rounds one looks at
    every entry, for the few that get their file after later ones (a page retried).
    """
    after = newest = looks = 0  # where this round starts; the newest entry looked at
    while True:
        try:
            done, last = await asyncio.to_thread(_round, store, root, after)
        except (StorageError, ArchiveError) as exc:
            log.warning("search index not updated (retrying in %gs): %s", pause, exc)
            done, last = 0, after
        newest = max(newest, last)
        if done < ROUND:
            looks += 1
            after = 0 if looks % full_look_every == 0 else newest
            await asyncio.sleep(pause)
        else:
            after = last  # more to index: on at once, from where this round stopped


def _round(store: Store, root: Path, after: int) -> tuple[int, int]:
    """One background round above entry ``after``: (how many indexed, where the next
    round may start).

    A round that finishes says where the newest entry was before it looked, not only the
    last one it indexed: after a start with nothing to index (the last indexed is then
    0), every round looked at every entry again, a scan that grows with the archive.
    """
    newest = store.newest_entry_id()
    done, last = _index_from(store, root, after, CHUNK, ROUND)
    return done, last if done >= ROUND else max(last, newest)


def _body(root: Path, relative: str) -> str:
    try:
        return findable((root / relative).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""  # a lost file: start-up repair drops its row; its title stays findable
