"""Reading ``file:`` feeds and the pages they link to: the fetch stage for local files.

A local feed is the user's own configuration, so the network guard does not apply;
instead a local feed may only link to files beside or below its own file.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ingestd.errors import FetchError, TooLarge
from ingestd.types import Fetched


def local_path(url: str) -> Path:
    """The path of a ``file:`` URL on this machine."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise FetchError(f"{url}: only local file: URLs can be read", url=url)
    return Path(unquote(parts.path))


def _read_capped(path: Path, url: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"{url}: cannot read: {exc.strerror or exc}", url=url) from exc
    if len(data) > max_bytes:
        raise TooLarge(f"{url}: larger than the {max_bytes}-byte cap", url=url)
    return data


def read_feed(url: str, max_bytes: int) -> Fetched:
    """A local feed file, at most ``max_bytes``."""
    content = _read_capped(local_path(url), url, max_bytes)
    return Fetched(url, 200, content, {"content-type": "application/xml"})


def read_page(link: str, feed_url: str, max_bytes: int) -> Fetched:
    """A page of a local feed: only files beside or below the feed file may be read."""
    if not feed_url.startswith("file:"):
        raise FetchError(f"{link}: a file: link is only followed for a local feed", url=link)
    page = local_path(link).resolve()
    folder = local_path(feed_url).resolve().parent
    if not page.is_relative_to(folder):
        raise FetchError(f"{link}: outside the local feed's folder {folder}", url=link)
    content = _read_capped(page, link, max_bytes)
    return Fetched(link, 200, content, {"content-type": "text/html"})
