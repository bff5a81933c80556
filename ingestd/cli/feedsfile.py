"""Adding and removing ``[[feeds]]`` tables in the configuration file as text.

The file is edited as text so its comments and layout survive; the result is
validated as a whole before it replaces the old file (atomically).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingestd import config
from ingestd.errors import ConfigError

_HEADER = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class NewFeed:
    """A feed to append: the keys ``ingestd feeds add`` and OPML import can set."""

    name: str
    url: str
    fmt: str = "feed"
    interval: str | None = None
    source: str | None = None
    site: str | None = None
    #: Further ``[[feeds]]`` keys (an OPML export's settings): (key, string or flag).
    extra: tuple[tuple[str, str | bool], ...] = ()

    def table(self) -> list[str]:
        """The ``[[feeds]]`` table's lines, preceded by a blank line."""
        lines = [
            "",
            "[[feeds]]",
            f"name = {_toml(self.name)}",
            f"url = {_toml(self.url)}",
            f"format = {_toml(self.fmt)}",
        ]
        for key, value in (
            ("interval", self.interval),
            ("source", self.source),
            ("site", self.site),
        ):
            if value is not None:
                lines.append(f"{key} = {_toml(value)}")
        for key, setting in self.extra:
            value = str(setting).lower() if isinstance(setting, bool) else _toml(setting)
            lines.append(f"{key} = {value}")
        return lines


def add_feed(
    path: Path,
    name: str,
    url: str,
    *,
    fmt: str = "feed",
    interval: str | None = None,
    source: str | None = None,
    site: str | None = None,
) -> None:
    """Append a ``[[feeds]]`` table; refuse a duplicate name or an invalid result."""
    add_feeds(path, [NewFeed(name, url, fmt, interval, source, site)])


def add_feeds(path: Path, feeds: Sequence[NewFeed], *, dry_run: bool = False) -> None:
    """Append several ``[[feeds]]`` tables in one validated, atomic write.

    Either every feed is added or, when the result would not validate (a
    duplicate name, a bad URL), none is and ConfigError says why. ``dry_run``
    validates the result and leaves the file as it was.
    """
    text = _read(path)
    lines = [line for feed in feeds for line in feed.table()]
    head = text.rstrip("\n") + "\n" if text.strip() else ""
    new = (head + "\n".join(lines) + "\n").lstrip("\n")
    if dry_run:
        config.loads(new, path)
    else:
        _replace(path, new)


def remove_feed(path: Path, name: str) -> None:
    """Remove the ``[[feeds]]`` table whose name is ``name``."""
    text = _read(path)
    lines = text.split("\n")
    start = _find_table(lines, name)
    if start is None:
        raise ConfigError(f"{path}: no feed named {name!r}")
    end = start + 1
    while end < len(lines) and not _HEADER.match(lines[end]):
        end += 1
    while end > start + 1 and lines[end - 1].strip().startswith("#"):
        end -= 1  # a comment right above the next table belongs to that table
    _replace(path, "\n".join(lines[:start] + lines[end:]))


def _find_table(lines: list[str], name: str) -> int | None:
    start = None
    for number, line in enumerate(lines):
        if _HEADER.match(line):
            start = number if line.strip() == "[[feeds]]" else None
        elif start is not None and re.match(r"\s*name\s*=", line):
            value = line.split("=", 1)[1].split("#", 1)[0].strip()
            if value in (_toml(name), f"'{name}'"):
                return start
    return None


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None


def _replace(path: Path, text: str) -> None:
    config.loads(text, path)  # raises ConfigError naming the problem; the file is untouched
    temp = path.with_name(f".{path.name}.new")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
