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
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ingestd.types import EntryData

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


def _by_link(item: Keyed, known_by_link: Mapping[str, Known]) -> Known | None:
    # Only a guid-keyed entry may fall back to its link: a feed that changed guids.
    if not item.key.startswith("guid:") or not item.entry.link:
        return None
    return known_by_link.get(item.entry.link)
