"""When trafilatura sees more of the article than readability did, take it too. Pure.

readability's usual failure is to choose too little: one section of an article
split over several containers, or a teaser block beside the real text. trafilatura
(``opinion``) finds main text by other means and then holds the same text and more.
Its text is mapped onto the page's own text blocks (``opinion.page_blocks``), and:

* if trafilatura's article holds most (60%) of the text of readability's choice, and
  its blocks outside that choice add at least 30% more text (and 100 characters,
  headings not counted), those blocks join the article;
* if it holds less than that, readability's choice stands unless trafilatura's
  article is over three times longer: then trafilatura's blocks are the article;
* a block joins only if it is not mostly links, lies in no ``nav``, ``aside``,
  ``footer`` or short widget, and is in no list ingestd judged navigation.

The article stays the page's own elements: the smallest element holding
readability's choice (as ``choose`` made it) and the joining blocks, with the
elements that lead to them and text-less structure (images) kept, and any other
text inside left out. trafilatura costs about as much as readability, so it is only
asked when the page holds enough text outside readability's choice for the rule to
change anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml.html import HtmlElement

from ingestd.extract.choose import Selection, lone_structure, widget
from ingestd.extract.opinion import INLINE, Block
from ingestd.extract.readable import XPATH_ATTR

_AGREE = 0.6  # share of readability's text trafilatura must hold to join it
_MORE = 0.3  # trafilatura must add this share of readability's text...
_LEAST = 100  # ...and at least this many characters (whitespace aside)
_MIN_MATCH = 8  # shorter blocks could be found in trafilatura's text by chance
_REPLACE = 3  # when they disagree, trafilatura's article must be this many times longer
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_FURNITURE_TAGS = frozenset({"nav", "aside", "footer"})


def widen(chosen: Selection, blocks: list[Block], opinion: Callable[[], str]) -> Selection:
    """``chosen`` with the blocks trafilatura adds, when the rule above says so.

    ``opinion`` gives trafilatura's text (whitespace removed); it is asked for only
    when the page holds enough text outside readability's choice for the rule to
    change anything, since it costs about as much as readability itself.
    """
    inside = _inside(chosen.roots, chosen.leave_out)
    ours = [b for b in blocks if b.element.get(XPATH_ATTR) in inside]
    ours_length = sum(len(b.text) for b in ours)
    barred = _furniture(blocks[0].element.getroottree().getroot() if blocks else None)
    barred |= _inside(_elements(blocks, chosen.navigation), frozenset())
    eligible = [
        b
        for b in blocks
        if len(b.text) >= _MIN_MATCH
        and b.linked * 2 <= len(b.text)
        and b.element.get(XPATH_ATTR) not in barred
    ]
    if not _could_change(eligible, inside, ours_length):
        return chosen
    text = opinion()
    if not text:
        return chosen
    agreed = sum(len(b.text) for b in ours if b.text in text)
    welcome = [b for b in eligible if b.text in text]
    theirs = [b for b in welcome if b.element.get(XPATH_ATTR) not in inside]
    if not theirs:
        return chosen
    if agreed >= _AGREE * ours_length:
        if _added(theirs) >= max(_MORE * ours_length, _LEAST):
            return _joined(chosen, [b.element for b in theirs])
        return chosen
    if ours_length * _REPLACE < sum(len(b.text) for b in welcome):
        return _joined(Selection((), frozenset()), [b.element for b in welcome])
    return chosen


def _added(blocks: list[Block]) -> int:
    # Headings alone (the headline) never make a case for more text.
    return sum(len(b.text) for b in blocks if b.element.tag not in _HEADINGS)


def _could_change(eligible: list[Block], inside: set[str], ours_length: int) -> bool:
    """Whether some opinion could join or replace: trafilatura only ever narrows these."""
    outside = [b for b in eligible if b.element.get(XPATH_ATTR) not in inside]
    if outside and _added(outside) >= max(_MORE * ours_length, _LEAST):
        return True
    return ours_length * _REPLACE < sum(len(b.text) for b in eligible)


def _inside(roots: Iterable[HtmlElement], leave_out: frozenset[str]) -> set[str]:
    """XPaths of ``roots`` and everything in them but the ``leave_out`` subtrees."""
    found: set[str] = set()
    stack = [r for r in roots if r.get(XPATH_ATTR) not in leave_out]
    while stack:
        el = stack.pop()
        found.add(el.get(XPATH_ATTR))
        stack.extend(c for c in el if isinstance(c.tag, str) and c.get(XPATH_ATTR) not in leave_out)
    return found


def _elements(blocks: list[Block], xpaths: frozenset[str]) -> list[HtmlElement]:
    if not xpaths or not blocks:
        return []
    root = blocks[0].element.getroottree().getroot()
    return [el for el in root.iter() if el.get(XPATH_ATTR) in xpaths]


def _furniture(root: HtmlElement | None) -> set[str]:
    """XPaths of everything inside ``nav``, ``aside``, ``footer`` or a short widget."""
    if root is None:
        return set()
    tops = [
        el
        for el in root.iter()
        if isinstance(el.tag, str) and (el.tag in _FURNITURE_TAGS or widget(el))
    ]
    return _inside(tops, frozenset())


def _joined(chosen: Selection, extra: list[HtmlElement]) -> Selection:
    """One root holding readability's roots and ``extra``, and what to leave out in it."""
    top = _common_ancestor([*chosen.roots, *extra])
    roots = {el.get(XPATH_ATTR) for el in chosen.roots}
    blocks = {el.get(XPATH_ATTR) for el in extra}
    leading = set()
    for el in [*chosen.roots, *extra]:
        for above in el.iterancestors():
            if above is top:
                break
            leading.add(above.get(XPATH_ATTR))
    walk = _Walk(roots, blocks, leading, set(chosen.leave_out))
    # Parts of readability's choice it had left out but that hold joining blocks.
    for el in top.iter():
        x = el.get(XPATH_ATTR)
        if x in walk.leave_out and (x in leading or x in blocks):
            walk.leave_out.discard(x)
            walk.prune(el)
    if top.get(XPATH_ATTR) not in roots:
        walk.prune(top)
    return Selection((top,), frozenset(walk.leave_out))


@dataclass
class _Walk:
    roots: set[str]
    blocks: set[str]
    leading: set[str]
    leave_out: set[str]

    def prune(self, el: HtmlElement) -> None:
        in_block = el.get(XPATH_ATTR) in self.blocks
        for child in el:
            if not isinstance(child.tag, str):
                continue
            x = child.get(XPATH_ATTR)
            if x in self.roots or x in self.leave_out:
                continue  # readability's choice, judged already
            if x in self.leading or x in self.blocks:
                self.prune(child)
            elif not (in_block and child.tag in INLINE) and not lone_structure(child):
                self.leave_out.add(x)


def _common_ancestor(elements: list[HtmlElement]) -> HtmlElement:
    paths = [[*reversed(list(el.iterancestors())), el] for el in elements]
    common = paths[0][0]
    for depth in range(min(len(p) for p in paths)):
        node = paths[0][depth]
        if all(p[depth] is node for p in paths):
            common = node
        else:
            break
    return common
