"""The two archive formats: pure render/parse functions and HTML-to-markdown."""

from __future__ import annotations

from ingestd.errors import FormatError
from ingestd.formats import feed, repost
from ingestd.types import ArchiveDoc, ArchiveFormat, FeedDoc

__all__ = ["detect", "parse_any", "render_any", "feed", "repost"]


def detect(text: str) -> ArchiveFormat:
    """Tell which format ``text`` claims to be by its first line."""
    if text.startswith("<!--"):
        return ArchiveFormat.FEED
    if text.startswith("---\n") or text.startswith("---\r\n"):
        return ArchiveFormat.REPOST
    first = text[:60].split("\n", 1)[0]
    raise FormatError(
        f"not an archive file: expected '<!--ms-->' (format A) or '---' (format B), "
        f"found {first!r}",
        line=1,
    )


def parse_any(text: str) -> ArchiveDoc:
    """Parse a file of either format."""
    if detect(text) is ArchiveFormat.FEED:
        return feed.parse(text)
    return repost.parse(text)


def render_any(doc: ArchiveDoc) -> str:
    """Render a document of either format."""
    if isinstance(doc, FeedDoc):
        return feed.render(doc)
    return repost.render(doc)
