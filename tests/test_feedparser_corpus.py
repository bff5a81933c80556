"""feedparser's own test feeds (``corpus/feedparser-tests``) through ingestd's parse stage.

Every file (well-formed, ill-formed, encoding, entities, json) goes through
``ingestd.parse.parse_feed`` with the HTTP headers its ``Header:`` lines declare (the way
feedparser's harness serves its ``http`` files); the well-formed ones then go on through
format A (``from_item`` + ``render``, and back through ``parse``). Nothing may raise
anything but ParseError, and no file may take long (a CPU-time alarm per file).

Each file states an expectation (``Expect:``, a Python expression over feedparser's
result). Where it only talks about what ingestd's records carry (the feed's title and
link; entries' title, link, id, summary/description, published date; bozo; the number of
entries), it is evaluated against an adapter built from ingestd's ParsedFeed. It must
hold, unless feedparser itself gives the same "no" with the options ingestd parses with
(HTML sanitizing and relative-URI resolution off, since ingestd sanitizes with nh3 and
resolves links against the feed URL; and bytes without the request URL the harness had).
Counts are printed (``-rA`` or ``-s``).
"""

from __future__ import annotations

import ast
import mimetypes
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import feedparser
import pytest

from ingestd.errors import ParseError
from ingestd.formats import feed as format_a
from ingestd.parse import parse_feed
from ingestd.types import ParsedFeed
from tests.conftest import require_corpus

pytestmark = pytest.mark.corpus

EXPECTED_FILES = 2107
CPU_SECONDS_PER_FILE = 5.0
_HEADER = re.compile(r"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
_EXPECT = re.compile(r"Description:\s*(.*?)\s*Expect:\s*(.*?)\s*-->", re.DOTALL)
# Byte patterns of non-ASCII-compatible encodings, as feedparser's harness reads them.
_ENCODINGS = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4),
    (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00<\x00?", "utf-16-be", 0),
    (b"<\x00?\x00", "utf-16-le", 0),
    (b"\xfe\xff", "utf-16-be", 2),
    (b"\xff\xfe", "utf-16-le", 2),
    (b"\xef\xbb\xbf", "utf-8", 3),
    (b"\x4c\x6f\xa7\x94", "cp037", 0),
)
_FEED_KEYS = frozenset({"title", "link"})
_ENTRY_KEYS = frozenset(
    {"title", "link", "id", "guid", "summary", "description", "published_parsed"}
)
_NAMES = frozenset({"feed", "entries", "bozo", "len", "True", "False", "None"})


@dataclass(frozen=True)
class Case:
    """One feedparser test file."""

    path: Path
    group: str  # wellformed, illformed, encoding, entities, json
    data: bytes
    headers: dict[str, str]
    expect: str | None


def load_cases(root: Path) -> list[Case]:
    cases = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".xml", ".json"):
            continue
        data = path.read_bytes()
        text = _readable(data)
        headers = {k.strip(): v.strip() for k, v in _HEADER.findall(text)}
        if "http" in path.name and "Content-type" not in headers:
            headers["Content-type"] = mimetypes.guess_type(path.name)[0] or "application/xml"
        found = _EXPECT.search(text)
        group = path.relative_to(root).parts[0]
        cases.append(Case(path, group, data, headers, found.group(2) if found else None))
    return cases


def _readable(data: bytes) -> str:
    """The file as text, to read its header comment (whatever encoding it tests)."""
    for mark, codec, skip in _ENCODINGS:
        if data.startswith(mark):
            return data[skip:].decode(codec, errors="replace")
    return data.decode("utf-8", errors="replace")


class _TooSlow(BaseException):
    """Raised by the CPU-time alarm; a BaseException so no `except Exception` eats it."""


@contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of CPU time (SIGVTALRM; pytest-timeout keeps
    SIGALRM)."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGVTALRM, expired)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(require_corpus("feedparser-tests"))


def test_every_file_parses_and_renders_without_crash_or_hang(cases: list[Case]) -> None:
    started = time.monotonic()
    crashes: list[str] = []
    slow: list[str] = []
    not_feeds: Counter[str] = Counter()
    parsed = rendered = 0
    slowest = 0.0
    for case in cases:
        clock = time.monotonic()
        try:
            with cpu_limit(CPU_SECONDS_PER_FILE):
                result = parse_feed(case.data, case.headers)
                parsed += 1
                if case.group == "wellformed":
                    rendered += _render_all(result)
        except ParseError:
            not_feeds[case.group] += 1
        except _TooSlow:
            slow.append(str(case.path))
        except Exception as exc:  # the point of the test: nothing else may escape
            crashes.append(f"{case.path}: {type(exc).__name__}: {exc}")
        slowest = max(slowest, time.monotonic() - clock)
    summary = (
        f"feedparser corpus: {len(cases)} files, {parsed} parsed, "
        f"{sum(not_feeds.values())} refused as not a feed ({dict(not_feeds)}), "
        f"{rendered} well-formed entries rendered to format A and read back, "
        f"{len(crashes)} crashes, {len(slow)} over {CPU_SECONDS_PER_FILE:.0f} s of CPU; "
        f"slowest file {slowest:.2f} s; {time.monotonic() - started:.1f} s"
    )
    print(summary)
    assert len(cases) == EXPECTED_FILES
    assert crashes == [], "\n".join(crashes[:20])
    assert slow == []
    assert not_feeds["entities"] == not_feeds["encoding"] == 0


def _render_all(result: ParsedFeed) -> int:
    for entry in result.entries:
        doc = format_a.from_item(entry.title, entry.link, entry.content, entry.published)
        text = format_a.render(doc)
        assert format_a.parse(text) == doc, f"format A does not read back: {text[:200]!r}"
    return len(result.entries)


# --- the files' own expectations -----------------------------------------------------------


class _Record(dict[str, Any]):
    """A dict that also answers attribute access, as feedparser's results do."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def adapter(result: ParsedFeed) -> dict[str, Any]:
    """ingestd's ParsedFeed in the shape the expectations read (absent when empty)."""
    feed = _Record({k: v for k, v in (("title", result.title), ("link", result.link)) if v})
    entries = []
    for entry in result.entries:
        record = _Record()
        if entry.title:
            record["title"] = entry.title
        if entry.link:
            record["link"] = entry.link
        if entry.guid:
            record["id"] = record["guid"] = entry.guid
        if entry.summary:
            record["summary"] = record["description"] = entry.summary
        if entry.published is not None:
            record["published_parsed"] = entry.published.utctimetuple()
        entries.append(record)
    return {"feed": feed, "entries": entries, "bozo": 1 if result.bozo else 0}


def applies(expression: ast.Expression) -> bool:
    """True when the expectation reads only what ingestd's records carry."""
    used = False
    for node in ast.walk(expression):
        if isinstance(node, ast.Name) and node.id not in _NAMES:
            return False
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id == "len"
        ):
            return False
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ):
            return False  # "key in record": absence is not something ingestd records
        if isinstance(node, ast.Subscript | ast.Attribute):
            scope = _scope(node.value)
            if scope is None:
                continue
            key = node.attr if isinstance(node, ast.Attribute) else _constant(node.slice)
            if key not in (_FEED_KEYS if scope == "feed" else _ENTRY_KEYS):
                return False
            used = True
    return used


def _scope(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name) and node.id == "feed":
        return "feed"
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "entries"
    ):
        return "entry"
    return None


def _constant(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _holds(expression: ast.Expression, env: dict[str, Any]) -> bool:
    try:
        code = compile(expression, "<expect>", "eval")
        return bool(eval(code, {"__builtins__": {"len": len}}, env))  # noqa: S307
    except (LookupError, AttributeError, TypeError):
        return False


def test_expectations_about_carried_fields_hold_in_ingestd_records(cases: list[Case]) -> None:
    counts: Counter[str] = Counter()
    disagree: list[str] = []
    for case in cases:
        if case.expect is None:
            counts["without an expectation"] += 1
            continue
        expression = ast.parse(case.expect.strip(), mode="eval")
        if not applies(expression):
            counts["about fields ingestd does not carry"] += 1
            continue
        try:
            result = parse_feed(case.data, case.headers)
        except ParseError:
            counts["not a feed to ingestd"] += 1
            continue
        counts["checked"] += 1
        if _holds(expression, adapter(result)):
            counts["held"] += 1
            continue
        reference = feedparser.parse(
            case.data,
            response_headers=case.headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        if _holds(expression, dict(reference)):
            disagree.append(f"{case.path}: {case.expect[:160]}")
        else:
            counts["differ only by ingestd's parse options"] += 1
    print(f"feedparser expectations: {dict(counts)}; {len(disagree)} disagreements")
    assert disagree == [], "\n".join(disagree[:20])
    assert counts["checked"] >= 1000
    assert counts["held"] >= 650
