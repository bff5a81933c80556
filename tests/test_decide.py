"""Entry identity and change detection (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingestd import decide
from ingestd.decide import Known
from ingestd.types import EntryData, ParsedFeed, PollOutcome, PollResult


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


# --- a feed's state after a poll (decide.after_poll: pure, no store, no clock) ----------


@dataclass(frozen=True)
class Before:
    url: str = "http://a.example/feed"
    consecutive_errors: int = 0
    failing_since: datetime | None = None


POLLED_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EVERY_HOUR = decide.Rhythm(interval=3600.0, jitter=0.0)


def test_a_failure_counts_backs_off_and_keeps_when_the_failing_began() -> None:
    began = POLLED_AT - timedelta(days=1)
    before = Before(consecutive_errors=2, failing_since=began)
    result = PollResult(feed="a", outcome=PollOutcome.FAILED, status=500, error="HTTP 500")
    state = decide.after_poll(before, result, POLLED_AT, EVERY_HOUR)
    assert state == {
        "last_fetch_at": POLLED_AT, "last_status": 500, "consecutive_errors": 3,
        "last_error": "HTTP 500", "failing_since": began,
        "next_check_at": POLLED_AT + timedelta(hours=4),  # the interval doubled per failure
    }  # fmt: skip
    first = decide.after_poll(Before(), result, POLLED_AT, EVERY_HOUR)
    assert first["failing_since"] == POLLED_AT and first["consecutive_errors"] == 1


def test_a_410_disables_the_feed_with_the_reason() -> None:
    result = PollResult(feed="a", outcome=PollOutcome.FAILED, status=410, error="HTTP 410")
    state = decide.after_poll(Before(), result, POLLED_AT, EVERY_HOUR)
    assert state["enabled"] is False and state["disabled_reason"] == decide.GONE_REASON
    other = PollResult(feed="a", outcome=PollOutcome.FAILED, status=404, error="HTTP 404")
    assert "enabled" not in decide.after_poll(Before(), other, POLLED_AT, EVERY_HOUR)


def test_a_success_clears_the_errors_and_a_200_keeps_its_validators() -> None:
    before = Before(consecutive_errors=4, failing_since=POLLED_AT - timedelta(hours=3))
    ok = PollResult(feed="a", outcome=PollOutcome.OK, status=200, etag='"v2"', last_modified="x")
    state = decide.after_poll(before, ok, POLLED_AT, EVERY_HOUR)
    assert state == {
        "last_fetch_at": POLLED_AT, "last_status": 200, "consecutive_errors": 0,
        "last_error": None, "failing_since": None, "last_success_at": POLLED_AT,
        "next_check_at": POLLED_AT + timedelta(hours=1), "etag": '"v2"', "last_modified": "x",
    }  # fmt: skip
    # A 304 changes no validator; a 200 that left entries over carries none (stored as such).
    same = PollResult(feed="a", outcome=PollOutcome.NOT_MODIFIED, status=304)
    assert "etag" not in decide.after_poll(before, same, POLLED_AT, EVERY_HOUR)
    left_over = PollResult(feed="a", outcome=PollOutcome.OK, status=200)
    assert decide.after_poll(before, left_over, POLLED_AT, EVERY_HOUR)["etag"] is None


def test_hints_of_the_response_and_the_feed_push_the_next_check_out() -> None:
    parsed = ParsedFeed("t", "l", (), ttl_minutes=180)
    result = PollResult(feed="a", outcome=PollOutcome.OK, status=200, parsed=parsed)
    state = decide.after_poll(Before(), result, POLLED_AT, EVERY_HOUR)
    assert state["next_check_at"] == POLLED_AT + timedelta(hours=3)
    limited = PollResult(feed="a", outcome=PollOutcome.FAILED, status=429, retry_after=86400.0)
    state = decide.after_poll(Before(), limited, POLLED_AT, EVERY_HOUR)
    assert state["next_check_at"] == POLLED_AT + timedelta(days=1)


def test_a_permanent_move_changes_the_url_only_when_it_differs() -> None:
    moved = PollResult(feed="a", outcome=PollOutcome.NOT_MODIFIED, moved_to="http://b.example/f")
    assert decide.after_poll(Before(), moved, POLLED_AT, EVERY_HOUR)["url"] == "http://b.example/f"
    home = PollResult(feed="a", outcome=PollOutcome.OK, moved_to=Before().url)
    assert "url" not in decide.after_poll(Before(), home, POLLED_AT, EVERY_HOUR)
    failed = PollResult(feed="a", outcome=PollOutcome.FAILED, moved_to="http://b.example/f")
    assert "url" not in decide.after_poll(Before(), failed, POLLED_AT, EVERY_HOUR)
