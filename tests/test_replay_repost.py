"""Replay of format B: markdown -> CommonMark page -> readability -> markdown equals the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.formats import repost
from ingestd.replay import build_page, replay_doc, replay_file
from tests.conftest import SEEDS, corpus_files, corpus_root, file_id, require_corpus

B_FILES = corpus_files("format-b")
SEED_B = SEEDS / "004_a3e85a139a601f97.txt"

# Files no page can give back, keyed by their path under format-b/, with why.
KNOWN_B_EXCEPTIONS = {
    # `![](src "")`: CommonMark renderers (markdown-it, like commonmark.js) write
    # no title attribute for an empty title, so the page is the same as for
    # `![](src)` and the `""` cannot come back. Every other image of that era
    # has a real title, which does come back.
    "ourhimalayas__ourhimalayas.github.io/09686b9e8b86/gnews/2371865.md": '"")',
}


def _key(path: Path) -> str:
    return path.relative_to(corpus_root() / "format-b").as_posix()


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
