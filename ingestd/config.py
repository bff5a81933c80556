"""TOML configuration -> validated, frozen Settings. The only reader of files and env.

Found at ``--config PATH``, else ``$INGESTD_CONFIG``, else ``./ingestd.toml``. Every
error names the key, its line in the file and what is wrong. Relative paths
(``archive_dir``, ``sqlite:///`` databases, ``file:`` feeds) are taken relative to
the folder of the configuration file, so a systemd unit and a shell agree.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestd import decide
from ingestd.config_values import TableReader
from ingestd.decide import PageRetry, Rhythm
from ingestd.errors import ConfigError
from ingestd.fetch.limits import FetchLimits, default_user_agent
from ingestd.types import NEWLINE_STYLES, ArchiveFormat, FeedSpec

DEFAULT_PATH = Path("ingestd.toml")
#: The keys the top level of the file may hold.
TOP_KEYS = (
    "database", "archive_dir", "interval", "feeds",
    "fetch", "schedule", "metrics", "service", "archive", "history",
)  # fmt: skip
#: The keys a ``[[feeds]]`` table may hold.
FEED_KEYS = (
    "name", "url", "format", "interval", "fetch_page", "source", "label", "site",
    "image_proxy", "sanitize", "newlines", "allow_private",
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9\u0080-\U0010ffff][A-Za-z0-9_.\- \u0080-\U0010ffff]{0,63}")


@dataclass(frozen=True)
class FetchSettings:
    """The ``[fetch]`` table (its defaults are ``FetchLimits``')."""

    concurrency: int = FetchLimits.concurrency
    per_host: int = FetchLimits.per_host
    timeout: float = FetchLimits.total_timeout
    connect_timeout: float = FetchLimits.connect_timeout
    max_bytes: int = FetchLimits.max_bytes
    max_redirects: int = FetchLimits.max_redirects
    user_agent: str = field(default_factory=default_user_agent)
    allow_private: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleSettings:
    """The ``[schedule]`` table: how often the daemon looks for due feeds, and limits."""

    tick: float = decide.TICK_SECONDS  # seconds between looks at the database for due feeds
    floor: float = Rhythm.floor  # never poll one feed more often than this
    jitter: float = Rhythm.jitter  # up to this fraction of the interval is added
    max_backoff: float = Rhythm.max_backoff  # cap of the exponential back-off after errors
    lease: float = decide.LEASE_SECONDS  # how long a daemon holds a feed it is polling
    page_retry: float = PageRetry.first_delay  # first retry of a failed page; doubles after
    give_up: float = PageRetry.give_up_after  # a page failing this long is given up


@dataclass(frozen=True)
class ServiceSettings:
    """The ``[service]`` table: how ``ingestd run`` behaves as a service."""

    grace: float = 20.0  # seconds polls in flight get to finish after SIGTERM


@dataclass(frozen=True)
class HistorySettings:
    """The ``[history]`` table: how much of the fetch log the daemon keeps."""

    keep: float = 7 * 86400.0  # every fetch of this many seconds back
    keep_last: int = 10  # and at least this many of each feed, however old
    prune_every: float = 600.0  # seconds between the daemon's pruning passes


@dataclass(frozen=True)
class MetricsSettings:
    """The ``[metrics]`` table: Prometheus ``/metrics`` and ``/healthz`` over HTTP."""

    enabled: bool = False
    host: str = "127.0.0.1"  # an IP address; loopback unless allow_remote
    port: int = 9464
    allow_remote: bool = False
    stale_after: float = 60.0  # /healthz answers 503 when the last tick is older


@dataclass(frozen=True)
class ArchiveSettings:
    """The ``[archive]`` table: raw capture of what the servers sent (WARC)."""

    raw: str = "pages"  # "off", "pages" (article pages) or "all" (feed documents too)
    raw_file_mb: int = 100  # a WARC file is closed and a new one begun past this size


@dataclass(frozen=True)
class FeedSettings:
    """One ``[[feeds]]`` entry: the pipeline's FeedSpec plus scheduling."""

    spec: FeedSpec
    interval_seconds: float
    allow_private: bool = False


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    path: Path
    database: str
    archive_dir: Path
    fetch: FetchSettings = field(default_factory=FetchSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    feeds: tuple[FeedSettings, ...] = ()
    default_interval: float = decide.DEFAULT_INTERVAL
    #: What is valid but probably not meant (an interval below the floor), key and line.
    warnings: tuple[str, ...] = ()

    @functools.cached_property
    def by_name(self) -> dict[str, FeedSettings]:
        """The feeds by name, made once (the loader refuses a name given twice)."""
        return {item.spec.name: item for item in self.feeds}

    def feed(self, name: str) -> FeedSettings:
        """The feed called ``name``; ConfigError if there is none."""
        if (found := self.by_name.get(name)) is None:
            raise ConfigError(f"no feed named {name!r} in {self.path}")
        return found


def is_safe_feed_name(name: str) -> bool:
    """Whether ``name`` may name a feed (and so its archive folder)."""
    return bool(_NAME.fullmatch(name)) and name not in {".", ".."}


def crash_point(environ: Mapping[str, str] = os.environ) -> str | None:
    """The crash point the crash test arms (``$INGESTD_CRASH_AT``; see ``ingestd.faults``)."""
    return environ.get("INGESTD_CRASH_AT") or None


def find_config(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """Where the configuration lives: --config, else $INGESTD_CONFIG, else ./ingestd.toml."""
    if explicit:
        return Path(explicit)
    if environ.get("INGESTD_CONFIG"):
        return Path(environ["INGESTD_CONFIG"])
    return DEFAULT_PATH


def load(path: Path) -> Settings:
    """Read and validate the configuration file at ``path``."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    return loads(raw, path)


def loads(text: str, path: Path) -> Settings:
    """Validate configuration ``text`` as if read from ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Validator(text, path).settings(data)


class _Validator(TableReader):
    """Turns parsed TOML into Settings, with errors that point at the line."""

    def settings(self, data: dict[str, Any]) -> Settings:
        self._no_unknown(data, set(TOP_KEYS), "")
        default_interval = self._duration(data, "interval", decide.DEFAULT_INTERVAL, "")
        fetch = self._fetch(self._table(data, "fetch"))
        schedule = self._schedule(self._table(data, "schedule"))
        metrics = self._metrics(self._table(data, "metrics"), schedule.tick)
        service = self._service(self._table(data, "service"))
        archive = self._archive(self._table(data, "archive"))
        history = self._history(self._table(data, "history"))
        feeds = self._feeds(data.get("feeds", []), default_interval)
        self._below_floor(data, feeds, schedule.floor)
        return Settings(
            path=self.path,
            database=self._database(self._str(data, "database", "sqlite:///ingestd.db", "")),
            archive_dir=self.base / self._str(data, "archive_dir", "archive", ""),
            fetch=fetch,
            schedule=schedule,
            metrics=metrics,
            service=service,
            archive=archive,
            history=history,
            feeds=feeds,
            default_interval=default_interval,
            warnings=tuple(self.warnings),
        )

    def _below_floor(
        self, data: dict[str, Any], feeds: tuple[FeedSettings, ...], floor: float
    ) -> None:
        """Warn of intervals the floor overrides: they are accepted, but not kept."""
        problem = (
            f"is below [schedule] floor ({floor:g}s): feeds are polled at most every "
            f"{floor:g}s; lower floor to poll them more often"
        )
        default = self._duration(data, "interval", decide.DEFAULT_INTERVAL, "")
        if "interval" in data and default < floor:
            self.warn("interval", f"{default:g}s {problem}")
        for index, feed in enumerate(feeds):
            if "interval" in data["feeds"][index] and feed.interval_seconds < floor:
                self.warn("interval", f"{feed.interval_seconds:g}s {problem}", "feeds", index)

    def _schedule(self, table: dict[str, Any]) -> ScheduleSettings:
        self._no_unknown(table, set(ScheduleSettings.__dataclass_fields__), "schedule")
        d = ScheduleSettings()
        jitter = table.get("jitter", d.jitter)
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise self.fail(
                "jitter", f"expected a fraction from 0 to 1, got {jitter!r}", "schedule"
            )
        return ScheduleSettings(
            tick=self._duration(table, "tick", d.tick, "schedule"),
            floor=self._duration(table, "floor", d.floor, "schedule"),
            jitter=float(jitter),
            max_backoff=self._duration(table, "max_backoff", d.max_backoff, "schedule"),
            lease=self._duration(table, "lease", d.lease, "schedule"),
            page_retry=self._duration(table, "page_retry", d.page_retry, "schedule"),
            give_up=self._duration(table, "give_up", d.give_up, "schedule"),
        )

    def _archive(self, table: dict[str, Any]) -> ArchiveSettings:
        self._no_unknown(table, set(ArchiveSettings.__dataclass_fields__), "archive")
        d = ArchiveSettings()
        raw = self._str(table, "raw", d.raw, "archive")
        if raw not in ("off", "pages", "all"):
            raise self.fail("raw", f'expected "off", "pages" or "all", got {raw!r}', "archive")
        return ArchiveSettings(
            raw, self._int(table, "raw_file_mb", d.raw_file_mb, "archive", low=1)
        )

    def _history(self, table: dict[str, Any]) -> HistorySettings:
        self._no_unknown(table, set(HistorySettings.__dataclass_fields__), "history")
        default = HistorySettings()
        return HistorySettings(
            keep=self._duration(table, "keep", default.keep, "history"),
            keep_last=self._int(table, "keep_last", default.keep_last, "history", low=0),
            prune_every=self._duration(table, "prune_every", default.prune_every, "history"),
        )

    def _service(self, table: dict[str, Any]) -> ServiceSettings:
        self._no_unknown(table, set(ServiceSettings.__dataclass_fields__), "service")
        grace = self._duration(table, "grace", ServiceSettings.grace, "service")
        return ServiceSettings(grace=grace)

    def _metrics(self, table: dict[str, Any], tick: float) -> MetricsSettings:
        self._no_unknown(table, {"enabled", "listen", "allow_remote", "stale_after"}, "metrics")
        d = MetricsSettings()
        flags = {}
        for key in ("enabled", "allow_remote"):
            flags[key] = table.get(key, getattr(d, key))
            if not isinstance(flags[key], bool):
                raise self.fail(key, f"expected true or false, got {flags[key]!r}", "metrics")
        host, port = self._listen(self._str(table, "listen", f"{d.host}:{d.port}", "metrics"))
        if not flags["allow_remote"] and not ipaddress.ip_address(host).is_loopback:
            # Metrics name feeds and their health: not for the network unless asked.
            problem = (
                f"{host} is not a loopback address; set allow_remote = true to "
                "serve metrics beyond this machine"
            )
            raise self.fail("listen", problem, "metrics")
        # Three ticks, but never so short that one slow poll makes the daemon look dead.
        stale = self._duration(table, "stale_after", max(3 * tick, 60.0), "metrics")
        return MetricsSettings(
            enabled=flags["enabled"],
            host=host,
            port=port,
            allow_remote=flags["allow_remote"],
            stale_after=stale,
        )

    def _database(self, url: str) -> str:
        if url.startswith("postgresql://"):
            # psycopg 3 is the driver ingestd ships; SQLAlchemy's default is psycopg2.
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if not re.match(r"(sqlite|postgresql\+psycopg)://", url):
            raise self.fail(
                "database",
                f"expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB, got {url!r}",
            )
        prefix = "sqlite:///"
        if url.startswith("sqlite://") and (not url.startswith(prefix) or url == prefix):
            # SQLAlchemy reads sqlite://name.db as a host and opens an in-memory database.
            named = url.removeprefix("sqlite://").lstrip("/") or "ingestd.db"
            raise self.fail(
                "database",
                f"{url!r} names no database file: write sqlite:///{named} (three slashes: "
                "a path relative to this file) or sqlite:////var/lib/ingestd/ingestd.db "
                "(four: an absolute path)",
            )
        if (
            url.startswith(prefix)
            and not url.startswith(prefix + "/")
            and url != "sqlite:///:memory:"
        ):
            return prefix + str(self.base / url[len(prefix) :])
        return url

    def _fetch(self, table: dict[str, Any]) -> FetchSettings:
        known = set(FetchSettings.__dataclass_fields__)
        self._no_unknown(table, known, "fetch")
        allow = self._list_of_str(table, "allow_private", "fetch")
        for entry in allow:
            self._check_host_or_cidr(entry)
        d = FetchSettings()
        return FetchSettings(
            concurrency=self._int(table, "concurrency", d.concurrency, "fetch", low=1),
            per_host=self._int(table, "per_host", d.per_host, "fetch", low=1),
            timeout=self._number(table, "timeout", d.timeout, "fetch"),
            connect_timeout=self._number(table, "connect_timeout", d.connect_timeout, "fetch"),
            max_bytes=self._int(table, "max_bytes", d.max_bytes, "fetch", low=1024),
            max_redirects=self._int(table, "max_redirects", d.max_redirects, "fetch", low=0),
            user_agent=self._str(table, "user_agent", d.user_agent, "fetch"),
            allow_private=tuple(allow),
        )

    def _feeds(self, items: Any, default_interval: float) -> tuple[FeedSettings, ...]:
        if not isinstance(items, list):
            raise self.fail("feeds", "expected [[feeds]] tables")
        feeds: list[FeedSettings] = []
        names: set[str] = set()
        for index, item in enumerate(items):
            feed = self._feed(item, index, default_interval)
            if feed.spec.name in names:
                raise self.fail("name", f"duplicate feed name {feed.spec.name!r}", "feeds", index)
            names.add(feed.spec.name)
            feeds.append(feed)
        return tuple(feeds)

    def _feed(self, item: dict[str, Any], index: int, default_interval: float) -> FeedSettings:
        self._no_unknown(item, set(FEED_KEYS), "feeds", index)
        name = self._required_str(item, "name", index)
        if not is_safe_feed_name(name):
            raise self.fail(
                "name",
                f"{name!r} is not a safe folder name (letters, digits, "
                "'-', '_', '.', spaces; at most 64)",
                "feeds",
                index,
            )
        d = FeedSpec(name, "")  # the defaults of what the table leaves out
        formats = {f.value for f in ArchiveFormat}
        fmt = self._choice(item, "format", formats, d.format.value, index)
        newlines = self._choice(item, "newlines", set(NEWLINE_STYLES), "lf", index)
        spec = FeedSpec(
            name=name,
            url=self._feed_url(self._required_str(item, "url", index), index),
            format=ArchiveFormat(fmt),
            fetch_page=self._bool(item, "fetch_page", d.fetch_page, index),
            source=self._str(item, "source", d.source, "feeds", index),
            label=self._str(item, "label", d.label, "feeds", index),
            site=self._str(item, "site", d.site, "feeds", index),
            image_proxy=self._str(item, "image_proxy", d.image_proxy, "feeds", index),
            sanitize=self._bool(item, "sanitize", d.sanitize, index),
            newlines=NEWLINE_STYLES[newlines],
        )
        if spec.format is ArchiveFormat.REPOST and not spec.source:
            problem = 'format "repost" needs source (the backtick text)'
            raise self.fail("source", problem, "feeds", index)
        return FeedSettings(
            spec=spec,
            interval_seconds=self._duration(item, "interval", default_interval, "feeds", index),
            allow_private=self._bool(item, "allow_private", FeedSettings.allow_private, index),
        )

    def _feed_url(self, url: str, index: int) -> str:
        if url.startswith("file:"):
            local = Path(url[len("file:") :].removeprefix("//"))
            return "file://" + str(local if local.is_absolute() else self.base / local)
        if not re.match(r"https?://[^/\s]+", url):
            problem = f"expected an http(s):// or file: URL, got {url!r}"
            raise self.fail("url", problem, "feeds", index)
        return url
