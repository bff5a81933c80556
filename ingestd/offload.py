"""Where a poll's blocking and CPU-bound work runs, so the event loop only waits.

Database and archive work runs in one thread of its own (``blocking``): several
threads would only take turns at SQLite's write lock and the interpreter lock, and the
hand-overs cost more than the work (millions of futex calls a cycle). Parsing and
rendering run in the executor (``cpu``; a process pool in production), and a pool
step that writes archive files is cleaned up after when its poll is cancelled
(``write_files``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Offload:
    """The store thread and the parse executor of one pipeline."""

    def __init__(self, archive_root: Path, parse_executor: Executor | None = None) -> None:
        self.archive_root = archive_root
        self.parse_executor = parse_executor
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="ingestd-store")

    async def blocking(self, func: Callable[..., T], *args: Any) -> T:
        """Blocking database and file work, in the store thread: the loop stays free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_thread, partial(func, *args))

    async def cpu(self, func: Callable[..., T], *args: Any) -> T:
        """CPU-bound pure work (feedparser, readability): a process pool keeps the loop
        free and uses every core; without one, a thread keeps the loop responsive."""
        if self.parse_executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.parse_executor, partial(func, *args))
        return await asyncio.to_thread(func, *args)

    async def write_files(self, func: Callable[..., T], *args: Any) -> tuple[T, list[int]]:
        """Run a pool step that writes archive files; returns its result and the numbers
        of the files it named.

        The step returns its files as a list of (relative path, id), or an object with
        them in ``files`` (id None for temporaries not named yet). Should the poll be
        cancelled meanwhile, the files are removed once the step ends: nobody would
        record them.
        """
        step = asyncio.ensure_future(self.cpu(func, *args))
        try:
            result = await asyncio.shield(step)
        except asyncio.CancelledError:
            step.add_done_callback(partial(_discard_files, self.archive_root))
            raise
        return result, [file_id for _relative, file_id in _files_of(result) if file_id is not None]


def _files_of(result: Any) -> list[tuple[str, int | None]]:
    """The (relative path, id) pairs a file-writing pool step returned (id None: not named
    yet)."""
    return result if isinstance(result, list) else result.files


def _discard_files(root: Path, step: asyncio.Future[Any]) -> None:
    if step.cancelled() or step.exception() is not None:
        return
    for relative, _file_id in _files_of(step.result()):
        (root / relative).unlink(missing_ok=True)
