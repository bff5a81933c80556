"""The floors: what one core does with the farm's bytes already in memory.

    python -m bench.floor feeds FARM      feedparser over every farm feed
    python -m bench.floor pages FARM      readability-lxml + HTML -> markdown over every page
    python -m bench.floor extract FARM    ingestd's own extract_article over every page

Files are read into memory first; only the parsing is timed, in this one process.
``feeds`` calls feedparser as ingestd does (``sanitize_html=False``,
``resolve_relative_uris=False``): ingestd cannot parse faster than this per core.
``pages`` is readability's summary of each page plus ingestd's HTML -> markdown
conversion of that summary. ``extract`` (informative) is ingestd's whole extraction
step, which does more than readability alone. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


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
        result = feedparser.parse(blob, response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
        entries += len(result.entries)
    return {"feeds": len(blobs), "entries": entries, "bytes": sum(map(len, blobs)),
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


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
    return {"pages": len(blobs), "markdown_chars": chars, "bytes": sum(map(len, blobs)),
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


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
    return {"pages": len(blobs), "html_chars": chars, "bytes": sum(len(b) for _, b in blobs),
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


MODES = {"feeds": floor_feeds, "pages": floor_pages, "extract": floor_extract}


def main(argv: list[str]) -> int:
    """Run one floor and print its JSON."""
    if len(argv) != 2 or argv[0] not in MODES:
        print(f"usage: python -m bench.floor {{{'|'.join(MODES)}}} FARM", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = MODES[argv[0]](Path(argv[1]))
    result["process_seconds"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
