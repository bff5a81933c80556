"""Page HTML -> Article: readability finds the article; the page's own markup is kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingestd.errors import ExtractError, NoArticle
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


def test_a_link_keeps_the_edge_spaces_the_page_wrote() -> None:
    # readability's cleaner strips every link; a 2023 archive file keeps the space.
    content = (
        f'<p>{PARAGRAPH} <a href="https://v.example.com/watch?v=1&amp;t=2s ">clip</a>'
        ' <a href="javascript:alert(1) ">bad</a></p>'
    )
    html = extract_article(_page(content), URL).html
    assert 'href="https://v.example.com/watch?v=1&amp;t=2s "' in html
    assert "javascript" not in html and "data-ingestd" not in html


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


# --- the failure classes of issue 14, each on a page built to show it ----------------

STORY = (
    "The committee met on Tuesday to review the proposal, and after a long debate the "
    "members agreed, by a narrow margin, to send it back for further study. "
)


def _site(body: str) -> str:
    return (
        "<html><head><title>A story | Site</title></head><body>"
        "<header><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></header>"
        f"{body}<footer><p>Copyright Site</p></footer></body></html>"
    )


def _md(page: str) -> str:
    return html_to_markdown(extract_article(page, URL).html)


def test_every_segment_readability_merged_comes_back() -> None:
    # readability moves sibling blocks sharing the best one's class into it; each is
    # an element of its own in the page, and each must come back, in page order.
    segments = "".join(
        f'<div class="post-body"><p>Segment {i}. {STORY}</p></div><div class="ad">Ad {i}</div>'
        for i in range(4)
    )
    md = _md(_site(f"<article><h1>A story</h1>{segments}</article>"))
    found = [md.find(f"Segment {i}.") for i in range(4)]
    assert -1 not in found and found == sorted(found), md
    assert "Ad " not in md


def test_an_article_inside_a_form_is_kept() -> None:
    # ASP.NET pages wrap the whole page in one <form>: its controls go, its text stays.
    body = (
        '<form id="aspnetForm" action="/x"><input type="hidden" name="v" value="1">'
        f'<div class="content"><p>{STORY}</p><p>{STORY}</p><p>Closing words.</p></div></form>'
    )
    md = _md(_site(body))
    assert md.count("committee met") == 2 and md.endswith("Closing words.")


def test_inputs_at_the_top_of_the_summary_do_not_break_extraction() -> None:
    page = (
        '<html><body><input type="hidden" name="a"><input name="b">'
        f'<p>{STORY}</p><p>{STORY}</p><input name="c"></body></html>'
    )
    assert _md(page) == f"{STORY.strip()}\n\n{STORY.strip()}"


def test_a_link_table_readability_pruned_stays_out() -> None:
    links = "".join(
        f'<tr><td><a href="/r{i}">Related headline number {i} about this</a></td></tr>'
        for i in range(12)
    )
    body = f'<div class="story"><p>{STORY}</p><p>{STORY}</p><table>{links}</table><p>End.</p></div>'
    md = _md(_site(body))
    assert "Related headline" not in md
    assert md.count("committee met") == 2 and md.endswith("End.")


def test_a_post_of_more_images_than_paragraphs_keeps_its_text_and_images() -> None:
    # readability's cleanup drops a container with more images than paragraphs, here
    # the whole post: the container it had scored comes back.
    images = "".join(f'<img src="/i{i}.jpg">' for i in range(9))
    body = (
        '<article><div class="entry-content"><p>Credits: Ann, Bo and Cy, for the whole'
        f" series<br>Design: Di</p><p>{images}</p><p>Posted by Ed.</p></div></article>"
    )
    md = _md(_site(body))
    assert md.startswith("Credits: Ann, Bo and Cy, for the whole series\nDesign: Di\n\n")
    assert md.count("![](https://news.example.org/i") == 9 and md.endswith("Posted by Ed.")


def test_a_page_without_article_text_is_no_article() -> None:
    page = '<html><head><title>App</title></head><body><div id="root"></div></body></html>'
    with pytest.raises(NoArticle, match="no article found in"):
        extract_article(page, URL)


@pytest.mark.slow
def test_the_command_says_no_article_and_exits_0() -> None:
    page = b'<html><head><title>App</title></head><body><div id="root"></div></body></html>'
    run = subprocess.run(
        [sys.executable, "-m", "ingestd", "extract", "--url", URL],
        input=page,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0
    assert run.stdout == b""
    assert run.stderr.decode() == f"ingestd extract: no article found in {URL}\n"
