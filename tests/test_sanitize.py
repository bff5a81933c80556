"""Sanitizing: inert HTML passes byte for byte, active HTML is cleaned."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.formats import feed
from ingestd.sanitize import has_active_content, sanitize
from tests.conftest import SEEDS, corpus_files, file_id

A_FILES = corpus_files("format-a")


@pytest.mark.parametrize(
    "html",
    [
        "<p>x</p><script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<iframe src="https://evil.example/"></iframe>',
        "<style>body{display:none}</style><p>x</p>",
        '<object data="x.swf"></object><embed src="x.swf">',
        '<form action="https://evil.example/"><input name=a></form>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<svg onload="alert(1)"></svg>',
    ],
)
def test_active_content_is_cleaned(html: str) -> None:
    assert has_active_content(html)
    result = sanitize(html)
    assert result.cleaned
    assert not has_active_content(result.html), result.html
    for word in ("script", "onerror", "javascript", "iframe", "<style", "onload", "<form"):
        assert word not in result.html.lower()


def test_inert_content_passes_byte_for_byte() -> None:
    html = '<div><i>Mon</i></div><img src="https://x/a.jpg" width="100%"><p  class=a>on=1 data</p>'
    assert sanitize(html).html == html and not sanitize(html).cleaned


@pytest.mark.parametrize(
    "path",
    [SEEDS / "000_8d4ffb861fbb6860.txt", *A_FILES],
    ids=["seed-a", *[file_id(p) for p in A_FILES]],
)
def test_real_archive_content(path: Path) -> None:
    """Real items pass untouched unless they embed frames (YouTube, Facebook, WordPress)."""
    content = feed.parse(path.read_bytes().decode("utf-8")).content
    result = sanitize(content)
    if "<iframe" in content:
        assert result.cleaned and "<iframe" not in result.html
        assert len(result.html) > len(content) // 3  # the article text stays
    else:
        assert result.html == content and not result.cleaned


def test_an_unknown_wrapper_keeps_its_text() -> None:
    # nh3 drops elements named like SVG's (<text>, <desc>, <g>) with all they hold,
    # even outside <svg>; CleanEval wraps whole pages in <text>.
    html = '<text id="http://x.example/">头条 <b>正文</b><input name="q"><desc>说明</desc></text>'
    result = sanitize(html)
    assert result.cleaned
    assert result.html == "头条 <b>正文</b>说明"


def test_svg_text_still_goes_with_the_svg() -> None:
    result = sanitize("<p>body</p><svg><text>chart label</text></svg><script>x()</script>")
    assert result.html == "<p>body</p>"
