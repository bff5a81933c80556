"""The chosen page elements -> the article's HTML, as the page wrote it. Pure.

The article is made of copies of the page's own elements: links made absolute
(kept as written, not percent-encoded), the headline that repeats the title left
out, and never anything that could run or that is a form control.
"""

from __future__ import annotations

import re
from copy import deepcopy
from urllib.parse import urljoin

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from ingestd.extract.readable import LINK_ATTRS, RAW_LINK_ATTR, XPATH_ATTR

# Never article text, wherever it sits: code, embeds and form controls.
NEVER_CONTENT = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "textarea",
        "input",
        "button",
        "select",
        "option",
        "iframe",
        "frame",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "link",
        "meta",
        "base",
    }
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


def article_html(roots: list[HtmlElement], leave_out: frozenset[str], url: str, title: str) -> str:
    """HTML of copies of ``roots`` without the elements whose XPath is in ``leave_out``."""
    article = lxml.html.fragment_fromstring("<div></div>")
    for root in roots:
        copy = _copy_without(root, leave_out)
        if copy is not None:
            article.append(copy)
    _drop_title_heading(article, title)
    _absolute_links(article, url)
    return _serialize(article)


def _copy_without(root: HtmlElement, leave_out: frozenset[str]) -> HtmlElement | None:
    if not isinstance(root.tag, str) or root.tag in NEVER_CONTENT:
        return None
    copy = deepcopy(root)
    copy.tail = None
    if copy.tag in ("html", "body"):
        copy.tag = "div"  # readability found nothing smaller than the whole page
    doomed = [
        el
        for el in copy.iterdescendants()
        if not isinstance(el.tag, str) or el.tag in NEVER_CONTENT or el.get(XPATH_ATTR) in leave_out
    ]
    for el in doomed:
        if el.getparent() is not None:
            el.drop_tree()  # keeps its tail: text that follows belongs to the parent
    for el in copy.iter():
        el.attrib.pop(XPATH_ATTR, None)
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
    for tag, attr in LINK_ATTRS:
        for el in article.iter(tag):
            value = el.get(attr)
            raw = el.attrib.pop(RAW_LINK_ATTR, None)
            if raw is not None and value is not None and raw.strip() == value:
                value = raw  # cleaning only stripped it: the page's own value
            if value is not None:
                el.set(attr, urljoin(url, value))


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


def text_length(el: HtmlElement) -> int:
    """Characters of text in ``el``, whitespace not counted."""
    return len(re.sub(r"\s+", "", el.text_content()))
