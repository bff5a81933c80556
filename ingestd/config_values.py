"""Reading the values of a TOML configuration: each typed getter checks one value, and
every error names the key, the table and the line it is on (``TableReader``)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from ingestd.errors import ConfigError

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class TableReader:
    """Typed getters over the tables of one configuration file (its text for the lines)."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.split("\n")
        self.path = path
        self.base = path.resolve().parent
        self.warnings: list[str] = []

    def fail(
        self, key: str, problem: str, table: str = "", index: int | None = None
    ) -> ConfigError:
        return ConfigError(self._about(key, problem, table, index))

    def warn(self, key: str, problem: str, table: str = "", index: int | None = None) -> None:
        self.warnings.append(self._about(key, problem, table, index))

    def _about(self, key: str, problem: str, table: str, index: int | None) -> str:
        where = self._line_of(key, table, index)
        scope = table + (f"[{index}]" if index is not None else "")
        dotted = f"{scope}.{key}" if scope else key
        line = f", line {where}" if where else ""
        return f"{self.path}{line}: {dotted}: {problem}"

    def _line_of(self, key: str, table: str, index: int | None) -> int | None:
        current, seen = "", -1
        pattern = re.compile(rf"\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*=")
        for number, line in enumerate(self.lines, 1):
            header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if header:
                current = header.group(1)
                seen = seen + 1 if current == table and line.lstrip().startswith("[[") else seen
                continue
            in_table = current == table and (index is None or seen == index)
            if in_table and pattern.match(line):
                return number
        return None

    # --- typed getters -------------------------------------------------------

    def _no_unknown(
        self, table: dict[str, Any], known: set[str], name: str, index: int | None = None
    ) -> None:
        for key in table:
            if key not in known:
                hint = ", ".join(sorted(known))
                raise self.fail(key, f"unknown key (expected one of: {hint})", name, index)

    def _table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a [{key}] table")
        return value

    def _str(
        self, table: dict[str, Any], key: str, default: str, name: str, index: int | None = None
    ) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}", name, index)
        return value

    def _required_str(self, table: dict[str, Any], key: str, index: int) -> str:
        if key not in table:
            raise ConfigError(f"{self.path}: feeds[{index}]: missing required key {key!r}")
        value = self._str(table, key, "", "feeds", index)
        if not value.strip():
            raise self.fail(key, "must not be empty", "feeds", index)
        return value

    def _bool(self, table: dict[str, Any], key: str, default: bool, index: int) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}", "feeds", index)
        return value

    def _int(self, table: dict[str, Any], key: str, default: int, name: str, *, low: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}", name)
        if value < low:
            raise self.fail(key, f"must be at least {low}, got {value}", name)
        return value

    def _number(self, table: dict[str, Any], key: str, default: float, name: str) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(key, f"expected a positive number of seconds, got {value!r}", name)
        return float(value)

    def _list_of_str(self, table: dict[str, Any], key: str, name: str) -> list[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}", name)
        return value

    def _choice(
        self, table: dict[str, Any], key: str, allowed: set[str], default: str, index: int
    ) -> str:
        value = table.get(key, default)
        if value not in allowed:
            options = " or ".join(f'"{a}"' for a in sorted(allowed))
            raise self.fail(key, f"expected {options}, got {value!r}", "feeds", index)
        return str(value)

    def _duration(
        self, table: dict[str, Any], key: str, default: float, name: str, index: int | None = None
    ) -> float:
        value = table.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
            seconds = float(match["n"]) * _UNITS[match["unit"]]
        else:
            problem = f'expected a duration like "30m", "2h" or seconds, got {value!r}'
            raise self.fail(key, problem, name, index)
        if seconds <= 0:
            raise self.fail(key, "must be longer than zero", name, index)
        return seconds

    def _listen(self, value: str) -> tuple[str, int]:
        match = re.fullmatch(
            r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})", value.strip()
        )
        problem = f'expected "HOST:PORT" or "[IPv6]:PORT" with an IP address, got {value!r}'
        if not match or int(match["port"]) > 65535:
            raise self.fail("listen", problem, "metrics")
        host = match["v6"] or match["host"]
        host = "127.0.0.1" if host == "localhost" else host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise self.fail("listen", problem, "metrics") from None
        return host, int(match["port"])

    def _check_host_or_cidr(self, entry: str) -> None:
        if "/" in entry or entry.replace(".", "").isdigit() or ":" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                problem = f"{entry!r} is not a host name or CIDR"
                raise self.fail("allow_private", problem, "fetch") from None
