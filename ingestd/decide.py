"""Pure decisions: what in a parsed feed is new, what changed, what to leave alone.

No I/O, no clock: the caller passes what the store knows and the current time.

Entry identity is guid, else link, else a hash of title, link and content. When
one feed document repeats a guid, the repeats are told apart by ``guid|link`` (as
miniflux does), so ten items sharing a guid are ten entries. When a known link
comes back under a new guid (feeds that regenerate guids), the entry is matched by
its link instead of being archived a second time. A changed content hash becomes a
new revision of the same entry, at most ``max_revisions`` times (reader caps at 24),
never a second file.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

from ingestd.types import EntryData, FeedState, PageFailure, PollOutcome, PollResult

MAX_REVISIONS = 24


@dataclass(frozen=True)
class Known:
    """What the store remembers of one entry."""

    entry_id: int
    identity_key: str
    link: str
    content_hash: str
    revisions: int


@dataclass(frozen=True)
class Keyed:
    """An entry of the feed with its identity key and content hash."""

    key: str
    entry: EntryData
    content_hash: str


@dataclass(frozen=True)
class Plan:
    """What to do with one poll's entries."""

    new: tuple[Keyed, ...] = ()
    revised: tuple[tuple[Known, Keyed], ...] = ()
    unchanged: int = 0
    revision_cap_hit: int = 0


def content_hash(entry: EntryData) -> str:
    """A stable hash of what an entry shows (title, link, content)."""
    digest = hashlib.sha256()
    for part in (entry.title, entry.link, entry.content):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def identify(entries: Iterable[EntryData]) -> list[Keyed]:
    """Give every entry of one feed document its identity key (first occurrence wins)."""
    items = list(entries)
    guid_counts = Counter(e.guid for e in items if e.guid)
    keyed: list[Keyed] = []
    seen: set[str] = set()
    for entry in items:
        key = _key(entry, guid_counts)
        if key in seen:
            continue  # the very same item twice in one document
        seen.add(key)
        keyed.append(Keyed(key, entry, content_hash(entry)))
    return keyed


def _key(entry: EntryData, guid_counts: Counter[str]) -> str:
    if entry.guid:
        if guid_counts[entry.guid] > 1:
            return f"guid:{entry.guid}|{entry.link or content_hash(entry)[:16]}"
        return f"guid:{entry.guid}"
    if entry.link:
        return f"link:{entry.link}"
    return f"hash:{content_hash(entry)}"


def plan(
    keyed: Iterable[Keyed],
    known: Mapping[str, Known],
    known_by_link: Mapping[str, Known],
    max_revisions: int = MAX_REVISIONS,
) -> Plan:
    """Sort one poll's entries into new, revised and unchanged."""
    new: list[Keyed] = []
    revised: list[tuple[Known, Keyed]] = []
    unchanged = capped = 0
    for item in keyed:
        match = known.get(item.key) or _by_link(item, known_by_link)
        if match is None:
            new.append(item)
        elif match.content_hash == item.content_hash:
            unchanged += 1
        elif match.revisions >= max_revisions:
            capped += 1
        else:
            revised.append((match, item))
    return Plan(tuple(new), tuple(revised), unchanged, capped)


def archive_order(new: Iterable[Keyed], fallback: datetime) -> list[Keyed]:
    """New entries in the order their files are numbered: oldest first (numbers count
    down, so the newest sorts first); an undated entry counts as ``fallback``."""
    return sorted(new, key=lambda k: k.entry.published or fallback)


def _by_link(item: Keyed, known_by_link: Mapping[str, Known]) -> Known | None:
    # Only a guid-keyed entry may fall back to its link: a feed that changed guids.
    if not item.key.startswith("guid:") or not item.entry.link:
        return None
    return known_by_link.get(item.entry.link)


# --- when to poll next ------------------------------------------------------------------

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MAX_AGE = re.compile(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


#: A feed's interval when the configuration names none (``interval``).
DEFAULT_INTERVAL = 1800.0
#: How long a daemon holds a feed it is polling (``[schedule] lease``).
LEASE_SECONDS = 300.0
#: Seconds between a daemon's looks at the database for due feeds (``[schedule] tick``).
TICK_SECONDS = 5.0


@dataclass(frozen=True)
class Rhythm:
    """A feed's polling rhythm: its interval and the daemon-wide limits (their defaults
    are the configuration's)."""

    interval: float = DEFAULT_INTERVAL
    floor: float = 60.0
    jitter: float = 0.1
    max_backoff: float = 86400.0


@dataclass(frozen=True)
class Hints:
    """What the server and the feed said about when to come back."""

    retry_after: float | None = None
    max_age: float | None = None
    expires_in: float | None = None
    ttl_minutes: int | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[str] = frozenset()


def hints_from(
    headers: Mapping[str, str],
    now: datetime,
    *,
    retry_after: float | None = None,
    ttl_minutes: int | None = None,
    skip_hours: frozenset[int] = frozenset(),
    skip_days: frozenset[str] = frozenset(),
) -> Hints:
    """Collect the scheduling hints of one response (headers lower-cased)."""
    return Hints(
        retry_after=retry_after,
        max_age=_max_age(headers.get("cache-control", "")),
        expires_in=_expires_in(headers, now),
        ttl_minutes=ttl_minutes,
        skip_hours=skip_hours,
        skip_days=skip_days,
    )


def _max_age(cache_control: str) -> float | None:
    if "no-cache" in cache_control.lower() or "no-store" in cache_control.lower():
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


def _expires_in(headers: Mapping[str, str], now: datetime) -> float | None:
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    # Relative to the server's own clock when it sent one, so clock skew cancels out.
    sent = _http_date(headers.get("date")) or now
    return max(0.0, (expires - sent).total_seconds())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def next_check(
    now: datetime, rhythm: Rhythm, hints: Hints, *, errors: int = 0, rand: float = 0.0
) -> datetime:
    """When to poll a feed next.

    After a success: the largest of the interval, ``<ttl>``, ``max-age`` and
    ``Expires``. After ``errors`` consecutive failures: the interval doubled per
    failure, capped at ``max_backoff``. ``Retry-After`` pushes either further out.
    Then up to ``jitter`` of that delay is added (``rand`` in [0, 1), injected so
    tests are exact) so feeds spread out, the floor applies, and a time inside the
    feed's ``skipHours``/``skipDays`` (UTC) moves to the next allowed hour.
    """
    if errors:
        delay = min(rhythm.max_backoff, rhythm.interval * 2 ** min(errors - 1, 32))
    else:
        delay = max(
            rhythm.interval,
            (hints.ttl_minutes or 0) * 60.0,
            hints.max_age or 0.0,
            hints.expires_in or 0.0,
        )
    if hints.retry_after is not None:
        delay = max(delay, hints.retry_after)
    delay += delay * rhythm.jitter * min(max(rand, 0.0), 1.0)
    delay = max(delay, rhythm.floor)
    return _outside_skips(now + timedelta(seconds=delay), hints)


def after_interval_change(
    next_check_at: datetime | None,
    last_fetch_at: datetime | None,
    rhythm: Rhythm,
    now: datetime,
) -> datetime | None:
    """A feed's next check once its interval (``rhythm.interval``) was changed.

    A shorter interval takes effect at once: the next check comes at the last poll
    plus the new interval (at least the floor), or now if that has passed. A longer
    one waits for the check already planned, whose poll then plans with it.
    """
    if next_check_at is None:
        return None  # never polled, or due now: stays so
    since = last_fetch_at or now
    sooner = max(now, since + timedelta(seconds=max(rhythm.interval, rhythm.floor)))
    return min(next_check_at, sooner)


def _outside_skips(moment: datetime, hints: Hints) -> datetime:
    if not hints.skip_hours and not hints.skip_days:
        return moment
    candidate = moment.astimezone(UTC)
    for _ in range(8 * 24):  # a week and a day of hours: every combination is covered
        day = DAYS[candidate.weekday()]
        if candidate.hour not in hints.skip_hours and day not in hints.skip_days:
            return candidate
        candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return moment  # everything skipped: a broken feed hint, ignore it


# --- a feed's state after a poll ----------------------------------------------------------

GONE_REASON = "410 Gone: the server says the feed is gone for good (ingestd feeds enable NAME)"


class FeedSoFar(Protocol):
    """What the feed-state rules read of a feed before its poll (a ``store.FeedRecord``)."""

    @property
    def url(self) -> str: ...
    @property
    def consecutive_errors(self) -> int: ...
    @property
    def failing_since(self) -> datetime | None: ...


def after_poll(
    feed: FeedSoFar, result: PollResult, now: datetime, rhythm: Rhythm, *, rand: float = 0.0
) -> FeedState:
    """The feed columns to store after ``result``, a poll that ended at ``now``.

    A failure counts one more consecutive error and backs off (``next_check``); a 410
    disables the feed until someone enables it again. A success (200 or 304) clears the
    errors; a 200 keeps the validators the result carries (none when entries were left
    over), and a permanent redirect moves the feed to its new URL.
    """
    parsed = result.parsed
    hints = hints_from(
        result.headers, now, retry_after=result.retry_after,
        ttl_minutes=parsed.ttl_minutes if parsed else None,
        skip_hours=parsed.skip_hours if parsed else frozenset(),
        skip_days=parsed.skip_days if parsed else frozenset(),
    )  # fmt: skip
    state: FeedState = {"last_fetch_at": now, "last_status": result.status}
    if result.outcome == PollOutcome.FAILED:
        errors = feed.consecutive_errors + 1
        state["consecutive_errors"] = errors
        state["last_error"] = result.error
        state["failing_since"] = feed.failing_since or now
        state["next_check_at"] = next_check(now, rhythm, hints, errors=errors, rand=rand)
        if result.status == GONE:
            state["enabled"] = False
            state["disabled_reason"] = GONE_REASON
        return state
    state["consecutive_errors"] = 0
    state["last_error"] = None
    state["failing_since"] = None
    state["last_success_at"] = now
    state["next_check_at"] = next_check(now, rhythm, hints, rand=rand)
    if result.outcome == PollOutcome.OK:
        state["etag"] = result.etag
        state["last_modified"] = result.last_modified
    if result.moved_to and result.moved_to != feed.url:
        state["url"] = result.moved_to
    return state


# --- article pages that failed ------------------------------------------------------------


@dataclass(frozen=True)
class PageRetry:
    """How an entry whose article page failed is retried (``[schedule]`` page_retry, give_up).

    The first retry comes ``first_delay`` seconds after the failure, each further one
    twice as late, at most ``max_delay``; an entry failing for ``give_up_after`` seconds
    is given up.
    """

    first_delay: float = 900.0
    max_delay: float = 86400.0
    give_up_after: float = 3 * 86400.0


#: A page answering this status is gone for good: the entry is given up at once.
GONE = 410


def page_failed(
    previous: PageFailure | None,
    error: str,
    now: datetime,
    policy: PageRetry,
    *,
    status: int | None = None,
) -> PageFailure:
    """An entry's state after its page failed (again) at ``now`` with ``error``.

    A page that 404s today may be up tomorrow, so a failure is retried with back-off
    (a poll before ``next_retry_at`` leaves the entry alone); after ``give_up_after``
    seconds of failing, or on 410 Gone, the entry is given up with the reason.
    """
    attempts = (previous.attempts if previous else 0) + 1
    first = previous.first_failed_at if previous else now
    failing = (now - first).total_seconds()
    if status == GONE:
        reason = f"the server says the page is gone for good; last: {error}"
    elif failing >= policy.give_up_after:
        reason = f"failed for {_span(failing)} ({attempts} attempts); last: {error}"
    else:
        delay = min(policy.max_delay, policy.first_delay * 2 ** min(attempts - 1, 32))
        return PageFailure(attempts, first, now, error, now + timedelta(seconds=delay))
    return PageFailure(attempts, first, now, error, None, reason)


def page_due(failure: PageFailure | None, now: datetime) -> bool:
    """Whether an entry's page is to be tried in a poll at ``now`` (never failed, or due)."""
    if failure is None:
        return True
    return failure.next_retry_at is not None and failure.next_retry_at <= now


def _span(seconds: float) -> str:
    days = round(seconds / 86400)
    if days >= 1:
        return "1 day" if days == 1 else f"{days} days"
    return f"{seconds / 3600:.0f} hours"
