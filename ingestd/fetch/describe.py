"""The one place where foreign exceptions (httpx, OS, TLS, DNS, zlib) become words.

``Fetcher`` catches ``FOREIGN`` exceptions and raises a ``FetchError`` whose message is
the URL and ``describe``'s short reason. Anything else that escapes is a bug.
"""

from __future__ import annotations

import socket
import ssl
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx

from ingestd.fetch.inflate import Unsupported

if TYPE_CHECKING:
    from ingestd.fetch.limits import FetchLimits


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


def describe(exc: BaseException, limits: FetchLimits, *, deadline_hit: bool) -> str:
    """A short human reason for ``exc``; the caller prefixes the URL."""
    if deadline_hit:
        return f"timed out after {limits.total_timeout:g} s"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {limits.connect_timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data for {limits.read_timeout:g} s (read timed out)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, Unsupported):
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
FOREIGN = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, zlib.error, Unsupported)
