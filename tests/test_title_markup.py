"""Issue 16, item 11: with sanitizing on, a format-A title carries no active markup."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from ingestd import render
from ingestd.cli import main
from ingestd.formats import feed as format_a
from ingestd.types import EntryData, FeedSpec
from tests.conftest import SEEDS, corpus_files, require_corpus
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import rss

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOSTILE = [
    "XSS <script>alert(1)</script>",
    "<img src=x onerror=alert(1)> breaking",
    "comment <!-- x --> and <?php ?>",
    "autolink <javascript:alert(1)>",
    "nested [click](javascript:alert(1)) here",
    "nested [click]( JaVa&#115;cript:alert(1)) there",
    "data [x](data:text/html;base64,PHNjcmlwdD4=)",
]


def heading(title: str, sanitize: bool) -> str:
    entry = EntryData(title, "https://a.example/1", "g", "<p>x</p>", NOW)
    [text] = render.render_items(
        FeedSpec("f", "https://a.example/", sanitize=sanitize), [entry], NOW
    )
    return text.split("\n")[1]


@pytest.mark.parametrize("title", HOSTILE)
def test_a_title_with_active_markup_is_made_inert_when_sanitizing(title: str) -> None:
    """Item 11: `XSS <script>` was written raw into the title line, where a markdown
    renderer would run it."""
    line = heading(title, sanitize=True)
    inside = line[1 : line.rindex("](")]
    assert not re.search(r"<[A-Za-z/!?]", inside), line
    for after in inside.split("](")[1:]:
        target = "".join(unescape(after).split()).lstrip("<").lower()
        assert not target.startswith(("javascript:", "vbscript:", "data:")), line
    html = MarkdownIt("commonmark").render(line)
    assert "<script" not in html and "<img" not in html and "<!--" not in html
    assert "javascript:" not in html.replace("&amp;", "&").split('href="', 1)[-1].split('"')[0]
    assert 'href="javascript' not in html.lower() and 'href="data:' not in html.lower()
    assert format_a.parse(f"<!--0-->\n{line}\n------\n\n<p>x</p>\n").link == "https://a.example/1"
    # With sanitize = false the title is kept exactly as the feed gave it.
    assert heading(title, sanitize=False) == f"[{title}](https://a.example/1)"


def test_every_real_title_passes_unchanged() -> None:
    """Item 11: the rule leaves every format-A title of the corpus (and the seed) byte for
    byte as it is."""
    require_corpus("format-a")
    files = [p for p in corpus_files("format-a") if "articles" in p.parts]
    files.append(SEEDS / "000_8d4ffb861fbb6860.txt")
    # The heading alone (a few real files hold more than five lines of content).
    headings = [p.read_text(encoding="utf-8").split("\n")[:2] for p in files]
    titles = [format_a.parse("\n".join(h) + "\n------\n\nx\n").title for h in headings]
    assert len(titles) > 50
    assert [format_a.inert_title(t) for t in titles] == titles


def test_a_feed_title_with_a_script_is_archived_inert(
    loopback: LoopbackServer, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 11, end to end: an item titled `XSS <script>` (escaped in the XML, as feeds do)."""
    item = (
        "<item><title>XSS &lt;script&gt;alert(1)&lt;/script&gt;</title>"
        "<link>http://x.example/1</link><guid>1</guid>"
        "<pubDate>Mon, 28 Feb 2022 22:29:57 GMT</pubDate><description>body</description></item>"
    )
    loopback.route("/f.xml", (200, {"Content-Type": "application/rss+xml"}, rss(item)))
    config = tmp_path / "ingestd.toml"
    config.write_text(
        f'database = "{database_url}"\narchive_dir = "archive"\n'
        '[fetch]\nallow_private = ["127.0.0.1"]\n'
        f'[[feeds]]\nname = "x"\nurl = "{loopback.url("/f.xml")}"\n',
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["fetch", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["archived"] == 1
    text = (tmp_path / "archive" / "articles" / "x" / "1048575.md").read_text()
    assert text.split("\n")[1] == "[XSS &lt;script>alert(1)&lt;/script>](http://x.example/1)"
