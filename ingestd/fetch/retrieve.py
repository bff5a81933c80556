"""Where a feed document or an article page comes from, chosen by its URL's scheme.

The pipeline asks one ``Retriever`` for a feed and for a page and never looks at the
scheme: ``ByScheme`` sends ``file:`` URLs to the local files (``local``: no guard, a
page only beside or below its feed's file) and every other URL to the HTTP client,
whose guard refuses what is not http(s).
"""

from __future__ import annotations

import asyncio
from typing import Protocol
from urllib.parse import urlsplit

from ingestd.fetch import local
from ingestd.fetch.client import ACCEPT_HTML, Fetcher
from ingestd.types import Fetched


class Retriever(Protocol):
    """Gets feed documents and article pages; raises from the ``FetchError`` tree, and
    ``NotModified`` when the validators still hold."""

    async def feed(
        self, url: str, *, etag: str | None, last_modified: str | None, trusted: bool
    ) -> Fetched:
        """A feed document (conditional when validators are given)."""
        ...

    async def page(self, link: str, *, feed_url: str, trusted: bool) -> Fetched:
        """An entry's article page, linked from the feed at ``feed_url``."""
        ...


class OverHTTP:
    """Feeds and pages through the shared ``Fetcher`` (guard, limits, redirects)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    async def feed(
        self, url: str, *, etag: str | None, last_modified: str | None, trusted: bool
    ) -> Fetched:
        return await self.fetcher.fetch(
            url, etag=etag, last_modified=last_modified, trusted=trusted
        )

    async def page(self, link: str, *, feed_url: str, trusted: bool) -> Fetched:
        # A feed trusted to be private trusts its own host for its pages too.
        host = urlsplit(feed_url).hostname if trusted else None
        return await self.fetcher.fetch(link, accept=ACCEPT_HTML, trusted_host=host)


class LocalFiles:
    """``file:`` feeds and their pages, read in a thread, at most ``max_bytes`` each."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    async def feed(
        self, url: str, *, etag: str | None, last_modified: str | None, trusted: bool
    ) -> Fetched:
        return await asyncio.to_thread(local.read_feed, url, self.max_bytes)

    async def page(self, link: str, *, feed_url: str, trusted: bool) -> Fetched:
        return await asyncio.to_thread(local.read_page, link, feed_url, self.max_bytes)


class ByScheme:
    """The retriever for each URL's scheme: ``file`` reads local files, the rest is HTTP."""

    def __init__(self, fetcher: Fetcher, max_bytes: int) -> None:
        self._http = OverHTTP(fetcher)
        self._schemes: dict[str, Retriever] = {"file": LocalFiles(max_bytes)}

    def _for(self, url: str) -> Retriever:
        scheme, colon, _rest = url.partition(":")
        return self._schemes.get(scheme, self._http) if colon else self._http

    async def feed(
        self, url: str, *, etag: str | None, last_modified: str | None, trusted: bool
    ) -> Fetched:
        retriever = self._for(url)
        return await retriever.feed(url, etag=etag, last_modified=last_modified, trusted=trusted)

    async def page(self, link: str, *, feed_url: str, trusted: bool) -> Fetched:
        return await self._for(link).page(link, feed_url=feed_url, trusted=trusted)
