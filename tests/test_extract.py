"""Page HTML -> Article: readability finds the article; the page's own markup is kept."""

from __future__ import annotations

import pytest

from ingestd.errors import ExtractError
from ingestd.extract import extract_article
from ingestd.formats.markdown import html_to_markdown

URL = "https://news.example.org/world/2022/03/17/story/"

PARAGRAPH = (
    "The talks resumed on Thursday, officials said, after a pause of two days, and both "
    "delegations described the mood as constructive, though no agreement was reached."
)


def _page(content: str, title: str = "Talks resume  after pause | Example News") -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>"
        "<script>var tracking = 1;</script></head><body>"
        '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world/">World</a></li>'
        "</ul></nav></header>"
        '<main><article><h1>Talks resume after pause</h1><div class="byline">By A. Writer</div>'
        f'<div class="entry-content">{content}</div>'
        '<div class="share"><a href="/share">Share</a></div></article></main>'
        '<aside class="sidebar"><h3>Related</h3><ul><li><a href="/a">Other story</a></li>'
        '<li><a href="/b">Another story</a></li></ul></aside>'
        '<footer><p>Copyright Example News</p><a href="/privacy">Privacy</a></footer>'
        "</body></html>"
    )


def _markdown(content: str) -> str:
    return html_to_markdown(extract_article(_page(content), URL).html)


def test_finds_the_article_and_drops_furniture() -> None:
    md = _markdown(f"<p>{PARAGRAPH}</p><p>{PARAGRAPH}</p>")
    assert md == f"{PARAGRAPH}\n\n{PARAGRAPH}"


def test_title_is_the_page_title_exactly() -> None:
    article = extract_article(_page(f"<p>{PARAGRAPH}</p>"), URL)
    assert article.title == "Talks resume  after pause | Example News"
    assert article.url == URL


def test_title_keeps_ideographic_spaces_and_entity_text() -> None:
    title = "王毅会谈\u3000促合作 &amp;#124; 国际"
    article = extract_article(_page(f"<p>{PARAGRAPH}</p>", title=title), URL)
    assert article.title == "王毅会谈\u3000促合作 &#124; 国际"


def test_keeps_link_lists_inside_the_article() -> None:
    # readability's own summary drops a list of links; the archive keeps it.
    content = (
        f"<p>{PARAGRAPH}</p><p>Disclaimer.</p>"
        '<ul><li><a href="https://rolfoundation.org/">ROL Foundation</a></li>'
        '<li><a href="/terms-of-use-3/">Terms of use</a></li></ul>'
    )
    assert _markdown(content) == (
        f"{PARAGRAPH}\n\nDisclaimer.\n\n"
        "- [ROL Foundation](https://rolfoundation.org/)\n"
        "- [Terms of use](https://news.example.org/terms-of-use-3/)"
    )


def test_keeps_the_lead_image_caption_and_empty_paragraphs() -> None:
    content = (
        '<p><img src="/uploads/图片1.png" alt="">Photo: Agency</p>'
        f"<p></p><p>{PARAGRAPH}</p><p>&nbsp;</p><p>End.</p>"
    )
    assert _markdown(content) == (
        "![](https://news.example.org/uploads/图片1.png)Photo: Agency\n\n\n\n"
        f"{PARAGRAPH}\n\n \n\nEnd."
    )


def test_links_are_made_absolute_and_kept_as_written() -> None:
    content = f'<p>{PARAGRAPH} <a href="../../other/%E4%BA%8C.html">more</a></p>'
    assert _markdown(content).endswith(
        "[more](https://news.example.org/world/2022/03/other/%E4%BA%8C.html)"
    )


def test_short_article_picked_whole_loses_its_headline_and_byline() -> None:
    md = _markdown("<p>Short note.</p><p>Second.</p>")
    assert md == "Short note.\n\nSecond."


def test_active_content_inside_the_article_is_dropped() -> None:
    content = f'<p>{PARAGRAPH}</p><form><input name="q"></form><iframe src="/ad"></iframe>'
    assert _markdown(content) == PARAGRAPH


def test_empty_page_is_an_error() -> None:
    with pytest.raises(ExtractError):
        extract_article("  ", URL)


def test_canonical_url_names_the_article() -> None:
    text = "Long enough paragraph text. " * 20
    page = (
        '<html><head><title>t</title><link rel="canonical" href="/a/1.html"></head>'
        f"<body><article><p>{text}</p></article></body></html>"
    )
    article = extract_article(page, "http://mirror.example/x?utm=1")
    assert article.url == "http://mirror.example/a/1.html"
    og = page.replace(
        '<link rel="canonical" href="/a/1.html">',
        '<meta property="og:url" content="https://pub.example/story">',
    )
    assert extract_article(og, "http://mirror.example/x").url == "https://pub.example/story"
    plain = page.replace('<link rel="canonical" href="/a/1.html">', "")
    assert extract_article(plain, "http://mirror.example/x").url == "http://mirror.example/x"
