"""What a poll made, committed: archive files with their rows, and poll outcomes, grouped.

Write order: every file of a batch is written (atomically, under a name no other
writer holds; the pool workers do this with ``archive.write_numbered``, or, on a
feed's first poll, write every file as a temporary that a later pool step names one
batch at a time with ``archive.name_written``), the filesystem is synced once, then
all rows are inserted in one transaction that records the files. A crash before the
commit leaves at most one batch of files without rows (and temporaries);
``repair.Repair`` removes the temporaries and moves those files aside at the next
start, and the feed still offers the entries, so they are archived again: exactly
once in the end.

``GroupCommit`` lets the batches (and the outcomes, ``PollLog``) of polls finishing
together share one sync and one transaction. ``Persister``'s methods block (files,
database): they run in the pipeline's store thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from ingestd import archive, capture
from ingestd.faults import crash_point
from ingestd.site_index import SiteIndex
from ingestd.store import FeedRecord, FeedState, FetchAttempt, NewEntry, Store

log = logging.getLogger("ingestd.commit")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Pending:
    """A written file waiting for its row, with what the row records."""

    identity_key: str
    content_hash: str
    relative: str  # its file, already written (not yet synced) under the archive folder
    file_id: int
    guid: str | None
    link: str | None
    title: str | None
    published: datetime
    published_is_fallback: bool
    resolves: bool = False  # it settles a page failure the store keeps
    revision_text: str | None = None  # revision 1's text when the file is not it (pages)
    raw: capture.RawRef | None = None  # the WARC record it was built from (raw capture)


@dataclass(frozen=True)
class Save:
    """One feed's batch to archive: the feed, its written files, when they were seen."""

    feed: FeedRecord
    batch: Sequence[Pending]
    seen_at: datetime


def make_owner() -> str:
    """A name for this process in leases and archive rows: host, pid, random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Persister:
    """Writes batches of archive files with their rows for one archive folder."""

    def __init__(
        self, store: Store, root: Path, owner: str, raw: capture.RawWriter | None = None
    ) -> None:
        self.store = store
        self.raw = raw  # its records, like the files, are synced before rows name them
        self.root = root
        self.owner = owner
        self._archive_id: str | None = None

    @property
    def archive_id(self) -> str:
        """The id of this archive folder (made on first use)."""
        if self._archive_id is None:
            self._archive_id = archive.archive_identity(self.root)
        return self._archive_id

    def save_many(self, saves: Sequence[Save]) -> list[int]:
        """Record several feeds' written batches together: one sync, one transaction.

        All or nothing: on any error no row is stored and the files stay, so the caller
        can try the saves again one by one (``GroupCommit`` does) and ``discard`` those
        that fail on their own. Returns, per save, how many entries were archived; an
        entry another writer stored first loses its file again.
        """
        counts = [0] * len(saves)
        todo = [(index, save) for index, save in enumerate(saves) if save.batch]
        if not todo:
            return counts
        written = [
            [(_new_entry(item), self.root / item.relative) for item in save.batch]
            for _index, save in todo
        ]
        # Durable before any row names them: one sync for the whole group.
        archive.sync_batches(_by_folder(path for files in written for _e, path in files))
        if self.raw is not None:
            self.raw.sync()
        crash_point("batch-synced")
        inserted = self.store.add_entry_groups(
            [(save.feed.id, [entry for entry, _path in files], save.seen_at)
             for (_index, save), files in zip(todo, written, strict=True)],
            archive_id=self.archive_id, archived_by=self.owner,
            resolved=[(save.feed.id, item.identity_key)
                      for _index, save in todo for item in save.batch if item.resolves],
        )  # fmt: skip
        crash_point("batch-committed")
        for (index, _save), files, keys in zip(todo, written, inserted, strict=True):
            for entry, path in files:
                if entry.identity_key not in keys:
                    path.unlink(missing_ok=True)
            counts[index] = len(keys)
        self._rewrite_indexes([save.feed for index, save in todo if counts[index]])
        return counts

    def _rewrite_indexes(self, feeds: list[FeedRecord]) -> None:
        # The rows are committed: nothing after this may make the group look failed
        # (it would be written again one by one, and lose its files). An index that is
        # not rewritten now is behind its folder, and start-up repair rewrites it.
        try:
            SiteIndex(self.store, self.root, self.archive_id).rewrite(feeds)
        except Exception:
            log.exception("site index not rewritten (the next start-up rewrites it)")

    def discard(self, saves: Sequence[Save]) -> None:
        """Remove the files of saves that could not be recorded: no row will name them."""
        archive.discard(self.root, [item.relative for save in saves for item in save.batch])


def _new_entry(item: Pending) -> NewEntry:
    return NewEntry(
        identity_key=item.identity_key, content_hash=item.content_hash, guid=item.guid,
        link=item.link, title=item.title, published_at=item.published,
        published_is_fallback=item.published_is_fallback, archive_path=item.relative,
        file_id=item.file_id, revision_text=item.revision_text,
        raw_file=item.raw.file if item.raw else None,
        raw_offset=item.raw.offset if item.raw else None,
    )  # fmt: skip


def _by_folder(paths: Iterable[Path]) -> dict[Path, list[Path]]:
    folders: dict[Path, list[Path]] = {}
    for path in paths:
        folders.setdefault(path.parent, []).append(path)
    return folders


#: A group this large is written at once, without lingering for more.
LARGE_GROUP = 256


class GroupCommit(Generic[T, R]):
    """Blocking writes of many polls, grouped: requests made together share one call.

    ``write`` takes a list of items and returns one result per item (or None when
    there is nothing to return). Each ``submit`` returns once its item is written,
    so a poll's work is stored before it goes on; but a thousand polls finishing
    within the same moment take the database's write lock (and the archive's sync)
    a handful of times, not a thousand. When a group fails, its items are written
    one by one, so one bad item never fails its neighbours: ``write`` must leave a
    failed group as it was, and ``on_failed`` (if given) cleans up after an item that
    failed on its own.
    """

    def __init__(
        self,
        write: Callable[[list[T]], list[R] | None],
        blocking: Callable[..., Awaitable[Any]] | None = None,
        *,
        linger: float = 0.0,
        worth_waiting: Callable[[], bool] = lambda: False,
        on_failed: Callable[[list[T]], object] | None = None,
    ) -> None:
        self._write_many = write
        self._run = blocking or asyncio.to_thread
        self._on_failed = on_failed
        # Before each write, wait ``linger`` seconds for more items while
        # ``worth_waiting()`` says more are coming (and the group is not large already).
        self._linger = linger
        self._worth_waiting = worth_waiting
        self._waiting: list[tuple[T, asyncio.Future[R | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R | None:
        """Write one item (with whatever else is waiting); returns its result."""
        done: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await asyncio.shield(done)  # a cancelled poll still has its item written

    async def _write(self) -> None:
        while self._waiting:
            if self._linger and len(self._waiting) < LARGE_GROUP and self._worth_waiting():
                await asyncio.sleep(self._linger)
            group, self._waiting = self._waiting, []
            try:
                results = await self._run(self._write_many, [item for item, _ in group])
            except Exception as exc:  # StorageError, ArchiveError and bugs alike
                if len(group) == 1:
                    await self._failed(group[0], exc)
                else:
                    # One bad item must not fail its neighbours: write them one by one.
                    self._waiting = group[1:] + self._waiting
                    await self._write_one(group[0])
                continue
            for index, (_item, done) in enumerate(group):
                _settle(done, None if results is None else results[index])

    async def _write_one(self, entry: tuple[T, asyncio.Future[R | None]]) -> None:
        item, done = entry
        try:
            results = await self._run(self._write_many, [item])
        except Exception as exc:
            await self._failed(entry, exc)
        else:
            _settle(done, None if results is None else results[0])

    async def _failed(self, entry: tuple[T, asyncio.Future[R | None]], exc: Exception) -> None:
        item, done = entry
        try:
            if self._on_failed is not None:
                await self._run(self._on_failed, [item])
        finally:
            _settle(done, error=exc)


def _settle(
    done: asyncio.Future[R | None], result: R | None = None, error: BaseException | None = None
) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)


class PollLog:
    """Group commit of poll outcomes (``Store.record_polls``).

    With ``owner``, each outcome also gives back that owner's lease on its feed, in
    the same transaction: a poll that ends costs its daemon no transaction of its own.
    """

    def __init__(
        self,
        store: Store,
        blocking: Callable[..., Awaitable[Any]] | None = None,
        *,
        linger: float = 0.0,
        worth_waiting: Callable[[], bool] = lambda: False,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self._group: GroupCommit[tuple[int, FetchAttempt, FeedState], bool] = GroupCommit(
            self._record, blocking, linger=linger, worth_waiting=worth_waiting
        )

    def _record(self, polls: list[tuple[int, FetchAttempt, FeedState]]) -> list[bool] | None:
        if self.owner is None:
            self.store.record_polls(polls)
            return None
        given = self.store.record_polls(polls, give_back=self.owner)
        return [feed_id in given for feed_id, _, _ in polls]

    async def record(self, feed_id: int, attempt: FetchAttempt, state: FeedState) -> bool | None:
        """Store one poll's outcome; returns when it is committed: with ``owner``,
        whether the feed's lease was given back; else None."""
        return await self._group.submit((feed_id, attempt, state))
