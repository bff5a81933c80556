"""Tests for ingestd.fetch: httpx.MockTransport for the logic, a loopback server end to end.

DNS is always faked (``fake_dns``) and the only real traffic goes to 127.0.0.1. Trap tests
redirect to ``localhost`` while the fake DNS claims it is a private address: a broken
guard would let httpx resolve ``localhost`` for real and hit the trap server.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import ipaddress
import socket
import ssl
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest

import ingestd
from ingestd.errors import (
    FetchError,
    HTTPStatusError,
    NotModified,
    Refused,
    TooLarge,
    TooManyRedirects,
)
from ingestd.fetch import (
    Fetcher,
    FetchLimits,
    FetchResult,
    NetworkGuard,
    Redirect,
    is_public_address,
    parse_retry_after,
    permanent_target,
)
from ingestd.types import Fetched
from tests.loopback import LoopbackServer, Request, Response, loopback_fixture  # noqa: F401

T = TypeVar("T")
PUBLIC = "93.184.216.34"  # what the fake DNS answers for public names; never contacted
FEED = "http://feed.test/rss"
MockHandler = Callable[[httpx.Request], httpx.Response]


class RawStream(httpx.AsyncByteStream):
    """A body as a network delivers it: raw bytes in 64 KB reads, never decoded up front.

    (``httpx.Response(content=...)`` reads and decodes the body at construction, which
    neither a real transport nor the fetcher's own bounded decoding ever sees.)
    """

    def __init__(self, body: bytes | AsyncIterator[bytes]) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if isinstance(self._body, bytes):
            for start in range(0, len(self._body), 65536):
                yield self._body[start : start + 65536]
        else:
            async for chunk in self._body:
                yield chunk


def reply(
    status: int, headers: dict[str, str] | None = None, body: bytes | AsyncIterator[bytes] = b""
) -> httpx.Response:
    """A mock response with a raw, unread body stream."""
    return httpx.Response(status, headers=headers, stream=RawStream(body))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fake_dns(table: dict[str, list[str]] | None = None) -> Callable[[str, int], Any]:
    names = {"feed.test": [PUBLIC], "other.test": [PUBLIC], **(table or {})}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return names[host]

    return resolve


def mock_fetcher(
    handler: MockHandler,
    *,
    limits: FetchLimits | None = None,
    dns: dict[str, list[str]] | None = None,
    allow: tuple[str, ...] = (),
    clock: Callable[[], float] = time.time,
) -> Fetcher:
    guard = NetworkGuard(allow, resolver=fake_dns(dns))
    return Fetcher(limits, guard=guard, transport=httpx.MockTransport(handler), clock=clock)


def fetch_with(handler: MockHandler, url: str = FEED, **kwargs: Any) -> FetchResult:
    """One fetch through a mock transport; fetch keywords and Fetcher keywords both go here."""
    fetch_keys = {"etag", "last_modified", "trusted", "accept"}
    fetch_kwargs = {k: v for k, v in kwargs.items() if k in fetch_keys}
    make_kwargs = {k: v for k, v in kwargs.items() if k not in fetch_keys}

    async def go() -> FetchResult:
        async with mock_fetcher(handler, **make_kwargs) as fetcher:
            return await fetcher.fetch(url, **fetch_kwargs)

    return run(go())


def redirects(table: dict[str, tuple[int, str]], seen: list[str] | None = None) -> MockHandler:
    """A handler answering ``table[url] = (status, location)`` and 200 "final" elsewhere."""

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if seen is not None:
            seen.append(url)
        if url in table:
            status, location = table[url]
            return reply(status, headers={"Location": location})
        return reply(200, body=b"final")

    return handler


# --- success and conditional GET ----------------------------------------------------


def test_ok_result_is_a_fetched_with_validators_and_lowercase_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT", "X-A": "1"}
        return reply(200, headers=headers, body=b"<rss/>")

    result = fetch_with(handler)
    assert isinstance(result, Fetched)
    assert (result.url, result.status, result.content) == (FEED, 200, b"<rss/>")
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert result.headers["x-a"] == "1"
    assert result.redirects == () and result.permanent_url is None
    assert result.elapsed >= 0


def test_conditional_get_sends_validators_and_304_raises_not_modified() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(304, headers={"Cache-Control": "max-age=600"})

    with pytest.raises(NotModified) as info:
        fetch_with(handler, etag='"v1"', last_modified="Wed, 21 Oct 2015 07:28:00 GMT")
    assert seen[0].headers["if-none-match"] == '"v1"'
    assert seen[0].headers["if-modified-since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert isinstance(info.value, NotModified)
    assert info.value.headers["cache-control"] == "max-age=600"


def test_no_validators_no_conditional_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200)

    fetch_with(handler)
    assert "if-none-match" not in seen[0].headers
    assert "if-modified-since" not in seen[0].headers


def test_user_agent_names_ingestd_and_version_and_accept_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200)

    fetch_with(handler, accept="text/html")
    assert seen[0].headers["user-agent"].startswith(f"ingestd/{ingestd.__version__} (+")
    assert seen[0].headers["accept"] == "text/html"
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_cookies_are_not_carried_between_requests() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, headers={"Set-Cookie": "session=abc; Path=/"})

    async def go() -> None:
        async with mock_fetcher(handler) as fetcher:
            await fetcher.fetch(FEED)
            await fetcher.fetch(FEED)

    run(go())
    assert "cookie" not in seen[1].headers


# --- status errors and Retry-After --------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500, 403])
def test_error_status_raises_http_status_error(status: int) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch_with(lambda request: reply(status))
    assert info.value.status == status
    assert info.value.url == FEED
    assert FEED in str(info.value) and str(status) in str(info.value)
    assert info.value.retry_after is None


def test_429_retry_after_seconds() -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch_with(lambda request: reply(429, headers={"Retry-After": "120"}))
    assert info.value.status == 429
    assert info.value.retry_after == 120.0


def test_429_retry_after_http_date_is_relative_to_the_injected_clock() -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    later = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    with pytest.raises(HTTPStatusError) as info:
        fetch_with(
            lambda request: reply(429, headers={"Retry-After": later}),
            clock=lambda: now,
        )
    assert info.value.retry_after == 90.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("3600", 3600.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now) == expected


# --- redirects ----------------------------------------------------------------------


def test_redirect_chain_is_followed_and_final_url_reported() -> None:
    handler = redirects(
        {
            FEED: (302, "/moved"),
            "http://feed.test/moved": (307, "http://other.test/rss"),
        }
    )
    result = fetch_with(handler)
    assert result.url == "http://other.test/rss"
    assert result.content == b"final"
    assert [r.status for r in result.redirects] == [302, 307]
    assert result.permanent_url is None


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_reported(status: int) -> None:
    result = fetch_with(redirects({FEED: (status, "https://feed.test/rss")}))
    assert result.url == "https://feed.test/rss"
    assert result.permanent_url == "https://feed.test/rss"
    assert result.redirects == (Redirect(status, FEED, "https://feed.test/rss"),)


def test_permanent_target_stops_at_the_first_temporary_hop() -> None:
    a, b, c = "http://a/", "http://b/", "http://c/"
    assert permanent_target([Redirect(301, a, b), Redirect(302, b, c)]) == b
    assert permanent_target([Redirect(302, a, b), Redirect(301, b, c)]) is None
    assert permanent_target([Redirect(301, a, b), Redirect(308, b, c)]) == c


def test_304_after_a_permanent_redirect_still_reports_the_move() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rss":
            return reply(301, headers={"Location": "/new"})
        return reply(304)

    with pytest.raises(NotModified) as info:
        fetch_with(handler, etag='"x"')
    assert info.value.permanent_url == "http://feed.test/new"


def test_redirect_loop_raises_too_many_redirects_after_five() -> None:
    seen: list[str] = []
    handler = redirects({FEED: (302, "/b"), "http://feed.test/b": (302, "/rss")}, seen)
    with pytest.raises(TooManyRedirects) as info:
        fetch_with(handler)
    assert len(seen) == 6  # the first request and five redirects
    assert FEED in str(info.value)


def test_redirect_without_location_is_a_status_error() -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch_with(lambda request: reply(302))
    assert info.value.status == 302


# --- the network guard --------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://internal.test/",  # DNS answers a private address
        "http://mixed.test/",  # one public, one private answer
        "file:///etc/passwd",
        "gopher://feed.test/",
    ],
)
def test_redirect_to_non_public_or_non_http_is_refused(target: str) -> None:
    seen: list[str] = []
    dns = {"internal.test": ["10.1.2.3"], "mixed.test": [PUBLIC, "192.168.1.1"]}
    with pytest.raises(Refused) as info:
        fetch_with(redirects({FEED: (302, target)}, seen), dns=dns)
    assert seen == [FEED]  # nothing was sent to the target
    assert info.value.url == str(httpx.URL(target))  # the refused hop is named


def test_initial_private_url_is_refused_unless_trusted() -> None:
    seen: list[str] = []
    with pytest.raises(Refused):
        fetch_with(redirects({}, seen), url="http://10.0.0.5/feed")
    assert seen == []
    assert fetch_with(redirects({}), url="http://10.0.0.5/feed", trusted=True).status == 200


def test_trust_covers_same_host_hops_but_not_other_hosts() -> None:
    moved = {"http://nas.test/feed": (301, "/feed2")}
    dns = {"nas.test": ["192.168.1.10"], "evil.test": ["10.9.9.9"]}
    result = fetch_with(redirects(moved), url="http://nas.test/feed", dns=dns, trusted=True)
    assert result.url == "http://nas.test/feed2"

    seen: list[str] = []
    off_host = {"http://nas.test/feed": (302, "http://evil.test/")}
    with pytest.raises(Refused):
        fetch_with(redirects(off_host, seen), url="http://nas.test/feed", dns=dns, trusted=True)
    assert seen == ["http://nas.test/feed"]


def test_trusted_does_not_allow_other_schemes() -> None:
    with pytest.raises(Refused):
        fetch_with(redirects({}), url="ftp://feed.test/x", trusted=True)


def test_allow_private_cidr_and_host() -> None:
    dns = {"intranet.test": ["172.16.0.9"]}
    ok = fetch_with(redirects({}), url="http://10.0.0.1/", allow=("10.0.0.0/8",))
    assert ok.status == 200
    ok = fetch_with(redirects({}), url="http://intranet.test/", dns=dns, allow=("intranet.test",))
    assert ok.status == 200
    with pytest.raises(Refused):
        fetch_with(redirects({}), url="http://192.168.0.1/", allow=("10.0.0.0/8",))


def test_allow_private_cidr_matches_ipv4_mapped_addresses() -> None:
    guard = NetworkGuard(["127.0.0.0/8"])
    assert guard.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not guard.address_allowed(ipaddress.ip_address("::ffff:10.0.0.1"))


def test_unresolvable_host_is_a_fetch_error_naming_the_url() -> None:
    with pytest.raises(FetchError, match=r"http://nowhere\.test/: could not resolve"):
        fetch_with(redirects({}), url="http://nowhere.test/")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:0a00:0001::", False),  # 6to4 of 10.0.0.1
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


# --- bodies: decoding and the size cap ----------------------------------------------


def _gzip_zeros(size: int) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [z.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, z.flush()])


@pytest.fixture(scope="module")
def bomb_100mb() -> bytes:
    return _gzip_zeros(100 << 20)


def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(bomb_100mb: bytes) -> None:
    limits = FetchLimits(max_bytes=1 << 20)
    body = bomb_100mb

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Encoding": "gzip"}, body=body)

    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="larger than 1,048,576 bytes"):
            fetch_with(handler, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # httpx's own decoder would have built 100 MB here


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as IIS sends it
        ("identity", lambda data: data),
    ],
)
def test_content_encodings_are_decoded(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    data = b"<rss>" + b"entry " * 5000 + b"</rss>"

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Encoding": encoding}, body=encode(data))

    result = fetch_with(handler)
    assert result.content == data
    assert "content-encoding" not in result.headers


def test_concatenated_gzip_members_are_all_decoded() -> None:
    body = gzip.compress(b"one ") + gzip.compress(b"two")
    result = fetch_with(lambda request: reply(200, headers={"Content-Encoding": "gzip"}, body=body))
    assert result.content == b"one two"


def test_gzip_members_split_across_network_chunks_are_all_decoded() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield gzip.compress(b"one ")  # a member that ends exactly where a chunk ends
        yield gzip.compress(b"two ")
        yield gzip.compress(b"three")

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Encoding": "gzip"}, body=body())

    assert fetch_with(handler).content == b"one two three"


def test_body_exactly_at_the_cap_is_accepted() -> None:
    limits = FetchLimits(max_bytes=1000)
    body = gzip.compress(b"a" * 1000)
    result = fetch_with(
        lambda request: reply(200, headers={"Content-Encoding": "gzip"}, body=body),
        limits=limits,
    )
    assert len(result.content) == 1000


def test_declared_length_over_the_cap_fails_before_reading() -> None:
    pulled: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            pulled.append(b"x")
            yield b"x" * 1000

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Length": "10000"}, body=body())

    with pytest.raises(TooLarge, match="Content-Length 10000"):
        fetch_with(handler, limits=FetchLimits(max_bytes=5000))
    assert pulled == []


def test_unsupported_content_encoding_is_a_fetch_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Encoding": "br"}, body=b"\x0b")

    with pytest.raises(FetchError, match="unsupported Content-Encoding br"):
        fetch_with(handler)


def test_corrupt_gzip_is_a_fetch_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, headers={"Content-Encoding": "gzip"}, body=b"not gzip")

    with pytest.raises(FetchError, match="could not decompress"):
        fetch_with(handler)


# --- exception mapping --------------------------------------------------------------


def _raising(exc: Exception, cause: BaseException | None = None) -> MockHandler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc from cause

    return handler


@pytest.mark.parametrize(
    ("exc", "cause", "message"),
    [
        (httpx.ConnectError("boom"), ConnectionRefusedError(111, "Connection refused"),
         "connection refused"),
        (httpx.ConnectTimeout("slow"), None, "connection timed out after 10 s"),
        (httpx.ReadTimeout("slow"), None, "read timed out"),
        (httpx.ConnectError("tls"), ssl.SSLError(1, "[SSL] bad"), "TLS error"),
        (httpx.ReadError("reset"), ConnectionResetError(104, "reset"), "connection reset"),
        (httpx.RemoteProtocolError("Server disconnected"), None, "protocol error"),
        (httpx.ConnectError("dns"), socket.gaierror(-2, "Name or service not known"),
         "could not resolve host"),
    ],
)  # fmt: skip
def test_httpx_errors_become_fetch_errors_naming_the_url(
    exc: Exception, cause: BaseException | None, message: str
) -> None:
    with pytest.raises(FetchError) as info:
        fetch_with(_raising(exc, cause))
    assert type(info.value) is FetchError
    assert str(info.value).startswith(f"{FEED}: ")
    assert message in str(info.value)
    assert info.value.url == FEED
    assert info.value.__cause__ is exc


def test_invalid_redirect_location_is_a_fetch_error_naming_the_hop() -> None:
    with pytest.raises(FetchError, match=rf"^{FEED}: .*Invalid URL in location header"):
        fetch_with(redirects({FEED: (302, "http://h:notaport/")}))


def test_waiting_for_a_host_slot_does_not_count_against_the_deadline() -> None:
    async def slow_server(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)  # the server's own pace, not the test waiting for state
        return reply(200, body=b"ok")

    async def go() -> list[FetchResult]:
        limits = FetchLimits(per_host=1, total_timeout=0.8)
        guard = NetworkGuard(resolver=fake_dns())
        transport = httpx.MockTransport(slow_server)
        async with Fetcher(limits, guard=guard, transport=transport) as fetcher:
            return list(await asyncio.gather(fetcher.fetch(FEED), fetcher.fetch(FEED)))

    results = run(go())  # the second waits 0.5 s for the first, then needs 0.5 s itself
    assert [r.status for r in results] == [200, 200]
    assert max(r.elapsed for r in results) < 0.8


# --- end to end over a loopback server ----------------------------------------------


def loop_fetcher(
    limits: FetchLimits | None = None,
    *,
    dns: dict[str, list[str]] | None = None,
    allow: tuple[str, ...] = (),
) -> Fetcher:
    """A real-network Fetcher with fake DNS (``localhost`` is only what ``dns`` says)."""
    return Fetcher(limits, guard=NetworkGuard(allow, resolver=fake_dns(dns)))


def fetch_real(url: str, fetcher: Fetcher, **kwargs: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with fetcher:
            return await fetcher.fetch(url, **kwargs)

    return run(go())


def test_e2e_conditional_get_user_agent_and_304(loopback: LoopbackServer) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304)
        return Response(200, {"ETag": '"v1"', "Content-Type": "application/rss+xml"}, b"<rss/>")

    loopback.route("/feed", handler)
    first = fetch_real(loopback.url("/feed"), loop_fetcher(), trusted=True)
    assert (first.status, first.content, first.etag) == (200, b"<rss/>", '"v1"')
    with pytest.raises(NotModified):
        fetch_real(loopback.url("/feed"), loop_fetcher(), trusted=True, etag=first.etag)
    agent = loopback.requests[0].headers["user-agent"]
    assert agent.startswith(f"ingestd/{ingestd.__version__}")
    assert loopback.hits["/feed"] == 2


def test_e2e_304s_keep_the_connection_for_the_next_request(loopback: LoopbackServer) -> None:
    # A 304 read to its end returns its connection to the pool: a warm cycle of
    # a thousand feeds on one host must not connect a thousand times.
    loopback.route("/feed", Response(304, {"ETag": '"v1"'}))
    fetcher = loop_fetcher(FetchLimits(concurrency=1, per_host=1))

    async def go() -> int:
        async with fetcher:
            refused = 0
            for _ in range(5):
                with pytest.raises(NotModified):
                    await fetcher.fetch(loopback.url("/feed"), etag='"v1"', trusted=True)
                refused += 1
            return refused

    assert run(go()) == 5
    assert loopback.hits["/feed"] == 5
    assert loopback.connections == 1


def test_e2e_loopback_is_refused_by_default(loopback: LoopbackServer) -> None:
    with pytest.raises(Refused):
        fetch_real(loopback.url("/"), loop_fetcher())
    assert loopback.hits == {}


def test_e2e_allow_private_cidr_lets_loopback_through(loopback: LoopbackServer) -> None:
    loopback.route("/feed", (200, {}, b"ok"))
    result = fetch_real(loopback.url("/feed"), loop_fetcher(allow=("127.0.0.0/8",)))
    assert result.content == b"ok"


@pytest.mark.parametrize(
    "claimed", ["127.0.0.2", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"]
)
def test_e2e_redirect_to_private_address_never_reaches_the_trap(
    loopback: LoopbackServer,
    claimed: str,
) -> None:
    with LoopbackServer() as trap:
        trap.route("/", (200, {}, b"secret"))
        target = f"http://localhost:{trap.port}/"
        loopback.route("/feed", (302, {"Location": target}, b""))
        with pytest.raises(Refused, match="non-public"):
            fetch_real(
                loopback.url("/feed"), loop_fetcher(dns={"localhost": [claimed]}), trusted=True
            )
        assert trap.hits == {}
    assert loopback.hits["/feed"] == 1


def test_e2e_redirect_to_file_url_is_refused(loopback: LoopbackServer) -> None:
    loopback.route("/feed", (301, {"Location": "file:///etc/passwd"}, b""))
    with pytest.raises(Refused, match="only http and https"):
        fetch_real(loopback.url("/feed"), loop_fetcher(), trusted=True)


def test_e2e_dns_rebinding_answer_is_refused(loopback: LoopbackServer) -> None:
    # Our resolver says public; httpx's own lookup of "localhost" gives 127.0.0.1.
    loopback.route("/", (200, {}, b"internal data"))
    fetcher = loop_fetcher(dns={"localhost": [PUBLIC]})
    with pytest.raises(Refused, match="connected to non-public address"):
        fetch_real(f"http://localhost:{loopback.port}/", fetcher)


def test_e2e_redirects_followed_and_permanent_reported(loopback: LoopbackServer) -> None:
    loopback.route("/old", (301, {"Location": "/new"}, b"moved"))
    loopback.route("/new", (302, {"Location": loopback.url("/today")}, b""))
    loopback.route("/today", (200, {}, b"feed"))
    result = fetch_real(loopback.url("/old"), loop_fetcher(), trusted=True)
    assert result.url == loopback.url("/today")
    assert result.permanent_url == loopback.url("/new")
    assert result.content == b"feed"


def test_e2e_gzip_bomb_stops_quickly(loopback: LoopbackServer) -> None:
    bomb = gzip.compress(bytes(10 << 20), compresslevel=6)
    loopback.route("/bomb", (200, {"Content-Encoding": "gzip"}, bomb))
    started = time.monotonic()
    with pytest.raises(TooLarge):
        fetch_real(
            loopback.url("/bomb"), loop_fetcher(FetchLimits(max_bytes=1 << 20)), trusted=True
        )
    assert time.monotonic() - started < 5


def test_e2e_endless_chunked_body_stops_at_the_cap(loopback: LoopbackServer) -> None:
    loopback.route("/endless", lambda request: Response(200, body=loopback.endless()))
    with pytest.raises(TooLarge, match=r"/endless: body larger than 2,000,000 bytes"):
        fetch_real(
            loopback.url("/endless"), loop_fetcher(FetchLimits(max_bytes=2_000_000)), trusted=True
        )


def test_e2e_dripping_server_is_cut_off_at_the_total_deadline(loopback: LoopbackServer) -> None:
    loopback.route("/drip", lambda request: Response(200, body=loopback.drip(b"x" * 100, 0.1)))
    limits = FetchLimits(total_timeout=1.0, read_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"/drip: timed out after 1 s"):
        fetch_real(loopback.url("/drip"), loop_fetcher(limits), trusted=True)
    assert 0.9 < time.monotonic() - started < 3


def test_e2e_connection_refused_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    with pytest.raises(FetchError, match=rf"{url}: connection refused"):
        fetch_real(url, loop_fetcher(), trusted=True)


def test_e2e_per_host_limit_is_respected(loopback: LoopbackServer) -> None:
    total = 8

    def handler(request: Request) -> Response:
        # Hold each request until a second one is in flight, so a broken limit shows.
        loopback.wait_until(lambda s: s.in_flight >= 2 or sum(s.hits.values()) >= total, 5)
        return Response(200, body=b"ok")

    loopback.route("/feed", handler)

    async def go() -> list[FetchResult]:
        async with loop_fetcher(FetchLimits(per_host=2)) as fetcher:
            jobs = [fetcher.fetch(loopback.url("/feed"), trusted=True) for _ in range(total)]
            return await asyncio.gather(*jobs)

    results = run(go())
    assert [r.status for r in results] == [200] * total
    assert loopback.max_in_flight == 2


def test_public_surface_is_documented() -> None:
    import ingestd.fetch as fetch

    for name in fetch.__all__:
        value = getattr(fetch, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_fetch_errors_cross_processes_with_their_fields() -> None:
    # Pool results and failures are pickled between processes.
    import pickle

    status = HTTPStatusError("u: HTTP 503", url="u", status=503, retry_after=120.0)
    back = pickle.loads(pickle.dumps(status))
    assert (type(back), str(back), back.url, back.status, back.retry_after) == (
        HTTPStatusError, "u: HTTP 503", "u", 503, 120.0,
    )  # fmt: skip
    moved = NotModified("u: not modified", url="u", headers={"etag": "x"}, permanent_url="v")
    back = pickle.loads(pickle.dumps(moved))
    assert (back.url, back.headers, back.permanent_url) == ("u", {"etag": "x"}, "v")
    large = pickle.loads(pickle.dumps(TooLarge("u: too large", url="u")))
    assert (type(large), str(large), large.url, large.status) == (
        TooLarge,
        "u: too large",
        "u",
        None,
    )
