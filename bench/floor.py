"""The floors: what one core does with the farm's bytes already in memory.

    python -m bench.floor feeds FARM      feedparser over every farm feed
    python -m bench.floor feeds-busy FARM the same in one process per core, all at once
    python -m bench.floor pages FARM      readability-lxml + HTML -> markdown over every page
    python -m bench.floor extract FARM    ingestd's own extract_article over every page
    python -m bench.floor http FARM [N]   httpx alone: every farm feed once more, all 304

Files are read into memory first; only the parsing is timed, in this one process.
``feeds`` calls feedparser as ingestd does (``sanitize_html=False``,
``resolve_relative_uris=False``): ingestd cannot parse faster than this per core.
``pages`` is readability's summary of each page plus ingestd's HTML -> markdown
conversion of that summary. ``extract`` (informative) is ingestd's whole extraction
step, which does more than readability alone. ``http`` is the warm cycle's floor:
the HTTP client ingestd is built on (an ``httpx.AsyncClient`` on one event loop, N
connections, default 4) asking for every farm feed with the validators the server
gave (an untimed first pass collects them), so every answer is a 304; no database, no
scheduling, no interpreter start-up in the timed loop. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def feed_files(farm: Path) -> list[Path]:
    """The N x M farm feeds, in order."""
    return sorted((farm / "feeds").glob("*.xml"))


def page_files(farm: Path) -> list[Path]:
    """The article pages of the full-pipeline feeds, in order."""
    return sorted((farm / "pages").glob("*/*.html"))


def floor_feeds(farm: Path) -> dict[str, float | int]:
    """feedparser over every feed, from memory, one core."""
    import feedparser

    blobs = [p.read_bytes() for p in feed_files(farm)]
    headers = {"content-type": "application/rss+xml; charset=utf-8"}
    entries = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for blob in blobs:
        result = feedparser.parse(
            blob, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
        entries += len(result.entries)
    return {
        "feeds": len(blobs),
        "entries": entries,
        "bytes": sum(map(len, blobs)),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def floor_feeds_busy(farm: Path) -> dict[str, Any]:
    """``floor_feeds`` in one process per core, all at once: what a core does when every
    core parses (they share caches, memory bandwidth and, on a VM, the host's cores)."""
    import multiprocessing

    count = os.cpu_count() or 1
    with multiprocessing.get_context("fork").Pool(count) as pool:
        results = pool.map(floor_feeds, [farm] * count)
    each = [float(r["cpu_seconds"]) for r in results]
    return {
        "processes": count,
        "feeds": results[0]["feeds"],
        "entries": results[0]["entries"],
        "cpu_seconds": statistics.mean(each),
        "cpu_seconds_each": each,
        "seconds": max(float(r["seconds"]) for r in results),
    }


def floor_pages(farm: Path) -> dict[str, float | int]:
    """readability-lxml summary + ingestd's HTML -> markdown, per page, one core."""
    from readability import Document

    from ingestd.formats.markdown import html_to_markdown

    blobs = [p.read_bytes() for p in page_files(farm)]
    chars = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for blob in blobs:
        summary = Document(blob.decode("utf-8")).summary(html_partial=True)
        chars += len(html_to_markdown(summary))
    return {
        "pages": len(blobs),
        "markdown_chars": chars,
        "bytes": sum(map(len, blobs)),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def floor_extract(farm: Path) -> dict[str, float | int]:
    """ingestd's extract_article + format-A content per page, one core (informative)."""
    from ingestd.extract import extract_article
    from ingestd.formats.feed import content_from_article

    blobs = [(p, p.read_bytes()) for p in page_files(farm)]
    chars = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for path, blob in blobs:
        article = extract_article(blob.decode("utf-8"), f"http://127.0.0.1/{path.name}")
        chars += len(content_from_article(article))
    return {
        "pages": len(blobs),
        "html_chars": chars,
        "bytes": sum(len(b) for _, b in blobs),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def floor_http(farm: Path, concurrency: int = 4) -> dict[str, float | int]:
    """httpx alone: one conditional GET per farm feed (all 304), one event loop."""
    import asyncio

    import httpx

    base = json.loads((farm / "farm.json").read_text())["base_url"]
    urls = [f"{base}/feeds/{p.name}" for p in feed_files(farm)]

    async def run() -> dict[str, float | int]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        slots = asyncio.Semaphore(concurrency)
        validators: dict[str, dict[str, str]] = {}
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(limits=limits) as client:

            async def learn(url: str) -> None:
                async with slots:
                    response = await client.head(url)
                    validators[url] = {
                        "If-None-Match": response.headers["etag"],
                        "If-Modified-Since": response.headers["last-modified"],
                    }

            async def check(url: str) -> None:
                async with slots, client.stream("GET", url, headers=validators[url]) as response:
                    async for _chunk in response.aiter_raw():
                        pass
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            await asyncio.gather(*(learn(url) for url in urls))
            started = time.perf_counter()
            cpu = time.process_time()
            await asyncio.gather(*(check(url) for url in urls))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return {
            "feeds": len(urls),
            "not_modified": statuses.get(304, 0),
            "concurrency": concurrency,
            "seconds": seconds,
            "cpu_seconds": cpu,
        }

    return asyncio.run(run())


MODES = {
    "feeds": floor_feeds,
    "feeds-busy": floor_feeds_busy,
    "pages": floor_pages,
    "extract": floor_extract,
    "http": floor_http,
}


def main(argv: list[str]) -> int:
    """Run one floor and print its JSON."""
    if len(argv) not in (2, 3) or argv[0] not in MODES or (len(argv) == 3 and argv[0] != "http"):
        print(
            f"usage: python -m bench.floor {{{'|'.join(MODES)}}} FARM  (http: FARM [N])",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    if argv[0] == "http":
        result = floor_http(Path(argv[1]), *(int(n) for n in argv[2:]))
    else:
        result = MODES[argv[0]](Path(argv[1]))
    result["process_seconds"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
