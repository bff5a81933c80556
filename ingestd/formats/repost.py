"""Format B (``repost``): a page reposted as markdown with front matter.

    ---
    title: {title}
    ---
    `{source}` [{label}]({url})

    {body}

The title is written unquoted even when that is not valid YAML, so it is read as
text, never through a YAML library. Line endings vary by era (see ``Newlines``);
``parse`` records them so that ``render(parse(t)) == t``.
"""

from __future__ import annotations

import re

from ingestd.errors import FormatError
from ingestd.formats.markdown import STYLE_2021, STYLE_2023, MarkdownStyle, html_to_markdown
from ingestd.types import LF, Article, Newlines, RepostDoc

# The later archiver (2023-03 on) opened the source line with the post's UTC time.
_STAMPED_SOURCE = re.compile(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2} [AP]M UTC(?: |$)")
_SOURCE_LINE = re.compile(r"`(?P<source>.*)` \[(?P<label>[^\]\n]*)\]\((?P<url>[^\s]*)\)")


def render(doc: RepostDoc) -> str:
    """Render a format-B document to its exact file text."""
    nl = doc.newlines
    body = doc.body if nl.body is None else doc.body.replace("\n", nl.body)
    return (
        f"---{nl.front}title: {doc.title}{nl.front}---{nl.front}"
        f"`{doc.source}` [{doc.label}]({doc.url}){nl.source}"
        f"{nl.blank}{body}{nl.final}"
    )


def parse(text: str) -> RepostDoc:
    """Parse format-B file text; raise FormatError naming the line on anything else."""
    front = _front_eol(text)
    cursor, title = _expect_title(text, front)
    cursor = _expect_literal(text, cursor, "---" + front, line=3)
    end = text.find("\n", cursor)
    if end < 0:
        raise FormatError("expected the source line `source` [label](url)", line=4)
    source_eol = "\r\n" if text[end - 1 : end] == "\r" else "\n"
    match = _SOURCE_LINE.fullmatch(text, cursor, end + 1 - len(source_eol))
    if match is None:
        raise FormatError(
            f"expected `source` [label](url), found {text[cursor:end][:80]!r}", line=4
        )
    cursor = end + 1
    blank = _line_end_at(text, cursor)
    if blank is None:
        raise FormatError("expected an empty line after the source line", line=5)
    rest = text[cursor + len(blank) :]
    final = _final_eol(rest)
    body_raw = rest[: len(rest) - len(final)]
    body_eol = _body_eol(body_raw, final)
    body = body_raw if body_eol is None else body_raw.replace(body_eol, "\n")
    newlines = Newlines(front=front, source=source_eol, blank=blank, body=body_eol, final=final)
    return RepostDoc(
        title=title,
        source=match["source"],
        label=match["label"],
        url=match["url"],
        body=body,
        newlines=newlines,
    )


def _front_eol(text: str) -> str:
    if text.startswith("---\r\n"):
        return "\r\n"
    if text.startswith("---\n"):
        return "\n"
    found = text[:40].split("\n", 1)[0]
    raise FormatError(f"expected front matter opening '---', found {found!r}", line=1)


def _expect_title(text: str, eol: str) -> tuple[int, str]:
    start = 3 + len(eol)
    end = text.find(eol, start)
    line = text[start : end if end >= 0 else start + 80]
    if end < 0 or not line.startswith("title: ") or "\n" in line:
        raise FormatError(f"expected 'title: ...', found {line[:80]!r}", line=2)
    return end + len(eol), line[len("title: ") :]


def _expect_literal(text: str, cursor: int, literal: str, *, line: int) -> int:
    if not text.startswith(literal, cursor):
        found = text[cursor : cursor + 40].split("\n", 1)[0]
        raise FormatError(f"expected {literal.rstrip()!r}, found {found!r}", line=line)
    return cursor + len(literal)


def _line_end_at(text: str, cursor: int) -> str | None:
    if text.startswith("\r\n", cursor):
        return "\r\n"
    if text.startswith("\n", cursor):
        return "\n"
    return None


def _final_eol(rest: str) -> str:
    if rest.endswith("\r\n"):
        return "\r\n"
    if rest.endswith("\n"):
        return "\n"
    line = 6 + rest.count("\n")
    raise FormatError("expected the body to end with a line break", line=line)


def _body_eol(body: str, final: str) -> str | None:
    """The one line break the body uses, or None when it mixes \\n and \\r\\n."""
    crlf = body.count("\r\n")
    lf = body.count("\n")
    if lf == 0:
        return final
    if crlf == lf:
        return "\r\n"
    if crlf == 0:
        return "\n"
    return None


def style_of(doc: RepostDoc) -> MarkdownStyle:
    """The markdown style of the era a file comes from, told by its source line.

    Files from 2023-03 on name their source as ``3/6/2024 9:30 PM UTC author``; the
    archiver of that era wrote text, URLs and spaces differently (see ``markdown``).
    """
    return STYLE_2023 if _STAMPED_SOURCE.match(doc.source) else STYLE_2021


def from_article(
    article: Article,
    *,
    source: str,
    label: str,
    newlines: Newlines = LF,
    style: MarkdownStyle = STYLE_2021,
) -> RepostDoc:
    """Build the format-B document for an extracted article."""
    return RepostDoc(
        # A line break would end the title line and break the front matter (the file
        # could not be read back): it becomes a space, as in format A.
        title=" ".join(article.title.replace("\r\n", "\n").replace("\r", "\n").split("\n")),
        source=source,
        label=label,
        url=article.url,
        body=html_to_markdown(article.html, style),
        newlines=newlines,
    )
