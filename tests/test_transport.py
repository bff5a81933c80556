"""The fetcher's transport: connections read their fixed facts once, and still notice a
server that closed them."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import httpx
import pytest

from ingestd.errors import NotModified
from ingestd.fetch import Fetcher, FetchLimits, NetworkGuard, transport
from ingestd.fetch.transport import FactStream
from tests.loopback import LoopbackServer, Response, loopback_fixture  # noqa: F401


class CountingStream(httpcore.AsyncNetworkStream):
    """A stream that counts what it is asked (every answer computed afresh)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.asked: list[str] = []
        self.sock = sock

    def get_extra_info(self, info: str) -> Any:
        self.asked.append(info)
        return {"socket": self.sock, "server_addr": ("192.0.2.7", 80)}.get(info)


def test_fixed_facts_are_asked_of_the_connection_once() -> None:
    inner = CountingStream()
    stream = FactStream(inner)
    for _ in range(5):
        assert stream.get_extra_info("server_addr") == ("192.0.2.7", 80)
        assert stream.get_extra_info("ssl_object") is None
    assert inner.asked == ["server_addr", "ssl_object"]


def test_unknown_facts_are_passed_through_every_time() -> None:
    inner = CountingStream()
    stream = FactStream(inner)
    stream.get_extra_info("something_new")
    stream.get_extra_info("something_new")
    assert inner.asked == ["something_new", "something_new"]


def test_readability_is_asked_afresh_every_time() -> None:
    ours, theirs = socket.socketpair()
    try:
        stream = FactStream(CountingStream(ours))
        assert stream.get_extra_info("is_readable") is False
        theirs.sendall(b"x")
        assert stream.get_extra_info("is_readable") is True
        ours.recv(1)
        assert stream.get_extra_info("is_readable") is False
        theirs.close()  # the peer hung up: a read would return b"" at once
        assert stream.get_extra_info("is_readable") is True
    finally:
        ours.close()
        theirs.close()


def test_a_closed_socket_counts_as_readable() -> None:
    assert transport.readable(None) is True
    sock = socket.socket()
    sock.close()
    assert transport.readable(sock) is True


def test_the_transport_hands_out_fact_streams(loopback: LoopbackServer) -> None:
    # httpx gives no way to pass the network backend, so transport() swaps it on
    # httpx's pool: this fails if an httpx release stops using that pool's backend.
    loopback.route("/a", (200, {}, b"ok"))
    made = transport.transport(limits=httpx.Limits(max_connections=2), http2=True)

    async def go() -> tuple[object, object]:
        async with httpx.AsyncClient(transport=made) as client:
            response = await client.get(loopback.url("/a"))
            stream = response.extensions["network_stream"]
            return stream, stream.get_extra_info("server_addr")

    stream, peer = asyncio.run(go())
    assert isinstance(stream, FactStream)
    assert peer == ("127.0.0.1", loopback.port)


def fetcher(concurrency: int = 1) -> Fetcher:
    return Fetcher(
        FetchLimits(concurrency=concurrency, per_host=concurrency),
        guard=NetworkGuard(("127.0.0.0/8",)),
    )


def test_a_fetcher_connects_once_for_many_requests_through_fact_streams(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[FactStream] = []
    original = FactStream.__init__

    def spy(self: FactStream, inner: httpcore.AsyncNetworkStream) -> None:
        made.append(self)
        original(self, inner)

    monkeypatch.setattr(FactStream, "__init__", spy)
    loopback.route("/feed", Response(304, {"ETag": '"v1"'}))

    async def go() -> None:
        async with fetcher() as f:
            for _ in range(4):
                with pytest.raises(NotModified):
                    await f.fetch(loopback.url("/feed"), etag='"v1"', trusted=True)

    asyncio.run(go())
    assert loopback.hits["/feed"] == 4
    assert len(made) == 1 and loopback.connections == 1


def test_a_connection_the_server_closed_is_not_used_again(loopback: LoopbackServer) -> None:
    # The server hangs up after the first answer without a "Connection: close": only the
    # readability check tells the pool that its idle connection is finished. Were that
    # answer kept like the fixed facts, the second request would go out on a dead
    # connection and fail ("Server disconnected").
    # The first request makes the pool ask while the connection is still good.
    loopback.route("/hello", Response(200, body=b"one"))
    loopback.route("/bye", Response(200, body=b"two", hang_up=True))
    loopback.route("/next", Response(200, body=b"three"))

    async def go() -> list[bytes]:
        async with fetcher() as f:
            bodies = [
                (await f.fetch(loopback.url(path), trusted=True)).content
                for path in ("/hello", "/bye")
            ]
            assert loopback.wait_until(lambda s: s.hung_up == 1)
            return [*bodies, (await f.fetch(loopback.url("/next"), trusted=True)).content]

    assert asyncio.run(go()) == [b"one", b"two", b"three"]
    assert loopback.connections == 2
