"""The heap's free pages go back to the system: without it every thread's arena stays at
its high-water mark (the early RSS growth of the daemon soak, issue 19)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ingestd import memory


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(memory._malloc_trim() is None, reason="glibc's malloc_trim only")
def test_what_threads_freed_goes_back_to_the_system() -> None:
    survivors: list[bytearray] = []

    def busy_moment() -> None:
        # 40 MB in this thread's arena, a few blocks kept: the rest is free but held.
        blocks = [bytearray(20_000) for _ in range(2000)]
        survivors.extend(blocks[::100])

    threads = [threading.Thread(target=busy_moment) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = _rss_mb()
    assert memory.give_back()
    assert held - _rss_mb() > 40  # of the 80 MB freed, most left the process
    assert len(survivors) == 40


def test_give_back_is_harmless_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.give_back() is False
