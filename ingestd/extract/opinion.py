"""A second opinion on where the article is: trafilatura's text, read back onto the page. Pure.

trafilatura finds main text by other means than readability (known content
containers, text density, its own fallbacks) and writes it out as new markup. Only
its text is used here: each text block of the page (an element that holds text of
its own, its inline children included) is in trafilatura's article when that text,
whitespace aside, occurs in trafilatura's output.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml.html import HtmlElement

# Elements whose text belongs to the block around them.
INLINE = frozenset(
    {
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "big",
        "cite",
        "code",
        "data",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "ins",
        "kbd",
        "label",
        "mark",
        "nobr",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
        "br",
        "img",
    }
)
_SKIPPED = frozenset({"script", "style", "noscript", "template", "textarea", "select", "option"})


@dataclass(frozen=True)
class Block:
    """A page element that holds text of its own, with that text and its linked part."""

    element: HtmlElement
    text: str  # whitespace removed
    linked: int  # characters of ``text`` inside links


def page_blocks(page: HtmlElement) -> list[Block]:
    """The text blocks of the page's body, in document order."""
    root = page.find("body")
    if root is None:
        root = page
    texts: dict[HtmlElement, list[str]] = {}
    linked: dict[HtmlElement, int] = {}
    order: list[HtmlElement] = []
    _collect(root, root, False, texts, linked, order)
    blocks = []
    for el in order:
        text = "".join("".join(texts[el]).split())
        if text:
            blocks.append(Block(el, text, linked[el]))
    return blocks


def _collect(
    el: HtmlElement,
    block: HtmlElement,
    in_link: bool,
    texts: dict[HtmlElement, list[str]],
    linked: dict[HtmlElement, int],
    order: list[HtmlElement],
) -> None:
    if el.tag not in INLINE or el is block:
        block = el
    if block not in texts:
        texts[block] = []
        linked[block] = 0
        order.append(block)
    in_link = in_link or el.tag == "a"
    _add(el.text, block, in_link, texts, linked)
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIPPED:
            _collect(child, block, in_link, texts, linked, order)
        _add(child.tail, block, in_link, texts, linked)


def _add(
    text: str | None,
    block: HtmlElement,
    in_link: bool,
    texts: dict[HtmlElement, list[str]],
    linked: dict[HtmlElement, int],
) -> None:
    if text:
        texts[block].append(text)
        if in_link:
            linked[block] += len("".join(text.split()))


def trafilatura_text(page: HtmlElement) -> str:
    """The main text trafilatura finds in ``page`` (it works on its own copy), no whitespace."""
    # Loaded on first use: a worker that only renders feed items never pays for it
    # (0.2 s and 10 MB).
    import trafilatura

    try:
        text = trafilatura.extract(page, output_format="txt", include_comments=False) or ""
    except Exception:  # a second opinion that fails is no opinion: readability's stands
        return ""
    return "".join(text.split())
