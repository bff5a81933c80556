"""HTML -> markdown in the conventions of the format-B archive.

The conventions, read off the real archive files (204 of them, 2021-09 to 2024-04):

- blocks (paragraphs, headings, lists, rules, quotes, code) are separated by one
  blank line; an empty ``<p>`` is an empty block, so it shows as extra blank lines;
- inside a paragraph or a heading, ``<br>`` is a plain ``\\n`` (no trailing spaces,
  no backslash), so a block's lines are kept as they were;
- non-breaking spaces at the start or end of a line are written as plain spaces
  (``<p>&nbsp;</p>`` becomes a line holding a single space); a heading's ``#`` is
  its first line's start, so ``<h1>&nbsp; x`` keeps its no-break space;
- ``**bold**``, ``*emphasis*``, `` `code` ``, ``[text](href "title")``,
  ``![alt](src "title")`` with a caption following the image directly;
- headings as ``#`` to ``######``; rules as ``* * *``; ``-`` bullets, ``1.``
  numbers; every quote line starts with ``> ``; preformatted text indented by four;
- text is written as the page had it: nothing is escaped but ``_`` (``\\_``). The
  backslashes seen in the archive (``图\\-95``, ``\\[通过\\]``) are the pages' own:
  the same file has ``[大陪审团]`` and ``\\[9500万美元的预算\\]``, the same sentence
  ``H-6`` and ``图\\-95``, so no escaping rule of a converter wrote them.

Two eras wrote differently (``MarkdownStyle``). 2021-22 (the seed's, the default):
``_`` escaped, ``&`` in URLs written ``&amp;`` as the archiver copied attribute
values, and a whitespace-only line or an image at a block's edge glued to the next
block with one line break. 2023-24: text, URLs and spaces as they are, no-break
spaces written as spaces, always an empty line between blocks.

The conventions are close to turndown's (``**``, ``* * *``, ``-``, ATX headings,
inline links) without its escaping; ingestd reproduces the archive, not a converter.

Why not a subclass of markdownify's ``MarkdownConverter`` (tried, 1.2.3): its
``process_tag`` caps the line breaks between blocks at two and drops whitespace-only
text beside blocks, and ``process_text`` collapses runs of spaces; neither is a hook.
So ``<p>A<br></p><p>B</p>`` gives ``A\\n\\nB`` (archive ``A\\n\\n\\nB``),
``<p>A</p><p></p><p>B</p>`` and ``<p>A</p><p>&nbsp;</p><p>B</p>`` give ``A\\n\\nB``
(archive ``A\\n\\n\\n\\nB`` and ``A\\n\\n \\n\\nB``), ``<h4>A<br>B</h4>`` gives
``#### A B``, ``<h1>&nbsp; Lead</h1>`` gives ``# Lead`` and ``<p>播  报</p>`` loses a
space. Making it exact means rewriting those two methods, the library's core, on
top of a second HTML parse (BeautifulSoup): more code than this module, not less.
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


@dataclass(frozen=True)
class MarkdownStyle:
    """What changed between the archive's eras in how it wrote text and URLs."""

    name: str
    #: ``_`` in text written ``\\_`` (2021-22); the later archiver wrote text as it was.
    escape_underscore: bool
    #: ``&`` in link and image URLs written ``&amp;`` (2021-22), or as it is (2023-24).
    url_amp: bool
    #: every non-breaking space written as a space (2023-24), or only at line edges.
    nbsp_to_space: bool
    #: a whitespace-only line or an image at a block's edge glued to the next block
    #: with one line break (2021-22); later, blocks always have an empty line between.
    glue_blocks: bool


#: The seed's era (2021-09 to 2022-05) and ingestd's default.
STYLE_2021 = MarkdownStyle(
    "2021", escape_underscore=True, url_amp=True, nbsp_to_space=False, glue_blocks=True
)
#: Files from 2023-03 on, whose source line starts with a UTC time stamp.
STYLE_2023 = MarkdownStyle(
    "2023", escape_underscore=False, url_amp=False, nbsp_to_space=True, glue_blocks=False
)
MARKDOWN_STYLES = {style.name: style for style in (STYLE_2021, STYLE_2023)}


def html_to_markdown(html: str, style: MarkdownStyle = STYLE_2021) -> str:
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
    markdown = _join_blocks(_Writer(style).blocks_of(root), style.glue_blocks)
    return markdown.replace(NBSP, " ") if style.nbsp_to_space else markdown


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


def _is_block(el: HtmlElement) -> bool:
    return el.tag in _BLOCK_TAGS or el.tag in _CONTAINERS and _has_block_child(el)


def _has_block_child(el: HtmlElement) -> bool:
    return any(isinstance(c.tag, str) and _is_block(c) for c in el)


def _tail_into(child: HtmlElement, loose: list[HtmlElement | str]) -> None:
    # Whitespace between blocks is layout; between inline elements it is a space.
    if child.tail and (loose or child.tail.strip()):
        loose.append(child.tail)


class _Writer:
    """One conversion in one era's style: blocks, then the inline text inside them."""

    def __init__(self, style: MarkdownStyle) -> None:
        self.style = style
        self._block_handlers: dict[str, Callable[[HtmlElement], _Block]] = {
            "p": self._paragraph,
            "hr": lambda el: _Block("hr", "* * *"),
            "ul": self._list,
            "ol": self._list,
            "blockquote": self._quote,
            "pre": _code,
            "figure": self._paragraph,  # the lead image, its caption following directly
        }
        self._inline_handlers: dict[str, Callable[[HtmlElement], str]] = {
            "br": lambda el: "\n",
            "strong": self._wrap("**"),
            "b": self._wrap("**"),
            "em": self._wrap("*"),
            "i": self._wrap("*"),
            "code": lambda el: f"`{el.text_content()}`",
            "a": self._link,
            "img": self._image,
            "script": lambda el: "",
            "style": lambda el: "",
        }

    # --- blocks -------------------------------------------------------------

    def blocks_of(self, container: HtmlElement) -> list[_Block]:
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
                self._flush_loose(loose, blocks)
                blocks.extend(self._block(child))
            else:
                loose.append(child)
            _tail_into(child, loose)
        self._flush_loose(loose, blocks)
        return blocks

    def _flush_loose(self, loose: list[HtmlElement | str], blocks: list[_Block]) -> None:
        # Text and inline elements sitting directly in a container read as a paragraph.
        while loose and isinstance(loose[-1], str) and not loose[-1].strip():
            loose.pop()
        if loose:
            blocks.append(_Block("p", _paragraph_lines(self._inline_parts(loose))))
            loose.clear()

    def _block(self, el: HtmlElement) -> list[_Block]:
        tag = el.tag
        if tag in _HEADINGS:
            return [self._heading(el, _HEADINGS[tag])]
        handler = self._block_handlers.get(tag)
        if handler is not None:
            return [handler(el)]
        return self.blocks_of(el)

    def _paragraph(self, el: HtmlElement) -> _Block:
        return _Block("p", _paragraph_lines(self.inline(el)))

    def _heading(self, el: HtmlElement, level: int) -> _Block:
        # A <br> in a heading is a line break in it, as in a paragraph; the edge rule
        # for no-break spaces applies to whole lines, and "#" is the first line's edge.
        lines = [line.strip(_LAYOUT) for line in self.inline(el).split("\n")]
        lines[0] = "#" * level + (" " + lines[0] if lines[0] else "")
        return _Block("h", "\n".join(_edge_spaces(line) for line in lines))

    def _list(self, el: HtmlElement) -> _Block:
        items = [c for c in el if isinstance(c.tag, str) and c.tag == "li"]
        start = _int_attr(el, "start", 1)
        rendered: list[str] = []
        loose = False
        for number, item in enumerate(items, start):
            marker = f"{number}. " if el.tag == "ol" else "- "
            body, has_blocks = self._list_item(item)
            loose = loose or has_blocks
            rendered.append(_indent(body, marker, " " * len(marker)))
        # A list whose items hold blocks (paragraphs, code) was written loose.
        return _Block("list", ("\n\n" if loose else "\n").join(rendered))

    def _list_item(self, item: HtmlElement) -> tuple[str, bool]:
        if _has_block_child(item):
            return _join_blocks(self.blocks_of(item), self.style.glue_blocks), True
        return _paragraph_lines(self.inline(item)), False

    def _quote(self, el: HtmlElement) -> _Block:
        body = _join_blocks(self.blocks_of(el), self.style.glue_blocks)
        return _Block("quote", _indent(body, "> ", "> ", blank="> "))

    # --- inline -------------------------------------------------------------

    def inline(self, el: HtmlElement) -> str:
        """The markdown of an element's content, read as inline text."""
        parts: list[HtmlElement | str] = []
        if el.text:
            parts.append(el.text)
        for child in el:
            parts.append(child)
            if child.tail:
                parts.append(child.tail)
        return self._inline_parts(parts)

    def _inline_parts(self, parts: list[HtmlElement | str]) -> str:
        out: list[str] = []
        after_break = True
        for part in parts:
            if isinstance(part, str):
                out.append(self._text(part, after_break))
                after_break = False
                continue
            out.append(self._inline_element(part))
            after_break = isinstance(part.tag, str) and part.tag == "br"
        return "".join(out)

    def _text(self, text: str, after_break: bool) -> str:
        # A newline in HTML text is source layout: the one right after a <br> (or at
        # the start of a block) goes; any other reads as a space.
        if after_break and text.startswith("\n"):
            text = text[1:]
        text = _SOURCE_NEWLINE.sub(" ", text)
        if self.style.escape_underscore:
            text = _BARE_URL_OR_UNDERSCORE.sub(_escape_underscore, text)
        return text

    def _inline_element(self, el: HtmlElement) -> str:
        tag = el.tag
        if not isinstance(tag, str):
            return ""
        handler = self._inline_handlers.get(tag)
        if handler is not None:
            return handler(el)
        return self.inline(el)

    def _wrap(self, mark: str) -> Callable[[HtmlElement], str]:
        def render(el: HtmlElement) -> str:
            inner = self.inline(el)
            return f"{mark}{inner}{mark}" if inner else ""

        return render

    def _link(self, el: HtmlElement) -> str:
        href = el.get("href")
        if href is None:
            return self.inline(el)
        return f"[{self.inline(el)}]({self._url(href)}{_title(el)})"

    def _image(self, el: HtmlElement) -> str:
        return f"![{el.get('alt', '')}]({self._url(el.get('src', ''))}{_title(el)})"

    def _url(self, url: str) -> str:
        return url.replace("&", "&amp;") if self.style.url_amp else url


def _code(el: HtmlElement) -> _Block:
    text = el.text_content()
    if text.endswith("\n"):
        text = text[:-1]
    return _Block("code", _indent(text, "    ", "    ", blank=""))


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


def _title(el: HtmlElement) -> str:
    title = el.get("title")
    return f' "{title}"' if title else ""


def _join_blocks(blocks: list[_Block], glue: bool) -> str:
    """Join blocks with one blank line (or, with ``glue``, one line break where glued)."""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            out.append(_separator(blocks[i - 1], block) if glue else "\n\n")
        out.append(block.text)
    return "".join(out)


def _separator(prev: _Block, nxt: _Block) -> str:
    # Two paragraphs always need the blank line, or they would read as one.
    if prev.kind == "p" and nxt.kind == "p":
        return "\n\n"
    last = prev.text.rsplit("\n", 1)[-1] if prev.kind in ("p", "h") else ""
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


_SOURCE_NEWLINE = re.compile(r"[ \t]*\r?\n[ \t]*")
# A bare URL keeps its underscores (escaping them would change the address).
_BARE_URL_OR_UNDERSCORE = re.compile(r"https?://[^\s<>]+|_")


def _escape_underscore(match: re.Match[str]) -> str:
    return "\\_" if match.group() == "_" else match.group()


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
