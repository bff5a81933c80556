"""Fuzzing with hypothesis: the parsers, the HTML-to-markdown converter, file naming.

Each target gets arbitrary input plus input shaped to get past its first checks, and
must answer with its documented result or its documented error, nothing else:

- ``formats.feed.parse`` / ``formats.repost.parse``: a document or FormatError; a
  document renders to text that parses back to the same document;
- ``formats.markdown.html_to_markdown``: a string, quickly;
- ``naming.safe_component`` / ``naming.file_name``: one safe path component;
- ``parse.parse_feed``: a ParsedFeed or ParseError, for random bytes and for real feeds
  (the demo seeds) with bytes flipped, inserted, deleted or cut off.

The suite runs a bounded budget (200 examples a test). A longer run:
``HYPOTHESIS_PROFILE=long ./dev test tests/test_fuzz.py`` (20,000 examples a test).
"""

from __future__ import annotations

import os
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestd import naming
from ingestd.errors import FormatError, ParseError
from ingestd.formats import feed as format_a
from ingestd.formats import repost as format_b
from ingestd.formats.markdown import html_to_markdown
from ingestd.parse import parse_feed
from ingestd.types import ParsedFeed
from tests.conftest import SEEDS

settings.register_profile(
    "fuzz", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FUZZ = settings(
    settings.get_profile("long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "fuzz")
)
SLOW = 5.0  # seconds: one call taking longer counts as a hang

FEED_XML = [(SEEDS / "demo" / name).read_bytes() for name in ("voa.xml", "gnews.xml")]
AWKWARD = "[]()`<>-!\n\r\t &;:#*_\\/\"'\u3000\u00a0\u2028\ufeff\x00\x0b中文😀"
text = st.text(st.one_of(st.sampled_from(AWKWARD), st.characters()), max_size=300)


# --- the two archive formats ----------------------------------------------------------------


def format_a_like() -> st.SearchStrategy[str]:
    """Texts with format A's five-line shape and awkward pieces."""
    piece = st.text(st.one_of(st.sampled_from(AWKWARD), st.characters()), max_size=40)
    date = st.one_of(st.integers(0, 10**17).map(str), st.just("NaN"), piece)
    line2 = st.builds(lambda t, link: f"[{t}]({link})", piece, piece)
    return st.builds(
        lambda d, heading, rule, blank, content, end: (
            f"<!--{d}-->\n{heading}\n{rule}\n{blank}\n{content}{end}"
        ),
        date,
        st.one_of(line2, piece),
        st.sampled_from(["------", "-----", piece]),
        st.sampled_from(["", " ", "x"]),
        piece,
        st.sampled_from(["\n", "", "\n\n", "\r\n"]),
    )


@FUZZ
@given(st.one_of(text, format_a_like()))
def test_format_a_parse_gives_a_document_or_format_error(source: str) -> None:
    try:
        doc = format_a.parse(source)
    except FormatError:
        return
    rendered = format_a.render(doc)
    assert format_a.parse(rendered) == doc
    assert rendered == source or doc.pubdate_ms is not None  # only digits may be rewritten


def format_b_like() -> st.SearchStrategy[str]:
    """Texts with format B's front matter and source line, with awkward pieces."""
    piece = st.text(st.one_of(st.sampled_from(AWKWARD), st.characters()), max_size=40)
    eol = st.sampled_from(["\n", "\r\n", "\r", ""])
    return st.builds(
        lambda e1, title, e2, src, label, url, e3, body, e4: (
            f"---{e1}title: {title}{e1}---{e1}`{src}` [{label}]({url}){e2}{e3}{body}{e4}"
        ),
        eol,
        piece,
        eol,
        piece,
        piece,
        piece,
        eol,
        piece,
        eol,
    )


@FUZZ
@given(st.one_of(text, format_b_like()))
def test_format_b_parse_gives_a_document_or_format_error(source: str) -> None:
    try:
        doc = format_b.parse(source)
    except FormatError:
        return
    rendered = format_b.render(doc)
    assert format_b.parse(rendered) == doc
    assert rendered == source  # format B keeps every byte, line endings included


# --- HTML to markdown -------------------------------------------------------------------------

TAGS = [
    "p",
    "div",
    "span",
    "b",
    "strong",
    "i",
    "em",
    "a",
    "img",
    "br",
    "hr",
    "ul",
    "ol",
    "li",
    "h1",
    "h3",
    "h6",
    "blockquote",
    "pre",
    "code",
    "figure",
    "figcaption",
    "table",
    "td",
    "script",
    "style",
    "iframe",
    "section",
    "article",
    "!--",
    "![CDATA[",
]
ATTRS = [
    "",
    ' href="x"',
    ' src="/i.png"',
    ' alt="a_b"',
    ' title="t"',
    ' start="3"',
    ' href="javascript:alert(1)"',
    " onclick=x",
    ' class="c"',
    ' href="a&amp;b"',
]
markup = st.lists(
    st.one_of(
        st.builds(lambda t, a: f"<{t}{a}>", st.sampled_from(TAGS), st.sampled_from(ATTRS)),
        st.builds(lambda t: f"</{t}>", st.sampled_from(TAGS)),
        st.sampled_from(
            [
                "&nbsp;",
                "&amp;",
                "&#0;",
                "&#x110000;",
                "&bogus;",
                "<",
                ">",
                "\n",
                "\r\n",
                "_",
                "*",
                "  ",
                "\xa0",
                "<!DOCTYPE html>",
                "<?xml?>",
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(st.one_of(markup, text))
def test_html_to_markdown_returns_text_quickly(html: str) -> None:
    started = time.monotonic()
    result = html_to_markdown(html)
    assert isinstance(result, str)
    assert time.monotonic() - started < SLOW


def test_html_to_markdown_deep_nesting_is_not_a_hang() -> None:
    for tag in ("div", "blockquote", "ul", "b"):
        started = time.monotonic()
        assert isinstance(html_to_markdown(f"<{tag}>" * 3000 + "x"), str)
        assert time.monotonic() - started < SLOW


# --- file naming -------------------------------------------------------------------------------

RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}
names = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=400),
    st.text(st.sampled_from('./\\:*?"<>| \x00\n.CONULPTcom1ı'), max_size=30),
    st.sampled_from(
        [
            "..",
            ".",
            "../../etc/x",
            "..\\..\\x",
            "CON",
            "con.txt",
            "NUL.md",
            " . ",
            ".hidden",
            "LPT9",
            "x" * 5000,
            "é" * 300,
            "😀" * 100,
        ]
    ),
)


def assert_safe(name: str, max_bytes: int) -> None:
    encoded = name.encode("utf-8")
    assert 0 < len(encoded) <= max_bytes
    assert not any(c in name for c in '/\\:*?"<>|') and all(ord(c) >= 32 for c in name)
    assert "\x7f" not in name
    assert name not in (".", "..") and not name.startswith(".")
    assert not name.endswith((".", " "))
    assert name.split(".")[0].upper() not in RESERVED
    assert unicodedata.is_normalized("NFC", name)


@FUZZ
@given(names, st.integers(1, 255))
def test_safe_component_is_always_one_safe_name(text_: str, max_bytes: int) -> None:
    name = naming.safe_component(text_, max_bytes=max_bytes)
    assert_safe(name, max(max_bytes, 2))


@FUZZ
@given(st.integers(0, naming.FIRST_FILE_ID), st.one_of(st.none(), names))
def test_file_name_is_always_one_safe_markdown_name(file_id: int, title: str | None) -> None:
    name = naming.file_name(file_id, title)
    assert_safe(name, naming.MAX_NAME_BYTES)
    assert name.endswith(".md") and name.startswith(str(file_id))


# --- the feed parse stage ---------------------------------------------------------------------


def check_parse(content: bytes, headers: dict[str, str] | None = None) -> None:
    started = time.monotonic()
    try:
        result = parse_feed(content, headers)
    except ParseError as exc:
        assert str(exc)  # a message a person can read
    else:
        assert isinstance(result, ParsedFeed)
        for entry in result.entries:
            assert isinstance(entry.title, str) and isinstance(entry.content, str)
    assert time.monotonic() - started < SLOW


@FUZZ
@given(
    st.binary(max_size=2000),
    st.sampled_from(
        [
            None,
            {"content-type": "text/xml; charset=gbk"},
            {"content-type": "application/rss+xml; charset=bogus"},
        ]
    ),
)
def test_parse_feed_on_random_bytes(content: bytes, headers: dict[str, str] | None) -> None:
    check_parse(content, headers)


@st.composite
def mutated_feed(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FEED_XML)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut", "splice"]))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"]]>",
                        b"<![CDATA[",
                        b"<!DOCTYPE x [<!ENTITY e 'ee'>]>",
                        b"&e;",
                        b"\x00",
                        b"\xff\xfe",
                        b"\xe4\xb8",
                        b"</item>",
                        b"<item>",
                        b"<entry>",
                        b'<?xml version="1.0" encoding="gbk"?>',
                        b"&#xD800;",
                    ]
                )
            )
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "cut":
            del data[at:]
        else:
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 200))]
    return bytes(data)


@pytest.mark.slow
@FUZZ
@given(mutated_feed())
def test_parse_feed_on_mutated_real_feeds(content: bytes) -> None:
    check_parse(content, {"content-type": "application/rss+xml"})
