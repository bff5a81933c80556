"""The parse pool: worker processes for ``ingestd.pool.steps``' CPU-bound steps.

This module imports only the standard library. Pool workers import what their tasks
name (``ingestd.pool.steps`` and the pure stages): the fork server is told to preload
``ingestd.pool.steps`` alone, and ``python -m ingestd``'s main module runs the command
line only as ``__main__``, not when a worker re-imports it. (Started through the
``ingestd`` script, a worker still imports the command line with the script.)
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor

#: What the fork server imports once, so every worker starts with it loaded.
PRELOAD = ["ingestd.pool.steps"]


def parse_pool() -> Executor:
    """A process pool for feed parsing: every core, started by a fork server."""
    context = multiprocessing.get_context("forkserver")
    # Instead of the default ["__main__"]: the command line and everything it loads
    # would otherwise sit in the fork server and in every worker.
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(
        max_workers=os.cpu_count() or 2,
        mp_context=context,
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )


def _init_worker(parent: int) -> None:
    """In a parse worker: ignore Ctrl-C, and exit when ingestd itself is gone."""
    _ignore_interrupts()
    threading.Thread(
        target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True
    ).start()


def _ignore_interrupts() -> None:
    """In a parse worker: leave Ctrl-C to the main process, which shuts the pool down.

    A terminal's Ctrl-C reaches the whole process group; without this every worker
    would die printing a KeyboardInterrupt traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_with(parent: int) -> None:
    """In a parse worker: exit once process ``parent`` has ended, even by SIGKILL.

    Pool workers hold both ends of their own task queue, so they never see a killed
    parent go; without this they (and the fork server and resource tracker, which
    wait for them) would live on for ever after ``kill -9`` or the OOM killer.
    """
    try:
        handle = os.pidfd_open(parent)  # Linux: readable once the process has ended
    except ProcessLookupError:
        os._exit(0)  # gone before this worker finished starting
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
        os._exit(0)
    while True:  # elsewhere: poll
        try:
            os.kill(parent, 0)
        except (ProcessLookupError, PermissionError):
            os._exit(0)
        time.sleep(1)
