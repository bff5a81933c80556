"""Frozen value types passed between pipeline stages.

No I/O and no third-party imports here: every stage can depend on this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypedDict


class ArchiveFormat(StrEnum):
    """The two archived-text formats (see docs/formats.md)."""

    FEED = "feed"  # format A
    REPOST = "repost"  # format B


@dataclass(frozen=True)
class FeedDoc:
    """One format-A file: an item archived as HTML under a markdown heading.

    ``pubdate_ms`` is None for files whose date line says ``NaN``.
    """

    pubdate_ms: int | None
    title: str
    link: str
    content: str


@dataclass(frozen=True)
class Newlines:
    """Where a format-B file uses ``\\r\\n`` instead of ``\\n``.

    ``front`` ends the three front-matter lines, ``source`` ends the source line,
    ``blank`` is the line after it, ``body`` joins body lines (None: the body is kept
    with its own mixed endings), ``final`` ends the file.
    """

    front: str = "\n"
    source: str = "\n"
    blank: str = "\n"
    body: str | None = "\n"
    final: str = "\n"


LF = Newlines()
#: The 2022-04 and later form: CRLF front matter, bare LF after the source line.
CRLF = Newlines(front="\r\n", source="\n", blank="\r\n", body="\r\n", final="\r\n")
#: The 2023-24 form: as CRLF, but the body itself uses bare LF.
CRLF_LF_BODY = Newlines(front="\r\n", source="\n", blank="\r\n", body="\n", final="\r\n")
#: The names ``[[feeds]] newlines`` accepts.
NEWLINE_STYLES = {"lf": LF, "crlf": CRLF, "crlf-lf-body": CRLF_LF_BODY}


@dataclass(frozen=True)
class RepostDoc:
    """One format-B file: a page reposted as markdown with front matter.

    ``body`` uses ``\\n`` line breaks unless ``newlines.body`` is None, in which
    case it holds the file's body bytes verbatim (mixed endings).
    """

    title: str
    source: str
    label: str
    url: str
    body: str
    newlines: Newlines = LF


ArchiveDoc = FeedDoc | RepostDoc


@dataclass(frozen=True)
class FeedSpec:
    """A configured feed, as the pipeline needs it (no config-file details)."""

    name: str
    url: str
    format: ArchiveFormat = ArchiveFormat.FEED
    fetch_page: bool = False
    source: str = ""
    label: str = "轉載自{site}"
    site: str = ""
    image_proxy: str = ""
    sanitize: bool = True
    newlines: Newlines = LF


@dataclass(frozen=True)
class Fetched:
    """A fetched HTTP resource with its caching validators."""

    url: str
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0

    @property
    def permanent_url(self) -> str | None:
        """The URL to store instead of the requested one, if it moved permanently (only
        an HTTP fetch through redirects knows; see ``fetch.FetchResult``)."""
        return None


@dataclass(frozen=True)
class EntryData:
    """One feed item as the parse stage yields it.

    ``content`` is the item's HTML (``content:encoded`` when present, else the
    description or Atom content); ``published`` is None when the item has no
    parseable date.
    """

    title: str
    link: str
    guid: str | None
    content: str
    published: datetime | None
    summary: str = ""


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: its entries plus what the parser had to say about it."""

    title: str
    link: str
    entries: tuple[EntryData, ...]
    bozo: str | None = None
    ttl_minutes: int | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Article:
    """What extraction found in a page: title, cleaned HTML and a few extras."""

    title: str
    html: str
    url: str
    lead_image: str | None = None
    caption: str | None = None
    published: datetime | None = None


@dataclass(frozen=True)
class PageFailure:
    """How archiving one entry's article page has gone so far (see ``decide.page_failed``).

    ``next_retry_at`` is None once the entry is given up; ``given_up_reason`` says why.
    """

    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    last_error: str
    next_retry_at: datetime | None
    given_up_reason: str | None = None

    @property
    def given_up(self) -> bool:
        """True once no poll retries this entry by itself (``ingestd entries retry`` does)."""
        return self.given_up_reason is not None


class PollOutcome(StrEnum):
    """How one poll of one feed ended (the poll log's ``outcome`` column holds the value)."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    # Not polled at all (``ingestd fetch`` reports them; the poll log never holds them).
    BUSY = "busy"  # another ingestd holds the feed's lease
    DISABLED = "disabled"  # the feed is disabled


#: The outcomes of a poll that happened: what the poll log may hold.
POLLED = (PollOutcome.OK, PollOutcome.NOT_MODIFIED, PollOutcome.FAILED)


class FeedState(TypedDict, total=False):
    """The feed columns a poll may change (``decide.after_poll`` says which)."""

    url: str
    etag: str | None
    last_modified: str | None
    next_check_at: datetime | None
    consecutive_errors: int
    last_error: str | None
    last_status: int | None
    failing_since: datetime | None
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True)
class PageProblem:
    """An entry whose article page failed in this poll: the error and what happens next."""

    link: str
    error: str
    attempts: int
    next_retry_at: datetime | None
    given_up: str | None  # the reason, once the entry is given up


@dataclass(frozen=True)
class PollResult:
    """What one poll of one feed did (``parsed`` keeps the feed's hints, not its entries)."""

    feed: str
    outcome: PollOutcome
    status: int | None = None
    new_entries: int = 0
    archived: int = 0
    revised: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    bytes: int = 0
    duration_ms: int = 0
    retry_after: float | None = None
    moved_to: str | None = None
    parsed: ParsedFeed | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parse_seconds: float = 0.0  # CPU time spent parsing the document
    pages_failed: int = 0  # article pages that failed in this poll
    entries_waiting: int = 0  # the feed's entries waiting for a page retry, after this poll
    entries_given_up: int = 0  # the feed's entries given up, after this poll
    page_problems: tuple[PageProblem, ...] = ()  # one per failed page of this poll
    # The validators to keep for the next conditional GET: none when entries were left
    # over, so the next poll gets the whole feed again, not a 304 that would strand them.
    etag: str | None = None
    last_modified: str | None = None
    # The poll's outcome gave the feed's lease back (``PollLog``): the scheduler need not.
    lease_returned: bool = False
