"""httpx's own transport, with connections that read their fixed facts once.

httpcore's connection pool, on every request it places and every response it closes,
asks each pooled connection whether it has expired, and the AnyIO stream answers
``get_extra_info`` by building anyio's whole attribute table: a ``getpeername`` system
call and a dozen small objects, for any question. With N pooled connections that is
N such tables per request (encode/httpcore#928 measures the pool's socket polling);
the fetcher asks for the peer address of every response as well.

A connection's socket, addresses and TLS object never change while it is open, so the
streams here keep the first answer; whether the socket is readable (the pool's test
for a connection the server closed) is asked afresh every time. Over the benchmark's
1,000 conditional GETs (all 304, one host) this took the HTTP client's time from 0.62
to 0.55 s with 4 connections and from 1.22 to 0.79 s with 16 (``bench/floor.py http``
against the same loop over this transport, one run each, alternating).
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

#: Facts a connection keeps; anything else is asked of the stream each time.
FIXED_FACTS = frozenset({"socket", "server_addr", "client_addr", "ssl_object"})


class FactStream(httpcore.AsyncNetworkStream):
    """An ``AsyncNetworkStream`` that reads its connection's fixed facts once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._facts: dict[str, Any] = {}

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A new stream: the TLS object and the socket it wraps are new facts.
        return FactStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self.get_extra_info("socket"))
        if info not in FIXED_FACTS:
            return self._inner.get_extra_info(info)
        try:
            return self._facts[info]
        except KeyError:
            fact = self._facts[info] = self._inner.get_extra_info(info)
            return fact


class FactBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO network backend, handing out ``FactStream`` connections."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return FactStream(await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        ))  # fmt: skip

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        return FactStream(
            await self._inner.connect_unix_socket(
                path, timeout=timeout, socket_options=socket_options
            )
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def readable(sock: socket.socket | None) -> bool:
    """True when a read would not wait: data has come, or the peer has closed (or there
    is no socket left to ask). A pooled idle connection that is readable is finished."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def transport(*, limits: httpx.Limits, http2: bool) -> httpx.AsyncHTTPTransport:
    """httpx's transport (no proxies from the environment) over ``FactBackend`` streams."""
    made = httpx.AsyncHTTPTransport(limits=limits, http2=http2, trust_env=False)
    # httpx takes no network backend, and its httpcore pool does: the pool's backend is
    # swapped before the first connection (tests/test_transport.py checks that every
    # connection of a Fetcher is a FactStream, against the installed httpx).
    made._pool._network_backend = FactBackend()
    return made
