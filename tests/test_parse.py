"""The parse stage: feedparser on bytes plus headers, wrapped in ingestd's types."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.errors import ParseError
from ingestd.parse import parse_feed

RSS = """<?xml version="1.0" encoding="{decl}"?>
<rss version="2.0"><channel><title>中文频道</title><link>http://a.example/</link><ttl>60</ttl>
<item><title>美国之音新闻标题</title><link>http://a.example/1</link><guid>g1</guid>
<pubDate>Mon, 28 Feb 2022 22:29:57 GMT</pubDate>
<description>这是一个描述</description></item></channel></rss>"""


def test_gbk_feed() -> None:
    parsed = parse_feed(RSS.format(decl="gbk").encode("gbk"))
    assert parsed.bozo is None
    (item,) = parsed.entries
    assert item.title == "美国之音新闻标题" and item.content == "这是一个描述"
    assert item.guid == "g1" and item.published is not None
    assert parsed.ttl_minutes == 60


def test_declared_charset_lies() -> None:
    data = RSS.format(decl="utf-8").encode("gbk")
    parsed = parse_feed(data, {"Content-Type": "application/rss+xml; charset=utf-8"})
    assert parsed.entries[0].title == "美国之音新闻标题"
    assert parsed.bozo is not None and "encoding" in parsed.bozo.lower()


def test_truncated_feed_keeps_complete_items() -> None:
    data = RSS.format(decl="utf-8").replace("</item></channel></rss>", "</item><item><title>半")
    parsed = parse_feed(data.encode())
    assert [e.title for e in parsed.entries][0] == "美国之音新闻标题"
    assert parsed.bozo is not None


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (
            b"<!DOCTYPE html><html><head><title>x</title></head><body>x</body></html>",
            "text/html; charset=utf-8",
            "HTML page, not an RSS or Atom feed",
        ),
        (b"", "application/rss+xml", "empty response"),
        (b"just some text", "text/plain", "not an RSS or Atom feed"),
    ],
)
def test_not_a_feed_is_a_clear_error(body: bytes, ctype: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, {"content-type": ctype})


def test_item_html_is_not_sanitized_or_rewritten() -> None:
    html = '&lt;p style="color:red"  x=y&gt;a&lt;/p&gt;&lt;img src="/rel.jpg"&gt;'
    data = RSS.format(decl="utf-8").replace("这是一个描述", html).encode()
    (item,) = parse_feed(data).entries
    assert item.content == '<p style="color:red"  x=y>a</p><img src="/rel.jpg">'


def test_gbk_beyond_gb2312_with_a_lying_charset_is_not_garbled() -> None:
    # 體 is in GBK but not in GB2312, the guess feedparser's detector makes.
    data = RSS.format(decl="utf-8").replace("描述", "描述，繁體字").encode("gbk")
    parsed = parse_feed(data, {"Content-Type": "application/rss+xml; charset=utf-8"})
    (item,) = parsed.entries
    assert item.title == "美国之音新闻标题" and item.content == "这是一个描述，繁體字"
    assert parsed.bozo is not None and "parsed as gb18030" in parsed.bozo


def test_declared_windows_1252_is_taken_at_its_word() -> None:
    # "é" + "t" would also decode as one GB18030 character; the feed says what it is.
    data = (
        RSS.format(decl="windows-1252")
        .replace("美国之音新闻标题", "Zoé's été")
        .replace("这是一个描述", "détail")
        .replace("中文频道", "chaîne")
        .encode("cp1252")
    )
    (item,) = parse_feed(data).entries
    assert item.title == "Zoé's été" and item.content == "détail"


def test_nul_characters_are_dropped() -> None:
    # XML has no NUL; the lenient parser lets one through, and PostgreSQL refuses it.
    data = RSS.format(decl="utf-8").replace("新闻标题", "新闻\x00标题").encode()
    (item,) = parse_feed(data).entries
    assert item.title == "美国之音新闻标题"


def test_a_document_that_is_not_xml_is_named_in_words_with_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, item 10: a non-XML feed said `not an RSS or Atom feed: SAXParseException:
    <unknown>:2:0: syntax error`, without its URL; it now says where and what, in words."""
    import json

    from ingestd.cli import main
    from tests.loopback import LoopbackServer

    with pytest.raises(ParseError) as caught:
        parse_feed(b"hello\nthis is no feed\n", {"content-type": "text/plain"})
    message = str(caught.value)
    assert "SAXParseException" not in message and "<unknown>" not in message
    assert "not well-formed XML (line 2, column 0: syntax error)" in message, message
    assert "it begins with 'hello this is no feed'" in message, message

    with LoopbackServer() as server:
        server.route("/feed", (200, {"Content-Type": "text/plain"}, b"hello\nthis is no feed\n"))
        config = tmp_path / "ingestd.toml"
        config.write_text(
            f'database = "sqlite:///{tmp_path / "s.db"}"\narchive_dir = "archive"\n'
            '[fetch]\nallow_private = ["127.0.0.1"]\n'
            f'[[feeds]]\nname = "x"\nurl = "{server.url("/feed")}"\n',
            encoding="utf-8",
        )
        capsys.readouterr()
        assert main(["fetch", "--config", str(config), "--json"]) == 1
        [error] = json.loads(capsys.readouterr().out)["errors"]
    assert error["error"].startswith(f"{server.url('/feed')}: not an RSS or Atom feed: ")
