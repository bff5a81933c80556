"""The network adapter: one shared httpx client behind limits and a network guard.

``Fetcher.fetch(url)`` does a conditional GET and returns a ``FetchResult`` (a
``types.Fetched`` plus the redirect chain) or raises from the ``FetchError`` tree:

    HTTPStatusError   4xx/5xx (``retry_after`` parsed from seconds or an HTTP-date)
    TooLarge          the decompressed body passed ``FetchLimits.max_bytes``
    Refused           the guard refused a scheme or a non-public address, on any hop
    TooManyRedirects  more than ``FetchLimits.max_redirects`` hops
    FetchError        anything else: timeouts, refused connections, TLS, DNS, protocol

and ``NotModified`` (a ``NotModifiedFetch``, carrying the 304's headers) for a 304.
Every httpx, OS and zlib exception is translated in ``_describe``, and only there.

Redirects are followed by hand, not by httpx, so the guard sees each hop and the result
can tell whether the feed moved permanently. Bodies are decompressed here, not by httpx,
with a bound on every inflate step: httpx inflates a whole network chunk at once, and a
64 KB gzip chunk can hold 64 MB.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx

from ingestd import transport as _transport
from ingestd.errors import (
    FetchError,
    HTTPStatusError,
    NotModified,
    Refused,
    TooLarge,
    TooManyRedirects,
)
from ingestd.types import Fetched

__all__ = [
    "ACCEPT_FEED",
    "ACCEPT_HTML",
    "FetchLimits",
    "FetchResult",
    "Fetcher",
    "NetworkGuard",
    "NotModifiedFetch",
    "Redirect",
    "Resolver",
    "check_scheme",
    "default_user_agent",
    "is_public_address",
    "parse_retry_after",
    "permanent_target",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` returns every address the name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ACCEPT_FEED = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.8"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_STATUSES = frozenset({301, 308})
# Only what we can inflate with a bound; br/zstd would need their own bounded decoders.
ACCEPT_ENCODING = "gzip, deflate"
# A redirect or error body is read up to this size so the connection can be reused.
_DRAIN_BYTES = 65_536


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


@dataclass(frozen=True)
class FetchResult(Fetched):
    """A ``Fetched`` plus the redirect chain that led to ``url``."""

    redirects: tuple[Redirect, ...] = ()

    @property
    def permanent_url(self) -> str | None:
        """The URL to store instead of the requested one, if it moved permanently."""
        return permanent_target(self.redirects)


class NotModifiedFetch(NotModified):
    """A 304, with what the caller needs to schedule and to follow a moved feed."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        headers: dict[str, str],
        redirects: tuple[Redirect, ...] = (),
    ) -> None:
        super().__init__(message)
        self.url = url
        self.headers = headers
        self.redirects = redirects

    @property
    def permanent_url(self) -> str | None:
        """The URL to store instead of the requested one, if it moved permanently."""
        return permanent_target(self.redirects)


# --- the network guard ---------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the OS resolver (getaddrinfo in the loop's thread pool)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _destinations(ip: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a connection to ``ip`` really reaches, all of which must be public.

    An IPv4-mapped or NAT64 (well-known prefix) address stands for its IPv4 address
    alone; a 6to4 address reaches both the IPv6 network and the IPv4 host inside it.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return (ip.ipv4_mapped,)
        if ip in _NAT64:
            return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
        if ip.sixtofour is not None:
            return (ip, ip.sixtofour)
    return (ip,)


def _is_non_public(ip: IPAddress) -> bool:
    # is_global alone misses multicast (224/4 counts as global) and some reserved ranges.
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def is_public_address(ip: IPAddress) -> bool:
    """True unless ``ip``, or the IPv4 address it stands for, is non-public."""
    return not any(_is_non_public(a) for a in _destinations(ip))


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class NetworkGuard:
    """Refuses URLs that are not http(s) or whose host resolves to a non-public address.

    ``allow_private`` lists hostnames and CIDRs that may be private anyway. A
    ``trusted`` check (a feed the user configured) skips the address test but not the
    scheme test; ``Fetcher`` only passes ``trusted`` for hops on the trusted host.

    Residual DNS-rebinding risk: httpx resolves the name again when it connects, so a
    name can answer a public address to us and a private one to httpx. ``Fetcher``
    therefore also checks the peer address of every response (``check_peer``) and
    refuses the body; the request itself (a GET without body or credentials) has then
    already reached the private address, but its answer never leaves the fetcher.
    Closing that gap needs connecting to the checked address ourselves (an httpcore
    network backend), which httpx does not expose publicly.
    """

    def __init__(self, allow_private: Iterable[str] = (), *, resolver: Resolver | None = None):
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allow_private:
            self._add_allowed(entry.strip())
        self._resolve = resolver or system_resolver

    def _add_allowed(self, entry: str) -> None:
        try:
            self._networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            self._hosts.add(entry.lower().rstrip("."))

    def _host_allowed(self, url: httpx.URL) -> bool:
        names = {url.host.lower().rstrip("."), url.raw_host.decode("ascii").lower().rstrip(".")}
        return not names.isdisjoint(self._hosts)

    def address_allowed(self, ip: IPAddress) -> bool:
        """True when ``ip`` is public or inside an allowed CIDR."""
        for net in self._networks:
            if all(a.version == net.version and a in net for a in _destinations(ip)):
                return True
        return is_public_address(ip)

    async def check(self, url: httpx.URL | str, *, trusted: bool = False) -> None:
        """Raise ``Refused`` unless ``url`` may be fetched; resolves the host to decide."""
        url = httpx.URL(url)
        check_scheme(url)
        if trusted or self._host_allowed(url):
            return
        for ip in await self._addresses(url):
            if not self.address_allowed(ip):
                raise Refused(
                    f"{url}: refused, {url.host} is a non-public address ({ip}); to fetch it "
                    f'anyway, add "{url.host}" to [fetch] allow_private (or, for a feed of '
                    "your own on that host, set allow_private = true in its [[feeds]] table)",
                    url=str(url),
                )

    def check_peer(self, url: httpx.URL, peer: str | None, *, trusted: bool = False) -> None:
        """Raise ``Refused`` if the address actually connected to is not allowed."""
        if peer is None or trusted or self._host_allowed(url):
            return
        ip = _parse_ip(peer)
        if ip is not None and not self.address_allowed(ip):
            raise Refused(
                f"{url}: refused, connected to non-public address {ip} "
                "(the name resolved differently when connecting)",
                url=str(url),
            )

    async def _addresses(self, url: httpx.URL) -> list[IPAddress]:
        literal = _parse_ip(url.host)
        if literal is not None:
            return [literal]
        port = url.port or (443 if url.scheme == "https" else 80)
        found = [_parse_ip(a) for a in await self._resolve(url.raw_host.decode("ascii"), port)]
        addresses = [a for a in found if a is not None]
        if not addresses:
            raise FetchError(f"{url}: could not resolve host {url.host}", url=str(url))
        # All of them, not the first: httpx may connect to any (happy eyeballs).
        return addresses


def check_scheme(url: httpx.URL) -> None:
    """Raise ``Refused`` unless ``url`` is http or https with a host."""
    if url.scheme not in ("http", "https"):
        raise Refused(f"{url}: refused, only http and https may be fetched", url=str(url))
    if not url.host:
        raise Refused(f"{url}: refused, the URL has no host", url=str(url))


def _peer_address(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    if stream is None:  # a mock transport, or a transport that does not say
        return None
    addr = stream.get_extra_info("server_addr")
    return str(addr[0]) if addr else None


# --- bounded decoding ----------------------------------------------------------------


class _Overflow(Exception):
    """The decoded body passed the cap (turned into TooLarge with the URL)."""


class _Identity:
    def feed(self, data: bytes, out: bytearray, limit: int) -> None:
        if len(out) + len(data) > limit:
            raise _Overflow
        out += data

    def flush(self, out: bytearray, limit: int) -> None:
        pass


class _Inflater:
    """zlib inflate that never produces more than ``limit + 1`` bytes in total."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._z = zlib.decompressobj(wbits)
        self._started = False  # output seen from the current stream
        self._members = 0  # complete gzip members so far
        self._done = False

    def feed(self, data: bytes, out: bytearray, limit: int) -> None:
        while data and not self._done:
            try:
                out += self._z.decompress(data, limit - len(out) + 1)
            except zlib.error as exc:
                data = self._recover(data, exc)
                continue
            self._started = True
            if len(out) > limit:
                raise _Overflow
            data = self._after_step()

    def _after_step(self) -> bytes:
        if not self._z.eof:
            return self._z.unconsumed_tail
        rest = self._z.unused_data
        self._members += 1
        if self._wbits & 16:
            # Another gzip member may follow, in this chunk or the next one.
            self._z = zlib.decompressobj(self._wbits)
        else:
            self._done = True  # trailing bytes after a deflate stream are ignored
        return rest

    def _recover(self, data: bytes, exc: zlib.error) -> bytes:
        if self._members:  # garbage after a complete member: keep what we have
            self._done = True
            return b""
        if self._wbits == zlib.MAX_WBITS and not self._started:
            # "deflate" is sent both zlib-wrapped (per the RFC) and raw (per IIS).
            self._wbits = -zlib.MAX_WBITS
            self._z = zlib.decompressobj(self._wbits)
            return data
        raise exc

    def flush(self, out: bytearray, limit: int) -> None:
        if not self._done:
            out += self._z.flush()
            if len(out) > limit:
                raise _Overflow


def _decoder_for(encoding: str) -> _Identity | _Inflater:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return _Identity()
    if name in ("gzip", "x-gzip"):
        return _Inflater(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Inflater(zlib.MAX_WBITS)
    raise _Unsupported(name)


class _Unsupported(Exception):
    """A Content-Encoding we did not ask for and cannot decode with a bound."""


# --- status helpers ------------------------------------------------------------------


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


def _lower_headers(response: httpx.Response) -> dict[str, str]:
    headers = {k.lower(): v for k, v in response.headers.items()}
    # The content is handed over decoded; these described the encoded bytes.
    headers.pop("content-encoding", None)
    headers.pop("content-length", None)
    return headers


# --- the one place where foreign exceptions become FetchError ------------------------


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe_os_error(exc: BaseException) -> str | None:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: certificate verification failed ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {getattr(cause, 'reason', None) or cause}"
        if isinstance(cause, socket.gaierror):
            return f"could not resolve host ({cause.strerror})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, OSError) and cause.strerror:
            return f"network error: {cause.strerror}"
    return None


def _describe(exc: BaseException, limits: FetchLimits, *, deadline_hit: bool) -> str:
    """A short human reason for ``exc``; the caller prefixes the URL."""
    if deadline_hit:
        return f"timed out after {limits.total_timeout:g} s"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {limits.connect_timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data for {limits.read_timeout:g} s (read timed out)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, _Unsupported):
        return f"unsupported Content-Encoding {exc}"
    if isinstance(exc, zlib.error):
        return f"could not decompress the body ({exc})"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"invalid URL ({exc})"
    os_reason = _describe_os_error(exc)
    if os_reason:
        return os_reason
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {exc}"
    return f"network error: {type(exc).__name__}: {exc}"


# Exceptions that mean "the network did not deliver"; anything else is a bug and escapes.
_FOREIGN = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, zlib.error, _Unsupported)


# --- the fetcher ---------------------------------------------------------------------


class _NoCookies(CookieJar):
    """One client serves every feed: cookies from one site must not follow us elsewhere."""

    def __init__(self) -> None:
        super().__init__(policy=DefaultCookiePolicy(allowed_domains=[]))


class _Slots:
    """Total and per-host concurrency; a host's semaphore lives while someone uses it."""

    def __init__(self, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host = per_host
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        sem, users = self._hosts.get(host) or (asyncio.Semaphore(self._per_host), 0)
        self._hosts[host] = (sem, users + 1)
        try:
            # Host first: a crowd waiting for one busy host must not sit on total slots.
            async with sem, self._total:
                yield
        finally:
            sem, users = self._hosts[host]
            if users == 1:
                del self._hosts[host]
            else:
                self._hosts[host] = (sem, users - 1)


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
        self._slots = _Slots(self.limits.concurrency, self.limits.per_host)
        self._client = self._make_client(transport)

    def _make_client(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        lim = self.limits
        pool = httpx.Limits(
            max_connections=lim.concurrency, max_keepalive_connections=lim.concurrency
        )
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
        except (*_FOREIGN, TimeoutError) as exc:
            reason = _describe(exc, self.limits, deadline_hit=deadline.expired())
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
                self.guard.check_peer(url, _peer_address(response), trusted=hop_trusted)
                target = _redirect_target(response)
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
        async with self._slots.hold(host):
            chain.queued += loop.time() - asked
            deadline.reschedule(None if remaining is None else loop.time() + remaining)
            yield

    async def _finish(self, response: httpx.Response, chain: _Chain) -> FetchResult:
        url, status = chain.url, response.status_code
        if status == 304:
            # Read the (empty) body to its end: a response closed unread takes its
            # connection with it, and a warm cycle would connect once per feed.
            await _drain(response)
            raise NotModifiedFetch(
                f"{url}: not modified",
                url=url,
                headers=_lower_headers(response),
                redirects=tuple(chain.redirects),
            )
        if status >= 300:
            await _drain(response)
            raise self._status_error(response, url)
        content = await self._read_body(response, url)
        headers = _lower_headers(response)
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

    def _status_error(self, response: httpx.Response, url: str) -> HTTPStatusError:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        phrase = response.reason_phrase or httpx.codes.get_reason_phrase(status)
        if status in REDIRECT_STATUSES:
            phrase += " without a usable Location"
        return HTTPStatusError(
            f"{url}: HTTP {status} {phrase}".rstrip(),
            url=url,
            status=status,
            retry_after=retry_after,
        )

    async def _read_body(self, response: httpx.Response, url: str) -> bytes:
        cap = self.limits.max_bytes
        decoder = _decoder_for(response.headers.get("content-encoding", ""))
        declared = response.headers.get("content-length", "")
        if isinstance(decoder, _Identity) and declared.isdigit() and int(declared) > cap:
            raise _too_large(url, cap, f" (Content-Length {declared})")
        # Compressed input larger than the cap can only be padding or garbage.
        raw_cap = 2 * cap + _DRAIN_BYTES
        out = bytearray()
        received = 0
        try:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > raw_cap:
                    raise _Overflow
                decoder.feed(chunk, out, cap)
            decoder.flush(out, cap)
        except _Overflow:
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


def _redirect_target(response: httpx.Response) -> httpx.URL | None:
    """The absolute URL a redirect points at; None for anything that is not a redirect."""
    location = response.headers.get("location")
    if response.status_code not in REDIRECT_STATUSES or not location:
        return None
    return response.url.join(location).copy_with(fragment=None)


async def _drain(response: httpx.Response) -> None:
    """Read a small unwanted body so the connection can go back to the pool."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_BYTES:
            break  # not worth it: closing the response drops the connection instead


def _too_large(url: str, cap: int, detail: str) -> TooLarge:
    return TooLarge(f"{url}: body larger than {cap:,} bytes{detail}", url=url)
