"""Feed bytes + response headers -> ParsedFeed, with feedparser. Pure: no I/O.

feedparser is run with HTML sanitizing and relative-URI resolution off: format A
passes item HTML through byte for byte, and sanitizing is ingestd's own explicit
step (nh3). Anything feedparser raises becomes ParseError here.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from ingestd.errors import ParseError
from ingestd.types import EntryData, ParsedFeed

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LATIN_FALLBACKS = ("windows-1252", "iso-8859-2")
_XML_DECLARATION = re.compile(r"\s*<\?xml[^>]*\?>")
_UTF8_XML = "application/xml; charset=utf-8"


def parse_feed(content: bytes, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse an RSS/Atom document; a bozo feed keeps the entries it yielded."""
    result = _feedparser(content, dict(headers or {}))
    bozo = _bozo_message(result)
    chinese = _chinese_text(content, dict(headers or {}), result)
    if chinese is not None:
        codec, text = chinese
        result = _feedparser(_as_utf8_document(text), {"content-type": _UTF8_XML})
        bozo = f"the declared encoding does not fit the bytes; parsed as {codec}"
    if not result.get("version") and not result.entries:
        raise ParseError(_not_a_feed(content, headers or {}, bozo))
    feed = result.feed
    return ParsedFeed(
        title=str(feed.get("title", "")),
        link=str(feed.get("link", "")),
        entries=tuple(_entry(e) for e in result.entries),
        bozo=bozo,
        ttl_minutes=_int_or_none(feed.get("ttl")),
        skip_hours=_skip_hours(content),
        skip_days=_skip_days(content),
    )


def _feedparser(content: bytes, headers: dict[str, str]) -> Any:
    try:
        return feedparser.parse(
            content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser is not supposed to raise; wrap if it does
        raise ParseError(f"feed parser failed: {exc}") from exc


def _chinese_text(content: bytes, headers: dict[str, str], result: Any) -> tuple[str, str] | None:
    """A GBK or Big5 feed that feedparser fell back to a Latin codec for, decoded.

    When the declared charset lies, feedparser asks chardet, which says GB2312 for
    GBK text; one character outside GB2312 (traditional forms, many names) then
    fails it, and everything decodes as windows-1252 mojibake. The supersets
    decode such bytes strictly, while most Latin text does not fit them. A feed
    that itself declares the Latin codec is taken at its word.
    """
    used = str(result.get("encoding", "")).lower()
    if used not in _LATIN_FALLBACKS or used in _declared_charsets(content, headers):
        return None
    for codec in ("gb18030", "big5hkscs"):
        try:
            return codec, content.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _declared_charsets(content: bytes, headers: dict[str, str]) -> set[str]:
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    found = re.findall(r"charset\s*=\s*[\"']?([\w.:-]+)", ctype, re.I)
    declaration = re.match(rb"\s*<\?xml[^>]*encoding\s*=\s*[\"']([\w.:-]+)", content)
    if declaration:
        found.append(declaration.group(1).decode("ascii"))
    return {name.lower() for name in found}


def _as_utf8_document(text: str) -> bytes:
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        text = '<?xml version="1.0" encoding="utf-8"?>' + text[declaration.end() :]
    return text.encode("utf-8")


def _not_a_feed(content: bytes, headers: Mapping[str, str], bozo: str | None) -> str:
    head = content[:512].lstrip().lower()
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if not content.strip():
        return "empty response: the server sent no feed"
    if b"<html" in head or b"<!doctype html" in head or "html" in ctype:
        return f"the server sent an HTML page, not an RSS or Atom feed ({ctype or 'no type'})"
    return f"not an RSS or Atom feed: {bozo or 'no feed elements found'}{_beginning(content)}"


def _beginning(content: bytes) -> str:
    """``; it begins with '...'``: the first words, when the document is readable text."""
    text = " ".join(content[:200].decode("utf-8", "replace").split())[:40]
    if not text or not text.isprintable() or "\ufffd" in text:
        return ""
    return f"; it begins with {text!r}"


def _entry(entry: Any) -> EntryData:
    # XML has no NUL; feedparser's lenient parser passes one through, and PostgreSQL
    # refuses it in text columns (the feed would then fail on every poll).
    return EntryData(
        title=_no_nul(str(entry.get("title", ""))),
        link=_no_nul(str(entry.get("link", ""))),
        guid=_no_nul(str(entry.get("id") or "")) or None,
        content=_no_nul(_content(entry)),
        published=_published(entry),
        summary=_no_nul(str(entry.get("summary", ""))),
    )


def _no_nul(text: str) -> str:
    return text.replace("\x00", "")


def _content(entry: Any) -> str:
    # content:encoded / Atom content first, then description / summary.
    for item in entry.get("content") or ():
        value = item.get("value")
        if value:
            return str(value)
    return str(entry.get("summary", "") or entry.get("description", ""))


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)


def _bozo_message(result: Any) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if exc is None:
        return "malformed feed"
    if isinstance(exc, SAXParseException):
        # Its own text is "<unknown>:2:0: syntax error": say what it means instead.
        where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        return f"the document is not well-formed XML ({where}: {exc.getMessage()})"
    return f"{type(exc).__name__}: {exc}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _skip_values(content: bytes, block: bytes, item: bytes) -> list[str]:
    # feedparser does not expose RSS skipHours/skipDays; they are simple enough
    # to read with a bounded regular expression (no XML parser, no entities).
    found = re.search(rb"<" + block + rb">(.{0,2000}?)</" + block + rb">", content, re.S)
    if found is None:
        return []
    pattern = rb"<" + item + rb">\s*([^<]{1,20}?)\s*</" + item + rb">"
    return [v.decode("ascii", "ignore") for v in re.findall(pattern, found.group(1))]


def _skip_hours(content: bytes) -> frozenset[int]:
    # RSS 2.0 says 0-23 in GMT; some feeds write 24 for midnight.
    values = _skip_values(content, b"skipHours", b"hour")
    return frozenset(int(v) % 24 for v in values if v.isdigit() and int(v) <= 24)


def _skip_days(content: bytes) -> frozenset[str]:
    values = _skip_values(content, b"skipDays", b"day")
    return frozenset(v.capitalize() for v in values if v.capitalize() in _DAYS)
