"""How much runs at once: the one home of ``[fetch] concurrency`` and ``per_host``.

A ``Fetcher`` makes one ``Slots`` from its limits and every part that bounds work asks
that object rather than keeping a number of its own:

- the fetcher holds a slot (``hold``) for each request, and sizes its connection pool
  to ``total``;
- the pipeline admits ``total + PROCESSING_BACKLOG`` polls, so fetching overlaps the
  processing of what was fetched (``ingestd fetch``) without every fetched feed
  waiting in memory;
- the scheduler leases at most ``total`` polls, at most ``per_host`` of one host (its
  poller, the pipeline, hands it the fetcher's ``Slots``).

Polls and requests are counted where they happen (a poll may wait for a request slot
or do no request at all); the limits they are counted against are only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slots:
    """At most ``total`` at once, at most ``per_host`` of them for one host.

    ``per_host`` left out means no limit per host beyond ``total``. A host's semaphore
    lives while someone uses it.
    """

    def __init__(self, total: int, per_host: int | None = None) -> None:
        if total < 1 or (per_host is not None and per_host < 1):
            raise ValueError(f"slots must be at least 1 (total {total}, per host {per_host})")
        self._total_count = total
        self._per_host_count = min(per_host or total, total)
        self._total = asyncio.Semaphore(total)
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @property
    def total(self) -> int:
        """How many may run at once (``[fetch] concurrency``)."""
        return self._total_count

    @property
    def per_host(self) -> int:
        """How many of them may go to one host (``[fetch] per_host``, at most ``total``)."""
        return self._per_host_count

    @property
    def host_limited(self) -> bool:
        """True when one host may not take every slot."""
        return self._per_host_count < self._total_count

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        """Hold one slot for ``host`` while the block runs (waiting for one if needed)."""
        sem, users = self._hosts.get(host) or (asyncio.Semaphore(self._per_host_count), 0)
        self._hosts[host] = (sem, users + 1)
        try:
            # Host first: a crowd waiting for one busy host must not sit on total slots.
            async with sem, self._total:
                yield
        finally:
            sem, users = self._hosts[host]
            if users == 1:
                del self._hosts[host]
            else:
                self._hosts[host] = (sem, users - 1)
