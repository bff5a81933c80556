"""Rendering format A from source data follows FORMATS.md rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingestd.formats import feed, repost
from ingestd.formats.text import JS_WHITESPACE, js_strip, whatwg_href
from ingestd.types import Article
from tests.conftest import corpus_files, file_id

A_FILES = corpus_files("format-a")


def test_js_strip_uses_the_javascript_class() -> None:
    assert js_strip("\ufeff\u3000 标题\u00a0\u202f") == "标题"
    # Python's strip() would remove U+0085 and U+001F; JavaScript's trim() does not.
    assert js_strip("\x85x\x1f") == "\x85x\x1f"
    assert "\u200b" not in JS_WHITESPACE  # zero-width space is not whitespace


@pytest.mark.parametrize(
    ("raw", "href"),
    [
        ("HTTP://WWW.RFI.FR//cn/a", "http://www.rfi.fr//cn/a"),
        ("https://example.com", "https://example.com/"),
        ("https://www.dw.com/zh/新冠/a-1", "https://www.dw.com/zh/%E6%96%B0%E5%86%A0/a-1"),
        ("  https://a.example/x y ", "https://a.example/x%20y"),
    ],
)
def test_whatwg_serialization(raw: str, href: str) -> None:
    assert whatwg_href(raw) == href


def test_content_joined_on_one_line() -> None:
    html = "<p>one\n   two</p>\r\n  <p>three\rfour</p>\n"
    assert feed.join_content(html) == "<p>onetwo</p><p>three\rfour</p>"


def test_milliseconds_from_item_date() -> None:
    moment = datetime(2022, 2, 28, 22, 39, 3, tzinfo=UTC)
    doc = feed.from_item(" t ", "https://x.example/a", "<p>x</p>", moment)
    assert doc.pubdate_ms == 1646087943000
    offset = moment.astimezone(timezone(timedelta(hours=8)))
    assert feed.from_item("t", "https://x.example/", "", offset).pubdate_ms == 1646087943000
    assert feed.from_item("t", "https://x.example/", "", None).pubdate_ms is None


def test_title_kept_except_surrounding_whitespace() -> None:
    doc = feed.from_item("\u3000[[视频]北京](x) 中方&quot;将\u00a0", "https://a/", "", None)
    assert doc.title == "[[视频]北京](x) 中方&quot;将"
    assert feed.render(doc).split("\n")[1] == "[[[视频]北京](x) 中方&quot;将](https://a/)"


def test_title_line_break_cannot_break_the_layout() -> None:
    doc = feed.from_item("one\ntwo", "https://a/", "", None)
    assert feed.parse(feed.render(doc)) == doc


@pytest.mark.parametrize("link", ["Correct Value", "http://bad host/a b", "x\ny", "a\u3000b"])
def test_unparseable_link_keeps_the_file_readable(link: str) -> None:
    """A link that is no URL is kept, with its whitespace percent-encoded (found by the
    feedparser corpus: an Atom id used as the link was "Correct Value")."""
    doc = feed.from_item("", link, "", None)
    assert not any(c.isspace() for c in doc.link)
    assert feed.parse(feed.render(doc)) == doc


@pytest.mark.parametrize("path", A_FILES, ids=[file_id(p) for p in A_FILES])
def test_render_from_source_fields(path: Path) -> None:
    """Each real file re-rendered from its own fields (as a feed would carry them)."""
    doc = feed.parse(path.read_bytes().decode("utf-8"))
    assert doc.pubdate_ms is not None
    published = datetime.fromtimestamp(doc.pubdate_ms / 1000, tz=UTC)
    # The content reaches the archiver spread over lines; the join must undo that.
    spread = doc.content.replace("><", ">\n  <")
    rebuilt = feed.from_item(doc.title, doc.link, spread, published)
    assert rebuilt.link == doc.link
    assert rebuilt.content == doc.content
    assert rebuilt.pubdate_ms == doc.pubdate_ms
    if doc.title == js_strip(doc.title):
        assert feed.render(rebuilt) == feed.render(doc)


def test_repost_title_line_break_cannot_break_the_front_matter() -> None:
    article = Article(title="one\ntwo\r\nthree\rfour", html="<p>x</p>", url="http://a.example/")
    doc = repost.from_article(article, source="s", label="l")
    assert doc.title == "one two three four"
    assert repost.parse(repost.render(doc)) == doc
