"""One poll in progress: its bookkeeping, and what every archiving stage shares.

``PollRun`` counts what the poll did and ends as a ``PollResult``; ``Stage`` holds what
the stages that archive entries (``from_items``, ``from_pages``) need: the store, where
work runs, the archive folder, the group commit of written batches and the per-poll cap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

from ingestd import capture, decide, naming
from ingestd.capture import RawRef, RawWriter
from ingestd.commit import GroupCommit, Pending, Save
from ingestd.offload import Offload
from ingestd.store import FeedRecord, FetchAttempt, Store
from ingestd.types import (
    ArchiveFormat,
    FeedSpec,
    Fetched,
    PageProblem,
    ParsedFeed,
    PollOutcome,
    PollResult,
)

#: New entries archived per poll of one feed. A feed offering 50,000 items would hold
#: one poll for minutes. The rest stay unrecorded, so the following polls archive
#: them, oldest first, this many at a time.
MAX_NEW_PER_POLL = 500
#: Entries from the feed alone whose files and rows are written together in one batch.
BATCH = 100


@dataclass(frozen=True)
class FeedJob:
    """One feed to poll: its stored state, its configuration, and whether it is trusted."""

    record: FeedRecord
    spec: FeedSpec
    interval_seconds: float
    trusted: bool = False  # the configured URL may be a private address
    rhythm: decide.Rhythm | None = None  # floor, jitter, back-off cap; defaults if None
    retry: decide.PageRetry = decide.PageRetry()  # how failed article pages are retried

    def schedule(self) -> decide.Rhythm:
        """The feed's rhythm: the configured one, or the interval with default limits."""
        return self.rhythm or decide.Rhythm(interval=self.interval_seconds)


@dataclass
class PollRun:
    """Mutable bookkeeping of one poll in progress."""

    job: FeedJob
    started: datetime
    clock_start: float = field(default_factory=time.monotonic)
    warnings: list[str] = field(default_factory=list)
    new_entries: int = 0
    archived: int = 0
    revised: int = 0
    incomplete: bool = False  # entries left unrecorded for the next poll (the per-poll cap)
    parse_seconds: float = 0.0
    problems: list[PageProblem] = field(default_factory=list)
    waiting: int = 0  # entries of the feed waiting for a page retry
    given_up: int = 0  # entries of the feed given up
    pending: list[Pending] = field(default_factory=list)
    next_id: int = 0  # the next archive file number of this feed (see ``numbered``)
    raw: RawRef | None = None  # the feed document's WARC record (raw capture "all")

    def numbered(self, ids: list[int]) -> None:
        """Files numbered ``ids`` were written: the feed's next file goes below them."""
        if ids:
            following = naming.next_below(min(ids))
            self.next_id = -1 if following is None else following  # -1: none is left

    def left_over(self, offered: int, cap: int, what: str = "new entries") -> None:
        """``offered`` entries, of which only ``cap`` are archived in this poll."""
        if offered > cap:
            self.incomplete = True
            self.warnings.append(
                f"{offered - cap:,} more {what} than the {cap:,} archived per poll; "
                "the next polls archive them"
            )

    def pending_row(
        self,
        item: decide.Keyed,
        written: tuple[str, int],
        *,
        resolves: bool = False,
        text: str | None = None,
        raw: RawRef | None = None,
    ) -> None:
        """An entry's file is written: its row waits for the next ``Stage.flush``."""
        entry = item.entry
        relative, file_id = written
        self.pending.append(Pending(
            identity_key=item.key, content_hash=item.content_hash, relative=relative,
            file_id=file_id, guid=entry.guid,
            link=entry.link or None, title=entry.title,
            published=entry.published or self.started,
            published_is_fallback=entry.published is None, resolves=resolves,
            revision_text=text, raw=raw or self.raw,  # a page's own record, else the feed's
        ))  # fmt: skip

    def attempt(self, result: PollResult) -> FetchAttempt:
        """The poll log's row of this poll (``due_at``: when the feed was due)."""
        return FetchAttempt(
            self.started, result.duration_ms, result.status, result.outcome.value, result.bytes,
            result.archived, result.error, self.job.record.next_check_at,
        )  # fmt: skip

    def result(
        self,
        outcome: PollOutcome,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        size: int = 0,
        parsed: ParsedFeed | None = None,
        moved_to: str | None = None,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> PollResult:
        """What the poll did, as it ends now."""
        return PollResult(
            feed=self.job.spec.name, outcome=outcome, status=status,
            new_entries=self.new_entries, archived=self.archived, revised=self.revised,
            error=error, warnings=tuple(self.warnings), bytes=size,
            duration_ms=int((time.monotonic() - self.clock_start) * 1000),
            retry_after=retry_after, moved_to=moved_to, parsed=parsed, headers=headers or {},
            parse_seconds=self.parse_seconds, pages_failed=len(self.problems),
            entries_waiting=self.waiting, entries_given_up=self.given_up,
            page_problems=tuple(self.problems),
            # With entries left over, the next poll must get the whole feed again, not
            # a 304 that would strand them until the feed happens to change.
            etag=None if self.incomplete else etag,
            last_modified=None if self.incomplete else last_modified,
        )  # fmt: skip


def pool_steps() -> ModuleType:
    """The pool's steps (parsing, rendering, writing), loaded on first use: they bring
    feedparser, lxml and readability, which a cycle of 304s never needs."""
    from ingestd.pool import steps

    return steps


def from_feed_alone(spec: FeedSpec) -> bool:
    """Entries archived from the feed document itself (no page to fetch per entry)."""
    return not spec.fetch_page and spec.format is not ArchiveFormat.REPOST


@dataclass
class Stage:
    """What a stage that archives entries works with."""

    store: Store
    work: Offload
    archive_root: Path
    saves: GroupCommit[Save, int]
    max_new_per_poll: int
    raw: RawWriter | None  # raw capture's WARC writer; None when capture is off

    async def capture(self, fetched: Fetched, asked: dict[str, str]) -> RawRef | None:
        """Record a response as a WARC record, when capture is on.

        ``asked`` holds the request headers the pipeline chose (the fetcher adds its
        User-Agent and Accept-Encoding; the record shows the decoded body)."""
        if self.raw is None:
            return None
        # A thread of its own: in the store thread it would queue behind commits.
        return await asyncio.to_thread(self.raw.write, capture.exchange_of(fetched, asked))

    async def flush(self, run: PollRun) -> None:
        """Record the poll's written files (with other polls' batches: one commit)."""
        batch, run.pending = run.pending, []
        if batch:
            save = Save(run.job.record, batch, run.started)
            run.archived += await self.saves.submit(save) or 0
