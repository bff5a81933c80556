"""How far behind its schedule a daemon is, tick after tick (``LagWatch``).

The scheduler hands over what each tick measured (the oldest due feed nobody polls,
how many are due, how busy it is) and every poll's start delay; the watch keeps the
latest delays for their p50/p99, and says so in the log when the daemon stays behind
for ``BEHIND_TICKS`` ticks, with the reason ``upkeep.behind_reason`` gives.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from ingestd import upkeep

log = logging.getLogger("ingestd.scheduler")

#: Start delays kept for the p50/p99 of recent polls.
RECENT_DELAYS = 1000
#: Ticks in a row behind the schedule before the log says so (and says it again after
#: ``BEHIND_REPEAT`` more ticks while it lasts).
BEHIND_TICKS = 3
BEHIND_REPEAT = 60


@dataclass(frozen=True)
class Lag:
    """How far behind its schedule the daemon is, at its last tick."""

    lateness: float | None  # seconds the oldest due feed nobody polls has waited
    due: int  # feeds due and waiting for a slot
    delay_p50: float | None  # start delay of recent polls (due -> leased), seconds
    delay_p99: float | None
    running: int
    concurrency: int
    behind: str | None  # why, while behind for BEHIND_TICKS ticks or more


class LagWatch:
    """The lag of one scheduler: its latest start delays and whether it is behind."""

    def __init__(self) -> None:
        #: Seconds from a feed's due time to its lease, for the latest polls.
        self.delays: deque[float] = deque(maxlen=RECENT_DELAYS)
        self.lateness: float | None = None
        self.due = 0
        self.behind_ticks = 0
        self.behind: str | None = None

    def observe(
        self,
        now: datetime,
        oldest_due_at: datetime | None,
        due: int,
        load: upkeep.Load,
        running: int,
    ) -> None:
        """One tick's measure: ``due`` feeds waiting, the oldest due since ``oldest_due_at``."""
        self.due = due
        self.lateness = (
            None if oldest_due_at is None else max(0.0, (now - oldest_due_at).total_seconds())
        )
        reason = upkeep.behind_reason(self.lateness, load)
        if reason is None:
            if self.behind is not None:
                log.info("caught up with the schedule (%d polls running)", running)
            self.behind_ticks, self.behind = 0, None
            return
        self.behind_ticks += 1
        if self.behind_ticks >= BEHIND_TICKS:
            self.behind = reason
            if (self.behind_ticks - BEHIND_TICKS) % BEHIND_REPEAT == 0:
                log.warning(
                    "behind schedule for %d ticks: %d feeds due, the oldest for %.1f s; %s",
                    self.behind_ticks, due, self.lateness or 0.0, reason,
                )  # fmt: skip

    def lag(self, running: int, concurrency: int) -> Lag:
        """How far behind its schedule the daemon is (as of the last tick)."""
        delays = list(self.delays)
        return Lag(
            lateness=self.lateness, due=self.due,
            delay_p50=upkeep.percentile(delays, 0.5), delay_p99=upkeep.percentile(delays, 0.99),
            running=running, concurrency=concurrency, behind=self.behind,
        )  # fmt: skip
