"""The daemon's heap kept to what it uses: its threads share one malloc arena, and the
free pages go back to the system; without them every thread's arena stays at its
high-water mark (the early RSS growth of the daemon soak, issue 19)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingestd import memory

GLIBC = memory._libc("malloc_trim") is not None and memory._libc("malloc_info") is not None


# Two threads' busy moments, then RSS (MB) before and after give_back, in a fresh process.
FREED_BY_THREADS = """
import os, threading
from ingestd import memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
survivors = []
def busy_moment():
    # 40 MB in this thread's arena, a few blocks kept: the rest is free but held.
    blocks = [bytearray(20_000) for _ in range(2000)]
    survivors.extend(blocks[::100])
threads = [threading.Thread(target=busy_moment) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
held = rss()
assert memory.give_back() and len(survivors) == 40
print(held, rss())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_what_threads_freed_goes_back_to_the_system() -> None:
    held, after = map(float, _python(FREED_BY_THREADS).split())
    assert held - after > 40  # of the 80 MB freed, most left the process


# Threads busy at once, then the arenas glibc made for them (malloc_info's <heap>s).
ARENAS_OF_BUSY_THREADS = """
import ctypes, sys, tempfile, threading
from ingestd import memory
if sys.argv[1] == "limit":
    assert memory.limit_arenas(1)
start = threading.Barrier(4)
kept = []
def busy():
    start.wait()
    kept.extend(bytearray(2000) for _ in range(20000))
threads = [threading.Thread(target=busy) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(out.name).read().count("<heap nr="))
"""


def _python(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return done.stdout


def _arenas(mode: str) -> int:
    return int(_python(ARENAS_OF_BUSY_THREADS, mode))


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_daemons_threads_share_one_arena() -> None:
    assert _arenas("default") > 1  # without the limit, busy threads get arenas of their own
    assert _arenas("limit") == 1


def test_both_are_harmless_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_libc", lambda name: None)
    assert memory.give_back() is False
    assert memory.limit_arenas() is False


def test_ingestd_run_limits_the_arenas_before_its_loop_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    from collections.abc import Coroutine
    from typing import Any

    from ingestd import config
    from ingestd.cli import service

    events: list[str] = []
    monkeypatch.setattr(memory, "limit_arenas", lambda: events.append("limit") or True)

    def no_loop(coroutine: Coroutine[Any, Any, int]) -> int:
        coroutine.close()
        events.append("loop")
        return 0

    monkeypatch.setattr(asyncio, "run", no_loop)
    path = tmp_path / "ingestd.toml"
    path.write_text(f'database = "sqlite:///{tmp_path / "x.db"}"\narchive_dir = "{tmp_path}"\n')
    assert service.run_service(path, config.load(path)) == 0
    assert events == ["limit", "loop"]
