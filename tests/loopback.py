"""A small HTTP/1.1 server on 127.0.0.1 for end-to-end tests.

    with LoopbackServer() as server:
        server.route("/feed.xml", (200, {"Content-Type": "application/rss+xml"}, b"<rss/>"))
        server.route("/echo", lambda req: Response(200, body=req.headers.get("user-agent", "")))
        server.route("/slow", lambda req: Response(200, body=server.drip(b"abc", every=0.5)))
        ... fetch server.url("/feed.xml") ...
        assert server.hits["/feed.xml"] == 1

Routes are handler functions (``Request -> Response``) or static ``(status, headers, body)``
tuples. A body that is an iterable of byte chunks is sent with chunked transfer encoding,
one chunk as it is produced, so a generator can drip or never end. The server runs in a
background thread, counts hits per path, records every request, and tracks how many
requests are in flight (``in_flight``, ``max_in_flight``); ``wait_until`` blocks on that
state instead of sleeping. Use it as a context manager or through the ``loopback``
fixture (``from tests.loopback import loopback_fixture  # noqa: F401`` in a test module, or
``pytest_plugins = ["tests.loopback"]`` in the root conftest).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

import pytest

Body = bytes | str | Iterable[bytes]


@dataclass(frozen=True)
class Request:
    """What the server received: method, path (no query), query string, headers, body."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """What a handler answers. An iterable body is sent chunked, chunk by chunk."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Body = b""
    #: Close the connection after this response without saying so (no ``Connection:
    #: close``), as a server whose keep-alive timer ran out does.
    hang_up: bool = False


Handler = Callable[[Request], Response]
Route = Handler | Response | tuple[int, dict[str, str], Body]


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._routes: dict[str, Handler] = {}
        self._state = threading.Condition()
        self._stopping = threading.Event()
        self.hits: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0  # TCP connections accepted
        self.hung_up = 0  # connections closed after a ``hang_up`` response
        self._httpd = ThreadingHTTPServer((host, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the OS gave us."""
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        """The absolute http://host:port URL of ``path``."""
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, route: Route) -> None:
        """Serve ``path`` (exact match, query ignored) with a handler or a static answer."""
        self._routes[path] = _as_handler(route)

    def drip(self, data: bytes, every: float) -> Iterator[bytes]:
        """Yield ``data`` one byte per ``every`` seconds; stops early when the server stops."""
        for i in range(len(data)):
            if self._stopping.wait(every):
                return
            yield data[i : i + 1]

    def endless(self, chunk: bytes = b"x" * 65536) -> Iterator[bytes]:
        """Yield ``chunk`` until the client hangs up or the server stops."""
        while not self._stopping.is_set():
            yield chunk

    def wait_until(self, predicate: Callable[[LoopbackServer], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate(server)`` holds (re-checked on every request start/end)."""
        with self._state:
            return self._state.wait_for(lambda: predicate(self), timeout)

    def start(self) -> LoopbackServer:
        """Start serving in a daemon thread."""
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; dripping and endless bodies end at their next step."""
        self._stopping.set()
        with self._state:
            self._state.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- used by the request handler thread ---

    def _begin(self, request: Request) -> Handler | None:
        with self._state:
            self.hits[request.path] += 1
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._state.notify_all()
        return self._routes.get(request.path)

    def _end(self) -> None:
        with self._state:
            self.in_flight -= 1
            self._state.notify_all()


def _as_handler(route: Route) -> Handler:
    if isinstance(route, Response):
        fixed = route
        return lambda _req: fixed
    if isinstance(route, tuple):
        status, headers, body = route
        return lambda _req: Response(status, dict(headers), body)
    return route


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies

        def setup(self) -> None:
            super().setup()
            with server._state:
                server.connections += 1

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            handler = server._begin(request)
            try:
                response = handler(request) if handler else Response(404, body=b"no route")
                self._send(response)
                if response.hang_up:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    with server._state:
                        server.hung_up += 1
                        server._state.notify_all()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client hung up: expected for capped bodies
            except Exception as exc:  # recorded so a test can assert the server saw no bug
                server.errors.append(exc)
                self.close_connection = True
            finally:
                server._end()

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            body = response.body
            names = {k.lower() for k in response.headers}
            for name, value in response.headers.items():
                self.send_header(name, value)
            if isinstance(body, str):
                body = body.encode()
            if isinstance(body, bytes):
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return _Handler


@pytest.fixture(name="loopback")
def loopback_fixture() -> Iterator[LoopbackServer]:
    """A running LoopbackServer, stopped after the test."""
    with LoopbackServer() as server:
        yield server
