"""Page HTML -> Article. Pure: no I/O.

readability-lxml finds where the article is; ingestd takes the article's elements
from the page itself (see ``choose``) so that the archive keeps it as the page wrote
it, and renders them (``render``). ``charset`` turns page bytes into text.

Anything lxml or readability raises becomes ExtractError here.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from lxml.html import HtmlElement
from readability.htmls import build_doc, get_title

from ingestd.errors import ExtractError, NoArticle
from ingestd.extract.charset import decode_page
from ingestd.extract.choose import select
from ingestd.extract.opinion import page_blocks, trafilatura_text
from ingestd.extract.readable import read
from ingestd.extract.render import article_html, text_length
from ingestd.extract.widen import widen
from ingestd.types import Article

__all__ = ["decode_page", "extract_article"]


def extract_article(html: str, url: str) -> Article:
    """Find the article in ``html`` (fetched from ``url``)."""
    if not html.strip():
        raise ExtractError(f"empty page: {url}")
    try:
        # The page is parsed once, as readability would parse it; readability then
        # works on cleaned copies of this tree.
        parsed, _encoding = build_doc(html)
        title = _page_title(parsed)
        canonical = _canonical(parsed, url)
        view = read(parsed)
        title = title or get_title(view.page)
        chosen = select(view)
        chosen = widen(chosen, page_blocks(view.page), lambda: trafilatura_text(parsed))
        body = article_html(list(chosen.roots), chosen.leave_out, url, title)
    except Exception as exc:  # readability/lxml raise many types; one boundary here
        raise ExtractError(f"could not extract an article from {url}: {exc!r}") from exc
    if not text_length(_fragment(body)) and "<img" not in body:
        raise NoArticle(f"no article found in {url}")
    return Article(title=title, html=body, url=canonical or url)


def _fragment(html: str) -> HtmlElement:
    import lxml.html

    return lxml.html.fragment_fromstring(html, create_parent="div")


def _canonical(root: HtmlElement, url: str) -> str | None:
    """The page's own idea of its address (``rel=canonical``, else ``og:url``).

    Pages are often fetched through redirects, mirrors or tracking URLs; the
    archive records the address the publisher names, when it is absolute http(s).
    """
    for found in root.xpath('//link[@rel="canonical"]/@href | //meta[@property="og:url"]/@content'):
        candidate = urljoin(url, str(found).strip())
        if re.match(r"https?://[^/\s]+", candidate):
            return candidate
    return None


def _page_title(root: HtmlElement) -> str | None:
    """The page's ``<title>`` exactly as written (readability collapses its spaces)."""
    found = root.find(".//title")
    if found is None or not found.text:
        return None
    return str(found.text)
