"""Which of the page's elements are the article. Pure.

readability chose the article's containers (its roots) and, inside them, pruned
what it judged furniture. ingestd keeps that pruning but gives back what an
archive wants and readability's summary throws away: headings, the lists and
paragraphs of the text itself, line breaks, rules, empty paragraphs and lone
images. Elements whose class or id names them furniture (readability's own word
lists) never come back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml.html import HtmlElement
from readability.readability import REGEXES

from ingestd.extract.readable import XPATH_ATTR, ReadabilityView, with_ancestors
from ingestd.extract.render import text_length

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TEXT_BLOCKS = frozenset({"p", "blockquote", "pre"})
_LISTS = frozenset({"ul", "ol", "dl"})
# Elements that hold no text and may come back whole: structure and a lone image.
_STRUCTURE = frozenset(
    {
        "br",
        "hr",
        "p",
        "div",
        "span",
        "figure",
        "picture",
        "img",
        "source",
        "a",
        "center",
        "ul",
        "ol",
        "li",
    }
)
# Short widgets that sit inside article containers on real sites but are not the text.
_WIDGET = re.compile(
    r"\b(share|sharing|social|byline|entry-meta|post-meta|newsletter|advert)\b", re.I
)
_WIDGET_LENGTH = 200
_IMAGE_HOLDERS = frozenset({"p", "figure", "picture"})
# Page furniture by its tag: comes back only if readability kept it.
_FURNITURE_TAGS = frozenset({"header", "footer", "nav", "aside", "form"})
_MIN_TEXT = 25  # readability's shortest paragraph worth scoring
_SHORT_LIST = 200  # characters: a handful of links


@dataclass(frozen=True)
class Selection:
    """The article: page elements to copy, and inside them the ones to leave out."""

    roots: tuple[HtmlElement, ...]
    leave_out: frozenset[str]
    navigation: frozenset[str] = frozenset()  # left out as lists of links


OPEN, WHOLE, DROP, LINKS = "open", "whole", "drop", "links"


@dataclass
class _Judge:
    """Walks readability's roots and decides, element by element, what stays."""

    view: ReadabilityView
    kept: frozenset[str]
    shortest: int = _MIN_TEXT
    leave_out: set[str] = field(default_factory=set)
    navigation: set[str] = field(default_factory=set)

    def prune(self, el: HtmlElement) -> None:
        for child in el:
            if isinstance(child.tag, str):
                self.judge(child)

    def judge(self, el: HtmlElement) -> str:
        verdict = self.verdict(el)
        x = el.get(XPATH_ATTR)
        if verdict == OPEN:
            self.prune(el)
        elif verdict == DROP:
            self.leave_out.add(x)
        elif verdict == LINKS:
            self.leave_out.add(x)
            self.navigation.add(x)
        return verdict

    def verdict(self, el: HtmlElement) -> str:
        """OPEN (keep, judge its children), WHOLE (keep all), DROP, or LINKS (navigation)."""
        x = el.get(XPATH_ATTR)
        if widget(el):
            return DROP
        if x in self.kept:
            return OPEN
        if furniture_names(el):
            return DROP
        if el.tag in _HEADINGS:
            return WHOLE
        length = text_length(el)
        if not length:
            return WHOLE if lone_structure(el) else DROP
        if x not in self.view.selected or el.tag in _FURNITURE_TAGS:
            return DROP  # removed before choosing (by its name), or page furniture
        if el.tag in _TEXT_BLOCKS:
            return WHOLE
        density = _link_density(el, length)
        if el.tag in _LISTS:
            # A few links closing the text belong to it; a long list is navigation.
            return LINKS if density > 0.5 and length > _SHORT_LIST else WHOLE
        # A container with a paragraph's worth of text that is not mostly links.
        return OPEN if density <= 0.25 and length >= self.shortest else DROP


def select(view: ReadabilityView) -> Selection:
    """The article readability found, with what it pruned but an archive keeps.

    A list that is mostly links comes back only when it is short (a few links
    closing the text); longer, it is navigation or related stories. When
    readability's cleanup left no body text at all, it threw the article away with
    the furniture (a post with more images or links than paragraphs): then the
    containers it had scored for their paragraphs count as kept, and a short
    container comes back too.
    """
    judge = _walk(_Judge(view, view.kept))
    if _length(view.roots, judge.leave_out) < _MIN_TEXT:
        judge = _walk(_Judge(view, view.kept | with_ancestors(view.scored), shortest=1))
    roots = tuple(r for r in view.roots if r.get(XPATH_ATTR) not in judge.leave_out)
    return Selection(roots, frozenset(judge.leave_out), frozenset(judge.navigation))


def _walk(judge: _Judge) -> _Judge:
    for root in judge.view.roots:
        judge.judge(root)
    return judge


def _length(roots: tuple[HtmlElement, ...], leave_out: set[str]) -> int:
    """Characters of body text in ``roots``: headings do not count (the headline)."""
    return sum(
        _body_length(root, leave_out) for root in roots if root.get(XPATH_ATTR) not in leave_out
    )


def _body_length(el: HtmlElement, leave_out: set[str]) -> int:
    total = len("".join((el.text or "").split()))
    for child in el:
        counted = isinstance(child.tag, str) and child.tag not in _HEADINGS
        if counted and child.get(XPATH_ATTR) not in leave_out:
            total += _body_length(child, leave_out)
        total += len("".join((child.tail or "").split()))
    return total


def widget(el: HtmlElement) -> bool:
    """True for a short share bar, byline or newsletter box (by its class or id)."""
    names = f"{el.get('class', '')} {el.get('id', '')}"
    return bool(_WIDGET.search(names)) and text_length(el) <= _WIDGET_LENGTH


def lone_structure(el: HtmlElement) -> bool:
    """True for a text-less element of structure and one image (any number in a p)."""
    if text_length(el):
        return False
    tags = {d.tag for d in el.iter() if isinstance(d.tag, str)}
    if not tags <= _STRUCTURE:
        return False
    # A paragraph or figure of images is the page's own; a box of icons is not.
    return el.tag in _IMAGE_HOLDERS or sum(1 for _ in el.iter("img")) <= 1


def furniture_names(el: HtmlElement) -> bool:
    """True when the class or id names furniture in readability's own word lists."""
    names = f"{el.get('class', '')} {el.get('id', '')}"
    if REGEXES["negativeRe"].search(names):
        return True
    return bool(
        REGEXES["unlikelyCandidatesRe"].search(names)
        and not REGEXES["okMaybeItsACandidateRe"].search(names)
    )


def _link_density(el: HtmlElement, length: int) -> float:
    linked = sum(text_length(a) for a in el.iter("a"))
    return linked / max(length, 1)
