"""``ingestd entries search``: entries found by a phrase of their archived text, the
index filled from the files (also for an archive made before the index existed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestd import archive, indexer
from ingestd.cli import main
from ingestd.store import Store, open_store
from ingestd.store.engine import open_database
from ingestd.store.migrate import upgrade_database
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import feed_named, record_file_late, store_entry
from tests.test_fetch_e2e import Setup, feed_toml, item, rss
from tests.test_fetch_e2e import setup as setup  # noqa: F401

BODY = (
    "<p>美国之音消息：</p><p>世界卫生组织周四表示，<b>不排除</b>新冠病毒通过空气传播的可能性，"
    "并呼吁各国加强通风。</p>"
)


def search(setup: Setup, *args: str) -> tuple[int, str]:
    setup.capsys.readouterr()
    code = main(["entries", "search", "--config", str(setup.config), *args])
    return code, setup.capsys.readouterr().out


def test_fetched_entries_are_found_by_a_phrase_across_markup(
    setup: Setup, loopback: LoopbackServer
) -> None:
    items = item("病毒新闻", "http://x.example/1", "1", content=BODY) + item(
        "Other", "http://x.example/2", "2", content="<p>nothing to see</p>"
    )
    loopback.route("/a.xml", (200, {"Content-Type": "application/rss+xml"}, rss(items)))
    setup.write(feed_toml("a", loopback.url("/a.xml")))
    assert setup.fetch()[0] == 0
    # "不排除" and "新冠" sit on both sides of a tag in the file: the index holds the words.
    code, out = search(setup, "不排除新冠病毒通过空气")
    assert code == 0
    assert "病毒新闻" in out and "Other" not in out
    assert "不排除新冠病毒通过空气传播的" in out  # the text around the match
    code, out = search(setup, "--json", "NOTHING TO")
    assert code == 0
    [row] = json.loads(out)["entries"]
    assert (row["title"], row["link"], row["feed"]) == ("Other", "http://x.example/2", "a")
    assert search(setup, "不在这里的短语")[0] == 1
    assert search(setup, "--feed", "a", "--since", "2999-01-01", "通风")[0] == 1


def test_an_unknown_feed_is_one_clear_error(setup: Setup, loopback: LoopbackServer) -> None:
    loopback.route("/a.xml", (200, {"Content-Type": "application/rss+xml"}, rss("")))
    setup.write(feed_toml("a", loopback.url("/a.xml")))
    setup.capsys.readouterr()
    code = main(["entries", "search", "--config", str(setup.config), "--feed", "zz", "x"])
    assert code != 0
    assert "no feed named 'zz'" in setup.capsys.readouterr().err


def test_an_archive_from_before_the_index_is_indexed_from_its_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = open_database(url)
    try:
        upgrade_database(db, "0003")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO feeds (id, name, url, original_url, format, enabled, "
                "interval_seconds, consecutive_errors, created_at) VALUES (1, 'a', "
                "'https://a/', 'https://a/', 'feed', 1, 60, 0, '2026-01-01 00:00:00.000000')"
            )
            conn.exec_driver_sql(
                "INSERT INTO entries (id, feed_id, identity_key, title, published_is_fallback, "
                "first_seen_at, archive_path, file_id, current_revision, created_at) VALUES "
                "(1, 1, 'guid:x', 'old', 0, '2026-01-01 00:00:00.000000', "
                "'articles/a/1048575.md', 1048575, 1, '2026-01-01 00:00:00.000000')"
            )
    finally:
        db.close()
    root = tmp_path / "archive"
    (root / "articles" / "a").mkdir(parents=True)
    (root / "articles" / "a" / "1048575.md").write_text(
        f"<!--1-->\n[old](https://a/1)\n------\n\n{BODY}\n", encoding="utf-8"
    )
    with open_store(url) as store:  # migrates to 0004: the index exists, empty
        assert store.search_entries("空气传播") == []
        assert indexer.catch_up(store, root) == 1
        assert [e.id for _f, e in store.search_entries("空气传播")] == [1]
        assert indexer.catch_up(store, root) == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [("<p>a<b>b</b></p>", "ab"), ("plain [link](x)", "plain [link](x)"), ("<!--1-->", "")],
)
def test_findable_text_drops_markup(text: str, words: str) -> None:
    assert indexer.findable(text) == words


class _Stop(Exception):
    pass


@contextmanager
def _one_feed_archive(
    tmp_path: Path,
) -> Iterator[tuple[Store, Path, Callable[[str, str | None], int]]]:
    """A store with feed "a" and its archive folder, and ``add(name, path)``: write the
    entry's file at ``path`` (none when None), store the entry, return its id."""
    root, now = tmp_path / "archive", datetime(2026, 1, 1, tzinfo=UTC)
    (root / "articles" / "a").mkdir(parents=True)
    with open_store(f"sqlite:///{tmp_path / 'i.db'}") as store:
        store.sync_feeds([("a", "https://a/", "feed", 60)], now=now)
        feed = feed_named(store, "a")
        assert feed is not None
        here = archive.archive_identity(root)

        def add(name: str, path: str | None) -> int:
            if path is not None:
                (root / path).write_text(f"<p>{name} 正文</p>", encoding="utf-8")
            entry = store_entry(store, feed.id, name, content_hash=name, first_seen_at=now,
                                title=name, archive_path=path,
                                file_id=int(path[11:-3]) if path else None,
                                archive_id=here)  # fmt: skip
            return entry.id

        yield store, root, add


def test_an_idle_background_indexer_does_not_look_at_every_entry_each_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon started on an archive indexed already: its rounds used to start from
    # entry 0 each time (it had indexed nothing), a scan of the whole archive per round.
    with _one_feed_archive(tmp_path) as (store, root, add):
        ids = [add(str(n), f"articles/a/{n}.md") for n in range(1, 4)]
        assert indexer.catch_up(store, root) == 3
        asked: list[int] = []
        unindexed = store.unindexed

        def counting(archive_id: str, limit: int = 500, *, after_id: int = 0) -> object:
            asked.append(after_id)
            return unindexed(archive_id, limit, after_id=after_id)

        async def rest(_seconds: float) -> None:
            if len(asked) == 4:
                raise _Stop

        monkeypatch.setattr(store, "unindexed", counting)
        monkeypatch.setattr(indexer.asyncio, "sleep", rest)
        with pytest.raises(_Stop):
            asyncio.run(indexer.keep_in_step(store, root, full_look_every=3))
        # The first round looks at all, the next ones above the newest entry, the third
        # after the first at all again.
        assert asked == [0, max(ids), max(ids), 0]


def test_the_background_indexer_looks_above_its_last_entry_and_now_and_then_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _one_feed_archive(tmp_path) as (store, root, add):
        late = add("late", None)  # its page is retried: the file comes after later ones
        add("first", "articles/a/1.md")
        found: list[list[str | None]] = []

        async def rest(_seconds: float) -> None:
            found.append(sorted(e.title for _f, e in store.search_entries("正文")))
            if len(found) == 1:
                (root / "articles/a/2.md").write_text("<p>late 正文</p>", encoding="utf-8")
                record_file_late(store, late, "articles/a/2.md", 2)
                add("second", "articles/a/3.md")
            if len(found) == 4:
                raise _Stop

        monkeypatch.setattr(indexer.asyncio, "sleep", rest)
        with pytest.raises(_Stop):
            asyncio.run(indexer.keep_in_step(store, root, full_look_every=3))
        assert found == [
            ["first"],  # the first round looks at every entry
            ["first", "second"],  # the next ones above the last entry indexed: not "late"
            ["first", "second"],
            ["first", "late", "second"],  # every third round after the first looks at all
        ]
