"""The fetch stage: feed documents and article pages, from the network or local files.

retrieve    the ``Retriever`` protocol and the retriever of each URL scheme
client      ``Fetcher``: the shared httpx client, slots, deadline, redirects
guard       which addresses may be fetched (``NetworkGuard``)
inflate     bounded decoding of gzip and deflate bodies
status      redirects, Retry-After and the error of a failed status
describe    foreign exceptions (httpx, OS, TLS, DNS, zlib) in words
limits      ``FetchLimits`` and their defaults
slots       ``Slots``: how much runs at once, in all, and per host (the one cap)
local       ``file:`` feeds and the pages beside them
transport   httpx's transport with connections that keep their fixed facts
"""

from __future__ import annotations

from ingestd.fetch.client import ACCEPT_FEED, ACCEPT_HTML, Fetcher, FetchResult
from ingestd.fetch.guard import (
    NetworkGuard,
    Resolver,
    check_scheme,
    is_public_address,
    system_resolver,
)
from ingestd.fetch.limits import FetchLimits, default_user_agent
from ingestd.fetch.retrieve import ByScheme, Retriever
from ingestd.fetch.slots import Slots
from ingestd.fetch.status import Redirect, parse_retry_after, permanent_target

__all__ = [
    "ACCEPT_FEED",
    "ACCEPT_HTML",
    "ByScheme",
    "FetchLimits",
    "FetchResult",
    "Fetcher",
    "NetworkGuard",
    "Redirect",
    "Resolver",
    "Retriever",
    "Slots",
    "check_scheme",
    "default_user_agent",
    "is_public_address",
    "parse_retry_after",
    "permanent_target",
    "system_resolver",
]
