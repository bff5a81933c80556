"""Replay of format B: the body rebuilt as an HTML page, and the page read back.

The archive's markdown is rendered to HTML by markdown-it-py (CommonMark, set up for
the archive's dialect) and set inside a page with navigation, sidebar and footer;
``extract.extract_article`` must find the article again and ``formats.repost`` must
give the body back (``replay_repost``).
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from ingestd.extract import extract_article
from ingestd.formats import repost
from ingestd.formats.markdown import MarkdownStyle
from ingestd.types import RepostDoc

# --- format B ---------------------------------------------------------------

# Sentinels for the page builder's translation of the archive's markdown dialect
# (Unicode noncharacters: never part of interchanged text, so never in a body).
_PAGE_NBSP = "\ufdd0"  # a space or nbsp that markdown-it must not strip
_PAGE_EMPTY = "\ufdd1"  # holds an otherwise empty paragraph line open


def _page_markdown() -> MarkdownIt:
    """markdown-it set up for the archive's markdown dialect.

    CommonMark, plus: ``breaks`` (the archive writes a ``<br>`` as a bare line
    break, so every single line break inside a paragraph is one); the ``entity``
    rule off (the archive writes ``&...;`` sequences as text, as in its titles);
    raw HTML and autolinks off (its ``<`` is text too: the archiver wrote neither);
    a core rule that runs a heading on over the lines under it, and one that turns
    the whitespace sentinels into real characters.
    """
    md = MarkdownIt("commonmark", {"breaks": True}).disable(
        ["entity", "html_block", "html_inline", "autolink"]
    )
    # Keep link and image URLs as the archive wrote them (IRIs, no re-encoding):
    # a browser resolves both forms alike, and the page stays like the original.
    md.normalizeLink = _page_url  # type: ignore[method-assign]
    md.core.ruler.push("archive_headings", _page_headings)
    md.core.ruler.push("archive_whitespace", _page_sentinels)
    return md


def _page_url(url: str) -> str:
    return url


def _page_headings(state: StateCore) -> None:
    """Join a heading and the paragraph lines directly under it with a line break.

    The archiver wrote a ``<br>`` inside a heading as a plain line break, so in the
    archive a heading runs on until the next empty line.
    """
    tokens = state.tokens
    i = 0
    while i + 3 < len(tokens):
        heading, para = tokens[i], tokens[i + 3]
        if (
            heading.type == "heading_open"
            and para.type == "paragraph_open"
            and heading.map is not None
            and para.map is not None
            and heading.map[1] == para.map[0]
            and heading.level == para.level
        ):
            inline, more = tokens[i + 1], tokens[i + 4]
            inline.children = [
                *(inline.children or ()),
                Token("softbreak", "br", 0),
                *(more.children or ()),
            ]
            heading.map = [heading.map[0], para.map[1]]
            del tokens[i + 3 : i + 6]
            continue
        i += 1


def _page_sentinels(state: StateCore) -> None:
    for token in state.tokens:
        for child in token.children or ():
            if child.type == "text":
                child.content = child.content.replace(_PAGE_NBSP, "\xa0").replace(_PAGE_EMPTY, "")


_MARKDOWN = _page_markdown()


# Page furniture around the article, as a typical news site has it: extraction
# has to find the article among navigation, share buttons, related links,
# comments and a footer.
_PAGE_HEAD = (
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<link rel="stylesheet" href="/static/site.css">'
    "<script>window.dataLayer = window.dataLayer || [];</script>"
)
_PAGE_HEADER = (
    '<header class="site-header"><a class="logo" href="/">News Desk</a>'
    '<nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/world/">World</a></li>'
    '<li><a href="/politics/">Politics</a></li><li><a href="/business/">Business</a></li>'
    '<li><a href="/tech/">Technology</a></li><li><a href="/opinion/">Opinion</a></li></ul></nav>'
    '<form class="search" action="/search"><input name="q" placeholder="Search"></form>'
    "</header>"
)
_PAGE_META = (
    '<div class="entry-meta"><span class="byline">By <a href="/author/desk/">News Desk</a>'
    '</span> <time datetime="2022-03-17T08:00:00Z">March 17, 2022</time></div>'
)
_PAGE_SHARE = (
    '<div class="share-buttons"><a href="/share/twitter">Tweet</a> '
    '<a href="/share/facebook">Share</a> <a href="/share/email">Email</a></div>'
)
_PAGE_COMMENTS = (
    '<section class="comments" id="comments"><h3>Comments</h3>'
    '<p class="no-comments">Comments are closed.</p></section>'
)
_PAGE_SIDEBAR = (
    '<aside class="sidebar widget-area"><section class="widget"><h3>Related</h3><ul>'
    '<li><a href="/world/1001/">Markets close higher after a volatile week</a></li>'
    '<li><a href="/world/1002/">Storm warnings issued along the coast</a></li>'
    '<li><a href="/world/1003/">Parliament debates the new budget</a></li>'
    '<li><a href="/world/1004/">Ten photos from the weekend</a></li></ul></section>'
    '<section class="widget"><h3>Popular</h3><ul>'
    '<li><a href="/tech/2001/">How to keep your passwords safe</a></li>'
    '<li><a href="/tech/2002/">The week in technology</a></li></ul></section></aside>'
)
_PAGE_FOOTER = (
    '<footer class="site-footer"><ul class="footer-links"><li><a href="/about/">About us</a>'
    '</li><li><a href="/contact/">Contact</a></li><li><a href="/privacy/">Privacy</a></li>'
    '</ul><p class="copyright">&copy; News Desk. All rights reserved.</p></footer>'
)


def replay_repost(doc: RepostDoc) -> RepostDoc:
    page = build_page(doc)
    article = extract_article(page, doc.url)
    return repost.from_article(
        article,
        source=doc.source,
        label=doc.label,
        newlines=doc.newlines,
        style=repost.style_of(doc),
    )


def build_page(doc: RepostDoc) -> str:
    """A full HTML page: the body as CommonMark HTML inside real page furniture."""
    body_html = _MARKDOWN.render(_page_dialect(doc.body, repost.style_of(doc)))
    title = html.escape(doc.title, quote=False)
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        f'<link rel="canonical" href="{html.escape(doc.url)}">{_PAGE_HEAD}</head><body>'
        f'{_PAGE_HEADER}<div class="wrap"><main id="main">'
        f'<article class="post"><h1 class="entry-title">{title}</h1>'
        f'{_PAGE_META}<div class="entry-content">{body_html}</div>'
        f"{_PAGE_SHARE}</article>{_PAGE_COMMENTS}</main>{_PAGE_SIDEBAR}</div>"
        f"{_PAGE_FOOTER}</body></html>"
    )


def _page_dialect(body: str, style: MarkdownStyle) -> str:
    """Translate the archive's markdown dialect into CommonMark markdown.

    The archive writes text as the page had it: a backslash in it is a character
    of the page (``图\\-95``, ``\\[通过\\]``), never an escape of the archiver's,
    but for ``\\_`` in the 2021 style, which escapes ``_``; and ``_`` is never
    emphasis (the archiver wrote ``*``). It writes a non-breaking space at the edge of
    a line as a plain space (``<p>&nbsp;</p>`` is a line holding one space) and keeps
    empty paragraphs and trailing ``<br>`` as extra line breaks. CommonMark would
    read or drop all of these, so backslashes and underscores become escaped text,
    edge spaces become (sentinel) non-breaking spaces and extra blank lines become
    empty paragraph lines.
    """
    lines = _page_continuations([_page_text(line, style) for line in body.split("\n")])
    return "\n".join(_page_vertical_space([_page_edge_spaces(line) for line in lines])) + "\n"


# A backslash before ASCII punctuation (an escape to CommonMark), or an underscore.
_PAGE_ESCAPABLE = re.compile(r"\\([!-/:-@\[-`{-~])|_")


def _page_text(line: str, style: MarkdownStyle) -> str:
    def literal(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped is None or (escaped == "_" and style.escape_underscore):
            return "\\_"  # the archiver's own escape, or a bare underscore: text
        return "\\\\\\" + escaped  # the page's backslash, then its character

    # A link address with spaces (a trailing one, as the page's href had it) reads
    # as such only inside <...>.
    return _PAGE_SPACED_ADDRESS.sub(r"](<\1>)", _PAGE_ESCAPABLE.sub(literal, line))


_PAGE_SPACED_ADDRESS = re.compile(r'\]\(([^()<>"\n]*\s[^()<>"\n]*)\)')


# Block markers CommonMark reads at the start of a line (up to three spaces in).
_PAGE_HEADING = re.compile(r" {0,3}#{1,6}(?: |$)")
_PAGE_RULE = re.compile(r" {0,3}([-*_=])(?: *\1)* *$")
_PAGE_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?: |$)")
_PAGE_QUOTE = re.compile(r" {0,3}>")
_PAGE_FENCE = re.compile(r" {0,3}(?:```|~~~)")


def _page_continuations(lines: list[str]) -> list[str]:
    """Make lines that continue a paragraph or heading read as its text.

    The archive starts a block only after an empty line (list items and quote lines
    follow their own kind). A line directly under a paragraph or heading line came
    from the same HTML block, after a ``<br>``; CommonMark would start a new block
    there when the line looks like a list item, rule, heading, quote or fence (or
    turn the paragraph into a heading, under ``---``), so that marker is escaped.
    The heading's own continuation lines are joined to it by ``_page_headings``.
    """
    out: list[str] = []
    previous = "blank"
    for line in lines:
        kind = _page_line_kind(line, previous)
        if previous in ("paragraph", "heading") and kind not in ("blank", "paragraph"):
            line, kind = _page_as_text(line), "paragraph"
        out.append(line)
        # A whitespace-only line (an empty paragraph) is where the 2021 archiver
        # glued the next block on with a single line break: a block may start there.
        previous = "glue" if kind == "paragraph" and not line.strip(" \xa0") else kind
    return out


def _page_line_kind(line: str, previous: str) -> str:
    if not line:
        return "blank"
    if _PAGE_HEADING.match(line):
        return "heading"
    if _PAGE_RULE.match(line) and len(line.strip().replace(" ", "")) >= 3:
        return "rule"
    if _PAGE_ITEM.match(line):
        return "list"
    if _PAGE_QUOTE.match(line):
        return "quote"
    if _PAGE_FENCE.match(line) or (_PAGE_RULE.match(line) and previous == "paragraph"):
        return "fence"  # a fence, or a setext underline: both start something new
    return previous if previous in ("list", "quote") else "paragraph"


def _page_as_text(line: str) -> str:
    indent = len(line) - len(line.lstrip(" "))
    body = line[indent:]
    if _PAGE_RULE.match(line):
        escaped = re.sub(r"([-*_=])", r"\\\1", body)  # every marker of the run
    elif body[:1].isdigit():
        escaped = re.sub(r"^(\d+)([.)])", r"\1\\\2", body)
    else:
        escaped = "\\" + body
    return line[:indent] + escaped


# Prefixes whose text keeps its own edge spaces: a heading's, a quote's, a list item's.
_PAGE_PREFIX = re.compile(r"#{1,6} |> |(?:[-+*]|\d{1,9}[.)]) (?=\S| *\S)")


def _page_edge_spaces(line: str) -> str:
    line = line.replace("\xa0", _PAGE_NBSP)
    prefix = _PAGE_PREFIX.match(line)
    if prefix:
        rest = line[prefix.end() :]
        return prefix.group() + (_page_edge_run(rest) if rest else "")
    return _page_edge_run(line)


def _page_edge_run(line: str) -> str:
    core = line.strip(" ")
    if not core:
        return _PAGE_NBSP * len(line)
    lead = len(line) - len(line.lstrip(" "))
    trail = len(line) - len(line.rstrip(" "))
    return _PAGE_NBSP * lead + core + _PAGE_NBSP * trail


def _page_vertical_space(lines: list[str]) -> list[str]:
    """Express runs of line breaks beyond one blank line as empty paragraph lines.

    Between two blocks, ``n`` line breaks are the usual two, plus one per
    trailing ``<br>`` of the block before, plus two per empty paragraph. At the
    start and end of the body there is no usual separator.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j] == "":
            j += 1
        if j == i:
            out.append(lines[i])
            i += 1
            continue
        at_start, at_end = i == 0, j == len(lines)
        breaks = (j - i) + (0 if at_start or at_end else 1)
        out.extend(_page_gap(breaks, at_start=at_start, at_end=at_end))
        i = j
    return out


def _page_gap(breaks: int, *, at_start: bool, at_end: bool) -> list[str]:
    extra = breaks - (0 if at_start or at_end else 2)
    odd = [_PAGE_EMPTY] if extra % 2 else []
    empties = ["", _PAGE_EMPTY] * (extra // 2)
    if at_start:
        # Empty paragraphs first, then a <br> opening the first block.
        return [_PAGE_EMPTY, ""] * (extra // 2) + odd
    # A <br> closing the block before, then empty paragraphs.
    return odd + empties + ([] if at_end else [""])
