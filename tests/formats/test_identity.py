"""parse -> render is the identity on the seeds and on every real corpus file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.formats import detect, feed, parse_any, render_any, repost
from ingestd.types import ArchiveFormat, FeedDoc, RepostDoc
from tests.conftest import SEEDS, corpus_files, file_id, require_corpus

SEED_A = SEEDS / "000_8d4ffb861fbb6860.txt"
SEED_B = SEEDS / "004_a3e85a139a601f97.txt"
A_FILES = corpus_files("format-a")
B_FILES = corpus_files("format-b")


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def test_corpus_has_both_formats() -> None:
    assert len(list(require_corpus("format-a").rglob("*.md"))) == 60
    assert len(list(require_corpus("format-b").rglob("*.md"))) == 60


def test_seed_a_fields() -> None:
    doc = feed.parse(read(SEED_A))
    assert doc.pubdate_ms == 1646087943000
    assert doc.link.startswith("https://www.voachinese.com/a/ukraine-russia-brace")
    assert doc.content.startswith("<div><i>Mon, 28 Feb 2022 22:29:57 GMT</i></div><img ")
    assert "\n" not in doc.content


def test_seed_b_fields() -> None:
    doc = repost.parse(read(SEED_B))
    assert doc.title.startswith("土耳其要求普京")
    assert doc.source == "喜马拉雅意大利罗马达芬奇农场"
    assert doc.label == "轉載自GNews"
    assert doc.url == "https://gnews.org/zh-hans/2181912/"
    assert doc.body.startswith("![](https://assets.gnews.org/wp-content/uploads/2022/03/U-1.jpg)")
    assert doc.newlines.front == "\n"


@pytest.mark.parametrize("path", [SEED_A, SEED_B], ids=["seed-a", "seed-b"])
def test_seed_identity(path: Path) -> None:
    text = read(path)
    assert render_any(parse_any(text)) == text


@pytest.mark.parametrize("path", A_FILES, ids=[file_id(p) for p in A_FILES])
def test_format_a_identity(path: Path) -> None:
    text = read(path)
    assert detect(text) is ArchiveFormat.FEED
    doc = parse_any(text)
    assert isinstance(doc, FeedDoc)
    assert feed.render(doc) == text


@pytest.mark.parametrize("path", B_FILES, ids=[file_id(p) for p in B_FILES])
def test_format_b_identity(path: Path) -> None:
    text = read(path)
    assert detect(text) is ArchiveFormat.REPOST
    doc = parse_any(text)
    assert isinstance(doc, RepostDoc)
    assert repost.render(doc) == text


def test_crlf_eras_are_recognised() -> None:
    # 2022-04 on: CRLF front matter, bare LF after the source line.
    styles = {repost.parse(read(p)).newlines.front for p in B_FILES}
    assert styles == {"\n", "\r\n"} or not B_FILES
