"""Adding and removing ``[[feeds]]`` tables in the configuration file as text.

The file is edited as text so its comments and layout survive; the result is
validated as a whole before it replaces the old file (atomically).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ingestd import config
from ingestd.errors import ConfigError

_HEADER = re.compile(r"^\s*\[")


def add_feed(
    path: Path, name: str, url: str, *, fmt: str = "feed", interval: str | None = None,
    source: str | None = None, site: str | None = None,
) -> None:
    """Append a ``[[feeds]]`` table; refuse a duplicate name or an invalid result."""
    text = _read(path)
    lines = ["", "[[feeds]]", f"name = {_toml(name)}", f"url = {_toml(url)}",
             f"format = {_toml(fmt)}"]
    for key, value in (("interval", interval), ("source", source), ("site", site)):
        if value is not None:
            lines.append(f"{key} = {_toml(value)}")
    new = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
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
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


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
