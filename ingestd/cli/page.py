"""``ingestd extract [FILE|URL]``: what a page (stdin, a file or a URL) would become.

A URL is fetched as ingestd fetches article pages: through the network guard, with the
``[fetch]`` limits and ``allow_private`` of the configuration when there is one (else
the defaults, which refuse private addresses). Extraction is ``ingestd.extract``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ingestd import config
from ingestd.errors import FetchError, NoArticle
from ingestd.types import Article

if TYPE_CHECKING:
    from ingestd.types import ArchiveDoc

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
PLACEHOLDER_URL = "https://example.invalid/"


def add_arguments(sub: Subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``extract`` command; returns its parser."""
    cmd = sub.add_parser(
        "extract",
        parents=[common],
        help="show what a page would become",
        description="Read an HTML page from a file, a URL (fetched through the network "
        "guard) or stdin; print the archive file it would become.",
    )
    cmd.add_argument(
        "page", nargs="?", default="-", metavar="FILE|URL", help="the page (default: stdin)"
    )
    cmd.add_argument("--format", choices=("feed", "repost"), default="repost")
    cmd.add_argument(
        "--url", default=None, help="the page's URL for its links (default: the URL fetched)"
    )
    cmd.add_argument("--source", default="ingestd extract", help="format B backtick text")
    cmd.add_argument("--label", default="轉載自{site}", help="format B label template")
    cmd.add_argument("--site", default="", help="format B {site}")
    return cmd


def command(args: argparse.Namespace) -> int:
    """Print the archive file the page would become; 0, or an IngestdError."""
    # Loaded here, not at start-up: `fetch` from cron would pay for them on every run.
    from ingestd.extract import decode_page, extract_article

    raw, content_type, url = _read(args)
    try:
        article = extract_article(decode_page(raw, content_type), args.url or url)
    except NoArticle as exc:
        # Not a failure of the command: the page was read and holds no article.
        print(f"ingestd extract: {exc}", file=sys.stderr)
        return 0
    sys.stdout.write(_render(article, args))
    return 0


def _read(args: argparse.Namespace) -> tuple[bytes, str, str]:
    """The page's bytes, content type and URL."""
    page: str = args.page
    if page == "-":
        return sys.stdin.buffer.read(), "", PLACEHOLDER_URL
    if page.startswith(("http://", "https://")):
        return asyncio.run(_fetch(page, _settings(args)))
    try:
        return Path(page).read_bytes(), "", PLACEHOLDER_URL
    except OSError as exc:
        raise FetchError(f"{page}: cannot read: {exc.strerror or exc}", url=page) from None


def _settings(args: argparse.Namespace) -> config.Settings | None:
    """The configuration, if one is named or found; a page needs none."""
    path = config.find_config(args.config)
    if args.config or path.exists():
        return config.load(path)
    return None


async def _fetch(url: str, settings: config.Settings | None) -> tuple[bytes, str, str]:
    from ingestd.cli.runtime import fetch_limits
    from ingestd.fetch import ACCEPT_HTML, Fetcher, FetchLimits, NetworkGuard

    allow = settings.fetch.allow_private if settings else ()
    limits = fetch_limits(settings.fetch) if settings else FetchLimits()
    async with Fetcher(limits, guard=NetworkGuard(allow)) as fetcher:
        fetched = await fetcher.fetch(url, accept=ACCEPT_HTML)
    return fetched.content, fetched.headers.get("content-type", ""), fetched.url


def _render(article: Article, args: argparse.Namespace) -> str:
    from ingestd.formats import feed as format_a
    from ingestd.formats import render_any
    from ingestd.formats import repost as format_b
    from ingestd.sanitize import sanitize

    doc: ArchiveDoc
    if args.format == "repost":
        label = args.label.format(site=args.site)
        doc = format_b.from_article(article, source=args.source, label=label)
    else:
        content = sanitize(format_a.content_from_article(article)).html
        doc = format_a.from_item(
            article.title, article.url, content, article.published or datetime.now(UTC)
        )
    return render_any(doc)
