"""Bounded history: the fetch log pruned in small batches, and the space given back.

Every poll adds a row to the fetch log; a daemon polling 10,000 feeds every half hour
adds 480,000 a day. ``Pruner`` deletes what ``[history]`` no longer keeps
(``upkeep.Retention``), one short transaction at a time (a few hundred feeds, at most a
thousand rows), so polls never wait long for the database; after a pass, SQLite's
freed pages go back to the file system (PostgreSQL's autovacuum reuses them itself).
The daemon runs ``Pruner.run`` beside its scheduler; ``ingestd db prune`` runs one pass.

A PostgreSQL server with autovacuum off would let dead row versions pile up (each poll
leaves two in ``feeds``), and every lease would read through them: ``vacuum_when_off``
does for ingestd's tables what autovacuum would, by the server's own thresholds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ingestd import memory, upkeep
from ingestd.errors import StorageError
from ingestd.store import Store

log = logging.getLogger("ingestd.history")

#: Feeds and rows one pruning transaction looks at, at most.
FEEDS_PER_STEP = 200
ROWS_PER_STEP = 1000
#: Free pages one incremental vacuum gives back (4 MB of 4 kB pages): a short lock.
PAGES_PER_VACUUM = 1024
#: Seconds between looks at dead rows, on a PostgreSQL server without autovacuum.
DEAD_ROWS_EVERY = 10.0


@dataclass(frozen=True)
class PassReport:
    """One pruning pass over every feed."""

    deleted: int
    steps: int
    bytes_freed: int


class Pruner:
    """Deletes fetch log rows that ``retention`` no longer keeps, a small batch at a time."""

    def __init__(
        self,
        store: Store,
        retention: upkeep.Retention,
        clock: Callable[[], datetime],
        *,
        feeds_per_step: int = FEEDS_PER_STEP,
        rows_per_step: int = ROWS_PER_STEP,
    ) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self.feeds_per_step = feeds_per_step
        self.rows_per_step = rows_per_step
        self._cursor = 0  # the feed id the current pass goes on after

    def step(self) -> tuple[int, bool]:
        """One short transaction: (rows deleted, whether the pass over every feed ended)."""
        before = upkeep.history_cutoff(self.clock(), self.retention)
        pruned = self.store.prune_fetches(
            before, self.retention.keep_last, after_feed=self._cursor,
            feeds=self.feeds_per_step, rows=self.rows_per_step,
        )  # fmt: skip
        self._cursor = pruned.next_feed
        return pruned.deleted, pruned.done

    def prune_pass(self) -> PassReport:
        """A whole pass at once (``ingestd db prune``), then the space given back."""
        deleted = steps = 0
        done = False
        while not done:
            removed, done = self.step()
            deleted += removed
            steps += 1
        return PassReport(deleted, steps, self.store.reclaim_space())

    async def run(self, every: float, pause: float = 0.05) -> None:
        """Forever (until cancelled): a pass every ``every`` seconds, its steps ``pause``
        seconds apart, each followed by a bounded incremental vacuum on SQLite; after
        the pass the heap's free pages go back to the system (``memory.give_back``)."""
        while True:
            try:
                deleted, steps, freed = await self._pass_in_steps(pause)
            except StorageError as exc:
                log.error("history not pruned this time: %s", exc)
            else:
                if deleted:
                    log.info(
                        "history: %d fetch log rows pruned in %d steps, %d kB given back",
                        deleted, steps, freed // 1024,
                    )  # fmt: skip
            # The daemon's periodic upkeep: without it each thread's arena keeps its
            # high-water mark (see ingestd/memory.py).
            await asyncio.to_thread(memory.give_back)
            await asyncio.sleep(every)

    async def _pass_in_steps(self, pause: float) -> tuple[int, int, int]:
        deleted = steps = freed = 0
        done = False
        while not done:
            removed, done = await asyncio.to_thread(self.step)
            deleted += removed
            steps += 1
            if removed:
                freed += await asyncio.to_thread(self.store.reclaim_space, PAGES_PER_VACUUM)
            await asyncio.sleep(pause)
        return deleted, steps, freed


async def vacuum_when_off(store: Store, every: float = DEAD_ROWS_EVERY) -> None:
    """Forever (until cancelled), on PostgreSQL: every ``every`` seconds, vacuum those of
    ingestd's tables that autovacuum leaves alone and that have passed its threshold.
    Says once (and again when it changes) which tables it looks after; does nothing
    while the server's autovacuum covers them all."""
    looked_after: list[str] = []
    while True:
        try:
            tables = await asyncio.to_thread(store.tables_without_autovacuum)
            if tables != looked_after:
                _say_looked_after(tables, every)
                looked_after = tables
            if tables:
                vacuumed = await asyncio.to_thread(store.vacuum_dead_rows, tables)
                if vacuumed:
                    log.debug("vacuumed %s (autovacuum is off)", ", ".join(vacuumed))
        except StorageError as exc:
            log.error("dead rows not vacuumed this time: %s", exc)
        await asyncio.sleep(every)


def _say_looked_after(tables: list[str], every: float) -> None:
    if tables:
        log.warning(
            "PostgreSQL autovacuum is off for %s: ingestd vacuums them itself when their "
            "dead rows pass the server's autovacuum threshold (looked at every %gs); turn "
            "autovacuum on to leave it to the server", ", ".join(tables), every,
        )  # fmt: skip
    else:
        log.info("PostgreSQL autovacuum covers ingestd's tables again")
