"""How an archive file's name and number are chosen: the one home of that rule.

A feed's files are numbered down from ``FIRST_FILE_ID`` (1048575): each new file takes
the number below the feed's lowest one (``next_below``), or, when that name is taken
(a crash's orphan not yet moved aside, another daemon's file), the first free one
below it (``candidates``). Its name is ``{number}.md`` (``file_name``; the older
archive named files ``{number}_{title}.md``), in the feed's folder, whose name is
the feed's made safe (``safe_component``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

FIRST_FILE_ID = 0xFFFFF  # 1048575: the first file of a feed; later ones count down
ID_ATTEMPTS = 1000  # file names tried below the next id before giving up
MAX_NAME_BYTES = 200  # well under the 255-byte limit of ext4, APFS and NTFS
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def next_below(lowest: int | None) -> int | None:
    """The number of a feed's next file, given its lowest used (None: no file yet);
    None when every number is used."""
    if lowest is None:
        return FIRST_FILE_ID
    return lowest - 1 if lowest > 0 else None


def candidates(file_id: int) -> Iterable[int]:
    """The numbers a new file may take, in order: ``file_id`` and the ones below it."""
    return range(file_id, max(file_id - ID_ATTEMPTS, -1), -1)


def file_name(file_id: int, title: str | None = None) -> str:
    """``{id}.md``, or ``{id}_{title}.md`` (the older naming) with a made-safe title."""
    if title is None:
        return f"{file_id}.md"
    stem = safe_component(f"{file_id}_{title}", max_bytes=MAX_NAME_BYTES - 3)
    return f"{stem}.md"


def safe_component(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One path component that is safe on every common filesystem, whatever ``text`` holds.

    No separators, control characters or characters Windows forbids; no leading
    dot (no hidden files, no ``..``); no trailing dot or space; not a reserved
    device name; at most ``max_bytes`` of UTF-8 without splitting a character.
    """
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", text))
    cleaned = cleaned.lstrip(". ").rstrip(". ")
    cleaned = _truncate_utf8(cleaned, max_bytes).rstrip(". ")
    if not cleaned:
        return "_"
    if _WINDOWS_RESERVED.fullmatch(cleaned):
        # The prefix must not push the name past max_bytes.
        return _truncate_utf8(f"_{cleaned}", max_bytes).rstrip(". ")
    return cleaned


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")
