"""One owner for ``[fetch] concurrency``: the fetcher's ``Slots``, which the pipeline and the
scheduler ask instead of keeping a cap of their own (issue 17)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingestd.fetch import Fetcher, FetchLimits, NetworkGuard, Slots
from ingestd.pipeline import PROCESSING_BACKLOG, FeedJob, Pipeline, PollResult
from ingestd.poll import PollRun
from ingestd.scheduler import Scheduler
from ingestd.store import open_store


def test_the_fetcher_pipeline_and_scheduler_share_one_cap(
    tmp_path: Path, database_url: str
) -> None:
    async def body() -> None:
        limits = FetchLimits(concurrency=3, per_host=2)
        with open_store(database_url) as store:
            async with Fetcher(limits, guard=NetworkGuard()) as fetcher:
                pipeline = Pipeline(store, fetcher, tmp_path / "archive")
                scheduler = Scheduler(store, pipeline, lambda record: None)
                assert pipeline.slots is fetcher.slots and scheduler.slots is fetcher.slots
                assert (scheduler.concurrency, scheduler.per_host) == (3, 2)
                # A second cap cannot be given to the scheduler: it has no such setting.
                for second_cap in ({"concurrency": 5}, {"per_host": 5}):
                    with pytest.raises(TypeError):
                        Scheduler(store, pipeline, lambda record: None, **second_cap)  # type: ignore[arg-type]

    asyncio.run(body())


def test_the_pipeline_admits_one_poll_per_slot_plus_the_processing_backlog(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = 0
    never = asyncio.Event()

    async def held(_run: PollRun) -> PollResult:
        nonlocal entered
        entered += 1
        await never.wait()
        raise AssertionError("not reached")

    async def body() -> int:
        with open_store(database_url) as store:
            async with Fetcher(FetchLimits(concurrency=2), guard=NetworkGuard()) as fetcher:
                pipeline = Pipeline(store, fetcher, tmp_path / "archive")
                monkeypatch.setattr(pipeline, "_poll", held)
                job = FeedJob(record=None, spec=None, interval_seconds=60)  # type: ignore[arg-type]
                polls = [asyncio.create_task(pipeline.poll(job)) for _ in range(40)]
                for _ in range(5):
                    await asyncio.sleep(0)
                for poll in polls:
                    poll.cancel()
                await asyncio.gather(*polls, return_exceptions=True)
                return entered

    assert asyncio.run(body()) == 2 + PROCESSING_BACKLOG


def test_slots_hold_the_total_and_the_per_host_share() -> None:
    async def body() -> list[str]:
        slots = Slots(3, per_host=2)
        order: list[str] = []
        gate = asyncio.Event()

        async def use(host: str) -> None:
            async with slots.hold(host):
                order.append(host)
                await gate.wait()

        tasks = [asyncio.create_task(use(h)) for h in ("a", "a", "a", "b", "c")]
        for _ in range(5):
            await asyncio.sleep(0)
        started = list(order)  # two of host a (its share), then b; c waits for the total
        gate.set()
        await asyncio.gather(*tasks)
        return started

    assert asyncio.run(body()) == ["a", "a", "b"]


def test_per_host_is_at_most_the_total() -> None:
    assert (Slots(4).per_host, Slots(4).host_limited) == (4, False)
    assert (Slots(4, per_host=8).per_host, Slots(4, per_host=2).host_limited) == (4, True)
    with pytest.raises(ValueError):
        Slots(0)
