"""What readability-lxml found in a page, as a set of the page's own elements. Pure.

readability's summary is a rewritten copy of the page: it turns ``<div>`` into
``<p>``, wraps loose text in new paragraphs, drops what it judges furniture, and
moves the blocks it merged (sibling segments of the best element, editorial leads)
into one new tree. Asked with ``xpath=True`` it marks every element of its cleaned
page with its XPath first, so the summary tells which of the page's elements it
kept. ``ReadabilityView`` holds that: the page as readability parsed and cleaned it
(before any rewriting), the XPaths the summary kept, and the elements the summary
was built from (its roots), in the summary's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import lxml.html
from lxml.html import HtmlElement
from readability import Document

XPATH_ATTR = "x"
# Where a link's value as the page wrote it waits out readability's cleaning.
RAW_LINK_ATTR = "data-ingestd-raw"
LINK_ATTRS = (("a", "href"), ("img", "src"), ("source", "src"), ("video", "src"))


@dataclass(frozen=True)
class ReadabilityView:
    """The page as readability read it, and which of its elements it chose and kept.

    ``selected`` is what readability chose as the article before its final cleanup
    (the best element with the siblings and segments it joined); ``kept`` is what
    the summary holds after that cleanup, with the ancestors of what it holds;
    ``scored`` the containers readability gave a positive score (paragraph holders);
    ``roots`` are the outermost page elements of the selection, in page order.
    """

    page: HtmlElement
    by_xpath: dict[str, HtmlElement]
    selected: frozenset[str]
    kept: frozenset[str]
    roots: tuple[HtmlElement, ...]
    scored: frozenset[str]


class _KeepingDocument(Document):  # type: ignore[misc]
    """readability's Document, keeping a copy of its cleaned, XPath-marked page.

    ``summary`` cleans a fresh copy of the page, marks every element with its XPath,
    then rewrites that copy while scoring it. The first cleaned copy, copied before
    any rewriting, is the page as readability read it. (Asking readability for the
    title first would clean the page a second time just to get that copy.)
    """

    pristine: HtmlElement | None = None
    selection: list[str] | None = None
    scored: list[str] | None = None

    def _html(self, force: bool = False) -> HtmlElement:
        html = super()._html(force)
        if self.pristine is None:
            self.pristine = deepcopy(html)
        return html

    def sanitize(self, node: HtmlElement, candidates: dict[HtmlElement, Any], *args: Any) -> str:
        # What readability chose, before its cleanup removes from it (the cleanup can
        # remove the whole of it: an article with more images than paragraphs), and
        # which containers it scored as holding paragraphs.
        self.selection = [x for el in node.iter() if (x := el.get(XPATH_ATTR))]
        self.scored = [
            x
            for el, found in candidates.items()
            if found["content_score"] > 0 and (x := el.get(XPATH_ATTR))
        ]
        return str(super().sanitize(node, candidates, *args))


def read(parsed: HtmlElement) -> ReadabilityView:
    """Run readability on the parsed page; raise ``ValueError`` if it read nothing.

    No URL is given to readability: lxml would percent-encode every link it made
    absolute, and ingestd resolves links itself, keeping them as written.
    """
    _keep_raw_links(parsed)
    doc = _KeepingDocument(parsed, xpath=True)
    summary = doc.summary(html_partial=True)
    if doc.pristine is None or doc.selection is None or doc.scored is None:
        raise ValueError("readability did not read the page")
    by_xpath = {el.get(XPATH_ATTR): el for el in doc.pristine.iter() if el.get(XPATH_ATTR)}
    # Parsed as a document: when readability found nothing better it returns the
    # page's <body>, which a fragment parser would drop.
    tree = lxml.html.document_fromstring(summary).body
    kept = with_ancestors(x for el in tree.iter() if (x := el.get(XPATH_ATTR)) in by_xpath)
    selected = [x for x in doc.selection if x in by_xpath]
    order = {x: i for i, x in enumerate(by_xpath)}
    roots = tuple(by_xpath[x] for x in sorted(_roots(selected), key=order.__getitem__))
    scored = frozenset(doc.scored) & frozenset(selected)
    return ReadabilityView(doc.pristine, by_xpath, frozenset(selected), kept, roots, scored)


def _keep_raw_links(parsed: HtmlElement) -> None:
    """Note each link whose value has edge whitespace, as the page wrote it.

    readability's cleaner strips every link (lxml's ``rewrite_links``); the archive
    keeps an address as the page wrote it, trailing space and all.
    """
    for tag, attr in LINK_ATTRS:
        for el in parsed.iter(tag):
            value = el.get(attr)
            if value is not None and value != value.strip():
                el.set(RAW_LINK_ATTR, value)


def _roots(selected: list[str]) -> list[str]:
    """The outermost elements of the selection.

    The selection lists elements in its own tree order; an element is a root unless
    it lies inside one listed before it. Segments readability moved into its best
    element are not inside it in the page, so they are roots of their own.
    """
    roots: list[str] = []
    for x in selected:
        if not any(is_inside(x, root) for root in roots):
            roots.append(x)
    return [x for x in roots if not any(is_inside(x, other) for other in roots)]


def with_ancestors(xpaths: Iterable[str]) -> frozenset[str]:
    """The XPaths ``xpaths`` and those of all their ancestors."""
    # The summary can lose an element while keeping its children (the <body> when
    # readability returns the whole page): the children's ancestors were kept too.
    out: set[str] = set()
    for x in xpaths:
        while x and x not in out:
            out.add(x)
            x = x.rpartition("/")[0]
    return frozenset(out)


def is_inside(xpath: str, ancestor: str) -> bool:
    """True when the element at ``xpath`` lies strictly inside the one at ``ancestor``."""
    return xpath.startswith(ancestor + "/")
