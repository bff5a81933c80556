"""One feed end to end: fetch -> parse -> decide -> extract -> render -> archive -> store.

The one module that composes side effects. Everything it needs arrives through
``Pipeline``'s constructor (store, fetcher, archive folder, clock, executor), so the
daemon, ``ingestd fetch`` and the tests run the very same code. ``Pipeline`` is the
order of the stages only: where work runs is ``offload``, the stages that archive
entries are ``from_items`` and ``from_pages``, the feed's next state is
``decide.after_poll``, and what is written is committed by ``commit``.

The event loop only waits: parsing and extraction run in the executor (a process
pool in production), and database and file work runs in a thread, so a slow disk or
a busy database never stalls the responses other polls are reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path

from ingestd import capture, decide
from ingestd.capture import RawWriter
from ingestd.commit import GroupCommit, Persister, PollLog, Save, make_owner
from ingestd.errors import (
    ArchiveError,
    FetchError,
    HTTPStatusError,
    NotModified,
    ParseError,
    StorageError,
)
from ingestd.fetch import ACCEPT_FEED, ByScheme, Fetcher, Slots
from ingestd.from_items import FromItems
from ingestd.from_pages import FromPages
from ingestd.offload import Offload
from ingestd.poll import BATCH, MAX_NEW_PER_POLL, FeedJob, PollRun, from_feed_alone
from ingestd.repair import Reconciled, Repair
from ingestd.store import Store
from ingestd.types import FeedState, PageProblem, PollOutcome, PollResult

log = logging.getLogger("ingestd.pipeline")

#: Polls past their fetch (parsing, rendering, storing) beyond the fetcher's slots.
#: Fetching outpaces storing on a cold cycle; without a bound, every fetched feed of
#: the cycle would wait in memory for its turn.
PROCESSING_BACKLOG = 16
#: How long a poll's outcome waits for others to share its commit, while other polls
#: are running. Outcomes are written by the store thread, and each transaction costs
#: the event loop far more than its SQLite work: the thread takes the interpreter lock
#: back after every statement. Waiting a moment makes the groups larger: a warm cycle
#: of 1,000 feeds committed its outcomes in about 120 transactions without it.
OUTCOME_LINGER = 0.01


class Pipeline:
    """Runs polls of feeds against one store, one fetcher and one archive folder."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        archive_root: Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        parse_executor: Executor | None = None,
        max_bytes: int | None = None,
        rand: Callable[[], float] = random.random,
        max_new_per_poll: int = MAX_NEW_PER_POLL,
        owner: str | None = None,
        raw: str = "off",
        raw_file_bytes: int = capture.DEFAULT_FILE_BYTES,
    ) -> None:
        self.store, self.fetcher, self.archive_root = store, fetcher, archive_root
        self.clock, self.rand = clock, rand
        self.owner = owner or make_owner()
        # Raw capture ("off", "pages", "all"): records written in the store thread.
        self.raw_mode = raw
        self.raw = None if raw == "off" else RawWriter(
            archive_root, self.owner, clock, max_file_bytes=raw_file_bytes
        )  # fmt: skip
        self.persister = Persister(store, archive_root, self.owner, self.raw)
        self.work = Offload(archive_root, parse_executor)
        self._running = 0  # polls between their slot and their outcome
        self.poll_log = PollLog(
            store, self.work.blocking, linger=OUTCOME_LINGER,
            worth_waiting=lambda: self._running > 0, owner=self.owner,
        )  # fmt: skip
        # Batches of several polls written together: one sync, one transaction.
        saves: GroupCommit[Save, int] = GroupCommit(
            self.persister.save_many, self.work.blocking, on_failed=self.persister.discard
        )
        self.retrieve = ByScheme(fetcher, max_bytes or fetcher.limits.max_bytes)
        stage = (store, self.work, archive_root, saves, max_new_per_poll, self.raw)
        self.items = FromItems(*stage, pages=FromPages(*stage, retrieve=self.retrieve))
        self._active = asyncio.Semaphore(self.slots.total + PROCESSING_BACKLOG)

    @property
    def slots(self) -> Slots:
        """The fetcher's slots: the one cap on polls and requests (the scheduler asks it)."""
        return self.fetcher.slots

    def reconcile(self, settle_seconds: float = decide.LEASE_SECONDS) -> Reconciled:
        """Start-up repair of rows and files (see ``repair.Repair``)."""
        repair = Repair(self.store, self.archive_root, self.owner, self.clock)
        return repair.reconcile(settle_seconds)

    def close(self) -> None:
        """Close the raw capture's WARC file (whole: it needs no repair at the next start)."""
        if self.raw is not None:
            self.raw.close()

    async def poll(self, job: FeedJob) -> PollResult:
        """Poll one feed once and record the outcome; never raises for feed problems.

        At most ``slots.total + PROCESSING_BACKLOG`` polls run at once; the rest wait
        here, before fetching, holding nothing. A poll done but for its outcome's
        commit (see ``OUTCOME_LINGER``) lets the next one start.
        """
        async with self._active:
            self._running += 1
            try:
                run = PollRun(job, self.clock())
                result = await self._poll(run)
            finally:
                self._running -= 1
        now, rhythm = self.clock(), job.schedule()
        state = decide.after_poll(job.record, result, now, rhythm, rand=self.rand())
        if await self.poll_log.record(job.record.id, run.attempt(result), state):
            result = dataclasses.replace(result, lease_returned=True)
        _log_result(job, result, state)
        return result

    async def _poll(self, run: PollRun) -> PollResult:
        record = run.job.record
        try:
            fetched = await self.retrieve.feed(
                record.url, etag=record.etag, last_modified=record.last_modified,
                trusted=run.job.trusted,
            )  # fmt: skip
        except NotModified as signal:
            try:
                if not from_feed_alone(run.job.spec):
                    await self.items.pages.archive(run, [])  # retries due from what was kept
            except (ArchiveError, StorageError) as exc:
                return run.result(PollOutcome.FAILED, status=304, error=str(exc))
            return run.result(
                PollOutcome.NOT_MODIFIED, status=304, moved_to=signal.permanent_url,
                headers=signal.headers,
            )  # fmt: skip
        except FetchError as exc:
            retry = exc.retry_after if isinstance(exc, HTTPStatusError) else None
            return run.result(
                PollOutcome.FAILED, status=exc.status, error=str(exc), retry_after=retry
            )
        size, status = len(fetched.content), fetched.status
        try:
            if self.raw_mode == "all":
                run.raw = await self.items.capture(fetched, {"Accept": ACCEPT_FEED})
            parsed = await self.items.archive(run, fetched)
        except ParseError as exc:
            # The parse stage does not know where the document came from: say it here.
            error = f"{record.url}: {exc}"
            return run.result(PollOutcome.FAILED, status=status, error=error, size=size)
        except (ArchiveError, StorageError) as exc:
            return run.result(PollOutcome.FAILED, status=status, error=str(exc), size=size)
        if parsed.bozo:
            run.warnings.append(f"feed is malformed but readable: {parsed.bozo}")
        return run.result(
            PollOutcome.OK, status=status, size=size, parsed=parsed,
            moved_to=fetched.permanent_url, headers=fetched.headers, etag=fetched.etag,
            last_modified=fetched.last_modified,
        )  # fmt: skip


def _log_result(job: FeedJob, result: PollResult, state: FeedState) -> None:
    name = job.spec.name
    if state.get("enabled") is False:
        log.warning("feed %s disabled: %s", name, state.get("disabled_reason"))
    if "url" in state:
        log.warning("feed %s moved permanently: %s -> %s", name, job.record.url, state["url"])
    if result.outcome == PollOutcome.FAILED:
        log.warning("feed %s failed: %s", result.feed, result.error)
    else:
        log.info(
            "feed %s %s: %d new, %d archived, %d revised",
            result.feed, result.outcome, result.new_entries, result.archived, result.revised,
        )  # fmt: skip


__all__ = [
    "BATCH",
    "FeedJob",
    "PageProblem",
    "Pipeline",
    "PollLog",
    "PollResult",
    "Reconciled",
    "make_owner",
]
