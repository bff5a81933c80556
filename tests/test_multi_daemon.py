"""Three ``ingestd run`` daemons share one PostgreSQL database and one archive.

A loopback server offers 200 feeds that gain an item every cycle. The test lets the
daemons run several cycles, SIGKILLs one in the middle of a cycle, and checks:
no feed fetched twice within one interval, every feed polled every cycle, the dead
daemon's leased feeds taken over once its leases ran out, every entry archived
exactly once (rows and files), and work shared by all three.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestd import archive
from ingestd.store import open_store
from tests.conftest import REPO
from tests.db import fresh_schema, pg_url, set_autovacuum, vacuum_counts
from tests.disk import archived_files
from tests.loopback import LoopbackServer, Request, Response

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow

FEEDS = 200
INTERVAL = 6.0  # seconds between polls of one feed
LEASE = 4.0
CYCLES_BEFORE_KILL = 2.5
CYCLES_AFTER_KILL = 3.0


class Farm:
    """200 feeds; feed i offers one more item per interval since the start."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.started = time.monotonic()
        self.requests: dict[int, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        for index in range(FEEDS):
            server.route(f"/feed/{index}.xml", self.handler(index))

    def offered(self, at: float | None = None) -> int:
        moment = time.monotonic() if at is None else at
        return 1 + int((moment - self.started) / INTERVAL)

    def handler(self, index: int):  # type: ignore[no-untyped-def]
        def handle(_request: Request) -> Response:
            now = time.monotonic()
            with self.lock:
                self.requests[index].append(now)
            items = "".join(
                f"<item><title>feed {index} item {n}</title>"
                f"<link>http://farm.example/{index}/{n}</link><guid>{index}-{n}</guid>"
                f"<description>&lt;p&gt;text {n}&lt;/p&gt;</description></item>"
                for n in range(self.offered(now))
            )
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>feed {index}</title><link>http://farm.example/</link>{items}"
                "</channel></rss>"
            ).encode()
            return Response(200, {"Content-Type": "application/rss+xml"}, body)

        return handle


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


def write_config(root: Path, database: str, port: int) -> Path:
    feeds = "".join(
        f'[[feeds]]\nname = "f{i}"\nurl = "http://127.0.0.1:{port}/feed/{i}.xml"\n'
        f'interval = "{INTERVAL}s"\n'
        for i in range(FEEDS)
    )
    config = root / "ingestd.toml"
    config.write_text(
        f'database = "{database}"\narchive_dir = "archive"\n'
        "[fetch]\nconcurrency = 16\nper_host = 64\ntimeout = 10\n"
        'allow_private = ["127.0.0.1"]\n'
        f'[schedule]\ntick = "0.2s"\nfloor = "1s"\njitter = 0.05\nlease = "{LEASE}s"\n'
        '[service]\ngrace = "5s"\n' + feeds,
        encoding="utf-8",
    )
    return config


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ingestd", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            env=env,
            cwd=config.parent,
        )


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)  # polling an outside condition; the daemons run on their own clock
    pytest.fail(f"timed out waiting for {what}")


def owner_pid(owner: str) -> int:
    return int(owner.split(":")[1])


@pytest.mark.timeout(240)
def test_three_daemons_share_one_database(tmp_path: Path, schema: str) -> None:
    database = pg_url(schema)
    with LoopbackServer() as server:
        farm = Farm(server)
        config = write_config(tmp_path, database, server.port)
        logs = [tmp_path / f"daemon{n}.log" for n in range(4)]
        _without_autovacuum_for_feeds(database)
        daemons = [start_daemon(config, logs[n]) for n in range(3)]
        try:
            wait_until(lambda: len(farm.requests) == FEEDS, 60, "every feed polled once")
            polling = time.monotonic()  # the daemons are up (their start-up varies with load)
            time.sleep(INTERVAL * CYCLES_BEFORE_KILL)  # let several cycles run
            with open_store(database) as store:
                leases = store.active_leases(_now())
            victim = daemons[0]
            victim_leases = [fid for fid, owner in leases.items() if owner_pid(owner) == victim.pid]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = time.monotonic()
            time.sleep(INTERVAL * CYCLES_AFTER_KILL)
            # systemd would restart the killed daemon (Restart=on-failure): its start-up
            # reconciliation moves aside a file the kill may have left without its row.
            daemons.append(start_daemon(config, logs[3]))
            wait_until(lambda: b"ingestd started" in logs[3].read_bytes(), 30, "restart")
            time.sleep(INTERVAL)
        finally:
            stopping = time.monotonic()
            for daemon in daemons[1:]:
                daemon.send_signal(signal.SIGTERM)
            for daemon in daemons[1:]:
                assert daemon.wait(30) == 0, "a daemon did not stop cleanly"
        stopped = time.monotonic()
    check_polls(farm, polling, killed_at, stopping)
    check_exactly_once(tmp_path / "archive", database, farm, stopped)
    check_takeover(database, farm, victim_leases, killed_at)
    check_shared(database, [d.pid for d in daemons[:3]])
    for log in logs:
        assert b"Traceback" not in log.read_bytes(), log.read_text()[-2000:]
    # Each daemon said it looks after the table autovacuum leaves alone, and one did.
    for log in logs:
        assert b"PostgreSQL autovacuum is off for" in log.read_bytes()
    assert vacuum_counts(database)["feeds"] >= 1


def _without_autovacuum_for_feeds(database: str) -> None:
    """Make the schema and turn autovacuum off for ``feeds`` (as a server without it)."""
    open_store(database).close()
    set_autovacuum(database, "feeds", enabled=False)


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def check_polls(farm: Farm, polling: float, killed_at: float, stopping: float) -> None:
    """No feed fetched twice within one interval; every feed polled every cycle from the
    moment every feed had been polled once (``polling``) until the stop."""
    total = sum(len(times) for times in farm.requests.values())
    gaps, takeovers = [], []
    polls = {index: sorted(farm.requests[index]) for index in range(FEEDS)}
    for times in polls.values():
        for a, b in zip(times, times[1:], strict=False):
            # A poll in flight when its daemon was killed is lost; the feed is polled
            # again once that daemon's lease runs out, which may be before a full
            # interval. Every other pair of polls is at least an interval apart.
            (takeovers if a <= killed_at <= b else gaps).append(b - a)
    # The cycle the daemons keep: the interval on an idle machine; later for every feed
    # alike when other processes keep both cores busy, which is load, not a feed left
    # behind. A feed left behind is silent for several such cycles.
    cycle = max(INTERVAL, statistics.median(gaps))
    for index, times in polls.items():
        # Polled throughout: no silence much longer than a cycle, except around the kill.
        windows = int((stopping - polling) / cycle) - 1
        checkpoints = [polling + cycle * k for k in range(max(windows, 0))]
        for point in checkpoints:
            if killed_at - 1 <= point <= killed_at + LEASE + cycle * 2:
                continue
            assert any(point <= t < point + cycle * 2 for t in times), (
                f"feed {index} not polled between {point - farm.started:.1f}s and "
                f"{point - farm.started + 2 * cycle:.1f}s (cycle {cycle:.1f}s)"
            )
    assert min(gaps) >= INTERVAL * 0.95, f"a feed was fetched twice within {min(gaps):.2f}s"
    early = "a killed daemon's feed was taken before its lease ran out"
    assert min(takeovers) >= LEASE * 0.95, early
    print(
        f"\nmulti-daemon: {total} feed requests, {len(gaps)} gaps, "
        f"shortest gap {min(gaps):.2f}s, cycle kept {cycle:.2f}s (interval {INTERVAL}s); "
        f"{len(takeovers)} polls "
        f"spanning the kill, shortest {min(takeovers):.2f}s (lease {LEASE}s)"
    )


def check_exactly_once(root: Path, database: str, farm: Farm, stopped: float) -> None:
    """Every offered entry has exactly one row and one file, and nothing else exists."""
    files = archived_files(root)
    with open_store(database) as store:
        paths = dict(store.archive_paths_in_order())
        counts = store.entry_counts()
    assert set(paths) == files, "rows and files differ"
    assert not list((root / "articles").rglob(f"{archive.TEMP_MARK}*"))
    guids = set()
    for relative in files:
        text = (root / relative).read_text(encoding="utf-8")
        title = text.split("\n")[1]
        assert title not in guids, f"archived twice: {title}"
        guids.add(title)
    # Each feed offered at least as many items as its last poll saw; all of those are in.
    for index in range(FEEDS):
        last_poll = max(farm.requests[index])
        assert counts[f"f{index}"] >= farm.offered(last_poll) - 1
        assert counts[f"f{index}"] <= farm.offered(stopped)
    print(f"multi-daemon: {len(files)} files, {len(paths)} rows, all distinct")


def check_takeover(database: str, farm: Farm, leased: list[int], killed_at: float) -> None:
    """Feeds the killed daemon held were polled by others after its leases ran out."""
    with open_store(database) as store:
        names = {f.id: f.name for f in store.list_feeds()}
    for feed_id in leased:
        index = int(names[feed_id][1:])
        after = [t for t in farm.requests[index] if t > killed_at]
        assert after, f"feed {index}, leased by the killed daemon, was never polled again"
    print(f"multi-daemon: {len(leased)} feeds leased by the killed daemon, all polled again")


def check_shared(database: str, pids: list[int]) -> None:
    """All three daemons archived entries."""
    with open_store(database) as store:
        by_owner = store.archived_by_counts()
    per_pid: dict[int, int] = defaultdict(int)
    for owners in by_owner.values():
        for owner, count in owners.items():
            per_pid[owner_pid(owner)] += count
    for pid in pids:
        assert per_pid[pid] > 0, f"daemon {pid} archived nothing: {dict(per_pid)}"
    print(f"multi-daemon: entries archived per daemon {dict(per_pid)}")
