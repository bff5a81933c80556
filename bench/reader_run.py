"""One update of every farm feed with the ``reader`` library (runs in bench/.venv-reader).

    python bench/reader_run.py --db reader.sqlite --urls urls.txt --workers 8

Adds the feeds (when the database is new), then ``update_feeds(scheduled=False,
workers=N)``: every feed is updated now, whatever reader's own schedule says, so a
second run is a warm cycle of conditional requests. Prints one JSON object:
``{"feeds", "entries", "new_entries", "errors", "seconds", "update_seconds", "workers"}``.

Only the standard library and reader's public API; no ingestd import (other venv).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    """Run one update and print its summary."""
    started = time.monotonic()
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--urls", required=True, help="file with one feed URL per line")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from reader import make_reader

    with open(args.urls, encoding="utf-8") as handle:
        urls = [line.strip() for line in handle if line.strip()]
    reader = make_reader(args.db)
    try:
        before = reader.get_entry_counts().total
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        update_started = time.monotonic()
        reader.update_feeds(scheduled=False, workers=args.workers)
        update_seconds = time.monotonic() - update_started
        entries = reader.get_entry_counts().total
        errors = sum(1 for feed in reader.get_feeds() if feed.last_exception is not None)
    finally:
        reader.close()
    print(
        json.dumps(
            {
                "feeds": len(urls),
                "entries": entries,
                "new_entries": entries - before,
                "errors": errors,
                "seconds": round(time.monotonic() - started, 3),
                "update_seconds": round(update_seconds, 3),
                "workers": args.workers,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
