"""``entries search`` time on an archive of many entries, on either backend.

    python -m bench.search_time --db sqlite:////tmp/s.db [--entries 100000] [--queries 20]
    python -m bench.search_time --db 'postgresql+psycopg://postgres@127.0.0.1/test?options=-csearch_path%3Dbench'
    python -m bench.search_time --db sqlite:////tmp/s.db --queries-only   # again, same store

Builds a fresh store (the database must be empty) holding ``--entries`` entries in 10
feeds, each with a body of about 1,600 characters made of random sentences of the
shared corpus's articles (Chinese and some English; about the corpus's average length),
and indexes them as ``ingestd.indexer`` does. One entry's body holds, in its middle, a
sentence no other body has. Then times ``Store.search_entries`` (what ``ingestd entries
search`` runs after its catch-up) for that unique phrase, for a phrase of a corpus
sentence that recurs in many bodies, and for a two-character phrase (no trigram: a scan);
each ``--queries`` times, reporting the median and the slowest. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from ingestd import indexer
from ingestd.naming import FIRST_FILE_ID
from ingestd.store import NewEntry, open_store

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
UNIQUE = "这一句独一无二的测试短语只出现在一篇文章的正文中间"
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def sentences() -> list[str]:
    """Sentences of the corpus's format A and B articles (their text, markup removed)."""
    found: list[str] = []
    for path in sorted(CORPUS.glob("format-[ab]/**/*.md")):
        text = indexer.findable(path.read_text(encoding="utf-8"))
        found += [s.strip() + "。" for s in re.split(r"[。\n]", text) if len(s.strip()) > 8]
    return found


def build(url: str, count: int, rng: random.Random) -> tuple[float, float, str]:
    """Store ``count`` entries with their index rows; returns (insert s, index s, a phrase)."""
    pool = sentences()
    common = max(pool[: len(pool) // 3], key=len)[4:14]  # a sentence used in many bodies
    feeds = 10
    with open_store(url) as store:
        store.sync_feeds([(f"f{n}", f"https://x.example/{n}", "feed", 60) for n in range(feeds)],
                         now=NOW)  # fmt: skip
        ids = {f.name: f.id for f in store.list_feeds()}
        per_feed = count // feeds
        started = time.perf_counter()
        for n in range(feeds):
            for start in range(0, per_feed, 1000):
                batch = [_entry(n, i) for i in range(start, min(start + 1000, per_feed))]
                store.add_entry_groups([(ids[f"f{n}"], batch, NOW)])
        inserted = time.perf_counter() - started
        target = count // 2 + 7
        started = time.perf_counter()
        done = 0
        while rows := store.unindexed("bench", 1000):
            texts = []
            for entry_id, _path, title in rows:
                body = " ".join(rng.choice(pool) for _ in range(30))
                if done == target:
                    body = body[: len(body) // 2] + UNIQUE + body[len(body) // 2 :]
                texts.append((entry_id, title or "", body))
                done += 1
            store.index_texts(texts)
        return inserted, time.perf_counter() - started, common


def _entry(feed: int, i: int) -> NewEntry:
    return NewEntry(
        identity_key=f"guid:{feed}-{i}", content_hash=f"{feed}-{i}", guid=f"{feed}-{i}",
        link=f"https://x.example/{feed}/{i}", title=f"entry {i} of feed {feed}",
        published_at=NOW, published_is_fallback=False,
        archive_path=f"articles/f{feed}/{FIRST_FILE_ID - i}.md", file_id=FIRST_FILE_ID - i,
    )  # fmt: skip


def timed(url: str, phrase: str, queries: int) -> dict[str, object]:
    with open_store(url) as store:
        hits = len(store.search_entries(phrase))  # warms the cache, as a second search would
        times = []
        for _ in range(queries):
            started = time.perf_counter()
            store.search_entries(phrase)
            times.append((time.perf_counter() - started) * 1000)
    median = round(statistics.median(times), 1)
    return {"phrase": phrase, "hits (limit 50)": hits, "median_ms": median,
            "max_ms": round(max(times), 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument(
        "--queries-only", action="store_true", help="time the queries on a store built before"
    )
    args = parser.parse_args()
    if args.queries_only:
        inserted = indexed = float("nan")
        common = max(sentences()[: len(sentences()) // 3], key=len)[4:14]
    else:
        inserted, indexed, common = build(args.db, args.entries, random.Random(18))
    result = {
        "entries": args.entries,
        "insert_s": round(inserted, 1),
        "index_s": round(indexed, 1),
        "unique phrase": timed(args.db, UNIQUE[6:16], args.queries),
        "common phrase": timed(args.db, common, args.queries),
        "two characters": timed(args.db, "病毒", args.queries),
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
