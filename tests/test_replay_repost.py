"""Replay of format B: markdown -> CommonMark page -> readability -> markdown equals the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.formats import repost
from ingestd.formats.markdown import STYLE_2021, STYLE_2023
from ingestd.replay import replay_doc, replay_file
from ingestd.replay_page import build_page
from ingestd.types import RepostDoc
from tests.conftest import SEEDS, corpus_files, corpus_root, file_id, require_corpus

B_FILES = corpus_files("format-b")
MORE_FILES = corpus_files("format-b-more")
SEED_B = SEEDS / "004_a3e85a139a601f97.txt"

# Files no page can give back, keyed by their path under format-b/, with why.
KNOWN_B_EXCEPTIONS = {
    # `![](src "")`: CommonMark renderers (markdown-it, like commonmark.js) write
    # no title attribute for an empty title, so the page is the same as for
    # `![](src)` and the `""` cannot come back. Every other image of that era
    # has a real title, which does come back.
    "ourhimalayas__ourhimalayas.github.io/09686b9e8b86/gnews/2371865.md": '"")',
}


# format-b-more files whose rebuilt page carries the text but extraction loses it,
# keyed by path under format-b-more/, with a piece of the page that does not come
# through. The causes are readability-lxml's, not the format's (issue 15's report):
_OURS = "ourhimalayas__ourhimalayas.github.io"


def _key(path: Path, folder: str = "format-b") -> str:
    return path.relative_to(corpus_root() / folder).as_posix()


def test_seed_b_replays() -> None:
    result = replay_file(SEED_B)
    assert result.identical, result.diff


@pytest.mark.corpus
@pytest.mark.parametrize("path", B_FILES, ids=[file_id(p) for p in B_FILES])
def test_corpus_b_replays(path: Path) -> None:
    result = replay_file(path)
    assert result.error is None
    hint = KNOWN_B_EXCEPTIONS.get(_key(path))
    if hint is None:
        assert result.identical, result.diff
    else:
        # Still a known exception, and only at the place the reason names.
        assert not result.identical
        assert result.diff.count("\n@@") == 1 and hint in result.diff, result.diff


def test_corpus_b_is_present_or_skipped() -> None:
    require_corpus("format-b")  # skips with the reason, or fails under INGESTD_REQUIRE_CORPUS
    assert len(B_FILES) >= 60


def test_known_exceptions_exist_in_corpus() -> None:
    keys = {_key(p) for p in B_FILES}
    assert keys >= set(KNOWN_B_EXCEPTIONS) or not B_FILES


def test_page_carries_the_body_only_as_rendered_html() -> None:
    doc = repost.parse(SEED_B.read_text(encoding="utf-8"))
    page = build_page(doc)
    assert doc.body not in page
    assert "<pre" not in page and "data-" not in page and "<!--" not in page
    # The markdown syntax is gone: bold and links are HTML elements now.
    assert "<strong>编译 发布：意大利罗马达芬奇农场 Roma</strong>" in page
    assert '<a href="https://rolfoundation.org/">ROL Foundation</a>' in page


def test_page_has_furniture_around_the_article() -> None:
    doc = repost.parse(SEED_B.read_text(encoding="utf-8"))
    page = build_page(doc)
    for part in ("<nav", "<aside", "<footer", "Related", "Comments"):
        assert part in page


def test_replay_is_independent_of_the_url() -> None:
    # Nothing is looked up by URL: another address gives the same body back.
    doc = repost.parse(SEED_B.read_text(encoding="utf-8"))
    moved = repost.RepostDoc(
        doc.title, doc.source, doc.label, "https://example.org/elsewhere/1", doc.body, doc.newlines
    )
    assert replay_doc(moved).body == doc.body


@pytest.mark.corpus
@pytest.mark.parametrize("path", MORE_FILES, ids=[file_id(p) for p in MORE_FILES])
def test_corpus_b_more_replays(path: Path) -> None:
    result = replay_file(path)
    assert result.error is None
    assert result.identical, result.diff


def test_corpus_b_more_is_present_or_skipped() -> None:
    require_corpus("format-b-more")
    assert len(MORE_FILES) >= 144


def test_empty_image_title_gives_the_same_page_as_no_title() -> None:
    """The proof behind the one format-b exception: two bodies, one page."""
    doc = repost.parse(SEED_B.read_text(encoding="utf-8"))
    with_title = _with_body(doc, '![](https://x.org/a.png "")')
    without = _with_body(doc, "![](https://x.org/a.png)")
    assert with_title.body != without.body
    assert build_page(with_title) == build_page(without)


def _with_body(doc: RepostDoc, body: str, source: str | None = None) -> RepostDoc:
    return RepostDoc(
        doc.title, doc.source if source is None else source, doc.label, doc.url, body, doc.newlines
    )


STAMPED = "3/6/2024 9:30 PM UTC author"


def test_the_era_is_told_by_the_source_line() -> None:
    doc = repost.parse(SEED_B.read_text(encoding="utf-8"))
    assert repost.style_of(doc) is STYLE_2021
    assert repost.style_of(_with_body(doc, "x", STAMPED)) is STYLE_2023
    assert repost.style_of(_with_body(doc, "x", "3/6/2024 club")) is STYLE_2021


def _page_body(body: str, source: str | None = None) -> str:
    doc = _with_body(repost.parse(SEED_B.read_text(encoding="utf-8")), body, source)
    page = build_page(doc)
    return page[page.index('<div class="entry-content">') : page.index('<div class="share')]


def test_backslashes_of_the_archive_are_page_text() -> None:
    body = _page_body("图\\-95 \\[通过\\] 1\\. \\*\\*", STAMPED)
    assert "图\\-95 \\[通过\\] 1\\. \\*\\*" in body


def test_underscores_are_text_and_the_2021_escape_is_one() -> None:
    assert "a_b _c_" in _page_body("a\\_b \\_c\\_")  # 2021: \\_ is the writer's escape
    assert "a\\_b _c_" in _page_body("a\\_b _c_", STAMPED)  # 2023: the page's own


def test_a_line_under_a_paragraph_line_is_its_text() -> None:
    body = _page_body("参考链接：\n1. [a](https://x.org/)\n* * *\n## b")
    assert "<ol" not in body and "<hr" not in body and "<h2" not in body
    assert "参考链接：<br />\n1. " in body and "<br />\n## b</p>" in body


def test_a_heading_runs_on_to_the_empty_line() -> None:
    body = _page_body("#### 整理：A\n编辑：B\n\nC")
    assert "<h4>整理：A<br />\n编辑：B</h4>" in body and "<p>C</p>" in body


def test_blocks_after_a_whitespace_line_still_start() -> None:
    body = _page_body("A\n \n- [x](https://x.org/)")
    assert "<ul>" in body
