"""A fetcher's limits and their defaults, declared once (the configuration's ``[fetch]``
table starts from these)."""

from __future__ import annotations

from dataclasses import dataclass, field


def default_user_agent() -> str:
    """``ingestd/<version> (+<project url>)``."""
    from ingestd import PROJECT_URL, __version__

    return f"ingestd/{__version__} (+{PROJECT_URL})"


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts in seconds, redirect and size caps, and concurrency for one Fetcher."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 30.0
    max_redirects: int = 5
    max_bytes: int = 15_000_000
    concurrency: int = 32
    per_host: int = 4
    user_agent: str = field(default_factory=default_user_agent)
