"""Crash safety: SIGKILL a real ``ingestd fetch`` at many points, restart it, check the archive.

The process under test is ``python -m ingestd fetch --config ... --json``. Kill points:

- *named point*: ``INGESTD_CRASH_AT=NAME[@N]`` makes ingestd SIGKILL itself where the code
  reaches that point (``ingestd.faults``: a first poll's files written, a batch synced
  before its commit, a batch committed), so the windows between a write and the commit
  that records it are hit every run, whatever the machine's load;
- *held request*: the loopback server holds a feed or article request until the test lets
  it through, so the process is paused at a known point (every earlier entry of that feed
  is committed, the next one not yet written);
- *file without row*: the test holds the database's write lock (SQLite's, or on
  PostgreSQL a SHARE lock on the entries table), lets one article through and waits
  until its file appears: ingestd has renamed the file into place and is waiting for
  the lock to insert the row, which is exactly where it is killed;
- *temporary file*: the test watches the feed's folder, stops the process (SIGSTOP) the
  moment a temporary file shows up, and records whether the temporary is still there
  when the process is frozen (mid-write) or already renamed;
- *timed*: kills at seeded delays after start, which land anywhere (start-up, parsing,
  file writes, commits).

After every kill the test checks what must hold even without repair (every row has its
file; every file is complete; at most one file per feed lacks its row), then restarts.
Each round ends with a run left to finish, after which the archive must be exact: every
entry the feeds offer archived exactly once, rows and files in one-to-one agreement, no
temporary files, earlier files untouched, and every file that lost its row in a crash
moved to ``archive/orphans/`` (none overwritten). The feeds grow between rounds.

Run ``pytest tests/test_crash.py -rA`` (or ``-s``) to see the counts checked.

Also here: a killed ingestd leaves no parse-pool processes behind; a full disk (a real
tmpfs); a database locked by another process.

The SIGKILL tests use the suite's ``database_url`` (SQLite, or PostgreSQL under
``--db=postgresql``). The full-disk and locked-database tests are about SQLite's own
file and lock, so they are marked ``sqlite_only`` and always run on SQLite.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingestd import capture
from ingestd.archive import TEMP_MARK
from ingestd.capture import RawRef
from ingestd.formats import feed as format_a
from ingestd.formats import repost as format_b
from ingestd.pipeline import BATCH
from ingestd.store.engine import DEFAULT_BUSY_TIMEOUT_MS
from tests.db import is_sqlite, pg_connect, query, sqlite_path, table_names
from tests.loopback import LoopbackServer, Request, Response
from tests.test_fetch_e2e import feed_toml, item, rss

#: POSIX signals; the slow lane (./dev test --all, CI).
pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"), pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
PAGE_TEXT = "This is the article text, long enough for readability to call it one. " * 6


# --- the feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedDef:
    """One loopback feed of the crash test."""

    name: str
    fmt: str  # "feed" or "repost"
    fetch_page: bool

    @property
    def pages(self) -> bool:
        return self.fetch_page or self.fmt == "repost"


# Three feeds: fewer than the parse pool's threshold, so kills are not slowed down by
# pool workers starting up (test_killed_ingestd_leaves_no_processes covers the pool).
FEEDS = (
    FeedDef("a", "feed", fetch_page=True),  # format A built from the article page
    FeedDef("b", "feed", fetch_page=False),  # format A from the item's HTML; the big one
    FeedDef("c", "repost", fetch_page=True),  # format B: the page as markdown
)


class Gates:
    """Holds requests (``"a:page"``, ``"b:feed"``) until the test lets them through.

    ``reset`` starts a new generation: requests held for a killed process are let go
    (their answer goes to a closed socket, which the server ignores).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: set[str] = set()
        self._allow: Counter[str] = Counter()
        self.arrived: Counter[str] = Counter()
        self._generation = 0

    def passage(self, key: str) -> None:
        with self._cond:
            generation = self._generation
            self.arrived[key] += 1
            self._cond.notify_all()
            while key in self._held and not self._allow[key] and generation == self._generation:
                self._cond.wait(0.5)
            if generation == self._generation and key in self._held:
                self._allow[key] -= 1

    def hold(self, *keys: str) -> None:
        with self._cond:
            self._held.update(keys)

    def release(self, key: str, count: int = 1) -> None:
        with self._cond:
            self._allow[key] += count
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._generation += 1
            self._held.clear()
            self._allow.clear()
            self.arrived.clear()
            self._cond.notify_all()

    def wait_arrived(self, key: str, count: int, timeout: float = 20.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.arrived[key] >= count, timeout):
                raise AssertionError(f"no request {key} #{count} within {timeout} s")


class FeedFarm:
    """The feeds on a loopback server; ``grow`` makes them offer more items."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.gates = Gates()
        self.counts = {f.name: 0 for f in FEEDS}
        self._offered: dict[str, tuple[int, dict[str, str]]] = {}
        for feed in FEEDS:
            server.route(f"/{feed.name}.xml", self._feed_handler(feed))

    def grow(self, **counts: int) -> None:
        for name, count in counts.items():
            for i in range(self.counts[name], count):
                self.server.route(f"/p/{name}/{i}.html", self._page_handler(name, i))
            self.counts[name] = count

    def link(self, name: str, i: int) -> str:
        return self.server.url(f"/p/{name}/{i}.html")

    def offered(self, name: str) -> dict[str, str]:
        """link -> title of every item the feed offers now."""
        count = self.counts[name]
        cached = self._offered.get(name)
        if cached is None or cached[0] != count:
            cached = (count, {self.link(name, i): title(name, i) for i in range(count)})
            self._offered[name] = cached
        return cached[1]

    def _feed_handler(self, feed: FeedDef) -> Callable[[Request], Response]:
        def handle(_request: Request) -> Response:
            count = self.counts[feed.name]  # read before the gate: what this request offers
            self.gates.passage(f"{feed.name}:feed")
            items = "".join(self._item(feed.name, i) for i in range(count))
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{feed.name}</title><link>{self.server.url('/')}</link>"
                f"{items}</channel></rss>"
            )
            return Response(200, {"Content-Type": "application/rss+xml"}, body.encode())

        return handle

    def _item(self, name: str, i: int) -> str:
        day, minute = divmod(i, 1440)
        stamp = f"{day % 28 + 1:02d} Feb 2022 {minute // 60:02d}:{minute % 60:02d}:00 GMT"
        return (
            f"<item><title>{title(name, i)}</title><link>{self.link(name, i)}</link>"
            f"<guid>{name}-{i}</guid><pubDate>Mon, {stamp}</pubDate>"
            f"<description>&lt;p&gt;item {i} of {name}&lt;/p&gt;</description></item>"
        )

    def _page_handler(self, name: str, i: int) -> Callable[[Request], Response]:
        def handle(_request: Request) -> Response:
            self.gates.passage(f"{name}:page")
            html = (
                f"<html><head><title>{title(name, i)}</title></head><body><article>"
                f"<h1>{title(name, i)}</h1><p>{PAGE_TEXT}</p><p>{i}</p></article></body>"
                "</html>"
            )
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())

        return handle


def title(name: str, i: int) -> str:
    return f"{name} 條目 {i}"


# --- the archive as the test sees it -----------------------------------------------------


@dataclass
class Tally:
    """What the crash test checked, printed at the end."""

    kills: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    files_checked: int = 0
    rows_checked: int = 0
    orphans_seen: set[tuple[str, int]] = field(default_factory=set)  # (path, inode)
    temporaries_seen: int = 0
    full_checks: int = 0
    raw_records_read: int = 0  # rows' WARC records read back after kills and runs
    half_records_seen: int = 0  # WARC files a kill left with half a record at the end

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items()))
        return (
            f"crash test: {sum(self.kills.values())} kill points ({kinds}); "
            f"{self.runs} runs; {self.full_checks} full checks; "
            f"{self.files_checked} files and {self.rows_checked} rows checked; "
            f"{len(self.orphans_seen)} files left without a row by a kill, all found in "
            f"orphans/; {self.temporaries_seen} temporary files left by a kill, all swept; "
            f"{self.raw_records_read} raw records read back; {self.half_records_seen} half "
            "records left by a kill, all cut at the next start"
        )


class Workspace:
    """The config, archive and database of the crash test, and ways to look at them."""

    def __init__(self, root: Path, farm: FeedFarm, database_url: str) -> None:
        self.root = root
        self.farm = farm
        self.archive = root / "archive"
        self.database = database_url
        self.config = root / "ingestd.toml"
        feeds = "".join(
            f'[[feeds]]\nname = "{f.name}"\nurl = "{farm.server.url(f"/{f.name}.xml")}"\n'
            f'format = "{f.fmt}"\nfetch_page = {str(f.fetch_page).lower()}\n'
            + ('source = "crash"\nsite = "Crash"\n' if f.fmt == "repost" else "")
            for f in FEEDS
        )
        self.config.write_text(
            f'database = "{database_url}"\narchive_dir = "archive"\n'
            '[fetch]\ntimeout = 20\nper_host = 8\nallow_private = ["127.0.0.1"]\n' + feeds,
            encoding="utf-8",
        )

    def spawn(self, *, reset: bool = True, crash_at: str = "") -> subprocess.Popen[bytes]:
        if reset:
            self.farm.gates.reset()
        log = open(self.root / "run.log", "ab")  # noqa: SIM115 - closed by the child's exit
        env = {**os.environ, "INGESTD_CRASH_AT": crash_at} if crash_at else None
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "ingestd", "fetch", "--config", str(self.config), "--json"],
                cwd=self.root,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env=env,
            )
        finally:
            log.close()

    def rows(self) -> dict[str, tuple[str, str]]:
        """archive_path -> (feed, link) of every entry row."""
        if "entries" not in table_names(self.database):
            return {}  # killed before the first migration committed
        found = query(
            self.database,
            "SELECT e.archive_path, f.name, e.link FROM entries e JOIN feeds f ON f.id = e.feed_id",
        )
        return {path: (name, link) for path, name, link in found if path}

    def raw_refs(self) -> list[RawRef]:
        """The WARC record of every entry row that names one."""
        if "entries" not in table_names(self.database):
            return []
        found = query(self.database, "SELECT raw_file, raw_offset FROM entries")
        return [RawRef(file, offset) for file, offset in found if file is not None]

    def half_records(self) -> list[str]:
        """WARC files that end in part of a record."""
        return [
            path.name
            for path in capture.warc_files(self.archive)
            if capture.whole_length(path) != path.stat().st_size
        ]

    def check_raw(self, tally: Tally) -> None:
        """Every row's raw record reads back as a whole response for its page."""
        for ref in self.raw_refs():
            recorded = capture.read(self.archive, ref)  # raises on a half or missing record
            assert recorded.status == 200 and recorded.payload.startswith(b"<html>"), ref
            tally.raw_records_read += 1

    def files(self) -> dict[str, bytes]:
        base = self.archive / "articles"
        found = {}
        for path in base.rglob("*") if base.is_dir() else ():
            if path.is_file() and not path.name.startswith(TEMP_MARK):
                found[path.relative_to(self.archive).as_posix()] = path.read_bytes()
        return found

    def temporaries(self) -> list[Path]:
        return [p for p in self.archive.rglob(f"{TEMP_MARK}*")] if self.archive.is_dir() else []

    def orphans(self) -> set[tuple[str, int]]:
        """(path under articles/, inode) of every file moved aside; a move keeps the inode."""
        base = self.archive / "orphans"
        found = set()
        for path in base.rglob("*.md") if base.is_dir() else ():
            relative = path.relative_to(base).as_posix().split("/", 1)[1]  # drop the stamp
            found.add((relative, path.stat().st_ino))
        return found

    def folder(self, feed: str) -> Path:
        return self.archive / "articles" / feed

    def link_in(self, relative: str, data: bytes) -> str:
        """The entry link a complete archive file records (format A or B)."""
        feed = next(f for f in FEEDS if f.name == relative.split("/")[1])
        text = data.decode("utf-8")
        if feed.fmt == "repost":
            return format_b.parse(text).url
        return format_a.parse(text).link


def check_after_kill(ws: Workspace, tally: Tally) -> dict[str, bytes]:
    """What must hold the moment ingestd dies, before any repair; returns orphan files."""
    rows, files = ws.rows(), ws.files()
    missing = sorted(set(rows) - set(files))
    assert not missing, f"rows whose file is missing after a kill: {missing[:5]}"
    for relative, data in files.items():
        feed = relative.split("/")[1]
        link = ws.link_in(relative, data)  # raises on a partial or garbled file
        assert link in ws.farm.offered(feed), f"{relative} holds an unknown entry {link}"
    without_row = {r: files[r] for r in set(files) - set(rows)}
    per_feed = Counter(r.split("/")[1] for r in without_row)
    # At most one batch of files waits for its rows: one entry for feeds built from
    # pages (stored one by one), up to BATCH for feeds built from the item alone.
    limits = {f.name: 1 if f.fmt == "repost" or f.fetch_page else BATCH for f in FEEDS}
    assert all(n <= limits[name] for name, n in per_feed.items()), (
        f"more orphans than one batch: {per_feed}"
    )
    tally.files_checked += len(files)
    tally.rows_checked += len(rows)
    ws.check_raw(tally)
    tally.half_records_seen += len(ws.half_records())
    tally.temporaries_seen += len(ws.temporaries())
    for relative in without_row:
        tally.orphans_seen.add((relative, (ws.archive / relative).stat().st_ino))
    return without_row


def check_complete(ws: Workspace, tally: Tally, earlier: dict[str, bytes]) -> dict[str, bytes]:
    """After a run that finished: the archive is exact."""
    assert ws.temporaries() == [], "temporary files left after a finished run"
    rows, files = ws.rows(), ws.files()
    assert set(rows) == set(files), (
        f"rows without files: {sorted(set(rows) - set(files))[:5]}, "
        f"files without rows: {sorted(set(files) - set(rows))[:5]}"
    )
    for feed in FEEDS:
        offered = ws.farm.offered(feed.name)
        archived = Counter(
            ws.link_in(r, d) for r, d in files.items() if r.split("/")[1] == feed.name
        )
        duplicates = [link for link, n in archived.items() if n > 1]
        assert not duplicates, f"feed {feed.name}: archived more than once: {duplicates[:3]}"
        lost = sorted(set(offered) - set(archived))
        assert not lost, f"feed {feed.name}: {len(lost)} offered entries not archived: {lost[:3]}"
        assert set(archived) == set(offered)
        row_links = Counter(link for name, link in rows.values() if name == feed.name)
        assert row_links == Counter(set(offered)), f"feed {feed.name}: rows disagree"
    for relative, data in files.items():
        if relative.split("/")[1] == "a":
            doc = format_a.parse(data.decode())
            assert (doc.link, doc.title) in ws.farm.offered("a").items()
    changed = [r for r, d in earlier.items() if files.get(r) != d]
    assert not changed, f"files archived earlier were changed or removed: {changed[:5]}"
    assert ws.orphans() == tally.orphans_seen, "a file without a row was lost, not moved aside"
    ws.check_raw(tally)
    assert ws.half_records() == [], "a WARC file still ends in half a record"
    assert not any((ws.archive / "raw" / ".open").iterdir()), "a WARC file left open"
    pages = sum(1 for _name, link in rows.values() if "/p/b/" not in link)
    assert len(ws.raw_refs()) == pages, "an entry built from a page names no raw record"
    tally.files_checked += len(files)
    tally.rows_checked += len(rows)
    tally.full_checks += 1
    return files


# --- kill points -------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the ingestd process, as a crash or the OOM killer would."""
    process.kill()
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    _reap_group(process.pid)


def _reap_group(pid: int) -> None:
    # Parse-pool workers see their pipe close and exit; nothing may linger.
    deadline = time.monotonic() + 5
    while _group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    left = _group_members(pid)
    if left:
        os.killpg(pid, signal.SIGKILL)
        raise AssertionError(f"ingestd's child processes {left} outlived it after SIGKILL")


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _stopped(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


@contextmanager
def write_lock(database_url: str) -> Iterator[None]:
    """Hold what an insert into ``entries`` waits for, from another connection."""
    if is_sqlite(database_url):
        lock = sqlite3.connect(sqlite_path(database_url), timeout=10, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            yield
        finally:
            lock.rollback()
            lock.close()
        return
    with pg_connect(database_url) as conn:
        # SHARE mode stops inserts (ROW EXCLUSIVE) and lets reads through.
        conn.execute("LOCK TABLE entries IN SHARE MODE")
        try:
            yield
        finally:
            conn.rollback()


class Crasher:
    """Runs ingestd against the workspace and kills it at the chosen points."""

    def __init__(self, ws: Workspace, tally: Tally, rng: random.Random) -> None:
        self.ws = ws
        self.tally = tally
        self.rng = rng
        self.gates = ws.farm.gates

    def _start(self, *, free: str = "", pages: str = "") -> subprocess.Popen[bytes]:
        """Spawn ingestd with every feed held except ``free``, and ``pages`` held too."""
        self.gates.reset()
        self.gates.hold(*(f"{f.name}:feed" for f in FEEDS if f.name != free))
        if pages:
            self.gates.hold(f"{pages}:page")
        self.tally.runs += 1
        return self.ws.spawn(reset=False)

    def _kill(self, process: subprocess.Popen[bytes], kind: str) -> dict[str, bytes]:
        kill(process)
        self.tally.kills[kind] += 1
        return check_after_kill(self.ws, self.tally)

    def _rows_of(self, feed: str) -> int:
        return sum(1 for name, _ in self.ws.rows().values() if name == feed)

    def _gate_key(self, feed: str) -> str:
        definition = next(f for f in FEEDS if f.name == feed)
        return f"{feed}:page" if definition.pages else f"{feed}:feed"

    def _paused_at(self, feed: str, committed: int) -> tuple[subprocess.Popen[bytes], str]:
        """Start ingestd and pause it just before its entry number ``committed + 1`` of feed."""
        farm = self.ws.farm
        waiting = farm.counts[feed] - self._rows_of(feed)
        if waiting <= committed:
            # A timed run that was not killed in time may have archived them all: offer
            # more, so that there is an entry to pause before.
            farm.grow(**{feed: farm.counts[feed] + committed + 1 - waiting})
        key = self._gate_key(feed)
        process = self._start(
            free=feed if key.endswith(":page") else "", pages=feed if key.endswith(":page") else ""
        )
        if committed:
            self.gates.release(key, committed)
        self.gates.wait_arrived(key, committed + 1)
        return process, key

    def finish(self) -> None:
        """A run left to finish: everything it reports must be fine."""
        process = self.ws.spawn()
        self.tally.runs += 1
        out, _ = process.communicate(timeout=60)
        summary = json.loads(out)
        assert process.returncode == 0, (summary, (self.ws.root / "run.log").read_text()[-2000:])
        assert summary["failed"] == 0 and summary["errors"] == []

    def held_requests(self) -> None:
        """Every feed request held: start-up and reconciliation done, nothing parsed."""
        process = self._start()
        for feed in FEEDS:
            self.gates.wait_arrived(f"{feed.name}:feed", 1)
        self._kill(process, "all feed requests held")

    def after_commits(self, feed: str, count: int) -> None:
        """Paused before an entry: exactly ``count`` new rows of the feed, no orphan."""
        before = self._rows_of(feed)
        process, _ = self._paused_at(feed, count)
        orphans = self._kill(process, "between entries (after a commit)")
        assert self._rows_of(feed) - before == count
        assert not [r for r in orphans if r.split("/")[1] == feed]

    def file_without_row(self, feed: str, committed: int) -> None:
        """The file renamed into place, its row waiting for the write lock: kill."""
        process, key = self._paused_at(feed, committed)
        folder = self.ws.folder(feed)
        before = set(os.listdir(folder)) if folder.is_dir() else set()
        with write_lock(self.ws.database):
            self.gates.release(key)
            wait_for(
                lambda: any(
                    not n.startswith(TEMP_MARK)
                    for n in (set(os.listdir(folder)) if folder.is_dir() else set()) - before
                ),
                what=f"a new file of feed {feed}",
            )
            orphans = self._kill(process, "file written, row not committed")
        assert [r for r in orphans if r.split("/")[1] == feed], "the new file should lack its row"

    def temporary_file(self, feed: str, committed: int = 0) -> None:
        """Freeze ingestd the moment a temporary file shows up in the feed's folder, kill."""
        process, key = self._paused_at(feed, committed)
        folder = self.ws.folder(feed)
        before = set(os.listdir(folder)) if folder.is_dir() else set()
        self.gates.release(key)
        deadline = time.monotonic() + 20
        kind = "temporary file seen, already renamed when frozen"
        while time.monotonic() < deadline:
            try:
                names = set(os.listdir(folder)) - before
            except FileNotFoundError:
                continue
            if names:
                os.kill(process.pid, signal.SIGSTOP)
                wait_for(lambda: _stopped(process.pid), 5, "SIGSTOP")
                if any(p.name.startswith(TEMP_MARK) for p in folder.iterdir()):
                    kind = "temporary file being written"
                break
        else:
            raise AssertionError(f"no file of feed {feed} appeared")
        self._kill(process, kind)

    def after_last(self, feed: str) -> None:
        """Kill right after the feed's last entry is committed (its fetch not yet recorded)."""
        process = self._start(free=feed)
        wanted = self.ws.farm.counts[feed]
        wait_for(lambda: self._rows_of(feed) >= wanted, what=f"all rows of {feed}")
        self._kill(process, "after the last commit of a feed")

    def at_point(self, point: str, feed: str) -> dict[str, bytes]:
        """Only ``feed`` let through; ingestd SIGKILLs itself at the named ``point``."""
        self.gates.reset()
        self.gates.hold(*(f"{f.name}:feed" for f in FEEDS if f.name != feed))
        process = self.ws.spawn(reset=False, crash_at=point)
        self.tally.runs += 1
        code = process.wait(timeout=60)
        assert code == -signal.SIGKILL, f"ingestd never reached {point} (exit {code})"
        if process.stdout is not None:
            process.stdout.close()
        _reap_group(process.pid)
        self.tally.kills[f"named point {point.split('@')[0]}"] += 1
        return check_after_kill(self.ws, self.tally)

    def timed(self, low: float, high: float) -> None:
        """Kill at a seeded random moment: anywhere in start-up, parsing, writes, commits."""
        process = self.ws.spawn()
        self.tally.runs += 1
        delay = self.rng.uniform(low, high)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            self._kill(process, f"timed ({'start-up' if high < 0.7 else 'running'})")
        else:
            check_after_kill(self.ws, self.tally)  # it finished first: not a kill point


def test_sigkill_at_many_points_then_restart_loses_and_doubles_nothing(
    tmp_path: Path, database_url: str, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    tally = Tally()
    with LoopbackServer() as server:
        farm = FeedFarm(server)
        ws = Workspace(tmp_path, farm, database_url)
        crash = Crasher(ws, tally, random.Random(20240305))
        archived: dict[str, bytes] = {}

        farm.grow(a=40, b=150, c=40)
        # b's first poll writes 150 files in its pool step: at most one batch may wait.
        first = crash.at_point("first-poll-written", "b")
        assert len(first) <= BATCH
        crash.at_point("batch-synced@2", "b")  # its second batch, before the commit
        crash.at_point("batch-committed", "a")
        crash.at_point("raw-half-written@3", "a")  # mid-record: the next start cuts it
        crash.timed(0.1, 0.6)
        crash.held_requests()
        crash.after_commits("a", 6)
        crash.file_without_row("a", 2)
        crash.temporary_file("a")
        crash.after_commits("c", 4)
        crash.file_without_row("c", 0)
        crash.temporary_file("c")
        crash.file_without_row("b", 0)
        crash.temporary_file("b")
        crash.timed(0.8, 1.6)
        crash.finish()
        archived = check_complete(ws, tally, archived)

        farm.grow(a=55, b=200, c=52)
        crash.at_point("batch-synced", "c")
        crash.at_point("raw-half-written", "c")
        crash.file_without_row("a", 0)
        crash.file_without_row("a", 0)  # the same file number orphaned twice
        crash.after_commits("a", 3)
        crash.temporary_file("a", 1)
        crash.file_without_row("b", 0)
        crash.after_last("c")
        crash.timed(0.8, 1.6)
        crash.finish()
        archived = check_complete(ws, tally, archived)

        farm.grow(a=68, b=260, c=64)
        crash.temporary_file("b")
        crash.after_commits("c", 2)
        crash.file_without_row("c", 1)
        crash.timed(0.1, 0.6)
        crash.timed(0.8, 1.4)
        crash.timed(0.8, 1.4)
        crash.finish()
        archived = check_complete(ws, tally, archived)

    kills = sum(tally.kills.values())
    assert kills >= 24
    assert tally.kills["file written, row not committed"] >= 5
    assert tally.kills["named point first-poll-written"] == 1
    assert len(tally.orphans_seen) >= 5
    assert tally.half_records_seen >= 2 and tally.raw_records_read > 100
    summary = tally.line() + f"; {time.monotonic() - started:.1f} s"
    print(summary)
    record_property("crash_counts", summary)


# --- the parse pool after a kill ---------------------------------------------------------


def test_killed_ingestd_leaves_no_processes(tmp_path: Path, database_url: str) -> None:
    """With enough feeds for the parse pool, SIGKILL of ingestd takes its workers along."""
    release = threading.Event()
    names = [f"p{i}" for i in range(4)]  # at least runtime.POOL_THRESHOLD feeds
    with LoopbackServer() as server:

        def page(_request: Request) -> Response:
            release.wait(30)
            return Response(200, {"Content-Type": "text/html"}, b"<p>late</p>")

        for name in names:
            server.route(f"/{name}/page", page)
            server.route(
                f"/{name}.xml",
                (
                    200,
                    {"Content-Type": "application/rss+xml"},
                    rss(item(name, server.url(f"/{name}/page"), guid=name)),
                ),
            )
        config = tmp_path / "ingestd.toml"
        config.write_text(
            f'database = "{database_url}"\narchive_dir = "archive"\n[fetch]\n'
            'allow_private = ["127.0.0.1"]\n'
            + "".join(feed_toml(n, server.url(f"/{n}.xml")) + "fetch_page = true\n" for n in names),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "ingestd", "fetch", "--config", str(config)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # Every feed parsed (in the pool) and waiting for its page.
            assert server.wait_until(lambda s: s.in_flight >= len(names), timeout=30)
            assert len(_group_members(process.pid)) > 2, "expected parse-pool processes"
            process.kill()
            process.wait(timeout=10)
            deadline = time.monotonic() + 15
            while _group_members(process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = _group_members(process.pid)
        finally:
            release.set()
            if _group_members(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
        assert left == [], f"processes outlived a killed ingestd: {left}"


# --- a full disk -------------------------------------------------------------------------


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted on ``folder``; skip when mounting is not allowed."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def run_fetch(config: Path) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ingestd", "fetch", "--config", str(config), "--json"],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def table(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("on_disk", ["archive", "archive+database"])
def test_disk_full_fails_clearly_corrupts_nothing_and_recovers(
    tmp_path: Path, on_disk: str
) -> None:
    """The disk holding the archive (and the database) fills up, then space comes back.

    Method: a real tmpfs of 16 MiB mounted for the test (``mount -t tmpfs -o size=16m``),
    so writes fail with ENOSPC exactly as on a full disk (not RLIMIT_FSIZE's EFBIG);
    a filler file leaves too little room for the run. Skipped where mounting is not
    permitted.
    """
    body = "<p>" + "archived text " * 600 + "</p>"  # about 8 KB per file
    with LoopbackServer() as server, small_disk(tmp_path / "disk", "16m") as disk:
        offered = 12

        def feed(_request: Request) -> Response:
            items = "".join(
                item(f"entry {i}", f"http://x.example/{i}", guid=f"g{i}", content=body)
                for i in range(offered)
            )
            return Response(200, {"Content-Type": "application/rss+xml"}, rss(items))

        server.route("/feed.xml", feed)
        state = disk if on_disk == "archive+database" else tmp_path
        config = tmp_path / "ingestd.toml"
        config.write_text(
            f'database = "sqlite:///{state / "state.db"}"\narchive_dir = "{disk / "archive"}"\n'
            '[fetch]\nallow_private = ["127.0.0.1"]\n' + feed_toml("full", server.url("/feed.xml")),
            encoding="utf-8",
        )
        code, out, err, _ = run_fetch(config)
        assert code == 0, err
        # Fill the disk, leaving room for a few files only.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        filler.write_bytes(b"\0" * max(free - 40_000, 0))
        offered = 150

        code, out, err, _ = run_fetch(config)
        report = out + err
        assert code == 1
        if on_disk == "archive":  # the feed fails, says why, and the run goes on
            assert "No space left on device" in json.loads(out)["errors"][0]["error"], report
            errors = table(state / "state.db", "SELECT last_error FROM feeds")
            assert "No space left on device" in str(errors[0][0])
        else:  # the database itself cannot grow: the run stops with one clear line
            assert "database or disk is full" in err, report
        assert "Traceback" not in err, err
        assert_archive_consistent(disk / "archive", state / "state.db")
        written = len(list((disk / "archive" / "articles" / "full").iterdir()))
        assert written < offered  # the disk really ran out

        filler.unlink()  # space is back
        code, out, err, _ = run_fetch(config)
        assert code == 0, out + err
        assert json.loads(out)["archived"] == offered - written
        names = assert_archive_consistent(disk / "archive", state / "state.db")
        assert len(names) == offered
        links = [row[0] for row in table(state / "state.db", "SELECT link FROM entries")]
        assert sorted(links) == sorted(f"http://x.example/{i}" for i in range(offered))


def assert_archive_consistent(archive: Path, db: Path) -> set[str]:
    """No temporaries, every file complete, rows and files one to one; returns the files."""
    assert not list(archive.rglob(f"{TEMP_MARK}*")), "temporary files left behind"
    files = {p.relative_to(archive).as_posix(): p for p in (archive / "articles").rglob("*.md")}
    for path in files.values():
        format_a.parse(path.read_text(encoding="utf-8"))  # raises on a partial file
    rows = {row[0] for row in table(db, "SELECT archive_path FROM entries")}
    assert rows == set(files), (sorted(rows - set(files))[:3], sorted(set(files) - rows)[:3])
    return set(files)


# --- a locked database -------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_database_locked_by_another_process_waits_then_fails_clearly(tmp_path: Path) -> None:
    """Another process holds SQLite's exclusive lock: ingestd waits, then says so."""
    with LoopbackServer() as server:
        server.route(
            "/feed.xml",
            (
                200,
                {"Content-Type": "application/rss+xml"},
                rss(item("one", "http://x.example/1", guid="1")),
            ),
        )
        config = tmp_path / "ingestd.toml"
        config.write_text(
            'database = "sqlite:///state.db"\narchive_dir = "archive"\n[fetch]\n'
            'allow_private = ["127.0.0.1"]\n' + feed_toml("f", server.url("/feed.xml")),
            encoding="utf-8",
        )
        assert run_fetch(config)[0] == 0
        server.route(
            "/feed.xml",
            (
                200,
                {"Content-Type": "application/rss+xml"},
                rss(
                    item("one", "http://x.example/1", guid="1")
                    + item("two", "http://x.example/2", guid="2")
                ),
            ),
        )
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "db.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n",
                str(tmp_path / "state.db"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            code, out, err, took = run_fetch(config)
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=10)
        assert code == 1
        assert "database is locked" in err and str(tmp_path / "state.db") in err, err
        assert "Traceback" not in err, err
        assert took >= DEFAULT_BUSY_TIMEOUT_MS / 1000 * 0.9, "it should wait for the lock"
        assert table(tmp_path / "state.db", "SELECT count(*) FROM entries") == [(1,)]
        assert_archive_consistent(tmp_path / "archive", tmp_path / "state.db")

        code, out, err, _ = run_fetch(config)  # the lock is gone: the missed entry comes
        assert code == 0, err
        assert json.loads(out)["archived"] == 1
        assert len(assert_archive_consistent(tmp_path / "archive", tmp_path / "state.db")) == 2
