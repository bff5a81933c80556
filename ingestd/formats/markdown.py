"""HTML -> markdown in the conventions of the format-B archive.

The conventions, read off the real archive files:

- blocks (paragraphs, headings, lists, rules, quotes, code) are separated by one
  blank line; an empty ``<p>`` is an empty block, so it shows as extra blank lines;
- inside a paragraph, ``<br>`` is a plain ``\\n`` (no trailing spaces, no
  backslash), so a paragraph's lines are kept as they were;
- non-breaking spaces at the start or end of a line are written as plain
  spaces: ``<p>&nbsp;</p>`` becomes a line holding a single space;
- a whitespace-only line at the edge of a paragraph already separates it from
  an adjacent heading, list or rule, so no extra blank line is added there;
- ``**bold**``, ``*emphasis*``, `` `code` ``, ``[text](href "title")``,
  ``![alt](src "title")`` with a caption following the image directly;
- headings as ``#`` to ``######``; rules as ``* * *``; ``-`` bullets,
  ``1.`` numbers; quotes with ``>``; preformatted text indented by four spaces;
- text is written as it is, except ``_``, which is escaped as ``\\_``; in URLs
  ``&`` is written ``&amp;``, as the archiver copied attribute values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

NBSP = "\xa0"
#: Elements nested deeper than this keep their text, not their markup.
MAX_DEPTH = 64
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Whitespace that HTML collapses; at the ends of a line it is source layout.
# (A non-breaking space is not layout: it is the archive's written space.)
_LAYOUT = " \t\r\n"

_CONTAINERS = frozenset(
    {"div", "article", "section", "main", "body", "html", "header", "footer", "aside", "span"}
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCK_TAGS = frozenset(
    {"p", "ul", "ol", "hr", "pre", "blockquote", "figure", "table", "div", "section", "article"}
    | set(_HEADINGS)
)


@dataclass(frozen=True)
class _Block:
    """One converted block: its kind decides how it is joined to its neighbours."""

    kind: str
    text: str


def html_to_markdown(html: str) -> str:
    """Convert an article's HTML to format-B markdown (no trailing newline)."""
    if not html.strip():
        return ""
    # lxml refuses control characters; extraction writes U+FFFD for them too.
    html = _NOT_XML.sub("\ufffd", html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, AssertionError, IndexError):
        # Nothing but a doctype or processing instruction, or a whole document
        # without a body (lxml asserts there is one): no article text to convert.
        return ""
    _flatten_below(root, MAX_DEPTH)
    return _join_blocks(_blocks_of(root))


def _flatten_below(root: HtmlElement, depth: int) -> None:
    """Keep only the text of elements nested deeper than ``depth``.

    The converter recurses per level; a hostile page of thousands of nested ``<b>``
    would otherwise end in RecursionError.
    """
    level = [root]
    for _ in range(depth):
        level = [child for element in level for child in element]
        if not level:
            return
    for element in level:
        lxml.etree.strip_tags(element, "*")


# --- blocks -----------------------------------------------------------------


def _blocks_of(container: HtmlElement) -> list[_Block]:
    """The blocks inside a container; loose inline content becomes a paragraph."""
    blocks: list[_Block] = []
    loose: list[HtmlElement | str] = []
    if container.text and container.text.strip():
        loose.append(container.text)
    for child in container:
        if not isinstance(child.tag, str):  # comments, processing instructions
            _tail_into(child, loose)
            continue
        if _is_block(child):
            _flush_loose(loose, blocks)
            blocks.extend(_block(child))
        else:
            loose.append(child)
        _tail_into(child, loose)
    _flush_loose(loose, blocks)
    return blocks


def _tail_into(child: HtmlElement, loose: list[HtmlElement | str]) -> None:
    # Whitespace between blocks is layout; between inline elements it is a space.
    if child.tail and (loose or child.tail.strip()):
        loose.append(child.tail)


def _flush_loose(loose: list[HtmlElement | str], blocks: list[_Block]) -> None:
    # Text and inline elements sitting directly in a container read as a paragraph.
    while loose and isinstance(loose[-1], str) and not loose[-1].strip():
        loose.pop()
    if loose:
        blocks.append(_Block("p", _paragraph_lines(_inline_parts(loose))))
        loose.clear()


def _is_block(el: HtmlElement) -> bool:
    return el.tag in _BLOCK_TAGS or el.tag in _CONTAINERS and _has_block_child(el)


def _has_block_child(el: HtmlElement) -> bool:
    return any(isinstance(c.tag, str) and _is_block(c) for c in el)


def _block(el: HtmlElement) -> list[_Block]:
    """Convert one block-level element."""
    tag = el.tag
    if tag in _HEADINGS:
        return [_heading(el, _HEADINGS[tag])]
    handler = _BLOCK_HANDLERS.get(tag)
    if handler is not None:
        return [handler(el)]
    return _blocks_of(el)


def _paragraph(el: HtmlElement) -> _Block:
    return _Block("p", _paragraph_lines(_inline(el)))


def _heading(el: HtmlElement, level: int) -> _Block:
    text = _inline(el).strip(_LAYOUT)
    return _Block("h", "#" * level + (" " + text if text else ""))


def _rule(el: HtmlElement) -> _Block:
    return _Block("hr", "* * *")


def _list(el: HtmlElement) -> _Block:
    items = [c for c in el if isinstance(c.tag, str) and c.tag == "li"]
    start = _int_attr(el, "start", 1)
    rendered: list[str] = []
    loose = False
    for number, item in enumerate(items, start):
        marker = f"{number}. " if el.tag == "ol" else "- "
        body, has_blocks = _list_item(item)
        loose = loose or has_blocks
        rendered.append(_indent(body, marker, " " * len(marker)))
    # A list whose items hold blocks (paragraphs, code) was written loose.
    return _Block("list", ("\n\n" if loose else "\n").join(rendered))


def _list_item(item: HtmlElement) -> tuple[str, bool]:
    if _has_block_child(item):
        return _join_blocks(_blocks_of(item)), True
    return _paragraph_lines(_inline(item)), False


def _quote(el: HtmlElement) -> _Block:
    body = _join_blocks(_blocks_of(el))
    return _Block("quote", _indent(body, "> ", "> ", blank=">"))


def _code(el: HtmlElement) -> _Block:
    text = el.text_content()
    if text.endswith("\n"):
        text = text[:-1]
    return _Block("code", _indent(text, "    ", "    ", blank=""))


def _figure(el: HtmlElement) -> _Block:
    # The lead image and its caption: the caption text follows the image directly.
    return _Block("p", _paragraph_lines(_inline(el)))


_BLOCK_HANDLERS: dict[str, Callable[[HtmlElement], _Block]] = {
    "p": _paragraph,
    "hr": _rule,
    "ul": _list,
    "ol": _list,
    "blockquote": _quote,
    "pre": _code,
    "figure": _figure,
}


def _indent(text: str, first: str, rest: str, blank: str | None = None) -> str:
    lines = text.split("\n")
    out = [first + lines[0]]
    for line in lines[1:]:
        out.append(rest + line if line else blank or "")
    return "\n".join(out)


def _int_attr(el: HtmlElement, name: str, default: int) -> int:
    try:
        return int(el.get(name, default))
    except ValueError:
        return default


def _join_blocks(blocks: list[_Block]) -> str:
    """Join blocks with one blank line, except where a whitespace line already separates."""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            out.append(_separator(blocks[i - 1], block))
        out.append(block.text)
    return "".join(out)


def _separator(prev: _Block, nxt: _Block) -> str:
    # Two paragraphs always need the blank line, or they would read as one.
    if prev.kind == "p" and nxt.kind == "p":
        return "\n\n"
    last = prev.text.rsplit("\n", 1)[-1] if prev.kind == "p" else ""
    first = nxt.text.split("\n", 1)[0] if nxt.kind == "p" else ""
    # A whitespace-only line at a paragraph's edge is itself the separating line.
    if _is_blank_line(last) or _is_blank_line(first):
        return "\n"
    # Images sit directly under headings and rules, and directly above rules and
    # lists: the archive kept figure blocks on the next line.
    if _IMAGE_LAST.search(last) and nxt.kind in ("hr", "list"):
        return "\n"
    if _IMAGE_FIRST.match(first) and prev.kind in ("h", "hr"):
        return "\n"
    return "\n\n"


_IMAGE_LAST = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\) *$")
_IMAGE_FIRST = re.compile(r" *!\[")


def _is_blank_line(line: str) -> bool:
    return bool(line) and not line.strip(" ")


# --- inline -----------------------------------------------------------------


def _inline(el: HtmlElement) -> str:
    """The markdown of an element's content, read as inline text."""
    parts: list[HtmlElement | str] = []
    if el.text:
        parts.append(el.text)
    for child in el:
        parts.append(child)
        if child.tail:
            parts.append(child.tail)
    return _inline_parts(parts)


def _inline_parts(parts: list[HtmlElement | str]) -> str:
    out: list[str] = []
    after_break = True
    for part in parts:
        if isinstance(part, str):
            out.append(_text(part, after_break))
            after_break = False
            continue
        out.append(_inline_element(part))
        after_break = isinstance(part.tag, str) and part.tag == "br"
    return "".join(out)


def _text(text: str, after_break: bool) -> str:
    # A newline in HTML text is source layout: the one right after a <br> (or at
    # the start of a block) goes; any other reads as a space.
    if after_break and text.startswith("\n"):
        text = text[1:]
    return _BARE_URL_OR_UNDERSCORE.sub(_escape_underscore, _SOURCE_NEWLINE.sub(" ", text))


_SOURCE_NEWLINE = re.compile(r"[ \t]*\r?\n[ \t]*")


# A bare URL keeps its underscores (escaping them would change the address).
_BARE_URL_OR_UNDERSCORE = re.compile(r"https?://[^\s<>]+|_")


def _escape_underscore(match: re.Match[str]) -> str:
    return "\\_" if match.group() == "_" else match.group()


def _inline_element(el: HtmlElement) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    handler = _INLINE_HANDLERS.get(tag)
    if handler is not None:
        return handler(el)
    return _inline(el)


def _wrap(mark: str) -> Callable[[HtmlElement], str]:
    def render(el: HtmlElement) -> str:
        inner = _inline(el)
        return f"{mark}{inner}{mark}" if inner else ""

    return render


def _link(el: HtmlElement) -> str:
    href = el.get("href")
    if href is None:
        return _inline(el)
    return f"[{_inline(el)}]({_url(href)}{_title(el)})"


def _image(el: HtmlElement) -> str:
    src = el.get("src", "")
    return f"![{el.get('alt', '')}]({_url(src)}{_title(el)})"


def _code_span(el: HtmlElement) -> str:
    return f"`{el.text_content()}`"


def _url(url: str) -> str:
    return url.replace("&", "&amp;")


def _title(el: HtmlElement) -> str:
    title = el.get("title")
    return f' "{title}"' if title else ""


_INLINE_HANDLERS: dict[str, Callable[[HtmlElement], str]] = {
    "br": lambda el: "\n",
    "strong": _wrap("**"),
    "b": _wrap("**"),
    "em": _wrap("*"),
    "i": _wrap("*"),
    "code": _code_span,
    "a": _link,
    "img": _image,
    "script": lambda el: "",
    "style": lambda el: "",
}


def _paragraph_lines(text: str) -> str:
    """Each line without layout whitespace at its ends, edge nbsp as plain spaces."""
    return "\n".join(_edge_spaces(line.strip(_LAYOUT)) for line in text.split("\n"))


def _edge_spaces(line: str) -> str:
    core = line.strip(NBSP)
    if not core:
        return " " * len(line)
    lead = len(line) - len(line.lstrip(NBSP))
    trail = len(line) - len(line.rstrip(NBSP))
    return " " * lead + core + " " * trail
