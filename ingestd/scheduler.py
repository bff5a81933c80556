"""The daemon's heartbeat: every tick, lease the feeds the database says are due and poll them.

The database decides what is due (``next_check_at``, leases), never this process's
memory, so a restart loses nothing and several daemons can share one database. The
scheduler holds no business rules: when a feed is next due, back-off and redirects are
the pipeline's (and ``decide``'s) business; the scheduler only leases, polls within the
concurrency limit, keeps long polls' leases alive and gives leases back.

``Scheduler.tick`` is a plain coroutine so tests drive it directly with an injected
clock; ``Scheduler.start`` merely asks APScheduler to call it every ``tick_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingestd import decide
from ingestd.errors import StorageError
from ingestd.fetch.limits import FetchLimits
from ingestd.pipeline import FeedJob, PollResult, make_owner
from ingestd.store import FeedRecord, Store

log = logging.getLogger("ingestd.scheduler")

Clock = Callable[[], datetime]
#: Turns a leased feed into the pipeline's job; None when the feed is no longer configured.
JobFor = Callable[[FeedRecord], FeedJob | None]
#: Told of every finished poll (metrics, status lines); must not raise or block.
OnResult = Callable[[PollResult], None]
_TICK_JOB = "ingestd-tick"


class _TickExecutor(AsyncIOExecutor):  # type: ignore[misc]  # APScheduler has no types
    """APScheduler's asyncio executor, except that shutting down leaves submitted jobs be.

    Its own shutdown cancels them: a tick cancelled before its first step cannot catch
    that (APScheduler logs the CancelledError with a traceback), and one cancelled
    halfway leaves what it leased to the lease's end. A tick that runs after
    ``Scheduler.stop`` returns at once, and ``Scheduler.drain`` waits for them.
    """

    def shutdown(self, wait: bool = True) -> None:
        return None

    def running(self) -> list[asyncio.Future[object]]:
        """The jobs submitted and not finished."""
        return [f for f in self._pending_futures if not f.done()]


class Poller(Protocol):
    """What the scheduler needs of the pipeline."""

    async def poll(self, job: FeedJob) -> PollResult:
        """Poll one feed once and record the outcome."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Running:
    """One poll in flight and when its lease runs out."""

    record: FeedRecord
    task: asyncio.Task[PollResult | None]
    lease_until: datetime


@dataclass(frozen=True)
class Drained:
    """How shutdown went: polls that finished in the grace period, polls cancelled."""

    finished: int
    cancelled: int


class Scheduler:
    """Leases due feeds and polls them, at most ``concurrency`` at a time."""

    def __init__(
        self,
        store: Store,
        poller: Poller,
        job_for: JobFor,
        *,
        clock: Clock = _utcnow,
        owner: str | None = None,
        concurrency: int = FetchLimits.concurrency,
        lease_seconds: float = decide.LEASE_SECONDS,
        tick_seconds: float = decide.TICK_SECONDS,
        on_result: OnResult | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.poller = poller
        self.job_for = job_for
        self.clock = clock
        self.owner = owner or make_owner()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.tick_seconds = tick_seconds
        self.on_result = on_result
        self.on_tick = on_tick
        self.last_tick: datetime | None = None
        self.polls_started = 0
        self.polls_finished = 0
        self._running: dict[int, _Running] = {}
        self._stopping = False
        self._aps: AsyncIOScheduler | None = None
        self._executor: _TickExecutor | None = None

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
        try:
            await self._renew_leases()
            free = self.concurrency - len(self._running)
            if free <= 0:
                return []
            records = await self._lease(free)
        except StorageError as exc:
            # The database may come back; the next tick tries again.
            log.error("tick skipped: %s", exc)
            return []
        except asyncio.CancelledError:
            # stop() cancels a tick in progress; nothing was started, so nothing to undo
            # beyond what _lease hands back. Ending quietly keeps the journal clean.
            return []
        return [task for r in records if (task := await self._start(r)) is not None]

    async def _lease(self, free: int) -> list[FeedRecord]:
        """Lease up to ``free`` due feeds; if cancelled meanwhile, give them back."""
        taking = asyncio.ensure_future(
            asyncio.to_thread(
                self.store.lease_due_feeds, self.owner, self.clock(), self.lease_seconds, free
            )
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
        lease_until = _lease_until(record, self.clock(), self.lease_seconds)
        task = asyncio.create_task(self._poll(job), name=f"poll {record.name}")
        self._running[record.id] = _Running(record, task, lease_until)
        self.polls_started += 1
        return task

    async def _poll(self, job: FeedJob) -> PollResult | None:
        record = job.record
        try:
            result = await self.poller.poll(job)
        except StorageError as exc:
            log.error("feed %s: poll not recorded: %s", record.name, exc)
            return None
        except Exception:
            log.exception("feed %s: poll failed with a bug", record.name)
            return None
        finally:
            self._running.pop(record.id, None)
            self.polls_finished += 1
            # Shielded: a cancelled poll still hands its feed back at once.
            await asyncio.shield(self._release(record))
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

    async def _renew_leases(self) -> None:
        """Renew the lease of every poll that has used up half of it."""
        now = self.clock()
        half = self.lease_seconds / 2
        for running in list(self._running.values()):
            if (running.lease_until - now).total_seconds() > half:
                continue
            record = running.record
            kept = await asyncio.to_thread(
                self.store.renew_lease, record.id, self.owner, now, self.lease_seconds
            )
            if kept:
                running.lease_until = _lease_until(record, now, self.lease_seconds)
            else:
                log.warning("feed %s: lease lost during a long poll", record.name)

    # --- production wiring and shutdown ---------------------------------------------------

    def start(self) -> None:
        """Let APScheduler call ``tick`` every ``tick_seconds``, the first one right away."""
        self._executor = _TickExecutor()
        self._aps = AsyncIOScheduler(timezone=UTC, executors={"default": self._executor})
        self._aps.add_job(
            self.tick, "interval", seconds=self.tick_seconds, id=_TICK_JOB,
            next_run_time=datetime.now(UTC), max_instances=1, coalesce=True,
            misfire_grace_time=None,
        )  # fmt: skip
        self._aps.start()

    def set_tick(self, seconds: float) -> None:
        """Change the tick period (a configuration reload)."""
        self.tick_seconds = seconds
        if self._aps is not None and self._aps.running:
            self._aps.reschedule_job(_TICK_JOB, trigger="interval", seconds=seconds)

    def stop(self) -> None:
        """Take no new work: no more ticks, no more polls started."""
        self._stopping = True
        aps, self._aps = self._aps, None
        # Shutting down twice is an error in APScheduler; forget it once asked.
        if aps is not None and aps.running:
            aps.shutdown(wait=False)

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no poll is in flight; False if ``timeout`` seconds passed first."""
        tasks = [r.task for r in self._running.values()]
        if not tasks:
            return True
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    async def drain(self, grace: float) -> Drained:
        """Stop, let polls in flight finish within ``grace`` seconds, then cancel the rest.

        A cancelled poll stops at an await: each archive file is written atomically and
        recorded in one transaction, so what it leaves behind is complete or absent.
        """
        self.stop()
        started = asyncio.get_running_loop().time()
        if self._executor is not None:
            # APScheduler shuts down on the loop's next turn; ticks it submitted until
            # then run on (a tick that starts now starts no poll and hands back what it
            # leased), and polls they did start are waited for below.
            await asyncio.sleep(0)
            if ticks := self._executor.running():
                await asyncio.wait(ticks, timeout=grace)
        tasks = [r.task for r in self._running.values()]
        if not tasks:
            return Drained(0, 0)
        left = max(0.0, grace - (asyncio.get_running_loop().time() - started))
        _done, pending = await asyncio.wait(tasks, timeout=left)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A poll cancelled before its first step never reached its own release.
        for running in list(self._running.values()):
            self._running.pop(running.record.id, None)
            await self._release(running.record)
        return Drained(len(tasks) - len(pending), len(pending))


def _lease_until(record: FeedRecord, now: datetime, lease_seconds: float) -> datetime:
    """When the lease ends: the expiry the store handed out, else now + lease."""
    return record.lease_expires_at or now + timedelta(seconds=lease_seconds)


__all__ = ["Drained", "JobFor", "Poller", "Scheduler", "make_owner"]
