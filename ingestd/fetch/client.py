"""The HTTP client: one shared httpx client behind slots, a deadline and the guard.

``Fetcher.fetch(url)`` does a conditional GET and returns a ``FetchResult`` (a
``types.Fetched`` plus the redirect chain) or raises from the ``FetchError`` tree:

    HTTPStatusError   4xx/5xx (``retry_after`` parsed from seconds or an HTTP-date)
    TooLarge          the decompressed body passed ``FetchLimits.max_bytes``
    Refused           the guard refused a scheme or a non-public address, on any hop
    TooManyRedirects  more than ``FetchLimits.max_redirects`` hops
    FetchError        anything else: timeouts, refused connections, TLS, DNS, protocol

and ``NotModified`` (carrying the 304's headers and where the feed moved) for a 304.
Every httpx, OS and zlib exception is translated by ``describe``, and only there.
Redirects are followed by hand (``status``), bodies decoded with a bound (``inflate``),
and every hop checked by the guard (``guard``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx

from ingestd.errors import FetchError, NotModified, TooLarge, TooManyRedirects
from ingestd.fetch import transport as _transport
from ingestd.fetch.describe import FOREIGN, describe
from ingestd.fetch.guard import NetworkGuard, peer_address
from ingestd.fetch.inflate import Identity, Overflow, decoder_for
from ingestd.fetch.limits import FetchLimits
from ingestd.fetch.slots import Slots
from ingestd.fetch.status import (
    Redirect,
    lower_headers,
    permanent_target,
    redirect_target,
    status_error,
)
from ingestd.types import Fetched

ACCEPT_FEED = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
#: Article pages (the pipeline's and ``ingestd extract URL``'s).
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"

# Only what we can inflate with a bound; br/zstd would need their own bounded decoders.
ACCEPT_ENCODING = "gzip, deflate"
# A redirect or error body is read up to this size so the connection can be reused.
_DRAIN_BYTES = 65_536


@dataclass(frozen=True)
class FetchResult(Fetched):
    """A ``Fetched`` plus the redirect chain that led to ``url``."""

    redirects: tuple[Redirect, ...] = ()

    @property
    def permanent_url(self) -> str | None:
        """The URL to store instead of the requested one, if it moved permanently."""
        return permanent_target(self.redirects)


class _NoCookies(CookieJar):
    """One client serves every feed: cookies from one site must not follow us elsewhere."""

    def __init__(self) -> None:
        super().__init__(policy=DefaultCookiePolicy(allowed_domains=[]))


@dataclass
class _Chain:
    """One fetch in progress: the hop being fetched (for error messages), the redirects so
    far, and the time spent queueing for a slot (not counted against the deadline)."""

    url: str
    redirects: list[Redirect] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    queued: float = 0.0


class Fetcher:
    """Fetches URLs through one shared httpx.AsyncClient with limits and a network guard."""

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        guard: NetworkGuard | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits or FetchLimits()
        self.guard = guard or NetworkGuard()
        self._clock = clock
        #: The one cap on work in flight; the pipeline and the scheduler ask it too.
        self.slots = Slots(self.limits.concurrency, self.limits.per_host)
        self._client = self._make_client(transport)

    def _make_client(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        lim = self.limits
        most = self.slots.total
        pool = httpx.Limits(max_connections=most, max_keepalive_connections=most)
        return httpx.AsyncClient(
            http2=True,
            follow_redirects=False,
            # Proxies from the environment would make the guard check the wrong address.
            trust_env=False,
            transport=transport or _transport.transport(limits=pool, http2=True),
            cookies=_NoCookies(),
            timeout=httpx.Timeout(
                connect=lim.connect_timeout,
                read=lim.read_timeout,
                write=lim.read_timeout,
                pool=lim.total_timeout,
            ),
            limits=pool,
            headers={"User-Agent": lim.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        trusted: bool = False,
        accept: str = ACCEPT_FEED,
        trusted_host: str | None = None,
    ) -> FetchResult:
        """GET ``url`` (conditionally when validators are given), following redirects.

        Raises ``NotModified`` on 304 and a ``FetchError`` subclass on any failure.
        ``trusted`` lets a user-configured URL be private; hops to other hosts are checked.
        ``trusted_host`` lets that one host be private (a trusted feed's own host, for
        its article pages).
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        chain = _Chain(url)
        deadline = asyncio.timeout(self.limits.total_timeout)
        if trusted:
            trusted_host = httpx.URL(url).host
        try:
            async with deadline:
                return await self._follow(chain, headers, trusted_host, deadline)
        except (FetchError, NotModified):
            raise
        except (*FOREIGN, TimeoutError) as exc:
            reason = describe(exc, self.limits, deadline_hit=deadline.expired())
            raise FetchError(f"{chain.url}: {reason}", url=chain.url) from exc

    async def _follow(
        self,
        chain: _Chain,
        headers: dict[str, str],
        trusted_host: str | None,
        deadline: asyncio.Timeout,
    ) -> FetchResult:
        first = httpx.URL(chain.url)
        url = first
        for _ in range(self.limits.max_redirects + 1):
            chain.url = str(url)
            # Trust belongs to the configured host; a hop elsewhere is checked again.
            hop_trusted = trusted_host is not None and url.host == trusted_host
            await self.guard.check(url, trusted=hop_trusted)
            async with (
                self._slot(url.host, chain, deadline),
                self._client.stream("GET", url, headers=headers) as response,
            ):
                self.guard.check_peer(url, peer_address(response), trusted=hop_trusted)
                target = redirect_target(response)
                if target is None:
                    return await self._finish(response, chain)
                await _drain(response)
            chain.redirects.append(Redirect(response.status_code, str(url), str(target)))
            url = target
        raise TooManyRedirects(
            f"{first}: more than {self.limits.max_redirects} redirects (last: {url})",
            url=str(first),
        )

    @asynccontextmanager
    async def _slot(
        self, host: str, chain: _Chain, deadline: asyncio.Timeout
    ) -> AsyncIterator[None]:
        """Hold a total and a per-host slot; the deadline is paused while waiting for them.

        The deadline bounds time spent on the network: a fetch queued behind others for
        the same host must not time out before it has sent anything.
        """
        loop = asyncio.get_running_loop()
        when = deadline.when()
        remaining = None if when is None else when - loop.time()
        deadline.reschedule(None)
        asked = loop.time()
        async with self.slots.hold(host):
            chain.queued += loop.time() - asked
            deadline.reschedule(None if remaining is None else loop.time() + remaining)
            yield

    async def _finish(self, response: httpx.Response, chain: _Chain) -> FetchResult:
        url, status = chain.url, response.status_code
        if status == 304:
            # Read the (empty) body to its end: a response closed unread takes its
            # connection with it, and a warm cycle would connect once per feed.
            await _drain(response)
            raise NotModified(
                f"{url}: not modified",
                url=url,
                headers=lower_headers(response),
                permanent_url=permanent_target(chain.redirects),
            )
        if status >= 300:
            await _drain(response)
            raise status_error(response, url, self._clock())
        content = await self._read_body(response, url)
        headers = lower_headers(response)
        return FetchResult(
            url=url,
            status=status,
            content=content,
            headers=headers,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            elapsed=time.monotonic() - chain.started - chain.queued,
            redirects=tuple(chain.redirects),
        )

    async def _read_body(self, response: httpx.Response, url: str) -> bytes:
        cap = self.limits.max_bytes
        decoder = decoder_for(response.headers.get("content-encoding", ""))
        declared = response.headers.get("content-length", "")
        if isinstance(decoder, Identity) and declared.isdigit() and int(declared) > cap:
            raise _too_large(url, cap, f" (Content-Length {declared})")
        # Compressed input larger than the cap can only be padding or garbage.
        raw_cap = 2 * cap + _DRAIN_BYTES
        out = bytearray()
        received = 0
        try:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > raw_cap:
                    raise Overflow
                decoder.feed(chunk, out, cap)
            decoder.flush(out, cap)
        except Overflow:
            raise _too_large(url, cap, "") from None
        return bytes(out)

    async def aclose(self) -> None:
        """Close the shared client and its connections."""
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _drain(response: httpx.Response) -> None:
    """Read a small unwanted body so the connection can go back to the pool."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_BYTES:
            break  # not worth it: closing the response drops the connection instead


def _too_large(url: str, cap: int, detail: str) -> TooLarge:
    return TooLarge(f"{url}: body larger than {cap:,} bytes{detail}", url=url)
