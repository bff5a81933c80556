"""Configuration sync, polling state, the fetch log, enabling and disabling."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingestd.store import REMOVED_REASON, FeedConfig, FeedRecord, FetchAttempt, Store
from ingestd.types import ArchiveFormat
from tests.store.conftest import NOW
from tests.storehelp import due_feeds, feed_named, fetch_log, set_feed_state

LATER = NOW + timedelta(hours=1)
A = FeedConfig("a", "https://a.example/feed", ArchiveFormat.FEED, 1800)
B = FeedConfig("b", "https://b.example/rss", "repost", 600)


def _feed(store: Store, name: str) -> FeedRecord:
    feed = feed_named(store, name)
    assert feed is not None, name
    return feed


def test_sync_adds_new_feeds_due_at_once(store: Store) -> None:
    result = store.sync_feeds([A, B], now=NOW)
    assert result.added == ("a", "b")
    b = _feed(store, "b")
    assert (b.url, b.original_url, b.format, b.interval_seconds) == (
        "https://b.example/rss", "https://b.example/rss", ArchiveFormat.REPOST, 600,
    )  # fmt: skip
    assert b.enabled and b.next_check_at == NOW and b.created_at == NOW
    assert b.consecutive_errors == 0 and b.etag is None
    assert [f.name for f in store.list_feeds()] == ["a", "b"]


def test_sync_again_without_changes_touches_nothing(store: Store) -> None:
    store.sync_feeds([A, B], now=NOW)
    result = store.sync_feeds([A, B], now=LATER)
    assert result.added == result.updated == result.disabled == result.reenabled == ()
    assert _feed(store, "a").next_check_at == NOW


def test_sync_updates_changed_feeds(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    feed = _feed(store, "a")
    set_feed_state(store, feed.id, etag='"v1"', last_modified="x", next_check_at=LATER)
    moved = FeedConfig("a", "https://new.example/feed", "repost", 60)
    assert store.sync_feeds([moved], now=NOW).updated == ("a",)
    feed = _feed(store, "a")
    assert (feed.url, feed.original_url, feed.format, feed.interval_seconds) == (
        "https://new.example/feed", "https://new.example/feed", ArchiveFormat.REPOST, 60,
    )  # fmt: skip
    # Validators of the old URL must not be sent to the new one.
    assert feed.etag is None and feed.last_modified is None and feed.next_check_at == NOW


def test_sync_keeps_a_stored_redirect_target(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    feed_id = _feed(store, "a").id
    set_feed_state(store, feed_id, url="https://a.example/moved")
    assert store.sync_feeds([A], now=LATER).updated == ()
    feed = _feed(store, "a")
    assert feed.url == "https://a.example/moved" and feed.original_url == A.url


def test_sync_disables_removed_feeds_and_reenables_them(store: Store) -> None:
    store.sync_feeds([A, B], now=NOW)
    a_id = _feed(store, "a").id
    store.record_polls([(a_id, FetchAttempt(NOW, 10, 200, "ok", 100, 1), {})])
    assert store.sync_feeds([B], now=NOW).disabled == ("a",)
    gone = _feed(store, "a")
    assert not gone.enabled and gone.disabled_reason == REMOVED_REASON
    assert len(fetch_log(store, a_id)) == 1, "history is kept"
    assert store.sync_feeds([B], now=NOW).disabled == ()
    assert store.sync_feeds([A, B], now=LATER).reenabled == ("a",)
    back = _feed(store, "a")
    assert back.enabled and back.disabled_reason is None and back.id == a_id


def test_sync_does_not_reenable_a_feed_disabled_for_another_reason(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    assert store.disable_feed("a", "410 Gone")
    store.sync_feeds([A], now=LATER)
    feed = _feed(store, "a")
    assert not feed.enabled and feed.disabled_reason == "410 Gone"


def test_enable_and_disable_by_name(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    assert store.disable_feed("a", "410 Gone")
    assert due_feeds(store, LATER) == []
    assert store.enable_feed("a", now=LATER)
    feed = _feed(store, "a")
    assert feed.enabled and feed.disabled_reason is None and feed.next_check_at == LATER
    assert not store.enable_feed("nope") and not store.disable_feed("nope", "x")


def test_due_feeds_respects_time_enabled_and_order(store: Store) -> None:
    store.sync_feeds([A, B, FeedConfig("c", "https://c.example/", "feed", 60)], now=NOW)
    a, b, c = (_feed(store, n) for n in "abc")
    set_feed_state(store, a.id, next_check_at=NOW + timedelta(minutes=5))
    set_feed_state(store, b.id, next_check_at=NOW - timedelta(minutes=5))
    store.disable_feed("c", "test")
    assert [f.name for f in due_feeds(store, NOW)] == ["b"]
    assert [f.name for f in due_feeds(store, LATER)] == ["b", "a"]
    assert [f.name for f in due_feeds(store, LATER, limit=1)] == ["b"]


def test_a_polls_state_sets_error_fields(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    feed_id = _feed(store, "a").id
    updated = set_feed_state(
        store, feed_id, consecutive_errors=3, last_error="HTTP 503", last_status=503,
        failing_since=NOW, last_fetch_at=LATER, last_success_at=NOW,
    )  # fmt: skip
    assert updated == _feed(store, "a")
    assert (updated.consecutive_errors, updated.last_error, updated.last_status) == (
        3, "HTTP 503", 503,
    )  # fmt: skip
    assert (updated.failing_since, updated.last_fetch_at) == (NOW, LATER)


def test_a_polls_state_refuses_unknown_fields_and_feeds(store: Store) -> None:
    from ingestd.errors import StorageError

    store.sync_feeds([A], now=NOW)
    feed_id = _feed(store, "a").id
    with pytest.raises(TypeError, match="lease_owner"):
        set_feed_state(store, feed_id, lease_owner="me")  # type: ignore[call-arg]
    with pytest.raises(StorageError, match="no feed with id 424242"):
        set_feed_state(store, 424242, etag="x")


def test_record_polls_keeps_every_attempt_newest_first(store: Store) -> None:
    store.sync_feeds([A], now=NOW)
    feed_id = _feed(store, "a").id
    store.record_polls([(feed_id, FetchAttempt(NOW, 120, 200, "ok", 5000, 3), {})])
    failed = FetchAttempt(LATER, 30, None, "failed", 0, 0, "connect timeout")
    store.record_polls([(feed_id, failed, {})])
    fetches = fetch_log(store, feed_id)
    assert [f.started_at for f in fetches] == [LATER, NOW]
    assert fetches[0].error == "connect timeout" and fetches[0].status is None
    assert (fetches[1].bytes, fetches[1].new_entries, fetches[1].duration_ms) == (5000, 3, 120)
    with pytest.raises(ValueError, match="outcome"):
        store.record_polls([(feed_id, FetchAttempt(NOW, 1, 200, "fine", 0, 0), {})])
