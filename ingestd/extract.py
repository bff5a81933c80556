"""Page HTML -> Article, with readability-lxml. Pure: no I/O.

readability finds where the article is. Its summary, though, rewrites what it
keeps: it drops lists of links, short paragraphs and empty ones, headings it
finds too link-heavy, and turns ``<div>`` into ``<p>``. An archive wants the
article as the page wrote it, so ingestd asks readability to mark every element
with its XPath, reads off which elements of the page the summary was built
from, and takes those elements from the page itself (links already made
absolute), dropping only what is never article text (scripts, forms, embeds,
share and comment widgets).

Anything lxml or readability raises becomes ExtractError here.
"""

from __future__ import annotations

import re
from copy import deepcopy
from urllib.parse import urljoin

import lxml.html
from lxml import etree
from lxml.html import HtmlElement
from readability import Document
from readability.htmls import build_doc, get_title

from ingestd.errors import ExtractError
from ingestd.types import Article

_XPATH_ATTR = "x"
_NEVER_CONTENT = (
    "//script | //style | //noscript | //form | //textarea | //input | //button"
    " | //select | //iframe | //object | //embed | //nav"
)
# Widgets that sit inside article containers on real sites but are not the text.
_WIDGET = re.compile(
    r"\b(share|sharing|social|comments?|related|newsletter|advert|byline|entry-meta|post-meta)\b",
    re.I,
)
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
_LINK_ATTRS = (("a", "href"), ("img", "src"), ("source", "src"), ("video", "src"))


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
        # No url for readability: lxml would percent-encode every link it makes
        # absolute; ingestd resolves links itself and keeps them as written.
        doc = _KeepingDocument(parsed, xpath=True)
        summary = doc.summary(html_partial=True)
        if doc.pristine is None:
            raise ExtractError("readability did not read the page")
        title = title or get_title(doc.pristine)
        page = _indexed_page(doc.pristine)
        body = _article_html(summary, page, url, title)
    except ExtractError:
        raise
    except Exception as exc:  # readability/lxml raise many types; one boundary here
        raise ExtractError(f"could not extract an article from {url}: {exc}") from exc
    return Article(title=title, html=body, url=canonical or url)


class _KeepingDocument(Document):  # type: ignore[misc]
    """readability's Document, keeping a copy of its cleaned, XPath-marked page.

    ``summary`` cleans a fresh copy of the page, marks every element with its XPath,
    then rewrites that copy while scoring it. The first cleaned copy, copied before
    any rewriting, is the page as readability read it: ingestd takes the article's
    elements from there. (Asking readability for the title first would clean the
    page a second time just to get that copy: a fifth of extraction time.)
    """

    pristine: HtmlElement | None = None

    def _html(self, force: bool = False) -> HtmlElement:
        html = super()._html(force)
        if self.pristine is None:
            self.pristine = deepcopy(html)
        return html


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


def _indexed_page(root: HtmlElement) -> dict[str, HtmlElement]:
    """The page as readability parsed it, by each element's XPath."""
    return {el.get(_XPATH_ATTR): el for el in root.iter() if el.get(_XPATH_ATTR)}


def _article_html(summary: str, page: dict[str, HtmlElement], url: str, title: str) -> str:
    """The page's own elements that readability's summary was built from."""
    kept = lxml.html.fragment_fromstring(summary, create_parent="div")
    article = lxml.html.fragment_fromstring("<div></div>")
    for top in _summary_roots(kept):
        original = page.get(top.get(_XPATH_ATTR, ""))
        article.append(_cleaned_copy(original if original is not None else top))
    if not len(article):
        raise ExtractError("readability found no article")
    _drop_title_heading(article, title)
    _absolute_links(article, url)
    return _serialize(article)


def _serialize(article: HtmlElement) -> str:
    """HTML text of ``article`` with URLs as written.

    lxml's HTML serializer percent-encodes non-ASCII characters in ``href`` and
    ``src``; the XML serializer does not. Non-void elements get an explicit end
    tag so that an HTML parser reads the text back the same.
    """
    for el in article.iter():
        if isinstance(el.tag, str) and el.tag not in _VOID and el.text is None:
            el.text = ""
    return str(etree.tostring(article, method="xml", encoding="unicode"))


def _summary_roots(kept: HtmlElement) -> list[HtmlElement]:
    # The summary wraps what it kept in one or two new <div>s without an XPath.
    roots = [el for el in kept if isinstance(el.tag, str)]
    while len(roots) == 1 and roots[0].get(_XPATH_ATTR) is None and len(roots[0]):
        roots = [el for el in roots[0] if isinstance(el.tag, str)]
    return roots


def _cleaned_copy(element: HtmlElement) -> HtmlElement:
    """A copy of ``element`` without non-content parts or XPath marks."""
    copy = deepcopy(element)
    copy.tail = None
    for el in copy.xpath(_NEVER_CONTENT):
        el.drop_tree()
    for el in list(copy.iter()):
        if el is not copy and _WIDGET.search(f"{el.get('class', '')} {el.get('id', '')}"):
            el.drop_tree()
    for el in copy.iter():
        el.attrib.pop(_XPATH_ATTR, None)
    if _WIDGET.search(f"{copy.get('class', '')} {copy.get('id', '')}"):
        copy.clear()
    return copy


def _drop_title_heading(article: HtmlElement, title: str) -> None:
    # When the article container is picked whole, it opens with the headline,
    # which repeats the title (that often adds " | Site"): it is not body text.
    for heading in article.iter("h1", "h2"):
        text = " ".join(heading.text_content().split())
        before = heading.xpath("preceding::text()")
        if text and text in " ".join(title.split()) and not "".join(before).strip():
            heading.drop_tree()
        return


def _absolute_links(article: HtmlElement, url: str) -> None:
    # urljoin keeps the characters as written (lxml's resolver would percent-encode).
    for tag, attr in _LINK_ATTRS:
        for el in article.iter(tag):
            value = el.get(attr)
            if value is not None:
                el.set(attr, urljoin(url, value))


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "ascii": "utf-8",
}


def decode_page(content: bytes, content_type: str) -> str:
    """Bytes of an HTML page -> text, trusting whichever declared charset really fits.

    Pages often declare one charset in the header and another in a meta tag (or
    lie in both). Each candidate is tried strictly; the first that decodes the
    bytes without error wins, and UTF-8 with replacement is the last resort.
    """
    candidates = []
    header = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", content_type, re.I)
    if header:
        candidates.append(header.group(1))
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "gb18030", "big5hkscs"]
    if content.startswith(b"\xef\xbb\xbf"):
        candidates.insert(0, "utf-8-sig")
    for name in candidates:
        codec = _SUPERSETS.get(name.lower(), name)
        try:
            return content.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", errors="replace")
