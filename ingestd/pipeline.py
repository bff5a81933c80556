"""One feed end to end: fetch -> parse -> decide -> extract -> render -> archive -> store.

The one module that composes side effects. Everything it needs arrives through
``Pipeline``'s constructor (store, fetcher, archive folder, clock, executor), so the
daemon, ``ingestd fetch`` and the tests run the very same code.

The event loop only waits: parsing and extraction run in the executor (a process
pool in production), and database and file work runs in threads, so a slow disk or
a busy database never stalls the responses other polls are reading. New entries of
a feed are archived in batches (files, then their rows in one transaction; see
``ingestd.persist``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar
from urllib.parse import urlsplit

from ingestd import archive, capture, decide, fetchfile
from ingestd.capture import RawRef, RawWriter
from ingestd.errors import (
    ArchiveError,
    ExtractError,
    FetchError,
    HTTPStatusError,
    NotModified,
    ParseError,
    StorageError,
)
from ingestd.faults import crash_point
from ingestd.fetch import ACCEPT_FEED, Fetcher
from ingestd.persist import Pending, Persister, Reconciled, Save, make_owner
from ingestd.store import FailedEntry, FeedRecord, FeedState, FetchAttempt, Store, stored_key
from ingestd.types import ArchiveFormat, EntryData, FeedSpec, Fetched, ParsedFeed

if TYPE_CHECKING:
    from ingestd import prepare

log = logging.getLogger("ingestd.pipeline")

ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
OK, NOT_MODIFIED, FAILED = "ok", "not_modified", "failed"
GONE_REASON = "410 Gone: the server says the feed is gone for good (ingestd feeds enable NAME)"

#: New entries archived per poll of one feed. A feed offering 50,000 items would hold
#: one poll for minutes. The rest stay unrecorded, so the following polls archive
#: them, oldest first, this many at a time.
MAX_NEW_PER_POLL = 500
#: Entries from the feed alone whose files and rows are written together in one batch.
BATCH = 100
#: Polls past their fetch (parsing, rendering, storing) beyond the fetch concurrency.
#: Fetching outpaces storing on a cold cycle; without a bound, every fetched feed of
#: the cycle would wait in memory for its turn.
PROCESSING_BACKLOG = 16
#: How long a poll's outcome waits for others to share its commit, while other polls
#: are running. Outcomes are written by the store thread, and each transaction costs
#: the event loop far more than its SQLite work: the thread takes the interpreter lock
#: back after every statement. Waiting a moment makes the groups larger: a warm cycle
#: of 1,000 feeds committed its outcomes in about 120 transactions without it.
OUTCOME_LINGER = 0.01

T = TypeVar("T")
R = TypeVar("R")
W = TypeVar("W")


def _prepare() -> ModuleType:
    """The pool's steps (parsing, rendering, writing), loaded on first use: they bring
    feedparser, lxml and readability, which a cycle of 304s never needs."""
    from ingestd import prepare

    return prepare


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


@dataclass(frozen=True)
class PageProblem:
    """An entry whose article page failed in this poll: the error and what happens next."""

    link: str
    error: str
    attempts: int
    next_retry_at: datetime | None
    given_up: str | None  # the reason, once the entry is given up


@dataclass(frozen=True)
class PollResult:
    """What one poll of one feed did (``parsed`` keeps the feed's hints, not its entries)."""

    feed: str
    outcome: str
    status: int | None = None
    new_entries: int = 0
    archived: int = 0
    revised: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    bytes: int = 0
    duration_ms: int = 0
    retry_after: float | None = None
    moved_to: str | None = None
    parsed: ParsedFeed | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parse_seconds: float = 0.0  # CPU time spent parsing the document
    pages_failed: int = 0  # article pages that failed in this poll
    entries_waiting: int = 0  # the feed's entries waiting for a page retry, after this poll
    entries_given_up: int = 0  # the feed's entries given up, after this poll
    page_problems: tuple[PageProblem, ...] = ()  # one per failed page of this poll


#: A finished poll: its result, and the attempt and feed state the poll log records.
Outcome: TypeAlias = "tuple[PollResult, FetchAttempt, FeedState]"


@dataclass
class _Poll:
    """Mutable bookkeeping of one poll in progress."""

    job: FeedJob
    started: datetime
    clock_start: float
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
    next_id: int = 0  # the next archive file number of this feed (set by _plan)
    raw: RawRef | None = None  # the feed document's WARC record (raw capture "all")


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
        max_bytes: int = 15_000_000,
        rand: Callable[[], float] = random.random,
        max_new_per_poll: int = MAX_NEW_PER_POLL,
        owner: str | None = None,
        raw: str = "off",
        raw_file_bytes: int = capture.DEFAULT_FILE_BYTES,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.archive_root = archive_root
        self.clock = clock
        self.parse_executor = parse_executor
        self.max_bytes = max_bytes
        self.rand = rand
        self.max_new_per_poll = max_new_per_poll
        self.owner = owner or make_owner()
        # Raw capture ("off", "pages", "all"): records written in the store thread.
        self.raw_mode = raw
        self.raw = None if raw == "off" else RawWriter(
            archive_root, self.owner, clock, max_file_bytes=raw_file_bytes
        )  # fmt: skip
        self.persister = Persister(store, archive_root, self.owner, clock, self.raw)
        # Database and archive work runs in one thread of its own. Several threads
        # would only take turns at SQLite's write lock and the interpreter lock, and
        # the hand-overs cost more than the work (millions of futex calls a cycle).
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="ingestd-store")
        self._running = 0  # polls between their slot and their outcome
        self.poll_log = PollLog(
            store, self._blocking, linger=OUTCOME_LINGER, worth_waiting=lambda: self._running > 0
        )
        # Batches of several polls written together: one sync, one transaction.
        self._saves: GroupCommit[Save, int] = GroupCommit(
            self.persister.save_many, self._blocking, on_failed=self.persister.discard
        )
        self._active = asyncio.Semaphore(fetcher.limits.concurrency + PROCESSING_BACKLOG)
        # Feeds seen with stored entries: their polls skip the first-poll question.
        # (Only ever a shortcut to the general path, which is right for any feed.)
        self._stored: set[int] = set()

    @property
    def archive_id(self) -> str:
        """The id of this pipeline's archive folder (made on first use)."""
        return self.persister.archive_id

    def reconcile(self, settle_seconds: float = 300.0) -> Reconciled:
        """Start-up repair of rows and files (see ``Persister.reconcile``)."""
        return self.persister.reconcile(settle_seconds)

    def close(self) -> None:
        """Close the raw capture's WARC file (whole: it needs no repair at the next start)."""
        if self.raw is not None:
            self.raw.close()

    # --- one poll --------------------------------------------------------------

    async def poll(self, job: FeedJob) -> PollResult:
        """Poll one feed once and record the outcome; never raises for feed problems.

        At most ``concurrency + PROCESSING_BACKLOG`` polls run at once; the rest wait
        here, before fetching, holding nothing. A poll done but for its outcome's
        commit (see ``OUTCOME_LINGER``) lets the next one start.
        """
        async with self._active:
            self._running += 1
            try:
                result, attempt, state = await self._poll(job)
            finally:
                self._running -= 1
        await self.poll_log.record(job.record.id, attempt, state)
        _log_result(result)
        return result

    async def _poll(self, job: FeedJob) -> Outcome:
        run = _Poll(job, self.clock(), time.monotonic())
        try:
            fetched = await self._fetch_feed(job)
        except NotModified as signal:
            try:
                if not _from_feed_alone(job.spec):
                    await self._archive_pages(run, [])  # retries due from what was kept
            except (ArchiveError, StorageError) as exc:
                return self._finish(run, FAILED, status=304, error=str(exc))
            return self._finish(
                run,
                NOT_MODIFIED,
                status=304,
                moved_to=getattr(signal, "permanent_url", None),
                headers=getattr(signal, "headers", {}),
            )
        except FetchError as exc:
            retry = exc.retry_after if isinstance(exc, HTTPStatusError) else None
            return self._finish(run, FAILED, status=exc.status, error=str(exc), retry_after=retry)
        size = len(fetched.content)
        try:
            if self.raw_mode == "all":
                run.raw = await self._capture(fetched, {"Accept": ACCEPT_FEED})
            if _from_feed_alone(job.spec) and not await self._has_entries(job.record.id):
                parsed = await self._archive_first(run, fetched)
            else:
                read = await self._cpu(
                    _prepare().read_feed, fetched.content, fetched.headers, job.record.url
                )
                run.parse_seconds = read.cpu_seconds
                await self._archive_new(run, read.keyed)
                parsed = read.feed
        except ParseError as exc:
            # The parse stage does not know where the document came from: say it here.
            error = f"{job.record.url}: {exc}"
            return self._finish(run, FAILED, status=fetched.status, error=error, size=size)
        except (ArchiveError, StorageError) as exc:
            return self._finish(run, FAILED, status=fetched.status, error=str(exc), size=size)
        if parsed.bozo:
            run.warnings.append(f"feed is malformed but readable: {parsed.bozo}")
        return self._finish(
            run,
            OK,
            status=fetched.status,
            size=size,
            parsed=parsed,
            moved_to=getattr(fetched, "permanent_url", None),
            headers=fetched.headers,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )

    async def _fetch_feed(self, job: FeedJob) -> Fetched:
        record = job.record
        if record.url.startswith("file:"):
            return await asyncio.to_thread(fetchfile.read_feed, record.url, self.max_bytes)
        return await self.fetcher.fetch(
            record.url, etag=record.etag, last_modified=record.last_modified, trusted=job.trusted
        )

    async def _blocking(self, func: Callable[..., T], *args: Any) -> T:
        # Blocking database and file work, in the store thread: the loop stays free.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_thread, partial(func, *args))

    async def _cpu(self, func: Callable[..., T], *args: Any) -> T:
        # CPU-bound pure work (feedparser, readability): a process pool keeps the loop
        # free and uses every core; without one, a thread keeps the loop responsive.
        if self.parse_executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.parse_executor, partial(func, *args))
        return await asyncio.to_thread(func, *args)

    async def _has_entries(self, feed_id: int) -> bool:
        if feed_id not in self._stored and await self._blocking(self.store.has_entries, feed_id):
            self._stored.add(feed_id)
        return feed_id in self._stored

    async def _archive_first(self, run: _Poll, fetched: Fetched) -> ParsedFeed:
        """A feed with no stored entry (its first poll): every entry is new, so one pool
        step parses the document and writes the files, and only what the rows record
        comes back. The files are written as temporaries; a pool step names each
        batch just before recording it, so at most one batch waits for its rows."""
        job = run.job
        first: prepare.FirstRead = await self._write_files(
            run, _prepare().read_new_feed, fetched.content, fetched.headers, job.record.url,
            self.archive_root, job.spec, self.max_new_per_poll, run.started,
        )  # fmt: skip
        run.parse_seconds = first.cpu_seconds
        crash_point("first-poll-written")
        self._count_new(run, first.new_entries)
        run.next_id = archive.FIRST_FILE_ID
        named = 0
        try:
            for start in range(0, len(first.written), BATCH):
                chunk = first.written[start : start + BATCH]
                named = start + len(chunk)  # from here on, name_written cleans up after itself
                # In the pool, like the writing: a link and an unlink per file in the store
                # thread would hand the interpreter lock to and fro with the event loop.
                files = await self._cpu(
                    archive.name_written, self.archive_root, job.spec.name, run.next_id,
                    [temporary for _item, temporary in chunk],
                )  # fmt: skip
                run.next_id = files[-1][1] - 1
                pairs = zip(chunk, files, strict=True)
                run.pending.extend(_pending(run, item, file) for (item, _t), file in pairs)
                await self._flush(run)
        finally:
            # A failed or cancelled poll: the batches not named yet go.
            archive.discard(self.archive_root, [t for _item, t in first.written[named:]])
        return first.feed

    def _count_new(self, run: _Poll, new: int) -> None:
        run.new_entries = new
        cap = self.max_new_per_poll
        if new > cap:
            run.incomplete = True
            run.warnings.append(
                f"{new - cap:,} more new entries than the {cap:,} "
                "archived per poll; the next polls archive them"
            )

    async def _archive_new(self, run: _Poll, keyed: Sequence[decide.Keyed]) -> None:
        plan = await self._blocking(self._plan, run, keyed)
        if plan.revised:
            await self._revise(run, plan.revised)
        ordered = decide.archive_order(plan.new, run.started)
        spec = run.job.spec
        if not _from_feed_alone(spec):
            await self._archive_pages(run, ordered)
            return
        self._count_new(run, len(plan.new))
        cap = self.max_new_per_poll
        # Entries from the feed alone are cheap: rendered and written in the pool, and
        # recorded in batches (one sync, one transaction).
        for start in range(0, min(len(ordered), cap), BATCH):
            chunk = ordered[start : min(start + BATCH, cap)]
            files: list[tuple[str, int]] = await self._write_files(
                run,
                _prepare().write_items,
                self.archive_root,
                run.next_id,
                spec,
                [k.entry for k in chunk],
                run.started,
            )
            pairs = zip(chunk, files, strict=True)
            run.pending.extend(_pending(run, item, file) for item, file in pairs)
            await self._flush(run)

    async def _revise(
        self, run: _Poll, revised: Sequence[tuple[decide.Known, decide.Keyed]]
    ) -> None:
        """Record changed entries as new revisions, each with its text (the archive file
        keeps the first version)."""
        texts: list[str] = await self._cpu(
            _prepare().revision_texts, run.job.spec, [new.entry for _old, new in revised],
            run.started,
        )  # fmt: skip
        changes = [
            (old.entry_id, new.content_hash, text)
            for (old, new), text in zip(revised, texts, strict=True)
        ]
        run.revised = await self._blocking(self.store.add_revisions, changes, run.started)

    def _plan(self, run: _Poll, keyed: Sequence[decide.Keyed]) -> decide.Plan:
        """Look the entries up and sort them (blocking: in a thread)."""
        feed_id = run.job.record.id
        found = self.store.poll_lookup(
            feed_id, [k.key for k in keyed], [k.entry.link for k in keyed]
        )
        known = [decide.Known(*match) for match in found.matches]
        by_key = {k.identity_key: k for k in known}
        by_link = {k.link: k for k in known if k.link}
        plan = decide.plan(keyed, by_key, by_link)
        if plan.new:
            if found.next_file_id is None:
                raise StorageError(
                    f"feed {run.job.spec.name} has used every file number: {self.store.target}"
                )
            run.next_id = found.next_file_id
        if plan.revision_cap_hit:
            run.warnings.append(f"{plan.revision_cap_hit} entries changed too often; ignored")
        return plan

    async def _archive_pages(self, run: _Poll, ordered: Sequence[decide.Keyed]) -> None:
        """Entries built from fetched pages, new ones and failed ones due for a retry.

        Each is stored at once (pages are slow to make; a stop loses none of that work).
        A page that fails is kept with its retry state, so later polls retry it even when
        the feed answers 304 or no longer lists it, and ``status`` shows it.
        """
        feed_id = run.job.record.id
        failures = await self._blocking(self.store.page_failures, feed_id)
        due = self._due_pages(run, ordered, failures)
        cap = self.max_new_per_poll
        if len(due) > cap:
            run.incomplete = True
            run.warnings.append(f"{len(due) - cap:,} more entries than the {cap:,} archived per "
                                "poll; the next polls archive them")  # fmt: skip
        if due and not run.next_id:
            run.next_id = await self._blocking(self.store.next_file_id, feed_id)
        for item, failure in due[:cap]:
            await self._from_page(run, item, failure)
            await self._flush(run)

    def _due_pages(
        self, run: _Poll, ordered: Sequence[decide.Keyed], failures: dict[str, FailedEntry]
    ) -> list[tuple[decide.Keyed, FailedEntry | None]]:
        """The entries whose page this poll tries; counts the rest as waiting or given up."""
        candidates = [(item, failures.pop(stored_key(item.key), None)) for item in ordered]
        run.new_entries = sum(failure is None for _item, failure in candidates)
        # Failed entries the document does not offer (a 304, or gone from the feed).
        candidates += [(_keyed(failure), failure) for failure in failures.values()]
        due = []
        for item, failure in candidates:
            state = failure.failure if failure else None
            if decide.page_due(state, run.started):
                due.append((item, failure))
            elif state is not None and state.given_up:
                run.given_up += 1
            else:
                run.waiting += 1
        return due

    async def _from_page(self, run: _Poll, item: decide.Keyed, failure: FailedEntry | None) -> None:
        try:
            written, raw = await self._page_file(run, item.entry)
        except (FetchError, ExtractError, ParseError) as exc:
            await self._page_failed(run, item, failure, exc)
            return
        [file] = written.files
        run.pending.append(
            _pending(run, item, file, resolves=failure is not None, text=written.item_text, raw=raw)
        )

    async def _page_failed(
        self, run: _Poll, item: decide.Keyed, failure: FailedEntry | None, exc: Exception
    ) -> None:
        """Keep the entry with its next retry (or given up), and count it."""
        entry, job = item.entry, run.job
        message = _about(entry.link or item.key, exc)
        status = exc.status if isinstance(exc, FetchError) else None
        state = decide.page_failed(
            failure.failure if failure else None, message, run.started, job.retry, status=status
        )
        kept = FailedEntry(
            identity_key=stored_key(item.key), content_hash=item.content_hash, guid=entry.guid,
            link=entry.link or None, title=entry.title, content=entry.content,
            published_at=entry.published, failure=state,
        )  # fmt: skip
        await self._blocking(self.store.record_page_failure, job.record.id, kept)
        run.problems.append(PageProblem(
            entry.link or item.key, message, state.attempts, state.next_retry_at,
            state.given_up_reason,
        ))  # fmt: skip
        run.warnings.append(message)
        if state.given_up:
            run.given_up += 1
            log.warning("feed %s: entry given up: %s", job.spec.name, state.given_up_reason)
        else:
            run.waiting += 1
            log.warning("feed %s: entry not archived: %s", job.spec.name, message)

    async def _flush(self, run: _Poll) -> None:
        batch, run.pending = run.pending, []
        if batch:
            save = Save(run.job.record, batch, run.started)
            run.archived += await self._saves.submit(save) or 0

    async def _capture(self, fetched: Fetched, asked: dict[str, str]) -> RawRef | None:
        """Record a response as a WARC record, when capture is on.

        ``asked`` holds the request headers the pipeline chose (the fetcher adds its
        User-Agent and Accept-Encoding; the record shows the decoded body)."""
        if self.raw is None:
            return None
        # A thread of its own: in the store thread it would queue behind commits.
        return await asyncio.to_thread(self.raw.write, capture.exchange_of(fetched, asked))

    async def _page_file(
        self, run: _Poll, entry: EntryData
    ) -> tuple[prepare.PageWritten, RawRef | None]:
        job, link = run.job, entry.link
        if not link:
            raise ExtractError("the entry has no link to fetch")
        body: Fetched
        if link.startswith("file:"):
            body = await asyncio.to_thread(
                fetchfile.read_page, link, job.record.url, self.max_bytes
            )
        else:
            # A feed trusted to be private trusts its own host for its pages too.
            host = urlsplit(job.record.url).hostname if job.trusted else None
            body = await self.fetcher.fetch(link, accept=ACCEPT_HTML, trusted_host=host)
        # The record is written while the pool extracts; a page that fails keeps it too.
        raw = asyncio.ensure_future(self._capture(body, {"Accept": ACCEPT_HTML}))
        try:
            written: prepare.PageWritten = await self._write_files(
                run, _prepare().write_page, self.archive_root, run.next_id, job.spec, entry,
                run.started, body.content, body.headers.get("content-type", ""), body.url,
            )  # fmt: skip
        finally:
            ref = await raw
        return written, ref

    async def _write_files(self, run: _Poll, func: Callable[..., W], *args: Any) -> W:
        """Run a pool step that writes archive files; move the feed's next number on.

        The step returns its files as a list of (relative path, id), or an object with
        them in ``files`` (id None for temporaries not named yet). Should the poll be
        cancelled meanwhile, the files are removed once the step ends: nobody would
        record them.
        """
        step = asyncio.ensure_future(self._cpu(func, *args))
        try:
            result = await asyncio.shield(step)
        except asyncio.CancelledError:
            step.add_done_callback(partial(_discard_files, self.archive_root))
            raise
        if ids := [file_id for _relative, file_id in _files_of(result) if file_id is not None]:
            run.next_id = min(ids) - 1
        return result

    # --- bookkeeping -------------------------------------------------------------

    def _finish(
        self,
        run: _Poll,
        outcome: str,
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
    ) -> Outcome:
        """The poll's result, and what the poll log records of it."""
        duration_ms = int((time.monotonic() - run.clock_start) * 1000)
        result = PollResult(
            feed=run.job.spec.name, outcome=outcome, status=status,
            new_entries=run.new_entries, archived=run.archived, revised=run.revised,
            error=error, warnings=tuple(run.warnings), bytes=size, duration_ms=duration_ms,
            retry_after=retry_after, moved_to=moved_to, parsed=parsed, headers=headers or {},
            parse_seconds=run.parse_seconds, pages_failed=len(run.problems),
            entries_waiting=run.waiting, entries_given_up=run.given_up,
            page_problems=tuple(run.problems),
        )  # fmt: skip
        state = _next_state(run.job, result, self.clock(), self.rand())
        if outcome == OK:
            # With entries left over, the next poll must get the whole feed again, not
            # a 304 that would strand them until the feed happens to change.
            state.update(
                etag=None if run.incomplete else etag,
                last_modified=None if run.incomplete else last_modified,
            )
        attempt = FetchAttempt(run.started, duration_ms, status, outcome, size, run.archived, error)
        return result, attempt, state  # type: ignore[return-value]  # a FeedState's fields


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
    """Group commit of poll outcomes (``Store.record_polls``)."""

    def __init__(
        self,
        store: Store,
        blocking: Callable[..., Awaitable[Any]] | None = None,
        *,
        linger: float = 0.0,
        worth_waiting: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self._group: GroupCommit[tuple[int, FetchAttempt, FeedState], None] = GroupCommit(
            self._record, blocking, linger=linger, worth_waiting=worth_waiting
        )

    def _record(self, polls: list[tuple[int, FetchAttempt, FeedState]]) -> None:
        self.store.record_polls(polls)

    async def record(self, feed_id: int, attempt: FetchAttempt, state: FeedState) -> None:
        """Store one poll's outcome; returns when it is committed."""
        await self._group.submit((feed_id, attempt, state))


def _files_of(result: Any) -> list[tuple[str, int | None]]:
    """The (relative path, id) pairs a file-writing pool step returned (id None: not named
    yet)."""
    return result if isinstance(result, list) else result.files


def _discard_files(root: Path, step: asyncio.Future[Any]) -> None:
    if step.cancelled() or step.exception() is not None:
        return
    for relative, _file_id in _files_of(step.result()):
        (root / relative).unlink(missing_ok=True)


def _from_feed_alone(spec: FeedSpec) -> bool:
    """Entries archived from the feed document itself (no page to fetch per entry)."""
    return not spec.fetch_page and spec.format is not ArchiveFormat.REPOST


def _pending(
    run: _Poll,
    item: decide.Keyed,
    file: tuple[str, int],
    *,
    resolves: bool = False,
    text: str | None = None,
    raw: RawRef | None = None,
) -> Pending:
    entry = item.entry
    relative, file_id = file
    return Pending(
        identity_key=item.key, content_hash=item.content_hash, relative=relative,
        file_id=file_id, guid=entry.guid,
        link=entry.link or None, title=entry.title, published=entry.published or run.started,
        published_is_fallback=entry.published is None, resolves=resolves, revision_text=text,
        raw=raw or run.raw,  # a page's own record, else the feed document's
    )  # fmt: skip


def _about(link: str, exc: Exception) -> str:
    """An entry's error, naming its link once (fetch errors begin with the URL already)."""
    text = str(exc)
    return text if text.startswith(link) else f"{link}: {text}"


def _keyed(failure: FailedEntry) -> decide.Keyed:
    """A failed entry rebuilt from what the store kept of it, to try its page again."""
    entry = EntryData(
        title=failure.title or "", link=failure.link or "", guid=failure.guid,
        content=failure.content or "", published=failure.published_at,
    )  # fmt: skip
    return decide.Keyed(failure.identity_key, entry, failure.content_hash)


def _next_state(job: FeedJob, result: PollResult, now: datetime, rand: float) -> dict[str, object]:
    record = job.record
    state: dict[str, object] = {"last_fetch_at": now, "last_status": result.status}
    parsed = result.parsed
    hints = decide.hints_from(
        result.headers, now, retry_after=result.retry_after,
        ttl_minutes=parsed.ttl_minutes if parsed else None,
        skip_hours=parsed.skip_hours if parsed else frozenset(),
        skip_days=parsed.skip_days if parsed else frozenset(),
    )  # fmt: skip
    if result.outcome == FAILED:
        errors = record.consecutive_errors + 1
        state.update(
            consecutive_errors=errors, last_error=result.error,
            failing_since=record.failing_since or now,
            next_check_at=decide.next_check(now, job.schedule(), hints, errors=errors,
                                            rand=rand),
        )  # fmt: skip
        if result.status == 410:
            # Gone for good, says the server: stop polling until someone re-enables it.
            state.update(enabled=False, disabled_reason=GONE_REASON)
            log.warning("feed %s disabled: %s", job.spec.name, GONE_REASON)
        return state
    state.update(
        consecutive_errors=0, last_error=None, failing_since=None, last_success_at=now,
        next_check_at=decide.next_check(now, job.schedule(), hints, rand=rand),
    )  # fmt: skip
    if result.moved_to and result.moved_to != record.url:
        state["url"] = result.moved_to
        log.warning(
            "feed %s moved permanently: %s -> %s", job.spec.name, record.url, result.moved_to
        )
    return state


def _log_result(result: PollResult) -> None:
    if result.outcome == FAILED:
        log.warning("feed %s failed: %s", result.feed, result.error)
    else:
        log.info(
            "feed %s %s: %d new, %d archived, %d revised",
            result.feed,
            result.outcome,
            result.new_entries,
            result.archived,
            result.revised,
        )


__all__ = [
    "FeedJob",
    "PageProblem",
    "Pipeline",
    "PollLog",
    "PollResult",
    "Reconciled",
    "make_owner",
]
