"""Format A (``feed``): a feed item archived as HTML under a markdown heading.

    <!--{pubdate_ms}-->
    [{title}]({link})
    ------

    {content}

Exactly five lines and a final newline; see docs/formats.md.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape, unescape
from urllib.parse import quote

from ingestd.errors import FormatError
from ingestd.formats.text import js_strip, whatwg_href
from ingestd.types import Article, FeedDoc

_DATE_LINE = re.compile(r"<!--(\d{1,16}|NaN)-->")
RULE = "------"
#: A "<" that opens raw HTML or an autolink in CommonMark: a tag, a closing tag, a
#: comment, a declaration, a processing instruction or ``<scheme:``.
_MARKUP_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
#: A "](" that a renderer may read as the start of a link (a title is link text).
_LINK_OPEN = re.compile(r"\]\(")
_ACTIVE_SCHEMES = ("javascript:", "vbscript:", "data:")


def render(doc: FeedDoc) -> str:
    """Render a format-A document to its exact file text."""
    date = "NaN" if doc.pubdate_ms is None else str(doc.pubdate_ms)
    return f"<!--{date}-->\n[{doc.title}]({doc.link})\n{RULE}\n\n{doc.content}\n"


def parse(text: str) -> FeedDoc:
    """Parse format-A file text; raise FormatError naming the line on anything else."""
    lines = text.split("\n")
    if len(lines) != 6 or lines[5] != "":
        raise FormatError(
            f"expected exactly 5 lines each ending in \\n, found {text.count(chr(10))} "
            "line breaks" + ("" if text.endswith("\n") else " and no final newline"),
            line=min(len(lines), 6),
        )
    date = _DATE_LINE.fullmatch(lines[0])
    if date is None:
        raise FormatError(
            f"expected <!--milliseconds--> or <!--NaN-->, found {lines[0][:60]!r}", line=1
        )
    title, link = _split_heading(lines[1])
    if lines[2] != RULE:
        raise FormatError(f"expected {RULE!r}, found {lines[2][:60]!r}", line=3)
    if lines[3] != "":
        raise FormatError(f"expected an empty line, found {lines[3][:60]!r}", line=4)
    ms = None if date.group(1) == "NaN" else int(date.group(1))
    return FeedDoc(pubdate_ms=ms, title=title, link=link, content=lines[4])


def _split_heading(line: str) -> tuple[str, str]:
    # Titles may hold brackets and even "](", links hold no whitespace: split at the
    # last "](" whose right side is a plausible link.
    if not (line.startswith("[") and line.endswith(")")):
        raise FormatError(f"expected [title](link), found {line[:60]!r}", line=2)
    cut = line.rfind("](")
    while cut > 0 and any(c.isspace() for c in line[cut + 2 : -1]):
        cut = line.rfind("](", 0, cut)
    if cut <= 0:
        raise FormatError(f"expected [title](link), found {line[:60]!r}", line=2)
    return line[1:cut], line[cut + 2 : -1]


def inert_title(title: str) -> str:
    """A title that carries no active markup into the heading (the rule with sanitizing on).

    The heading ``[title](link)`` is markdown, and a renderer passes raw HTML in link
    text through: a ``<`` that would open a tag, comment or autolink is written ``&lt;``
    (``XSS <script>`` becomes ``XSS &lt;script>``, shown as written), and a ``](`` that
    would open a link to a ``javascript:``, ``vbscript:`` or ``data:`` URL is written
    ``]\\(``. Any other title, every real one seen so far, passes byte for byte.
    """
    if "<" not in title and "](" not in title:
        return title
    pieces = _LINK_OPEN.split(title)
    kept = pieces[0]
    for piece in pieces[1:]:
        kept += ("]\\(" if _active_target(piece) else "](") + piece
    return _MARKUP_OPEN.sub("&lt;", kept)


def _active_target(after: str) -> bool:
    # What follows "](" as a renderer may read it: entities decoded, blanks and "<" gone.
    target = "".join(c for c in unescape(after[:64]) if c.isprintable() and not c.isspace())
    return target.lstrip("<").lower().startswith(_ACTIVE_SCHEMES)


def join_content(html: str) -> str:
    """Put item HTML on one line: split on \\n, JS-strip each piece, join with nothing."""
    return "".join(js_strip(piece) for piece in html.split("\n"))


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch; naive datetimes are taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def from_item(title: str, link: str, content: str, published: datetime | None) -> FeedDoc:
    """Build the format-A document for one feed item, following FORMATS.md exactly."""
    return FeedDoc(
        pubdate_ms=None if published is None else epoch_ms(published),
        # A line break inside a title would break the five-line layout; it is the
        # one change made to titles beyond the strip.
        title=_one_line(js_strip(title)),
        link=_no_whitespace(whatwg_href(link)),
        content=join_content(content),
    )


def _no_whitespace(link: str) -> str:
    # An unparseable link is kept as written, but the heading's link never holds
    # whitespace (or the file would not read back): percent-encode it as UTF-8.
    return "".join(quote(c, safe="") if c.isspace() else c for c in link)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r\n", "\n").split("\n"))


def content_from_article(article: Article, image_proxy: str = "") -> str:
    """Item HTML built from an extracted page, in the shape the source feeds used.

    A date block when the page has a date, the lead image (through ``image_proxy``,
    scheme removed, when one is configured) with its caption, then the article.
    """
    parts = []
    if article.published is not None:
        stamp = format_datetime(article.published.astimezone(UTC), usegmt=True)
        parts.append(f"<div><i>{stamp}</i></div>")
    if article.lead_image:
        src = escape(_proxied(article.lead_image, image_proxy))
        parts.append(f'<img src="{src}" width="100%">')
        if article.caption:
            caption = escape(article.caption, quote=False)
            parts.append(f'<div><small style="color: #999;">{caption}</small></div>')
    parts.append(_unbroken(article.html))
    return "".join(parts)


_PRE = re.compile(r"(<pre\b.*?</pre>)", re.IGNORECASE | re.DOTALL)
_LINE_BREAK = re.compile(r"[ \t]*[\r\n]+[ \t]*")


def _unbroken(html: str) -> str:
    # Format A joins the content's lines with nothing, which glues the words a page
    # wrote on separate lines; a line break outside <pre> reads as one space in HTML,
    # so it is written as one.
    pieces = _PRE.split(html)
    return "".join(p if i % 2 else _LINE_BREAK.sub(" ", p) for i, p in enumerate(pieces))


def _proxied(src: str, proxy: str) -> str:
    if not proxy:
        return src
    return proxy + src.split("://", 1)[-1]
