"""The search index on both backends: a phrase of any script found anywhere in a text."""

from __future__ import annotations

from datetime import timedelta

from ingestd.store import NewEntry, Store
from tests.store.conftest import NOW
from tests.storehelp import feed_named

BODY = (
    "美国之音消息：世界卫生组织周四表示，不排除新冠病毒通过空气传播的可能性，"
    "并呼吁各国加强通风。100% of the_text is here. Hello World."
)


def entry(key: str, title: str) -> NewEntry:
    return NewEntry(
        identity_key=key, content_hash="h" + key, guid=key, link=f"https://x.example/{key}",
        title=title, published_at=NOW, published_is_fallback=False,
        archive_path=f"articles/f/{key}.md", file_id=1000 - len(key) - ord(key[-1]),
    )  # fmt: skip


def setup(store: Store) -> dict[str, int]:
    store.sync_feeds([("f", "https://x.example/f", "feed", 60), ("g", "https://x.example/g",
                      "feed", 60)], now=NOW)  # fmt: skip
    feeds = {f.name: f.id for f in store.list_feeds()}
    store.add_entry_groups([(feeds["f"], [entry("a", "病毒"), entry("b", "other")], NOW)])
    store.add_entry_groups([(feeds["g"], [entry("c", "third")], NOW + timedelta(days=1))])
    ids = {e.guid: e.id for _feed, e in store.list_entries() if e.guid}
    store.index_texts([(ids["a"], "病毒", BODY), (ids["b"], "other", "nothing here"),
                       (ids["c"], "third", "第三篇：" + BODY)])  # fmt: skip
    return ids


def found(store: Store, phrase: str, *names: str, **kwargs: object) -> list[str | None]:
    return [e.guid for _f, e in store.search_entries(phrase, names, **kwargs)]  # type: ignore[arg-type]


def test_a_chinese_phrase_from_the_middle_of_a_body_is_found(store: Store) -> None:
    setup(store)
    assert found(store, "不排除新冠病毒通过空气") == ["c", "a"]  # newest first
    assert found(store, "通风。100%") == ["c", "a"]
    assert found(store, "不排除新冠病毒通过空气传播的坏处") == []


def test_short_phrases_case_and_like_characters(store: Store) -> None:
    setup(store)
    assert found(store, "病毒") == ["c", "a"]  # two characters: no trigram, still found
    assert found(store, "hello world") == ["c", "a"]  # ASCII case ignored
    assert found(store, "100%") == ["c", "a"]
    assert found(store, "1%") == []  # % and _ are literal, not wildcards
    assert found(store, "the_text") == ["c", "a"]
    assert found(store, "thexext") == []
    assert found(store, "other") == ["b"]  # the title counts


def test_feed_since_limit_and_deletion(store: Store) -> None:
    ids = setup(store)
    assert found(store, "空气传播", "f") == ["a"]
    assert found(store, "空气传播", since=NOW + timedelta(hours=1)) == ["c"]
    assert found(store, "空气传播", since=NOW + timedelta(days=1)) == ["c"]  # at, not only after
    assert found(store, "空气传播", since=NOW + timedelta(days=1, microseconds=1)) == []
    assert found(store, "空气传播", limit=1) == ["c"]
    store.delete_entry(ids["c"])
    assert found(store, "空气传播") == ["a"]
    assert store.unindexed("any", 10) == []


def test_unindexed_names_what_still_needs_a_row(store: Store) -> None:
    setup(store)
    store.sync_feeds([("f", "https://x.example/f", "feed", 60)], now=NOW)
    feed = feed_named(store, "f")
    assert feed is not None
    store.add_entry_groups([(feed.id, [entry("d", "new")], NOW)], archive_id="here")
    [(entry_id, path, title)] = store.unindexed("here", 10)
    assert (path, title) == ("articles/f/d.md", "new")
    assert store.unindexed("elsewhere", 10) == []  # another machine's folder
    assert store.unindexed("here", 10, after_id=entry_id - 1) == [(entry_id, path, title)]
    assert store.unindexed("here", 10, after_id=entry_id) == []  # only ids above after_id
    store.index_texts([(entry_id, "new", "body")])
    assert store.unindexed("here", 10) == []
    store.index_texts([(entry_id, "new", "changed body 改写")])  # a reprocessed file
    assert found(store, "改写") == ["d"]
    assert found(store, "body") == ["d"]


def test_indexed_texts_are_what_the_index_holds(store: Store) -> None:
    ids = setup(store)
    texts = store.indexed_texts([ids["a"], ids["c"], 999_999])
    assert texts == {ids["a"]: BODY, ids["c"]: "第三篇：" + BODY}  # no row: left out
    assert store.indexed_texts([]) == {}
