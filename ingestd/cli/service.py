"""``ingestd run``: the foreground daemon, as systemd runs it.

Start-up: open (and migrate) the database and sync the configured feeds, reconcile
archive and rows, start the parse pool and one Fetcher for the whole process, then let
the scheduler tick. systemd hears READY=1 once all that is done, WATCHDOG=1 at half
of ``WATCHDOG_USEC`` while the event loop is alive, STATUS= lines, and STOPPING=1.

Signals: SIGTERM/SIGINT stop taking work and give polls in flight ``[service] grace``
seconds before cancelling them; SIGHUP re-reads the configuration file, and a file that
does not validate is logged and the running configuration kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import sdnotify

from ingestd import config, history, indexer, memory
from ingestd.cli.db import retention
from ingestd.cli.logsetup import busy_tick_filter
from ingestd.cli.runtime import Runtime, job_for, open_runtime, sync_config
from ingestd.errors import ConfigError, StorageError
from ingestd.history import Pruner
from ingestd.metrics import Metrics, MetricsServer, start_metrics_server
from ingestd.pipeline import FeedJob, Reconciled
from ingestd.pool.workers import parse_pool
from ingestd.scheduler import JobFor, Scheduler
from ingestd.store import FeedRecord

log = logging.getLogger("ingestd.service")

#: Seconds between STATUS= updates when no watchdog asks for more frequent signs of life.
STATUS_EVERY = 5.0


class Notifier:
    """sd_notify messages to systemd; does nothing when NOTIFY_SOCKET is unset."""

    def __init__(self) -> None:
        self._sd = sdnotify.SystemdNotifier()
        self._last_status = ""

    def send(self, *assignments: str) -> None:
        """Send ``KEY=value`` lines in one datagram."""
        # sdnotify encodes as Latin-1 and silently drops anything else.
        text = "\n".join(assignments).encode("latin-1", "replace").decode("latin-1")
        self._sd.notify(text)

    def status(self, text: str) -> None:
        """Send STATUS= when it differs from the last one sent."""
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process
    return int(usec) / 1_000_000 / 2


def job_lookup(get_settings: Callable[[], config.Settings]) -> JobFor:
    """The scheduler's ``job_for``: the current configuration of a leased feed, or None."""

    def lookup(record: FeedRecord) -> FeedJob | None:
        settings = get_settings()
        found = settings.by_name.get(record.name)
        return None if found is None else job_for(found, record, settings.schedule)

    return lookup


@dataclass
class Service:
    """The daemon: one runtime, one fetcher, one scheduler, signals and sd_notify."""

    config_path: Path
    settings: config.Settings
    notifier: Notifier = field(default_factory=Notifier)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _reloads: set[asyncio.Task[None]] = field(default_factory=set)
    _scheduler: Scheduler | None = None
    _runtime: Runtime | None = None
    metrics: Metrics | None = None
    metrics_server: MetricsServer | None = None

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; 0 after a clean stop."""
        self.notifier.status("starting")
        runtime = self._runtime = open_runtime(self.settings)
        try:
            self._start_metrics(runtime)
            runtime.executor = parse_pool()
            async with runtime.make_fetcher() as fetcher:
                pipeline = runtime.make_pipeline(fetcher)
                _log_reconciled(
                    await asyncio.to_thread(pipeline.reconcile, self.settings.schedule.lease)
                )
                scheduler = self._scheduler = Scheduler(
                    runtime.store, pipeline, job_lookup(lambda: self.settings),
                    clock=runtime.clock, owner=pipeline.owner,
                    lease_seconds=self.settings.schedule.lease,
                    tick_seconds=self.settings.schedule.tick,
                    on_result=self.metrics.observe if self.metrics else None,
                    on_tick=self.metrics.mark_tick if self.metrics else None,
                    refill=True,
                )  # fmt: skip
                await self._serve(scheduler)
        finally:
            if self.metrics_server is not None:
                self.metrics_server.stop()
            runtime.close()
        log.info("ingestd stopped")
        return 0

    def _start_metrics(self, runtime: Runtime) -> None:
        """Serve /metrics and /healthz when ``[metrics] enabled = true``."""
        wanted = self.settings.metrics
        if not wanted.enabled:
            return
        metrics = self.metrics = Metrics(stale_after=wanted.stale_after)
        # Feeds failing before this start count from the first scrape, not their next poll.
        failing = [f.name for f in runtime.store.list_feeds() if f.enabled and f.consecutive_errors]
        metrics.set_feed_gauges([f.spec.name for f in self.settings.feeds], failing)
        unarchived = runtime.store.failure_counts()
        metrics.set_unarchived({name: (c.waiting, c.given_up) for name, c in unarchived.items()})
        server = self.metrics_server = start_metrics_server(
            wanted.host, wanted.port, metrics.registry, metrics.health
        )
        log.info("metrics at %s/metrics, health at %s/healthz", server.url, server.url)

    async def _serve(self, scheduler: Scheduler) -> None:
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        heartbeat = asyncio.create_task(self._heartbeat(scheduler), name="heartbeat")
        indexing = asyncio.create_task(  # the search index follows the archive
            indexer.keep_in_step(scheduler.store, self.settings.archive_dir), name="indexer"
        )
        pruner = Pruner(scheduler.store, retention(self.settings), scheduler.clock)
        pruning = asyncio.create_task(
            pruner.run(self.settings.history.prune_every), name="history pruning"
        )
        vacuuming = asyncio.create_task(
            history.vacuum_when_off(scheduler.store), name="dead row vacuum"
        )
        try:
            scheduler.start()
            self.notifier.send("READY=1", f"STATUS={_status(scheduler, self.settings)}")
            log.info(
                "ingestd started: %d feeds, tick %gs, owner %s",
                len(self.settings.feeds),
                scheduler.tick_seconds,
                scheduler.owner,
            )
            await self._stop.wait()
            self.notifier.send("STOPPING=1", "STATUS=stopping")
            grace = self.settings.service.grace
            log.info("stopping: %d polls in flight, %gs to finish", scheduler.running, grace)
            drained = await scheduler.drain(grace)
            if drained.cancelled:
                log.warning(
                    "stopping: %d polls cancelled after the %gs grace period",
                    drained.cancelled,
                    grace,
                )
            await asyncio.gather(*self._reloads, return_exceptions=True)
        finally:
            scheduler.stop()
            heartbeat.cancel()
            indexing.cancel()
            pruning.cancel()
            vacuuming.cancel()
            for task in (heartbeat, indexing, pruning, vacuuming):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_stop(self, why: str = "request") -> None:
        """Begin a graceful stop (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            log.info("%s received: stopping", why)
        self._stop.set()

    def request_reload(self) -> None:
        """Re-read the configuration soon (what SIGHUP does)."""
        if self._stop.is_set():
            return
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> None:
        """Apply the configuration file again; keep the running one if it is broken."""
        try:
            new = await asyncio.to_thread(config.load, self.config_path)
        except ConfigError as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
            self.notifier.status("configuration reload failed; running on the previous one")
            return
        for warning in new.warnings:
            log.warning("configuration: %s", warning)
        runtime = self._runtime
        assert runtime is not None, "reload before start"
        try:
            synced = await asyncio.to_thread(sync_config, runtime.store, new, runtime.clock())
        except StorageError as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
            return
        old, self.settings = self.settings, new
        log.info(
            "configuration reloaded: %d feeds; added %s; changed %s; removed %s",
            len(new.feeds),
            _names(synced.added + synced.reenabled),
            _names(synced.updated),
            _names(synced.disabled),
        )
        self._apply_schedule(new)
        if self.metrics is not None:
            self.metrics.set_feed_gauges([f.spec.name for f in new.feeds])
        _warn_restart_only(old, new)

    def _apply_schedule(self, new: config.Settings) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        scheduler.lease_seconds = new.schedule.lease
        if new.schedule.tick != scheduler.tick_seconds:
            scheduler.set_tick(new.schedule.tick)

    async def _heartbeat(self, scheduler: Scheduler) -> None:
        """WATCHDOG=1 while the loop runs, and a STATUS= line when it changes."""
        watchdog = watchdog_interval()
        every = min(watchdog, STATUS_EVERY) if watchdog else STATUS_EVERY
        while True:
            if watchdog:
                self.notifier.send("WATCHDOG=1")
            self.notifier.status(_status(scheduler, self.settings))
            if self.metrics is not None:
                lag = scheduler.lag()
                self.metrics.set_lag(
                    lag.lateness, lag.due, lag.delay_p50, lag.delay_p99, lag.running,
                    lag.concurrency, lag.behind is not None,
                )  # fmt: skip
            await asyncio.sleep(every)


def _status(scheduler: Scheduler, settings: config.Settings) -> str:
    last = scheduler.last_tick
    ticked = last.astimezone(UTC).strftime("%H:%M:%SZ") if last else "not yet"
    lag = scheduler.lag()
    late = "on time" if lag.behind is None else f"behind by {lag.lateness or 0:.0f}s"
    return (
        f"{len(settings.feeds)} feeds; {scheduler.running} polls in flight; "
        f"{scheduler.polls_finished} polls done; {late}; last tick {ticked}"
    )


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"


def _warn_restart_only(old: config.Settings, new: config.Settings) -> None:
    """Say which changed settings wait for a restart (they shape long-lived parts)."""
    for key in ("database", "archive_dir", "fetch", "metrics"):
        if getattr(old, key) != getattr(new, key):
            log.warning("configuration: %s changed; it takes effect after a restart", key)


def _log_reconciled(done: Reconciled) -> None:
    if done.temporaries_removed or done.orphans_moved or done.rows_dropped:
        log.warning(
            "start-up repair: %d temporary files removed, %d orphan files moved "
            "aside, %d rows dropped",
            done.temporaries_removed,
            len(done.orphans_moved),
            len(done.rows_dropped),
        )
    if done.indexes_rewritten:
        log.info("start-up repair: %d site indexes rewritten", done.indexes_rewritten)


def run_service(config_path: Path, settings: config.Settings) -> int:
    """Run the daemon in a fresh event loop until it is told to stop."""
    logging.getLogger("ingestd").setLevel(logging.INFO)  # a daemon's journal wants events
    _route_apscheduler_logs()
    memory.limit_arenas()  # before any thread starts (see ingestd/memory.py)
    return asyncio.run(Service(config_path, settings).run())


def _route_apscheduler_logs() -> None:
    # APScheduler's warnings belong in the same one-line-per-event stream as ours.
    ours = logging.getLogger("ingestd")
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = list(ours.handlers)
    aps.setLevel(logging.WARNING)
    aps.propagate = False
    # A logger's filters see only records made by that very logger.
    logging.getLogger("apscheduler.scheduler").addFilter(busy_tick_filter)


__all__ = ["Notifier", "Service", "job_lookup", "run_service", "watchdog_interval"]
