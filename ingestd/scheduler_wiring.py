"""The scheduler in production: APScheduler calls its tick, and shutdown drains it.

``Wiring`` is the part of ``scheduler.Scheduler`` that starts and stops it: a tick
every ``tick_seconds`` (the first at once), the refilling loop beside it, a reload's
new tick period, and a shutdown that lets polls in flight finish within a grace
period and cancels the rest (``drain``).
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingestd.store import FeedRecord
from ingestd.types import PollResult

_TICK_JOB = "ingestd-tick"


class TickExecutor(AsyncIOExecutor):  # type: ignore[misc]  # APScheduler has no types
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


@dataclass(frozen=True)
class Drained:
    """How shutdown went: polls that finished in the grace period, polls cancelled."""

    finished: int
    cancelled: int


@dataclass
class Running:
    """One poll in flight and when its lease runs out."""

    record: FeedRecord
    task: asyncio.Task[PollResult | None]
    lease_until: datetime
    host: str
    ending: bool = False  # the poll is over and gives its lease back


class Wiring(abc.ABC):
    """Start, reload and shutdown of a ``Scheduler``."""

    tick_seconds: float
    refill: bool
    _stopping: bool
    _wake: asyncio.Event
    _running: dict[int, Running]
    _aps: AsyncIOScheduler | None
    _executor: TickExecutor | None
    _refiller: asyncio.Task[None] | None

    @abc.abstractmethod
    async def tick(self) -> Any:
        """One tick (``Scheduler.tick``)."""

    @abc.abstractmethod
    async def run_refills(self) -> None:
        """The refilling loop (``Scheduler.run_refills``)."""

    @abc.abstractmethod
    def _forget(self, feed_id: int) -> None: ...

    @abc.abstractmethod
    async def _release(self, record: FeedRecord) -> None: ...

    def start(self) -> None:
        """Let APScheduler call ``tick`` every ``tick_seconds``, the first one right away."""
        self._executor = TickExecutor()
        self._aps = AsyncIOScheduler(timezone=UTC, executors={"default": self._executor})
        self._aps.add_job(
            self.tick, "interval", seconds=self.tick_seconds, id=_TICK_JOB,
            next_run_time=datetime.now(UTC), max_instances=1, coalesce=True,
            misfire_grace_time=None,
        )  # fmt: skip
        self._aps.start()
        if self.refill:
            self._refiller = asyncio.get_running_loop().create_task(
                self.run_refills(), name="refill"
            )

    def set_tick(self, seconds: float) -> None:
        """Change the tick period (a configuration reload)."""
        self.tick_seconds = seconds
        if self._aps is not None and self._aps.running:
            self._aps.reschedule_job(_TICK_JOB, trigger="interval", seconds=seconds)

    def stop(self) -> None:
        """Take no new work: no more ticks, no more polls started."""
        self._stopping = True
        self._wake.set()  # the refilling loop ends
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
        if self._refiller is not None:
            await asyncio.wait([self._refiller], timeout=grace)
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
            self._forget(running.record.id)
            await self._release(running.record)
        return Drained(len(tasks) - len(pending), len(pending))
