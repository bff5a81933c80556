"""The hostile-suite harness: run ``ingestd fetch`` in a child process and check the damage.

Every attack test calls ``harness.run(*feeds, seconds=..., memory_mb=...)``. It writes a
configuration holding the hostile feeds plus a healthy control feed, runs
``python -m ingestd fetch --config ... --json`` in a child process with its own empty
working and temporary folders, started through ``measure.py``, which reaps it with
``os.wait4`` to read its own peak resident memory, and then asserts what must hold
after every attack:

- the child never tried to connect beyond loopback: ``tripwire/sitecustomize.py``
  refuses such a connection before any packet leaves and marks stderr, so the suite
  stays on this machine even when the network guard under test is broken;

- the run finished within ``seconds`` (wall time, start-up included) and exited 0 or 1
  with JSON on stdout and no traceback on stderr;
- the child's peak RSS stayed under ``memory_mb``;
- the control feed archived its entry and recorded no error;
- every archived file is UTF-8 and reads back as its format (``parse_any``);
- no file exists under the test's folder except the configuration, the database (on
  SQLite; the suite's ``database_url``, PostgreSQL with ``--db=postgresql``) and
  well-formed archive files (``articles/<feed>/<id>.md``, safe names, no temporaries);
  the working and temporary folders stay empty;
- no archived file of a sanitizing feed holds active content (an independent check,
  not ``ingestd.sanitize``);
- no connection reached a trap (127.0.0.2, ::1, and a 127.0.0.1 port reached as
  ``localhost``);
- the secret of the local secret file, ``/etc/passwd``'s first line and the traps'
  bait appear nowhere: not in the archive, the database (its files, or its rows on
  PostgreSQL), stdout or stderr.

The attack-specific outcome (the error a person reads, counts, what the server saw)
is asserted by each test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from lxml import etree

from ingestd.cli.report import status_rows
from ingestd.formats import parse_any, render_any
from ingestd.store import FeedRecord, open_store
from tests.conftest import REPO
from tests.db import dump, is_sqlite, sqlite_path
from tests.hostile.server import TRAP_MARK, HostileServer
from tests.storehelp import feed_named

CONTROL = "control"
TRIPWIRE = Path(__file__).parent / "tripwire"  # its sitecustomize refuses non-loopback connects
TRIPWIRE_MARK = "TRIPWIRE: refused a connection to "
MEASURE = Path(__file__).parent / "measure.py"  # reports the child's own peak RSS
CONTROL_TITLE = "control entry"
ARCHIVE_NAME = re.compile(r"(?P<id>\d+)(_[^/]+)?\.md")
_RAW_NAME = re.compile(r"ingestd-\d{14}-\d+-\d{5}\.warc\.gz")  # raw capture's files
WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM\d|LPT\d)(\..*)?", re.I)
#: Things that can run in a browser or a markdown viewer, however the file is shown.
ACTIVE_TEXT = re.compile(
    r"<\s*/?\s*(script|style|iframe|frame|frameset|object|embed|applet|form|input|button"
    r"|textarea|select|base|meta|link|svg|math|template)\b"
    r"|<[^>]*\son[a-z]+\s*="
    r"|(javascript|vbscript|livescript)\s*:"
    r"|data\s*:\s*text/html"
    r"|behavior\s*:|expression\s*\(",
    re.IGNORECASE,
)
ACTIVE_TAGS = {
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "meta",
    "link",
}


def passwd_marker() -> str | None:
    """The first line of /etc/passwd, which must never show up in the archive."""
    try:
        first = Path("/etc/passwd").read_text(encoding="utf-8", errors="replace").split("\n")[0]
    except OSError:
        return None
    return first or None


@dataclass(frozen=True)
class Feed:
    """One ``[[feeds]]`` table: name, URL and extra keys (strings or booleans)."""

    name: str
    url: str
    options: dict[str, str | bool] = field(default_factory=dict)

    def toml(self) -> str:
        lines = ["[[feeds]]", f"name = {json.dumps(self.name)}", f"url = {json.dumps(self.url)}"]
        for key, value in self.options.items():
            rendered = (
                ("true" if value else "false")
                if isinstance(value, bool)
                else json.dumps(value, ensure_ascii=False)
            )
            lines.append(f"{key} = {rendered}")
        return "\n".join(lines) + "\n"

    @property
    def sanitizing(self) -> bool:
        return self.options.get("sanitize", True) is not False


def hostile_feed(name: str, url: str, **options: str | bool) -> Feed:
    """A feed whose own URL is on loopback: trusted per feed (``allow_private = true``)."""
    return Feed(name, url, {"allow_private": True, **options})


@dataclass(frozen=True)
class Run:
    """What one ``ingestd fetch`` child did."""

    code: int
    summary: dict[str, Any]
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float

    def error_of(self, feed: str) -> str:
        """The error ``ingestd fetch --json`` reported for ``feed`` (fails if none)."""
        errors = [e["error"] for e in self.summary["errors"] if e["feed"] == feed]
        assert errors, f"no error reported for {feed}: {self.summary}"
        return str(errors[0])


class Harness:
    """Runs ingestd against the hostile server inside one test's folder."""

    def __init__(self, tmp_path: Path, hostile: HostileServer, database_url: str) -> None:
        self.tmp = tmp_path
        self.hostile = hostile
        self.work = tmp_path / "jail" / "work"
        self.cwd = tmp_path / "jail" / "cwd"
        self.tempdir = tmp_path / "jail" / "tmp"
        for folder in (self.work, self.cwd, self.tempdir):
            folder.mkdir(parents=True)
        self.config = self.work / "ingestd.toml"
        self.archive = self.work / "archive"
        self.database_url = database_url
        #: The SQLite files ingestd may create (none on PostgreSQL).
        self.database_files: set[Path] = set()
        if is_sqlite(database_url):
            path = sqlite_path(database_url)
            self.database_files = {
                path,
                *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")),
            }
        self.feeds: list[Feed] = []

    # --- running ---

    def write_config(self, feeds: list[Feed], allow_private: tuple[str, ...] = ()) -> None:
        control = hostile_feed(CONTROL, self.hostile.url("/control.xml"))
        self.feeds = [*feeds, control]
        assert len(self.feeds) < 4, "keep runs under 4 feeds: parsing then stays in-process"
        allow = json.dumps(list(allow_private))
        self.config.write_text(
            f'database = "{self.database_url}"\narchive_dir = "archive"\n'
            f"[fetch]\ntimeout = 3\nconnect_timeout = 2\nallow_private = {allow}\n"
            + "".join(f.toml() for f in self.feeds),
            encoding="utf-8",
        )

    def run(
        self, *feeds: Feed, seconds: float, memory_mb: float, allow_private: tuple[str, ...] = ()
    ) -> Run:
        """Run ``ingestd fetch`` once over ``feeds`` plus the control feed; check the bounds."""
        self.write_config(list(feeds), allow_private)
        run = self._spawn(seconds)
        assert run.seconds <= seconds, f"took {run.seconds:.1f} s, bound {seconds} s"
        assert run.peak_mb <= memory_mb, f"peak RSS {run.peak_mb:.0f} MB, bound {memory_mb} MB"
        self.check_invariants(run)
        print(
            f"ingestd fetch: {run.seconds:.1f} s (bound {seconds:g}), peak RSS "
            f"{run.peak_mb:.0f} MB (bound {memory_mb:g})"
        )
        return run

    def _spawn(self, seconds: float) -> Run:
        env = {
            **os.environ,
            "TMPDIR": str(self.tempdir),
            "HOME": str(self.cwd),
            "PYTHONPATH": os.pathsep.join([str(TRIPWIRE), str(REPO)]),
            "INGESTD_TEST_TRIPWIRE": "1",
        }
        jail = self.work.parent
        out, err, report = jail / "stdout", jail / "stderr", jail / "rusage.json"
        command = [sys.executable, "-m", "ingestd", "fetch", "--config", str(self.config), "--json"]
        started = time.monotonic()
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            launcher = subprocess.Popen(
                [sys.executable, str(MEASURE), str(report), "--", *command],
                cwd=self.cwd,
                env=env,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            # A run that overstays its bound is killed a little later so the test fails fast.
            killer = threading.Timer(seconds + 10, os.killpg, (launcher.pid, signal.SIGKILL))
            killer.start()
            try:
                launcher.wait()
            finally:
                killer.cancel()
        elapsed = time.monotonic() - started
        stdout_text = out.read_text(encoding="utf-8", errors="replace")
        stderr_text = err.read_text(encoding="utf-8", errors="replace")
        measured = (
            json.loads(report.read_text())
            if report.exists()
            else {"exit": launcher.returncode, "maxrss_kib": 0}
        )
        for path in (out, err, report):
            path.unlink(missing_ok=True)
        code = int(measured["exit"])
        assert code in (0, 1), f"exit {code} after {elapsed:.1f} s\n{stderr_text[-3000:]}"
        assert TRIPWIRE_MARK not in stderr_text, (
            f"ingestd tried to leave loopback (the tripwire stopped it):\n{stderr_text[-3000:]}"
        )
        assert "Traceback" not in stderr_text, stderr_text[-3000:]
        return Run(
            code,
            json.loads(stdout_text),
            stdout_text,
            stderr_text,
            elapsed,
            measured["maxrss_kib"] / 1024,
        )  # ru_maxrss is in KiB on Linux

    # --- reading the outcome ---

    def status(self, name: str) -> dict[str, Any]:
        """The feed's row exactly as ``ingestd status --json`` prints it."""
        with open_store(self.database_url) as store:
            rows = {row["name"]: row for row in status_rows(store, datetime.now(UTC))}
        return rows[name]

    def record(self, name: str) -> FeedRecord:
        with open_store(self.database_url) as store:
            feed = feed_named(store, name)
        assert feed is not None
        return feed

    def recorded_error(self, run: Run, name: str) -> str:
        """The feed failed, and status shows the same readable error fetch reported."""
        row = self.status(name)
        reported = run.error_of(name)
        assert row["last_error"] == reported
        assert row["consecutive_errors"] == 1 and row["state"].startswith(
            ("failing since", "disabled")
        )
        assert row["entries"] == 0
        assert not self.files(name)
        _assert_readable(reported)
        return reported

    def files(self, feed: str) -> list[Path]:
        folder = self.archive / "articles" / feed
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def texts(self, feed: str) -> list[str]:
        return [p.read_text(encoding="utf-8") for p in self.files(feed)]

    # --- the invariants of every attack ---

    def check_invariants(self, run: Run) -> None:
        self._check_control(run)
        self._check_containment()
        self._check_read_back()
        self._check_active_content()
        assert self.hostile.trap_hits() == 0, "a request reached a refused address"
        self._check_leaks(run)

    def _check_control(self, run: Run) -> None:
        assert not [e for e in run.summary["errors"] if e["feed"] == CONTROL], run.summary
        [text] = self.texts(CONTROL)
        assert f"[{CONTROL_TITLE}](http://control.example/1)" in text
        row = self.status(CONTROL)
        assert (row["last_error"], row["entries"], row["last_status"]) == (None, 1, 200)

    def _check_containment(self) -> None:
        allowed = {self.config, self.work / "archive" / ".ingestd-archive-id", *self.database_files}
        secret = self.hostile.secret_file
        names = {f.name for f in self.feeds}
        for path in self.tmp.rglob("*"):
            if path.is_dir() or path in allowed or path == secret:
                continue
            relative = path.relative_to(self.work) if path.is_relative_to(self.work) else path
            parts = relative.parts
            if parts[:2] == ("archive", "raw"):  # raw capture: WARC files named by ingestd
                assert len(parts) == 6 and _RAW_NAME.fullmatch(parts[5]), f"unexpected {path}"
                continue
            if parts[:2] == ("archive", "lists") and len(parts) == 3:
                # A feed's site index: lists/{feed}.md, named after a configured feed.
                assert parts[2].removesuffix(".md") in names, f"index of no feed: {path}"
                continue
            assert len(parts) == 4 and parts[:2] == ("archive", "articles"), (
                f"unexpected file {path}"
            )
            assert parts[2] in names, f"file in an unknown feed folder: {path}"
            _assert_safe_name(parts[3])
        assert not any(self.cwd.iterdir()), "files written to the working folder"
        assert not any(self.tempdir.iterdir()), "files left in the temporary folder"

    def _check_read_back(self) -> None:
        """Every archived file is valid UTF-8 and reads back as its format, byte for byte."""
        for feed in self.feeds:
            for path in self.files(feed.name):
                text = path.read_bytes().decode("utf-8")
                assert render_any(parse_any(text)) == text, f"{path} does not read back"

    def _check_active_content(self) -> None:
        for feed in self.feeds:
            if not feed.sanitizing:
                continue
            for path, text in zip(self.files(feed.name), self.texts(feed.name), strict=True):
                assert not ACTIVE_TEXT.search(text), f"active content kept in {path}:\n{text}"
                _assert_no_active_elements(path, text)

    def _check_leaks(self, run: Run) -> None:
        needles = [self.hostile.secret, TRAP_MARK]
        marker = passwd_marker()
        if marker:
            needles.append(marker)
        blobs: dict[str, bytes] = {
            "stdout": run.stdout.encode(),
            "stderr": run.stderr.encode(),
            "the database": dump(self.database_url),
        }
        for path in self.work.rglob("*"):
            if path.is_file() and path != self.config:
                blobs[str(path)] = path.read_bytes()
        for where, blob in blobs.items():
            for needle in needles:
                assert needle.encode() not in blob, f"{needle!r} leaked into {where}"


def _assert_readable(message: str) -> None:
    """An error a person understands: one line, plain words, no Python internals."""
    assert message and "\n" not in message and len(message) < 500, message
    words = re.sub(r"\S+://\S+", "", message)  # what is left beside the URL
    assert re.search(r"[A-Za-z]{4,}", words), message
    for internal in ("Traceback", "Error(", "Exception(", "object at 0x", "errno"):
        assert internal not in message, message


def _assert_safe_name(name: str) -> None:
    assert ARCHIVE_NAME.fullmatch(name), name
    assert not name.startswith(".") and len(name.encode()) <= 255, name
    assert not re.search(r'[\x00-\x1f\x7f/\\:*?"<>|]', name), name
    assert not WINDOWS_RESERVED.fullmatch(name.rsplit(".", 1)[0]), name


def _assert_no_active_elements(path: Path, text: str) -> None:
    """Parse the file as HTML (format A's content is HTML) and look at every element."""
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError):
        return  # nothing parseable: the regular expression check already covered it
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in ACTIVE_TAGS, f"<{element.tag}> kept in {path}"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{name}= kept in {path}"
            assert not re.match(r"\s*(javascript|vbscript)", value or "", re.I), (
                f"{name}={value!r} kept in {path}"
            )


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[HostileServer]:
    """The hostile server, with a secret file outside the test's ingestd folder."""
    secret = f"SECRET-{secrets.token_hex(12)}"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(f"{secret}\n", encoding="utf-8")
    with HostileServer(secret_file, secret) as server:
        yield server


@pytest.fixture
def harness(tmp_path: Path, hostile: HostileServer, database_url: str) -> Harness:
    return Harness(tmp_path, hostile, database_url)
