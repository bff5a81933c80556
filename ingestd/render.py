"""The render stage: the text of an archive file, from a feed item or from its page.

Pure: entries, pages and the feed's settings in, file texts out (format A, or format B
for a repost feed built from pages). No file is written here; the pool steps
(``ingestd.pool.steps``) write what this returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ingestd.extract import decode_page, extract_article
from ingestd.formats import feed as format_a
from ingestd.formats import render_any
from ingestd.formats import repost as format_b
from ingestd.sanitize import sanitize
from ingestd.types import ArchiveFormat, EntryData, FeedSpec


def render_items(spec: FeedSpec, entries: Sequence[EntryData], fallback: datetime) -> list[str]:
    """Format-A file texts for entries archived from the feed alone, in order.

    ``fallback`` dates an entry without a date of its own (the poll's start).
    """
    texts = []
    for entry in entries:
        content = sanitize(entry.content).html if spec.sanitize else entry.content
        doc = format_a.from_item(entry.title, entry.link, content, entry.published or fallback)
        if spec.sanitize:
            doc = replace(doc, title=format_a.inert_title(doc.title))
        texts.append(format_a.render(doc))
    return texts


def render_page(
    spec: FeedSpec,
    entry: EntryData,
    fallback: datetime,
    page: bytes,
    content_type: str,
    url: str,
) -> str:
    """The file text for an entry built from its fetched page (format A or B).

    Raises ``ExtractError`` when the page holds no article.
    """
    article = extract_article(decode_page(page, content_type), url)
    if spec.format is ArchiveFormat.REPOST:
        label = spec.label.format(site=spec.site)
        return render_any(
            format_b.from_article(article, source=spec.source, label=label, newlines=spec.newlines)
        )
    content = format_a.content_from_article(article, spec.image_proxy)
    doc = format_a.from_item(entry.title, entry.link, content, entry.published or fallback)
    if spec.sanitize:
        doc = replace(doc, title=format_a.inert_title(doc.title), content=sanitize(content).html)
    return format_a.render(doc)
