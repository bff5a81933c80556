"""Prometheus metrics and a health endpoint for the daemon.

``Metrics`` owns a private ``CollectorRegistry`` (never prometheus-client's global
one), so tests and several daemons in one process never share series. The daemon
calls ``observe(result)`` after each poll, ``mark_tick()`` at each scheduler tick and
``set_feed_gauges(names, failing)`` at start-up and after a reload; the failing
gauge then follows the poll results by itself.
``start_metrics_server`` serves ``/metrics`` (prometheus-client's own WSGI app) and
``/healthz`` on a loopback address in a daemon thread.

Nothing here reads configuration: the caller passes host, port and staleness.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from ingestd.errors import ConfigError
from ingestd.types import POLLED, PollOutcome

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from ingestd.types import PollResult

__all__ = ["Health", "Metrics", "MetricsServer", "start_metrics_server"]

#: Outcomes whose series exist (at zero) from the start, so dashboards see them early.
KNOWN_OUTCOMES = tuple(outcome.value for outcome in POLLED)
#: A poll spans fetch, parse and archive; the slowest allowed request is 30 s by default.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Clock = Callable[[], float]


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` answers: healthy or not, and a JSON-able detail."""

    ok: bool
    detail: dict[str, Any]


class Metrics:
    """The daemon's series, in a registry of their own."""

    def __init__(self, *, stale_after: float = 15.0, clock: Clock = time.time) -> None:
        """``stale_after``: seconds without a tick before /healthz answers 503."""
        self.registry = CollectorRegistry()
        self.stale_after = stale_after
        self._clock = clock
        self._started = clock()
        self._last_tick: float | None = None
        self._configured: set[str] | None = None  # None: count every feed seen
        self._failing: set[str] = set()
        self._unarchived: dict[str, tuple[int, int]] = {}  # feed -> (waiting, given up)
        self._waiting = self._given_up = 0  # their sums
        reg = self.registry
        self.polls = Counter("ingestd_polls", "Feed polls by outcome", ["outcome"], registry=reg)
        self.archived = Counter(
            "ingestd_entries_archived", "Entries written to the archive", registry=reg
        )
        self.revised = Counter(
            "ingestd_entries_revised", "Entries recorded as new revisions", registry=reg
        )
        self.fetch_duration = Histogram(
            "ingestd_fetch_duration_seconds",
            "Time to poll one feed (fetch, parse, archive)",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.page_failures = Counter(
            "ingestd_page_failures",
            "Article pages that could not be fetched or extracted (one per attempt)",
            registry=reg,
        )
        self.unarchived = Gauge(
            "ingestd_entries_unarchived",
            "Entries whose page failed: waiting for a retry, or given up",
            ["state"],
            registry=reg,
        )
        self.feeds_failing = Gauge(
            "ingestd_feeds_failing", "Feeds whose last poll failed", registry=reg
        )
        self.feeds_total = Gauge("ingestd_feeds_total", "Configured feeds", registry=reg)
        self.last_tick = Gauge(
            "ingestd_last_tick_timestamp", "Unix time of the scheduler's last tick", registry=reg
        )
        self.lateness = Gauge(
            "ingestd_schedule_lateness_seconds",
            "How long the oldest due feed nobody is polling has waited (0: none waiting)",
            registry=reg,
        )
        self.due_waiting = Gauge(
            "ingestd_feeds_due_waiting", "Feeds due and waiting for a slot", registry=reg
        )
        self.start_delay = Gauge(
            "ingestd_start_delay_seconds",
            "Start delay (due -> polled) of the last 1,000 polls, by quantile",
            ["quantile"],
            registry=reg,
        )
        self.slots_busy = Gauge("ingestd_slots_busy", "Polls running now", registry=reg)
        self.slots = Gauge("ingestd_slots", "Polls that may run at once", registry=reg)
        self.behind = Gauge(
            "ingestd_behind_schedule",
            "1 while the daemon has stayed behind its schedule for several ticks",
            registry=reg,
        )
        for outcome in KNOWN_OUTCOMES:
            self.polls.labels(outcome=outcome)
        self._set_unarchived()

    def set_lag(
        self,
        lateness: float | None,
        due: int,
        delay_p50: float | None,
        delay_p99: float | None,
        running: int,
        concurrency: int,
        behind: bool,
    ) -> None:
        """Record how far behind its schedule the daemon is (``Scheduler.lag``)."""
        self.lateness.set(lateness or 0.0)
        self.due_waiting.set(due)
        self.start_delay.labels(quantile="0.5").set(delay_p50 or 0.0)
        self.start_delay.labels(quantile="0.99").set(delay_p99 or 0.0)
        self.slots_busy.set(running)
        self.slots.set(concurrency)
        self.behind.set(1 if behind else 0)

    def observe(self, result: PollResult) -> None:
        """Count one poll result: its outcome, archived and revised entries, duration."""
        self.polls.labels(outcome=result.outcome).inc()
        if result.archived:
            self.archived.inc(result.archived)
        if result.revised:
            self.revised.inc(result.revised)
        if result.pages_failed:
            self.page_failures.inc(result.pages_failed)
        # Only these polls looked at the pages.
        if result.outcome in (PollOutcome.OK, PollOutcome.NOT_MODIFIED):
            self._count_unarchived(result.feed, result.entries_waiting, result.entries_given_up)
        if result.outcome != "disabled":  # a skipped feed made no request to time
            self.fetch_duration.observe(result.duration_ms / 1000)
        if result.outcome == PollOutcome.FAILED:
            self._failing.add(result.feed)
        else:
            self._failing.discard(result.feed)
        self._set_failing()

    def observe_all(self, results: Iterable[PollResult]) -> None:
        """``observe`` each of ``results``."""
        for result in results:
            self.observe(result)

    def set_feed_gauges(self, names: Collection[str], failing: Iterable[str] | None = None) -> None:
        """Record the configured feeds and, when known (from the store), the failing ones.

        Later poll results keep the failing gauge current; feeds no longer
        configured stop counting.
        """
        self._configured = set(names)
        self.feeds_total.set(len(self._configured))
        if failing is not None:
            self._failing = set(failing)
        self._set_failing()
        self._set_unarchived()

    def set_unarchived(self, counts: dict[str, tuple[int, int]]) -> None:
        """Entries waiting for a page retry and given up, per feed (from the store at start)."""
        self._unarchived = dict(counts)
        self._set_unarchived()

    def _set_unarchived(self) -> None:
        if self._configured is not None:
            self._unarchived = {k: v for k, v in self._unarchived.items() if k in self._configured}
        self._waiting = sum(w for w, _ in self._unarchived.values())
        self._given_up = sum(g for _, g in self._unarchived.values())
        self._publish_unarchived()

    def _count_unarchived(self, feed: str, waiting: int, given_up: int) -> None:
        """One feed's counts changed (or not): the totals follow by the difference.

        Not a sum over every feed per poll: with a thousand feeds that was a large share
        of the daemon's own CPU time per poll.
        """
        if self._configured is not None and feed not in self._configured:
            return
        old_waiting, old_given_up = self._unarchived.get(feed, (0, 0))
        if (waiting, given_up) == (old_waiting, old_given_up):
            return
        self._unarchived[feed] = (waiting, given_up)
        self._waiting += waiting - old_waiting
        self._given_up += given_up - old_given_up
        self._publish_unarchived()

    def _publish_unarchived(self) -> None:
        self.unarchived.labels(state="waiting").set(self._waiting)
        self.unarchived.labels(state="given_up").set(self._given_up)

    def _set_failing(self) -> None:
        if self._configured is not None:
            self._failing &= self._configured
        self.feeds_failing.set(len(self._failing))

    def mark_tick(self, at: float | None = None) -> None:
        """Record a scheduler tick (now, or at Unix time ``at``)."""
        moment = self._clock() if at is None else at
        self._last_tick = moment
        self.last_tick.set(moment)

    def health(self) -> Health:
        """Healthy while the last tick is at most ``stale_after`` seconds old.

        Before the first tick the daemon counts as starting, and healthy for the
        same grace period from the moment this object was made.
        """
        now = self._clock()
        since = self._last_tick if self._last_tick is not None else self._started
        age = max(0.0, now - since)
        ok = age <= self.stale_after
        detail: dict[str, Any] = {
            "status": "ok" if ok else "stale",
            "last_tick_age_seconds": None if self._last_tick is None else round(age, 3),
            "stale_after_seconds": self.stale_after,
        }
        if self._last_tick is None:
            detail["status"] = "starting" if ok else "no tick yet"
        return Health(ok=ok, detail=detail)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print a line per scrape to stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Log nothing: scrapes every few seconds would drown the daemon's own log."""


class MetricsServer:
    """A running metrics server; ``stop()`` shuts it down and frees the port."""

    def __init__(self, server: ThreadingWSGIServer, thread: threading.Thread) -> None:
        """Wrap a started server and the thread serving it."""
        self._server = server
        self._thread = thread

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


def start_metrics_server(
    host: str, port: int, registry: CollectorRegistry, health: Callable[[], Health]
) -> MetricsServer:
    """Serve ``/metrics`` from ``registry`` and ``/healthz`` from ``health`` in a thread.

    ``host`` is an IP address (config validation has already refused what is not
    loopback unless allowed); ``port`` 0 picks a free port. A port that cannot be
    bound (taken, privileged) is a ConfigError naming the address.
    """
    app = _router(make_wsgi_app(registry), health)
    server_class = _server_class(host)
    try:
        server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    except OSError as exc:
        shown = f"[{host}]" if ":" in host else host
        problem = exc.strerror or str(exc)
        raise ConfigError(f"metrics.listen: cannot listen on {shown}:{port}: {problem}") from None
    # A short poll interval keeps stop() quick, so SIGTERM's grace period goes to the feeds.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="ingestd-metrics",
        daemon=True,
    )
    thread.start()
    return MetricsServer(server, thread)


def _server_class(host: str) -> type[ThreadingWSGIServer]:
    # wsgiref binds IPv4 only; an IPv6 literal needs the address family set on the class.
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET

    class Server(ThreadingWSGIServer):
        address_family = family

    return Server


WSGIApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


def _router(metrics_app: WSGIApp, health: Callable[[], Health]) -> WSGIApp:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            state = health()
            body = json.dumps(state.detail).encode()
            status = "200 OK" if state.ok else "503 Service Unavailable"
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        body = b"not found: try /metrics or /healthz\n"
        start_response(
            "404 Not Found",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
