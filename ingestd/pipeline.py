"""One feed end to end: fetch -> parse -> decide -> extract -> render -> archive -> store.

The one module that composes side effects. Everything it needs arrives through
``Pipeline``'s constructor (store, fetcher, archive folder, clock, parse executor),
so the daemon, ``ingestd fetch`` and the tests run the very same code.

Crash consistency: an entry's file is written (atomically) before its row, and the
row records the file in the same transaction that creates the entry. A crash in
between leaves an orphan file and no row; ``reconcile`` at start-up moves such
files aside and drops rows whose file is gone, so the next poll archives the entry
again (exactly once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import ada_url

from ingestd import archive, decide
from ingestd.errors import (
    ArchiveError,
    ExtractError,
    FetchError,
    HTTPStatusError,
    IngestdError,
    NotModified,
    ParseError,
    StorageError,
    TooLarge,
)
from ingestd.extract import extract_article
from ingestd.fetch import Fetcher
from ingestd.formats import feed as format_a
from ingestd.formats import render_any
from ingestd.formats import repost as format_b
from ingestd.parse import parse_feed
from ingestd.sanitize import sanitize
from ingestd.store import FeedRecord, KnownEntry, Store
from ingestd.types import ArchiveDoc, ArchiveFormat, Article, FeedSpec, ParsedFeed

log = logging.getLogger("ingestd.pipeline")

ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
OK, NOT_MODIFIED, FAILED = "ok", "not_modified", "failed"
_ID_ATTEMPTS = 1000  # file names tried below the next id before giving up
GONE_REASON = "410 Gone: the server says the feed is gone for good (ingestd feeds enable NAME)"
#: New entries archived per poll of one feed. Each costs a file, two fsyncs and a commit:
#: a feed offering 50,000 items would hold one poll for minutes. The rest stay unrecorded,
#: so the following polls archive them, oldest first, this many at a time.
MAX_NEW_PER_POLL = 500


@dataclass(frozen=True)
class FeedJob:
    """One feed to poll: its stored state, its configuration, and whether it is trusted."""

    record: FeedRecord
    spec: FeedSpec
    interval_seconds: float
    trusted: bool = False  # the configured URL may be a private address
    rhythm: decide.Rhythm | None = None  # floor, jitter, back-off cap; defaults if None

    def schedule(self) -> decide.Rhythm:
        """The feed's rhythm: the configured one, or the interval with default limits."""
        return self.rhythm or decide.Rhythm(interval=self.interval_seconds)


@dataclass(frozen=True)
class PollResult:
    """What one poll of one feed did."""

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


@dataclass(frozen=True)
class Reconciled:
    """What start-up reconciliation repaired."""

    temporaries_removed: int = 0
    orphans_moved: tuple[str, ...] = ()
    rows_dropped: tuple[str, ...] = ()


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
    incomplete: bool = False  # entries left for the next poll (backlog or failures)


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
    ) -> None:
        self.owner = owner or make_owner()
        self._archive_id: str | None = None
        self.rand = rand
        self.max_new_per_poll = max_new_per_poll
        self.store = store
        self.fetcher = fetcher
        self.archive_root = archive_root
        self.clock = clock
        self.parse_executor = parse_executor
        self.max_bytes = max_bytes

    @property
    def archive_id(self) -> str:
        """The id of this pipeline's archive folder (made on first use)."""
        if self._archive_id is None:
            self._archive_id = archive.archive_identity(self.archive_root)
        return self._archive_id

    # --- one poll --------------------------------------------------------------

    async def poll(self, job: FeedJob) -> PollResult:
        """Poll one feed once and record the outcome; never raises for feed problems."""
        run = _Poll(job, self.clock(), time.monotonic())
        try:
            fetched = await self._fetch_feed(job)
        except NotModified as signal:
            return self._finish(run, NOT_MODIFIED, status=304,
                                moved_to=getattr(signal, "permanent_url", None),
                                headers=getattr(signal, "headers", {}))
        except FetchError as exc:
            retry = exc.retry_after if isinstance(exc, HTTPStatusError) else None
            return self._finish(run, FAILED, status=exc.status, error=str(exc), retry_after=retry)
        try:
            parsed = await self._parse(fetched.content, fetched.headers)
            await self._archive_new(run, parsed)
        except (ParseError, ArchiveError, StorageError) as exc:
            return self._finish(run, FAILED, status=fetched.status, error=str(exc),
                                size=len(fetched.content))
        if parsed.bozo:
            run.warnings.append(f"feed is malformed but readable: {parsed.bozo}")
        return self._finish(
            run, OK, status=fetched.status, size=len(fetched.content), parsed=parsed,
            moved_to=getattr(fetched, "permanent_url", None), headers=fetched.headers,
            etag=fetched.etag, last_modified=fetched.last_modified,
        )

    async def _fetch_feed(self, job: FeedJob) -> _Body:
        record = job.record
        if record.url.startswith("file:"):
            return await asyncio.to_thread(_read_local_feed, record.url, self.max_bytes)
        result = await self.fetcher.fetch(
            record.url, etag=record.etag, last_modified=record.last_modified, trusted=job.trusted
        )
        return _Body(result.url, result.status, result.content, result.headers, result.etag,
                     result.last_modified, result.permanent_url)

    async def _parse(self, content: bytes, headers: dict[str, str]) -> ParsedFeed:
        # feedparser is CPU-bound pure Python: a process pool keeps the loop free and
        # uses every core; without one, a thread at least keeps the loop responsive.
        loop = asyncio.get_running_loop()
        if self.parse_executor is not None:
            return await loop.run_in_executor(self.parse_executor, parse_feed, content, headers)
        return await asyncio.to_thread(parse_feed, content, headers)

    async def _archive_new(self, run: _Poll, parsed: ParsedFeed) -> None:
        feed_id = run.job.record.id
        base = run.job.record.url
        entries = [
            replace(e, link=_absolute(base, e.link)) if e.link else e for e in parsed.entries
        ]
        keyed = decide.identify(entries)
        known = self.store.known_entries(
            feed_id, [k.key for k in keyed], [k.entry.link for k in keyed]
        )
        by_key = {k.entry.identity_key: _known(k) for k in known}
        by_link = {k.entry.link: _known(k) for k in known if k.entry.link}
        plan = decide.plan(keyed, by_key, by_link)
        for old, new in plan.revised:
            if self.store.add_revision(old.entry_id, new.content_hash, run.started):
                run.revised += 1
        if plan.revision_cap_hit:
            run.warnings.append(f"{plan.revision_cap_hit} entries changed too often; ignored")
        run.new_entries = len(plan.new)
        # Oldest first: file numbers count down, so the newest entry sorts first.
        ordered = sorted(plan.new, key=lambda k: k.entry.published or run.started)
        cap = self.max_new_per_poll
        if len(ordered) > cap:
            run.incomplete = True
            run.warnings.append(f"{len(ordered) - cap:,} more new entries than the {cap:,} "
                                "archived per poll; the next polls archive them")
        for item in ordered[:cap]:
            await self._archive_one(run, item)

    async def _archive_one(self, run: _Poll, item: decide.Keyed) -> None:
        try:
            doc, published = await self._document(run, item)
        except (FetchError, ExtractError, ParseError) as exc:
            # Not stored, so the next poll tries this entry again.
            run.incomplete = True
            run.warnings.append(f"{item.entry.link or item.key}: {exc}")
            log.warning("feed %s: entry skipped: %s", run.job.spec.name, exc)
            return
        self._store_with_file(run, item, doc, published)
        run.archived += 1

    async def _document(self, run: _Poll, item: decide.Keyed) -> tuple[ArchiveDoc, datetime]:
        spec, entry = run.job.spec, item.entry
        published = entry.published or run.started
        if spec.format is ArchiveFormat.REPOST:
            article = await self._article(run.job, entry.link)
            label = spec.label.format(site=spec.site)
            return format_b.from_article(article, source=spec.source, label=label,
                                         newlines=spec.newlines), published
        content = entry.content
        if spec.fetch_page:
            article = await self._article(run.job, entry.link)
            content = format_a.content_from_article(article, spec.image_proxy)
        if spec.sanitize:
            content = sanitize(content).html
        return format_a.from_item(entry.title, entry.link, content, published), published

    async def _article(self, job: FeedJob, link: str) -> Article:
        if not link:
            raise ExtractError("the entry has no link to fetch")
        if link.startswith("file:"):
            body = await asyncio.to_thread(_read_local_page, link, job.record.url, self.max_bytes)
        else:
            result = await self.fetcher.fetch(link, accept=ACCEPT_HTML)
            body = _Body(result.url, result.status, result.content, result.headers)
        html = decode_page(body.content, body.headers.get("content-type", ""))
        return extract_article(html, body.url)

    def _store_with_file(
        self, run: _Poll, item: decide.Keyed, doc: ArchiveDoc, published: datetime
    ) -> None:
        feed = run.job.record
        relative, path, file_id = self._write_file(run, render_any(doc))
        try:
            entry = self.store.add_entry(
                feed.id, item.key, content_hash=item.content_hash, first_seen_at=run.started,
                guid=item.entry.guid, link=item.entry.link or None, title=item.entry.title,
                published_at=published, published_is_fallback=item.entry.published is None,
                archive_path=relative, file_id=file_id,
                archive_id=self.archive_id, archived_by=self.owner,
            )  # fmt: skip
        except StorageError:
            path.unlink(missing_ok=True)  # no row, so no file either
            raise
        if entry.archive_path != relative:
            path.unlink(missing_ok=True)  # another writer archived it first

    def _write_file(self, run: _Poll, text: str) -> tuple[str, Path, int]:
        """Write a new file under the next free id; never replace an existing file."""
        file_id = self.store.next_file_id(run.job.record.id)
        folder = archive.articles_dir(Path(), run.job.spec.name)
        for candidate in range(file_id, max(file_id - _ID_ATTEMPTS, -1), -1):
            relative = (folder / archive.file_name(candidate)).as_posix()
            path = archive.write_new(self.archive_root, relative, text)
            if path is not None:
                return relative, path, candidate
            # Taken: a crash's orphan not yet moved aside, or another daemon's file.
        raise ArchiveError(f"no free file name below {file_id} in {folder}")

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
    ) -> PollResult:
        duration_ms = int((time.monotonic() - run.clock_start) * 1000)
        result = PollResult(
            feed=run.job.spec.name, outcome=outcome, status=status,
            new_entries=run.new_entries, archived=run.archived, revised=run.revised,
            error=error, warnings=tuple(run.warnings), bytes=size, duration_ms=duration_ms,
            retry_after=retry_after, moved_to=moved_to, parsed=parsed, headers=headers or {},
        )  # fmt: skip
        record = run.job.record
        self.store.record_fetch(
            record.id, run.started, duration_ms, status, outcome, size, run.archived, error
        )
        now = self.clock()
        state = _next_state(run.job, result, now, self.rand())
        if outcome == OK:
            # With entries left over, the next poll must get the whole feed again, not
            # a 304 that would strand them until the feed happens to change.
            state.update(etag=None if run.incomplete else etag,
                         last_modified=None if run.incomplete else last_modified)
        self.store.update_feed_state(record.id, **state)  # type: ignore[arg-type]
        _log_result(result)
        return result

    # --- start-up repair -------------------------------------------------------------

    def reconcile(self, settle_seconds: float = 300.0) -> Reconciled:
        """Make rows and files agree after a crash: sweep temporaries, move orphans aside.

        Only this archive folder's rows are judged (daemons on other machines keep
        their own folders). A file without a row in a feed another live daemon is
        polling right now is left alone while younger than ``settle_seconds`` (the
        lease time): its row may be a moment from being committed.
        """
        self._release_dead_local_leases()
        temporaries = archive.sweep_temporaries(self.archive_root)
        on_disk = archive.archived_files(self.archive_root)
        recorded = self.store.all_archive_paths(self.archive_id)
        busy = self._busy_folders()
        settled = time.time() - settle_seconds
        orphans = sorted(
            p for p in on_disk - recorded.keys()
            if _feed_folder(p) not in busy or _mtime(self.archive_root / p) < settled
        )
        stamp = self.clock().strftime("%Y%m%dT%H%M%S%fZ")
        for relative in orphans:
            target = self.archive_root / "orphans" / stamp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.archive_root / relative), target)
            log.warning("archive file without a database row moved to %s", target)
        dropped = []
        for relative in sorted(recorded.keys() - on_disk):
            self.store.delete_entry(recorded[relative])
            dropped.append(relative)
            log.warning("database row without its file dropped (%s); it will be refetched",
                        relative)
        for entry in self.store.entries_without_file():
            self.store.delete_entry(entry.id)
            dropped.append(f"entry {entry.id}")
        return Reconciled(len(temporaries), tuple(orphans), tuple(dropped))

    def _busy_folders(self) -> set[str]:
        leases = self.store.active_leases(self.clock())
        names = {feed.id: feed.name for feed in self.store.list_feeds()}
        return {
            archive.safe_component(names[feed_id])
            for feed_id, owner in leases.items()
            if owner != self.owner and feed_id in names
        }

    def _release_dead_local_leases(self) -> None:
        # A daemon killed on this host keeps its leases until they run out; its
        # process is provably gone, so they can be freed at once.
        dead = [owner for owner in set(self.store.active_leases(self.clock()).values())
                if owner != self.owner and _dead_local_owner(owner)]
        if dead and self.store.release_leases_of(dead):
            log.warning("freed the leases of ended processes: %s", ", ".join(sorted(dead)))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _feed_folder(relative: str) -> str:
    parts = relative.split("/")
    return parts[1] if len(parts) > 2 else ""


def make_owner() -> str:
    """A name for this process in leases and archive rows: host, pid, random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _dead_local_owner(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, just someone else's
    return False


@dataclass(frozen=True)
class _Body:
    url: str
    status: int
    content: bytes
    headers: dict[str, str]
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None


def _known(item: KnownEntry) -> decide.Known:
    entry = item.entry
    return decide.Known(entry.id, entry.identity_key, entry.link or "", item.content_hash,
                        entry.current_revision)


def _absolute(base: str, link: str) -> str:
    # Relative item links are resolved against the feed's own URL.
    try:
        return str(ada_url.join_url(base, link.strip()))
    except ValueError:
        return link


def _next_state(
    job: FeedJob, result: PollResult, now: datetime, rand: float
) -> dict[str, object]:
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
        log.warning("feed %s moved permanently: %s -> %s", job.spec.name, record.url,
                    result.moved_to)
    return state


def _log_result(result: PollResult) -> None:
    if result.outcome == FAILED:
        log.warning("feed %s failed: %s", result.feed, result.error)
    else:
        log.info("feed %s %s: %d new, %d archived, %d revised", result.feed, result.outcome,
                 result.new_entries, result.archived, result.revised)


# --- local files (file: feeds) ----------------------------------------------------------


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise FetchError(f"{url}: only local file: URLs can be read", url=url)
    return Path(unquote(parts.path))


def _read_capped(path: Path, url: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"{url}: cannot read: {exc.strerror or exc}", url=url) from exc
    if len(data) > max_bytes:
        raise TooLarge(f"{url}: larger than the {max_bytes}-byte cap", url=url)
    return data


def _read_local_feed(url: str, max_bytes: int) -> _Body:
    content = _read_capped(_local_path(url), url, max_bytes)
    return _Body(url, 200, content, {"content-type": "application/xml"})


def _read_local_page(link: str, feed_url: str, max_bytes: int) -> _Body:
    """A page of a local feed: only files beside or below the feed file may be read."""
    if not feed_url.startswith("file:"):
        raise FetchError(f"{link}: a file: link is only followed for a local feed", url=link)
    page = _local_path(link).resolve()
    folder = _local_path(feed_url).resolve().parent
    if not page.is_relative_to(folder):
        raise FetchError(f"{link}: outside the local feed's folder {folder}", url=link)
    return _Body(link, 200, _read_capped(page, link, max_bytes), {"content-type": "text/html"})


# --- page decoding -------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs",
              "iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "utf-8"}


def decode_page(content: bytes, content_type: str) -> str:
    """Bytes of an HTML page -> text, trusting whichever declared charset really fits.

    Pages often declare one charset in the header and another in a meta tag (or
    lie in both). Each candidate is tried strictly; the first that decodes the
    bytes without error wins, and UTF-8 with replacement is the last resort.
    """
    candidates = []
    header = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", content_type, re.I)
    if header:
        candidates.append(header.group(1))
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "gb18030", "big5hkscs"]
    if content.startswith(b"\xef\xbb\xbf"):
        candidates.insert(0, "utf-8-sig")
    for name in candidates:
        codec = _SUPERSETS.get(name.lower(), name)
        try:
            return content.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", errors="replace")


__all__ = ["FeedJob", "IngestdError", "Pipeline", "PollResult", "Reconciled", "decode_page"]
