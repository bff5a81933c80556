"""Settings -> running parts: the store, the fetcher, the pipeline, the parse pool."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingestd.config import FeedSettings, FetchSettings, ScheduleSettings, Settings
from ingestd.decide import PageRetry, Rhythm, after_interval_change
from ingestd.fetch import Fetcher, FetchLimits, NetworkGuard
from ingestd.pipeline import FeedJob, Pipeline, PollResult, make_owner
from ingestd.pool.workers import parse_pool
from ingestd.store import FeedConfig, FeedRecord, Store, SyncResult, open_store
from ingestd.types import PollOutcome

#: With fewer feeds than this in one run, parsing in threads beats starting processes.
POOL_THRESHOLD = 4
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a command needs, built from validated settings."""

    settings: Settings
    store: Store
    clock: Clock = _utcnow
    executor: Executor | None = None
    skipped: list[PollResult] = field(default_factory=list)
    owner: str = field(default_factory=make_owner)
    pipelines: list[Pipeline] = field(default_factory=list)  # closed by ``close``

    def fetch_limits(self) -> FetchLimits:
        """The fetcher's limits from ``[fetch]``."""
        return fetch_limits(self.settings.fetch)

    def make_fetcher(self) -> Fetcher:
        """A fetcher with the configured limits and network guard (call inside the loop)."""
        guard = NetworkGuard(self.settings.fetch.allow_private)
        return Fetcher(self.fetch_limits(), guard=guard)

    def make_pipeline(self, fetcher: Fetcher) -> Pipeline:
        """The pipeline over this runtime's store and archive folder."""
        pipeline = Pipeline(
            self.store, fetcher, self.settings.archive_dir, clock=self.clock,
            parse_executor=self.executor, max_bytes=self.settings.fetch.max_bytes,
            owner=self.owner, raw=self.settings.archive.raw,
            raw_file_bytes=self.settings.archive.raw_file_mb * 1_000_000,
        )  # fmt: skip
        self.pipelines.append(pipeline)
        return pipeline

    def jobs(self, names: Sequence[str] = ()) -> list[FeedJob]:
        """Jobs for the named feeds (or all), skipping disabled ones into ``skipped``."""
        wanted = [f for f in self.settings.feeds if not names or f.spec.name in names]
        stored = {record.name: record for record in self.store.list_feeds()}
        jobs = []
        for feed in wanted:
            record = stored.get(feed.spec.name)
            if record is None:
                continue
            if not record.enabled:
                self.skipped.append(_disabled(feed, record.disabled_reason))
                continue
            jobs.append(job_for(feed, record, self.settings.schedule))
        return jobs

    async def poll_once(
        self, names: Sequence[str] = (), *, progress: bool = False
    ) -> list[PollResult]:
        """Poll the named feeds (or all) once, concurrently within the fetch limits."""
        async with self.make_fetcher() as fetcher:
            pipeline = self.make_pipeline(fetcher)
            pipeline.reconcile(self.settings.schedule.lease)
            jobs = self._lease(self.jobs(names))
            if len(jobs) >= POOL_THRESHOLD and self.executor is None:
                self.executor = pipeline.work.parse_executor = parse_pool()
            polls = [pipeline.poll(job) for job in jobs]
            try:
                if progress:
                    results = await _with_progress(polls)
                else:
                    results = list(await asyncio.gather(*polls))
            finally:
                self.store.release_leases_of([self.owner])  # one statement for every feed
        return [*self.skipped, *results]

    def _lease(self, jobs: list[FeedJob]) -> list[FeedJob]:
        """Lease the feeds to poll, like a daemon would; feeds a daemon is polling wait."""
        lease = self.settings.schedule.lease
        ids = [job.record.id for job in jobs]
        leased = self.store.lease_feeds(self.owner, ids, self.clock(), lease)
        for job in jobs:
            if job.record.id not in leased:
                self.skipped.append(PollResult(
                    feed=job.spec.name, outcome=PollOutcome.BUSY,
                    error="another ingestd is polling this feed right now; not polled",
                ))  # fmt: skip
        return [job for job in jobs if job.record.id in leased]

    def close(self) -> None:
        """Release the parse pool, the pipelines' capture files and the database."""
        for pipeline in self.pipelines:
            pipeline.close()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None
        self.store.close()


def fetch_limits(fetch: FetchSettings) -> FetchLimits:
    """The fetcher's limits from a ``[fetch]`` table."""
    return FetchLimits(
        connect_timeout=fetch.connect_timeout,
        read_timeout=fetch.timeout,
        total_timeout=fetch.timeout,
        max_redirects=fetch.max_redirects,
        max_bytes=fetch.max_bytes,
        concurrency=fetch.concurrency,
        per_host=fetch.per_host,
        user_agent=fetch.user_agent,
    )


def job_for(
    feed: FeedSettings, record: FeedRecord, schedule: ScheduleSettings | None = None
) -> FeedJob:
    """The pipeline's job for a configured feed and its stored record."""
    limits = schedule or ScheduleSettings()
    rhythm = Rhythm(
        interval=feed.interval_seconds,
        floor=limits.floor,
        jitter=limits.jitter,
        max_backoff=limits.max_backoff,
    )
    return FeedJob(
        record=record,
        spec=feed.spec,
        interval_seconds=feed.interval_seconds,
        trusted=feed.allow_private,
        rhythm=rhythm,
        retry=PageRetry(
            first_delay=limits.page_retry,
            max_delay=max(limits.max_backoff, limits.page_retry),
            give_up_after=limits.give_up,
        ),
    )


def open_runtime(settings: Settings, *, sync: bool = True, clock: Clock = _utcnow) -> Runtime:
    """Open (and migrate) the database; with ``sync``, bring its feeds in line with the file."""
    store = open_store(settings.database)
    if sync:
        sync_config(store, settings, clock())
    return Runtime(settings, store, clock)


def sync_config(store: Store, settings: Settings, now: datetime) -> SyncResult:
    """Bring the stored feeds in line with the configuration (start-up and reload); a
    changed interval takes effect at the next tick (``decide.after_interval_change``)."""
    floor = settings.schedule.floor

    def reschedule(
        next_check: datetime | None, last_fetch: datetime | None, interval: int
    ) -> datetime | None:
        return after_interval_change(next_check, last_fetch, Rhythm(interval, floor=floor), now)

    return store.sync_feeds([feed_config(f) for f in settings.feeds], now, reschedule)


def feed_config(feed: FeedSettings) -> FeedConfig:
    """What the store keeps of a configured feed."""
    spec = feed.spec
    return FeedConfig(spec.name, spec.url, spec.format, int(feed.interval_seconds))


def _disabled(feed: FeedSettings, reason: str | None) -> PollResult:
    return PollResult(
        feed=feed.spec.name,
        outcome=PollOutcome.DISABLED,
        error=f"disabled: {reason or 'no reason recorded'}",
    )


async def _with_progress(polls: Sequence[Awaitable[PollResult]]) -> list[PollResult]:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("polling feeds", total=len(polls))

        async def tracked(poll: Awaitable[PollResult]) -> PollResult:
            result = await poll
            bar.advance(task)
            return result

        return list(await asyncio.gather(*(tracked(p) for p in polls)))
