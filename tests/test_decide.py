"""Entry identity and change detection (pure)."""

from __future__ import annotations

from ingestd import decide
from ingestd.decide import Known
from ingestd.types import EntryData


def entry(guid: str | None, link: str, content: str = "<p>x</p>", title: str = "t") -> EntryData:
    return EntryData(title=title, link=link, guid=guid, content=content, published=None)


def known_from(keyed: list[decide.Keyed], revisions: int = 1) -> dict[str, Known]:
    return {
        k.key: Known(i, k.key, k.entry.link, k.content_hash, revisions)
        for i, k in enumerate(keyed, 1)
    }


def test_identity_order_guid_link_hash() -> None:
    keys = [
        k.key
        for k in decide.identify(
            [
                entry("g1", "https://a/1"),
                entry(None, "https://a/2"),
                entry(None, "", "<p>only</p>"),
            ]
        )
    ]
    assert keys[0] == "guid:g1"
    assert keys[1] == "link:https://a/2"
    assert keys[2].startswith("hash:")


def test_duplicate_guids_are_separate_entries() -> None:
    items = [entry("same", f"https://a/{i}") for i in range(10)]
    keyed = decide.identify(items)
    assert len({k.key for k in keyed}) == 10
    assert all(k.key.startswith("guid:same|https://a/") for k in keyed)


def test_exact_repeat_in_one_document_counts_once() -> None:
    keyed = decide.identify([entry(None, "https://a/1"), entry(None, "https://a/1")])
    assert len(keyed) == 1


def test_new_unchanged_and_revised() -> None:
    first = decide.identify([entry("g1", "https://a/1"), entry("g2", "https://a/2")])
    known = known_from(first)
    second = decide.identify(
        [
            entry("g1", "https://a/1"),
            entry("g2", "https://a/2", content="<p>edited</p>"),
            entry("g3", "https://a/3"),
        ]
    )
    result = decide.plan(second, known, {})
    assert [k.key for k in result.new] == ["guid:g3"]
    assert [(old.identity_key, new.key) for old, new in result.revised] == [("guid:g2", "guid:g2")]
    assert result.unchanged == 1


def test_changed_guid_matches_by_link() -> None:
    first = decide.identify([entry("old-guid", "https://a/1")])
    known = known_from(first)
    by_link = {k.link: k for k in known.values()}
    again = decide.identify([entry("new-guid", "https://a/1")])
    result = decide.plan(again, known, by_link)
    assert result.new == () and result.unchanged == 1


def test_revision_cap() -> None:
    first = decide.identify([entry("g", "https://a/1")])
    known = known_from(first, revisions=decide.MAX_REVISIONS)
    edited = decide.identify([entry("g", "https://a/1", content="<p>again</p>")])
    result = decide.plan(edited, known, {})
    assert result.revised == () and result.revision_cap_hit == 1
