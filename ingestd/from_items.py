"""Entries archived from the feed document's items, and what a poll plans for each item.

Entries from the feed alone are cheap: rendered and written in the pool, and recorded
in batches (one sync, one transaction). A feed with nothing stored yet (its first
poll) is parsed and written in one pool step (``archive_first``). Changed entries
become revisions; entries of feeds built from pages go on to ``from_pages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingestd import archive, decide, naming
from ingestd.errors import StorageError
from ingestd.faults import crash_point
from ingestd.from_pages import FromPages
from ingestd.poll import BATCH, PollRun, Stage, from_feed_alone, pool_steps
from ingestd.types import Fetched, ParsedFeed

if TYPE_CHECKING:
    from ingestd.pool import steps


@dataclass
class FromItems(Stage):
    """Plans each poll's entries and archives those the feed document alone makes."""

    pages: FromPages
    # Feeds seen with stored entries: their polls skip the first-poll question.
    # (Only ever a shortcut to the general path, which is right for any feed.)
    _stored: set[int] = field(default_factory=set)

    async def archive(self, run: PollRun, fetched: Fetched) -> ParsedFeed:
        """Parse the feed document and archive its entries; the feed's hints come back."""
        if await self.is_first_poll(run):
            return await self.archive_first(run, fetched)
        read: steps.ReadFeed = await self.work.cpu(
            pool_steps().read_feed, fetched.content, fetched.headers, run.job.record.url
        )
        run.parse_seconds = read.cpu_seconds
        await self.archive_new(run, read.keyed)
        return read.feed

    async def is_first_poll(self, run: PollRun) -> bool:
        """A feed archived from its items with no entry stored yet."""
        feed_id = run.job.record.id
        if not from_feed_alone(run.job.spec) or feed_id in self._stored:
            return False
        if await self.work.blocking(self.store.has_entries, feed_id):
            self._stored.add(feed_id)
            return False
        return True

    async def archive_first(self, run: PollRun, fetched: Fetched) -> ParsedFeed:
        """A feed with no stored entry (its first poll): every entry is new, so one pool
        step parses the document and writes the files, and only what the rows record
        comes back. The files are written as temporaries; a pool step names each
        batch just before recording it, so at most one batch waits for its rows."""
        job = run.job
        first: steps.FirstRead
        first, _ = await self.work.write_files(
            pool_steps().read_new_feed, fetched.content, fetched.headers, job.record.url,
            self.archive_root, job.spec, self.max_new_per_poll, run.started,
        )  # fmt: skip
        run.parse_seconds = first.cpu_seconds
        crash_point("first-poll-written")
        self._count_new(run, first.new_entries)
        run.next_id = naming.FIRST_FILE_ID
        named = 0
        try:
            for start in range(0, len(first.written), BATCH):
                chunk = first.written[start : start + BATCH]
                named = start + len(chunk)  # from here on, name_written cleans up after itself
                # In the pool, like the writing: a link and an unlink per file in the store
                # thread would hand the interpreter lock to and fro with the event loop.
                files = await self.work.cpu(
                    archive.name_written, self.archive_root, job.spec.name, run.next_id,
                    [temporary for _item, temporary in chunk],
                )  # fmt: skip
                run.numbered([file_id for _relative, file_id in files])
                for (item, _t), file in zip(chunk, files, strict=True):
                    run.pending_row(item, file)
                await self.flush(run)
        finally:
            # A failed or cancelled poll: the batches not named yet go.
            archive.discard(self.archive_root, [t for _item, t in first.written[named:]])
        return first.feed

    def _count_new(self, run: PollRun, new: int) -> None:
        run.new_entries = new
        run.left_over(new, self.max_new_per_poll)

    async def archive_new(self, run: PollRun, keyed: Sequence[decide.Keyed]) -> None:
        """The entries of a parsed document: new ones archived, changed ones revised."""
        plan = await self.work.blocking(self._plan, run, keyed)
        if plan.revised:
            await self._revise(run, plan.revised)
        ordered = decide.archive_order(plan.new, run.started)
        spec = run.job.spec
        if not from_feed_alone(spec):
            await self.pages.archive(run, ordered)
            return
        self._count_new(run, len(plan.new))
        cap = self.max_new_per_poll
        for start in range(0, min(len(ordered), cap), BATCH):
            chunk = ordered[start : min(start + BATCH, cap)]
            files: list[tuple[str, int]]
            files, ids = await self.work.write_files(
                pool_steps().write_items, self.archive_root, run.next_id, spec,
                [k.entry for k in chunk], run.started,
            )  # fmt: skip
            run.numbered(ids)
            for item, file in zip(chunk, files, strict=True):
                run.pending_row(item, file)
            await self.flush(run)

    async def _revise(
        self, run: PollRun, revised: Sequence[tuple[decide.Known, decide.Keyed]]
    ) -> None:
        """Record changed entries as new revisions, each with its text (the archive file
        keeps the first version)."""
        texts: list[str] = await self.work.cpu(
            pool_steps().render.render_items, run.job.spec, [new.entry for _old, new in revised],
            run.started,
        )  # fmt: skip
        changes = [
            (old.entry_id, new.content_hash, text)
            for (old, new), text in zip(revised, texts, strict=True)
        ]
        run.revised = await self.work.blocking(self.store.add_revisions, changes, run.started)

    def _plan(self, run: PollRun, keyed: Sequence[decide.Keyed]) -> decide.Plan:
        """Look the entries up and sort them (blocking: in the store thread)."""
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
