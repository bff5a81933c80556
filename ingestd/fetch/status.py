"""What a response's status and headers say: redirects, Retry-After, the error to raise.

Redirects are followed by hand (by ``Fetcher``), so the guard sees each hop and the
result can tell whether the feed moved permanently (``permanent_target``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from ingestd.errors import HTTPStatusError

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_STATUSES = frozenset({301, 308})


@dataclass(frozen=True)
class Redirect:
    """One hop of a redirect chain: ``source`` answered ``status`` pointing at ``target``."""

    status: int
    source: str
    target: str


def permanent_target(redirects: Sequence[Redirect]) -> str | None:
    """Where the first URL now lives: the end of the leading run of 301/308 hops.

    A -301-> B -302-> C gives B (B itself is only temporarily elsewhere);
    A -302-> B -301-> C gives None (A has not moved).
    """
    target = None
    for hop in redirects:
        if hop.status not in PERMANENT_STATUSES:
            break
        target = hop.target
    return target


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def status_error(response: httpx.Response, url: str, now: float) -> HTTPStatusError:
    """The error for a response with a status that is neither success nor a usable redirect."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    phrase = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    if status in REDIRECT_STATUSES:
        phrase += " without a usable Location"
    return HTTPStatusError(
        f"{url}: HTTP {status} {phrase}".rstrip(),
        url=url,
        status=status,
        retry_after=retry_after,
    )


def redirect_target(response: httpx.Response) -> httpx.URL | None:
    """The absolute URL a redirect points at; None for anything that is not a redirect."""
    location = response.headers.get("location")
    if response.status_code not in REDIRECT_STATUSES or not location:
        return None
    return response.url.join(location).copy_with(fragment=None)


def lower_headers(response: httpx.Response) -> dict[str, str]:
    """The headers, names lower-cased, without those that described the encoded body."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    # The content is handed over decoded; these described the encoded bytes.
    headers.pop("content-encoding", None)
    headers.pop("content-length", None)
    return headers
