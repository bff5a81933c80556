"""Page HTML -> Article, with readability-lxml. Pure: no I/O.

Anything lxml or readability raises becomes ExtractError here.
"""

from __future__ import annotations

from readability import Document

from ingestd.errors import ExtractError
from ingestd.types import Article


def extract_article(html: str, url: str) -> Article:
    """Find the article in ``html`` (fetched from ``url``)."""
    if not html.strip():
        raise ExtractError(f"empty page: {url}")
    try:
        doc = Document(html, url=url)
        title = doc.title()
        body = doc.summary(html_partial=True)
    except Exception as exc:  # readability/lxml raise many types; one boundary here
        raise ExtractError(f"could not extract an article from {url}: {exc}") from exc
    return Article(title=title, html=body, url=url)
