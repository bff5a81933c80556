"""The daemon's heartbeat: every tick, lease the feeds the database says are due and poll them.

The database decides what is due (``next_check_at``, leases), never this process's
memory, so a restart loses nothing and several daemons can share one database. The
scheduler holds no business rules: when a feed is next due, back-off and redirects are
the pipeline's (and ``decide``'s) business; the scheduler only leases, polls within the
limits of its poller's ``Slots`` (the fetcher's: ``[fetch] concurrency`` and
``per_host`` are capped there, and only there), keeps long polls' leases alive and
gives back the leases the pipeline did not (a poll's outcome gives its lease back in
the same transaction).

Work-conserving: a slot freed by a poll that ends is filled again at once while the
database has more due feeds (with ``refill``), and when it has none, the scheduler
looks again when the next feed falls due, not a whole tick later. Leases are renewed
in one statement for every long poll, in every round, so a slow round, a busy
machine or many long polls never let a lease run out under a poll still in flight
(that let a second daemon poll the same feed). At most ``per_host`` polls of one host
run at once: a hanging server holds that many slots, each until its timeout, and the
other hosts keep the rest.

``Scheduler.tick`` is a plain coroutine so tests drive it directly with an injected
clock; ``Scheduler.start`` asks APScheduler to call it every ``tick_seconds`` and,
with ``refill``, runs the refilling loop beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingestd import decide, upkeep
from ingestd.errors import StorageError
from ingestd.fetch.slots import Slots
from ingestd.lag import Lag, LagWatch
from ingestd.pipeline import FeedJob, PollResult, make_owner
from ingestd.scheduler_wiring import Drained, Running, TickExecutor, Wiring
from ingestd.store import FeedRecord, Store

log = logging.getLogger("ingestd.scheduler")

Clock = Callable[[], datetime]
#: Turns a leased feed into the pipeline's job; None when the feed is no longer configured.
JobFor = Callable[[FeedRecord], FeedJob | None]
#: Told of every finished poll (metrics, status lines); must not raise or block.
OnResult = Callable[[PollResult], None]
#: Shortest pause between two rounds that found nothing more due: a feed falling due
#: waits at most this long for a free slot's refill (start delay), and a daemon whose
#: feeds fall due one by one still leases them in small batches.
MIN_ROUND_GAP = 0.05
#: Lease passes in one round when leased feeds had to go back (their host was busy).
_PASSES = 4


class Poller(Protocol):
    """What the scheduler needs of the pipeline: its polls, and the slots they run in."""

    @property
    def slots(self) -> Slots:
        """How many polls may run at once, and of one host (the fetcher's ``Slots``)."""
        ...

    async def poll(self, job: FeedJob) -> PollResult:
        """Poll one feed once and record the outcome."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Scheduler(Wiring):
    """Leases due feeds and polls them, at most ``poller.slots.total`` at a time."""

    def __init__(
        self,
        store: Store,
        poller: Poller,
        job_for: JobFor,
        *,
        clock: Clock = _utcnow,
        owner: str | None = None,
        lease_seconds: float = decide.LEASE_SECONDS,
        tick_seconds: float = decide.TICK_SECONDS,
        on_result: OnResult | None = None,
        on_tick: Callable[[], None] | None = None,
        refill: bool = False,
    ) -> None:
        self.store = store
        self.poller = poller
        self.job_for = job_for
        self.clock = clock
        self.owner = owner or make_owner()
        # Read, never copied: one cap for the fetcher, the pipeline and the leases.
        self.slots = poller.slots
        self.lease_seconds = lease_seconds
        self.tick_seconds = tick_seconds
        self.on_result = on_result
        self.on_tick = on_tick
        self.refill = refill
        self.last_tick: datetime | None = None
        self.polls_started = 0
        self.polls_finished = 0
        #: How late the schedule runs; ``delays``: due -> leased, for the latest polls.
        self.watch = LagWatch()
        self.delays = self.watch.delays
        #: How long the last lease query took (seconds): the database's share of a delay.
        self.last_lease_seconds = 0.0
        #: Feeds leased but handed back because their host had ``per_host`` polls running.
        self.host_deferrals = 0
        # Every poll in flight, until its lease is given back (wait_idle, drain wait).
        self._running: dict[int, Running] = {}
        self._per_host: Counter[str] = Counter()
        self._host_of: dict[int, str] = {}  # feed id -> host, of every feed leased so far
        self._round_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._backlog = False  # the last round filled every free slot: more may be due
        self._next_due: datetime | None = None  # when the next feed falls due, if known
        self._refiller: asyncio.Task[None] | None = None
        self._stopping = False
        self._aps: AsyncIOScheduler | None = None
        self._executor: TickExecutor | None = None

    @property
    def concurrency(self) -> int:
        """How many polls may run at once (the poller's slots)."""
        return self.slots.total

    @property
    def per_host(self) -> int:
        """How many polls of one host may run at once (the poller's slots)."""
        return self.slots.per_host

    @property
    def running(self) -> int:
        """How many polls are in flight."""
        return len(self._running)

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called: no new polls start."""
        return self._stopping

    # --- one tick ---------------------------------------------------------------------

    async def tick(self) -> list[asyncio.Task[PollResult | None]]:
        """Renew long polls' leases, lease due feeds into free slots and start their polls.

        Returns the polls started; they run on after ``tick`` returns (await them, or
        ``wait_idle``, to see them finish).
        """
        if self._stopping:
            return []
        self.last_tick = self.clock()
        if self.on_tick is not None:
            self.on_tick()
        tasks = await self._round()
        await self._check_lag()
        return tasks

    async def _check_lag(self) -> None:
        """Measure how late the oldest due feed is; say so in the log when it stays late."""
        now = self.clock()
        try:
            waiting = await asyncio.to_thread(self.store.schedule_lag, now)
        except StorageError:
            return  # the round said so already
        except asyncio.CancelledError:
            return
        self.watch.observe(now, waiting.oldest_due_at, waiting.due, self._load(), self.running)

    def _load(self) -> upkeep.Load:
        busy = tuple(sorted(h for h, n in self._per_host.items() if n >= self.per_host))
        return upkeep.Load(
            self.running, self.concurrency, busy, self.last_lease_seconds, self.tick_seconds
        )

    def lag(self) -> Lag:
        """How far behind its schedule the daemon is (as of its last tick)."""
        return self.watch.lag(self.running, self.concurrency)

    async def _round(self) -> list[asyncio.Task[PollResult | None]]:
        """One look at the database: renew, lease up to the free slots, start polls.

        Feeds leased for a host that already runs its share are handed back and the
        lease is asked again without that host's feeds (a few passes at most: each one
        learns the hosts of the feeds it saw).
        """
        async with self._round_lock:
            tasks: list[asyncio.Task[PollResult | None]] = []
            try:
                await self._renew_leases()
                for _ in range(_PASSES):
                    deferred = self.host_deferrals
                    tasks += await self._fill()
                    if self.host_deferrals == deferred or self.running >= self.concurrency:
                        break
            except StorageError as exc:
                # The database may come back; the next tick tries again.
                log.error("tick skipped: %s", exc)
            except asyncio.CancelledError:
                # stop() cancels a tick in progress; what _lease took it handed back.
                # Ending quietly keeps the journal clean.
                pass
            return tasks

    async def _fill(self) -> list[asyncio.Task[PollResult | None]]:
        """Lease due feeds into the free slots and start their polls."""
        free = self.concurrency - len(self._running)
        if free <= 0 or self._stopping:
            self._backlog = free <= 0  # unknown; a poll's end looks again
            return []
        started = time.monotonic()
        skip = self._full_hosts_feeds()
        # Never the feeds this daemon is polling: should a poll outlive its lease (renewals
        # failed), the feed is due again in the database, and a second poll of it here
        # would share its slot, its host count and its entry in ``_running``.
        records = await self._lease(free, [*self._running, *skip])
        self.last_lease_seconds = time.monotonic() - started
        self._backlog = len(records) >= free
        self._next_due = None
        if not self._backlog and not skip:
            # Nothing more due now: look again when the next feed falls due.
            # (Feeds of busy hosts are looked at again when one of their polls ends.)
            self._next_due = await asyncio.to_thread(self.store.next_due_at, self.clock())
        return [task for r in records if (task := await self._start(r)) is not None]

    def _full_hosts_feeds(self) -> list[int]:
        """Feeds (of those seen) whose host already runs ``per_host`` polls."""
        full = {host for host, n in self._per_host.items() if n >= self.per_host}
        return [feed_id for feed_id, host in self._host_of.items() if host in full]

    async def _lease(self, free: int, skip: list[int]) -> list[FeedRecord]:
        """Lease up to ``free`` due feeds, not those in ``skip``; if cancelled meanwhile,
        give them back."""
        args = (self.owner, self.clock(), self.lease_seconds, free)
        taking = asyncio.ensure_future(
            asyncio.to_thread(self.store.lease_due_feeds, *args, exclude=skip)
        )
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The database call runs on in its thread; what it leased must not wait
            # for the leases to run out.
            for record in await taking:
                await self._release(record)
            raise

    async def _start(self, record: FeedRecord) -> asyncio.Task[PollResult | None] | None:
        job = self.job_for(record)
        if job is None or self._stopping:
            # Removed from the configuration since the lease was taken, or shutting down.
            await self._release(record)
            return None
        host = _host(record)
        self._host_of[record.id] = host
        if self._per_host[host] >= self.per_host:
            # Politeness: the host has its share running. The feed stays due, and the
            # next lease skips the host's feeds until one of its polls ends.
            self.host_deferrals += 1
            await self._release(record)
            return None
        now = self.clock()
        if record.next_check_at is not None:
            self.delays.append(max(0.0, (now - record.next_check_at).total_seconds()))
        lease_until = _lease_until(record, now, self.lease_seconds)
        task = asyncio.create_task(self._poll(job), name=f"poll {record.name}")
        self._running[record.id] = Running(record, task, lease_until, host)
        self._per_host[host] += 1
        self.polls_started += 1
        return task

    async def _poll(self, job: FeedJob) -> PollResult | None:
        record = job.record
        result: PollResult | None = None
        try:
            result = await self.poller.poll(job)
        except StorageError as exc:
            log.error("feed %s: poll not recorded: %s", record.name, exc)
            return None
        except Exception:
            log.exception("feed %s: poll failed with a bug", record.name)
            return None
        finally:
            self.polls_finished += 1
            if (running := self._running.get(record.id)) is not None:
                running.ending = True  # no renewal: its lease is being given back
            try:
                # The pipeline gives the lease back with the poll's outcome; a poll that
                # failed, was cancelled or lost its lease has it given back here.
                # Shielded: a cancelled poll still hands its feed back at once.
                if result is None or not result.lease_returned:
                    await asyncio.shield(self._release(record))
            finally:
                self._forget(record.id)  # its slot is free once its lease is back
            if self._backlog or self.slots.host_limited:
                self._wake.set()  # a free slot, and feeds may be waiting for one
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("feed %s: result observer failed", record.name)
        return result

    async def _release(self, record: FeedRecord) -> None:
        try:
            held = await asyncio.to_thread(self.store.release_lease, record.id, self.owner)
        except StorageError as exc:
            log.error("feed %s: lease not released (it expires by itself): %s", record.name, exc)
            return
        if not held:
            # Expired and taken over, or the feed was disabled (removed, 410) meanwhile.
            log.info("feed %s: lease was already gone when the poll ended", record.name)

    def _forget(self, feed_id: int) -> None:
        running = self._running.pop(feed_id, None)
        if running is not None:
            self._per_host[running.host] -= 1
            if self._per_host[running.host] <= 0:
                del self._per_host[running.host]

    async def _renew_leases(self) -> None:
        """Renew, in one statement, the lease of every poll that has used up half of it.

        One statement whatever the number of long polls: renewing them one by one made a
        round last longer the more polls were slow, until leases ran out under polls
        still in flight and another daemon polled the same feeds.
        """
        now = self.clock()
        half = self.lease_seconds / 2
        due = [
            r
            for r in self._running.values()
            if not r.ending and (r.lease_until - now).total_seconds() <= half
        ]
        if not due:
            return
        kept = await asyncio.to_thread(
            self.store.renew_leases, [r.record.id for r in due], self.owner, now,
            self.lease_seconds,
        )  # fmt: skip
        until = now + timedelta(seconds=self.lease_seconds)
        for running in due:
            if running.record.id in kept:
                running.lease_until = until
            elif not running.ending:
                # Not a poll that ended (and gave its lease back) meanwhile.
                log.warning("feed %s: lease lost during a long poll", running.record.name)

    def next_round_in(self) -> float:
        """Seconds until the refilling loop looks at the database again by itself."""
        wait = self.tick_seconds
        if self._next_due is not None:
            wait = min(wait, (self._next_due - self.clock()).total_seconds())
        if leases := [r.lease_until for r in self._running.values() if not r.ending]:
            # A renewal may be needed before the next tick.
            soonest = min(leases)
            renew_at = (soonest - self.clock()).total_seconds() - self.lease_seconds / 2
            wait = min(wait, renew_at)
        return max(MIN_ROUND_GAP, wait)

    async def run_refills(self) -> None:
        """Refill free slots as polls end and look again when the next feed falls due,
        until ``stop``. (``start`` runs this beside the ticks when ``refill`` is on.)"""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.next_round_in())
            self._wake.clear()
            if self._stopping:
                return
            await self._round()
            # Polls ending within the same moment share the next round.
            await asyncio.sleep(MIN_ROUND_GAP if not self._backlog else 0)


def _host(record: FeedRecord) -> str:
    """The host a feed's polls go to (per-host limits count per host)."""
    return urlsplit(record.url).hostname or ""


def _lease_until(record: FeedRecord, now: datetime, lease_seconds: float) -> datetime:
    """When the lease ends: the expiry the store handed out, else now + lease."""
    return record.lease_expires_at or now + timedelta(seconds=lease_seconds)


__all__ = ["Drained", "JobFor", "Lag", "Poller", "Scheduler", "make_owner"]
