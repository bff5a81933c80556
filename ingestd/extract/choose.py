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
# Page furniture by its tag: comes back only if readability kept it.
_FURNITURE_TAGS = frozenset({"header", "footer", "nav", "aside", "form"})
_MIN_TEXT = 25
_SHORT_LIST = (
    200  # characters: a handful of links  # readability's shortest paragraph worth scoring
)


@dataclass(frozen=True)
class Selection:
    """The article: page elements to copy, and inside them the ones to leave out."""

    roots: tuple[HtmlElement, ...]
    leave_out: frozenset[str]


OPEN, WHOLE, DROP, LINKS = "open", "whole", "drop", "links"


@dataclass
class _Judge:
    """Walks readability's roots and decides, element by element, what stays."""

    view: ReadabilityView
    kept: frozenset[str]
    shortest: int = _MIN_TEXT
    leave_out: set[str] = field(default_factory=set)
    link_lists: list[tuple[str, int]] = field(default_factory=list)

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
            self.link_lists.append((x, text_length(el)))
        return verdict

    def verdict(self, el: HtmlElement) -> str:
        """OPEN (keep, judge its children), WHOLE (keep all), DROP, or LINKS (see select)."""
        x = el.get(XPATH_ATTR)
        names = f"{el.get('class', '')} {el.get('id', '')}"
        if _WIDGET.search(names) and text_length(el) <= _WIDGET_LENGTH:
            return DROP
        if x in self.kept:
            return OPEN
        if _named_furniture(names):
            return DROP
        if el.tag in _HEADINGS:
            return WHOLE
        length = text_length(el)
        if not length:
            tags = {d.tag for d in el.iter() if isinstance(d.tag, str)}
            lone = tags <= _STRUCTURE and sum(1 for _ in el.iter("img")) <= 1
            return WHOLE if lone else DROP
        if x not in self.view.selected or el.tag in _FURNITURE_TAGS:
            return DROP  # removed before choosing (by its name), or page furniture
        density = _link_density(el, length)
        if el.tag in _TEXT_BLOCKS:
            return WHOLE
        if el.tag in _LISTS:
            return LINKS if density > 0.5 else WHOLE
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
    body = _length(view.roots, judge.leave_out)
    if body < _MIN_TEXT:
        judge = _walk(_Judge(view, view.kept | with_ancestors(view.scored), shortest=1))
        body = _length(view.roots, judge.leave_out)
    for x, length in judge.link_lists:
        if length <= _SHORT_LIST:
            judge.leave_out.discard(x)
    roots = tuple(r for r in view.roots if r.get(XPATH_ATTR) not in judge.leave_out)
    return Selection(roots, frozenset(judge.leave_out))


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


def _named_furniture(names: str) -> bool:
    # readability's own lists of class and id words for comments, footers, widgets.
    if REGEXES["negativeRe"].search(names):
        return True
    return bool(
        REGEXES["unlikelyCandidatesRe"].search(names)
        and not REGEXES["okMaybeItsACandidateRe"].search(names)
    )


def _link_density(el: HtmlElement, length: int) -> float:
    linked = sum(text_length(a) for a in el.iter("a"))
    return linked / max(length, 1)
