"""Entries archived from their article pages (``fetch_page`` feeds and format B).

Each entry's page is fetched, extracted and rendered, and the entry stored at once
(pages are slow to make; a stop loses none of that work). A page that fails is kept
with its retry state (``decide.page_failed``), so later polls retry it even when the
feed answers 304 or no longer lists it, and ``status`` shows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingestd import decide
from ingestd.capture import RawRef
from ingestd.errors import ExtractError, FetchError, ParseError
from ingestd.fetch import ACCEPT_HTML, Retriever
from ingestd.poll import PollRun, Stage, pool_steps
from ingestd.store import FailedEntry, stored_key
from ingestd.types import EntryData, PageProblem

if TYPE_CHECKING:
    from ingestd.pool import steps

log = logging.getLogger("ingestd.pipeline")


@dataclass
class FromPages(Stage):
    """Archives entries from their pages, new ones and failed ones due for a retry."""

    retrieve: Retriever

    async def archive(self, run: PollRun, ordered: Sequence[decide.Keyed]) -> None:
        """The entries of ``ordered`` (and those waiting for a retry) whose page is due."""
        feed_id = run.job.record.id
        failures = await self.work.blocking(self.store.page_failures, feed_id)
        due = self._due(run, ordered, failures)
        cap = self.max_new_per_poll
        run.left_over(len(due), cap, "entries")
        if due and not run.next_id:
            run.next_id = await self.work.blocking(self.store.next_file_id, feed_id)
        for item, failure in due[:cap]:
            await self._from_page(run, item, failure)
            await self.flush(run)

    def _due(
        self, run: PollRun, ordered: Sequence[decide.Keyed], failures: dict[str, FailedEntry]
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

    async def _from_page(
        self, run: PollRun, item: decide.Keyed, failure: FailedEntry | None
    ) -> None:
        try:
            written, raw = await self._page_file(run, item.entry)
        except (FetchError, ExtractError, ParseError) as exc:
            await self._failed(run, item, failure, exc)
            return
        [file] = written.files
        run.pending_row(item, file, resolves=failure is not None, text=written.item_text, raw=raw)

    async def _failed(
        self, run: PollRun, item: decide.Keyed, failure: FailedEntry | None, exc: Exception
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
        await self.work.blocking(self.store.record_page_failure, job.record.id, kept)
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

    async def _page_file(
        self, run: PollRun, entry: EntryData
    ) -> tuple[steps.PageWritten, RawRef | None]:
        job, link = run.job, entry.link
        if not link:
            raise ExtractError("the entry has no link to fetch")
        body = await self.retrieve.page(link, feed_url=job.record.url, trusted=job.trusted)
        # The record is written while the pool extracts; a page that fails keeps it too.
        raw = asyncio.ensure_future(self.capture(body, {"Accept": ACCEPT_HTML}))
        written: steps.PageWritten
        try:
            written, ids = await self.work.write_files(
                pool_steps().write_page, self.archive_root, run.next_id, job.spec, entry,
                run.started, body.content, body.headers.get("content-type", ""), body.url,
            )  # fmt: skip
        finally:
            ref = await raw
        run.numbered(ids)
        return written, ref


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
