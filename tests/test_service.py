"""``ingestd run`` as a real subprocess: sd_notify, polls, SIGHUP reloads, SIGTERM mid-poll.

Every wait is on a condition with a timeout (server hits, log lines, notify messages),
never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from ingestd import archive
from ingestd.store import open_store
from tests.conftest import REPO
from tests.disk import archived_files
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import feed_toml, item, rss

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow

GRACE = 2.0
WAIT = 20.0  # generous upper bound for any one condition; normally met in well under 1 s


class Collector:
    """Things arriving on a background thread, and a way to wait for one of them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, value: Any) -> None:
        with self._cond:
            self.items.append(value)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = WAIT) -> Any:
        """The first item satisfying ``predicate``; fails the test after ``timeout``."""

        def found() -> list[Any]:
            return [i for i in self.items if predicate(i)]

        with self._cond:
            if not self._cond.wait_for(found, timeout):
                pytest.fail(f"not seen within {timeout}s; got {self.items!r}")
            return found()[0]


class NotifySocket:
    """The NOTIFY_SOCKET end systemd would hold: an abstract unix datagram socket."""

    def __init__(self) -> None:
        self.name = f"ingestd-test-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.1)
        self.messages = Collector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "@" + self.name

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            for line in data.decode("latin-1").splitlines():
                self.messages.add(line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class Daemon:
    """``python -m ingestd run`` with JSON logs collected line by line."""

    def __init__(self, config: Path, notify: NotifySocket) -> None:
        env = dict(
            os.environ, NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="400000", PYTHONPATH=str(REPO)
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingestd", "run", "--config", str(config),
             "--log-format", "json"],
            cwd=config.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.logs = Collector()
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.logs.add(json.loads(line))
            except json.JSONDecodeError:
                self.logs.add({"level": "raw", "message": line.rstrip("\n")})

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def article(title: str) -> bytes:
    words = " ".join(["This paragraph carries the article's text so readability keeps it."] * 6)
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{words}</p><p>{words}</p></article></body></html>"
    ).encode()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def write_config(path: Path, database_url: str, feeds: str) -> None:
    path.write_text(
        f'database = "{database_url}"\narchive_dir = "archive"\ninterval = "1s"\n'
        '[fetch]\ntimeout = 30\nallow_private = ["127.0.0.1"]\n'
        '[schedule]\ntick = "0.2s"\nfloor = "1s"\njitter = 0\n'
        f'[service]\ngrace = "{GRACE}s"\n{feeds}',
        encoding="utf-8",
    )


def serve(loopback: LoopbackServer) -> dict[str, str]:
    """Feeds a and b (one item each) and a feed whose third page drips forever."""
    for name in ("a", "b"):
        loopback.route(
            f"/{name}.xml",
            (
                200,
                {"Content-Type": "application/rss+xml"},
                rss(item(name, f"http://x.example/{name}", name)),
            ),
        )
    pages = {n: loopback.url(f"/slow/{n}.html") for n in (1, 2, 3)}
    for n in (1, 2):
        loopback.route(f"/slow/{n}.html", (200, {"Content-Type": "text/html"}, article(f"p{n}")))
    loopback.route("/slow/3.html", lambda _req: _dripping(loopback))
    items = "".join(
        item(f"p{n}", pages[n], f"s{n}", date=f"Mon, 0{n} Mar 2026 10:00:00 GMT") for n in (1, 2, 3)
    )
    loopback.route("/slow.xml", (200, {"Content-Type": "application/rss+xml"}, rss(items)))
    return {
        "a": feed_toml("a", loopback.url("/a.xml")),
        "b": feed_toml("b", loopback.url("/b.xml")),
        "slow": feed_toml("slow", loopback.url("/slow.xml"), interval="1h") + "fetch_page = true\n",
    }


def _dripping(loopback: LoopbackServer) -> Any:
    from tests.loopback import Response

    return Response(200, {"Content-Type": "text/html"}, loopback.drip(article("p3"), every=0.5))


def is_error(words: str) -> Callable[[dict[str, Any]], bool]:
    return lambda rec: rec.get("level") == "error" and words in rec.get("message", "")


def test_run_polls_reloads_and_stops_without_partial_files(
    tmp_path: Path, database_url: str, loopback: LoopbackServer, notify: NotifySocket
) -> None:
    feeds = serve(loopback)
    config = tmp_path / "ingestd.toml"
    write_config(config, database_url, feeds["a"])
    daemon = Daemon(config, notify)
    try:
        notify.messages.wait_for(lambda m: m == "READY=1")
        assert loopback.wait_until(lambda s: s.hits["/a.xml"] >= 2, timeout=WAIT)
        notify.messages.wait_for(lambda m: m == "WATCHDOG=1")
        notify.messages.wait_for(lambda m: m.startswith("STATUS=1 feeds;"))

        # SIGHUP after adding a feed: the new feed is polled.
        write_config(config, database_url, feeds["a"] + feeds["b"])
        daemon.signal(signal.SIGHUP)
        assert loopback.wait_until(lambda s: s.hits["/b.xml"] >= 1, timeout=WAIT)

        # A broken file is reported with its key and line; the running configuration stays.
        write_config(
            config,
            database_url,
            feeds["a"] + feeds["b"] + '[[feeds]]\nname = "c"\nurl = "ftp://x"\n',
        )
        daemon.signal(signal.SIGHUP)
        error = daemon.logs.wait_for(is_error("configuration not reloaded"))
        line = config.read_text().splitlines().index('url = "ftp://x"') + 1
        assert f"line {line}: feeds[2].url: expected an http(s)://" in error["message"]
        polled = (loopback.hits["/a.xml"], loopback.hits["/b.xml"])
        assert loopback.wait_until(
            lambda s: s.hits["/a.xml"] > polled[0] and s.hits["/b.xml"] > polled[1], timeout=WAIT
        )

        # SIGTERM while a slow page is in flight: out within the grace period, exit 0.
        write_config(config, database_url, feeds["a"] + feeds["b"] + feeds["slow"])
        daemon.signal(signal.SIGHUP)
        assert loopback.wait_until(lambda s: s.hits["/slow/3.html"] >= 1, timeout=WAIT)
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=GRACE + 15)
        elapsed = time.monotonic() - started
        notify.messages.wait_for(lambda m: m == "STOPPING=1")
    finally:
        daemon.kill()
    raw = [r["message"] for r in daemon.logs.items if r.get("level") == "raw"]
    assert code == 0, raw
    assert elapsed < GRACE + 3, f"took {elapsed:.1f}s to stop"
    assert raw == []  # no tracebacks, nothing but JSON lines
    daemon.logs.wait_for(lambda r: "polls cancelled after the" in r.get("message", ""))
    assert_archive_matches_rows(tmp_path, database_url)


def assert_archive_matches_rows(root: Path, database_url: str) -> None:
    """Every archive_path row has its file, every file its row, and no temporaries remain."""
    folder = root / "archive"
    temporaries = [p for p in folder.rglob("*") if archive.TEMP_MARK in p.name]
    assert temporaries == []
    on_disk = archived_files(folder)
    with open_store(database_url, migrate=False) as store:
        recorded = dict(store.archive_paths_in_order())
        assert store.entries_without_file() == []
        assert all(f.lease_owner is None for f in store.list_feeds())
    assert set(recorded) == on_disk
    # a, b, and the two slow-feed pages that finished before SIGTERM; never page 3.
    assert sorted(on_disk) == sorted(
        [
            "articles/a/1048575.md",
            "articles/b/1048575.md",
            "articles/slow/1048575.md",
            "articles/slow/1048574.md",
        ]
    )
