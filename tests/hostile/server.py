"""The hostile loopback server: one route per attack, and traps that count every hit.

    with HostileServer(secret_file) as hostile:
        hostile.url("/drip")          # an attack route on 127.0.0.1
        hostile.silent.url("/feed")   # a server that accepts and never answers
        hostile.trap_v4.url("/x")     # 127.0.0.2: must never be reached
        hostile.trap_hits()           # connections that reached any trap

Everything binds loopback addresses only (127.0.0.1, 127.0.0.2, ::1). The HTTP routes
run on ``tests.loopback.LoopbackServer``; the traps and the silent server are raw socket
servers, so a trap counts a TCP connection even when no HTTP request follows.

Large bodies are generated as they are sent, never built in memory: the 2 GB body is
one 64 KiB chunk repeated, and the gzip bomb is one 64 MiB-of-zeros gzip member
(about 64 KB compressed, built once) repeated 160 times, which inflates to 10 GiB.
``sent`` counts the bytes each generated body handed to the socket and ``finished``
names the bodies sent to their end, so a test can show that the client hung up early.
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from types import TracebackType

from tests.loopback import LoopbackServer, Response

KIB, MIB, GIB = 1024, 1024 * 1024, 1024 * 1024 * 1024
HUGE_BODY_BYTES = 2 * GIB
BOMB_MEMBER_ZEROS = 64 * MIB
BOMB_MEMBERS = 160  # 160 x 64 MiB = 10 GiB inflated
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
HTML_TYPE = {"Content-Type": "text/html; charset=utf-8"}
#: What a trap answers if anything ever reaches it; tests look for it in the archive.
TRAP_MARK = "TRAP-CONTENT-3f9a1c"
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"

HOSTILE_TITLES = (
    "../../etc/x",
    "..\\..\\x",
    "CON",
    ".hidden",
    "T" * 5000,
    "a/b:c*d?e|f<g>h\x00i\nj\r\nk",
)


# --- feed builders ----------------------------------------------------------------------


def xml_text(text: str) -> str:
    """``text`` escaped for XML character data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def item(
    title: str,
    link: str,
    guid: str,
    content: str = "<p>body</p>",
    date: str = "Mon, 28 Feb 2022 22:29:57 GMT",
) -> str:
    """One RSS item; ``content`` is HTML, escaped into the description."""
    return (
        f"<item><title>{xml_text(title)}</title><link>{xml_text(link)}</link>"
        f'<guid isPermaLink="false">{xml_text(guid)}</guid><pubDate>{date}</pubDate>'
        f"<description>{xml_text(content)}</description></item>"
    )


def rss(items: str, *, doctype: str = "", declared: str = "utf-8") -> str:
    """An RSS 2.0 document around ``items``."""
    return (
        f'<?xml version="1.0" encoding="{declared}"?>\n{doctype}'
        '<rss version="2.0"><channel><title>hostile</title>'
        f"<link>http://hostile.example/</link>{items}</channel></rss>"
    )


def page(title: str, body_html: str) -> str:
    """An article page readability can extract."""
    paragraphs = "".join(
        f"<p>Paragraph {i} of an ordinary article, long enough to be the "
        "article readability is looking for, with words in it.</p>"
        for i in range(6)
    )
    return (
        f"<!DOCTYPE html><html><head><title>{xml_text(title)}</title></head><body>"
        f"<article><h1>{xml_text(title)}</h1>{body_html}{paragraphs}</article>"
        "</body></html>"
    )


ACTIVE_SNIPPETS = {
    "script": "<p>one</p><script>alert(document.cookie)</script><p>two</p>",
    "handler": '<p>pic <img src="http://img.example/a.png" onerror="alert(1)"></p>',
    "javascript": '<p><a href="javascript:alert(1)">click</a> and '
    '<a href=" JaVaScRiPt:alert(2)">this</a></p>',
    "iframe": '<p>frame</p><iframe src="http://evil.example/"></iframe>',
    "style": "<style>body{background:url(javascript:alert(1))}</style>"
    '<p style="behavior:url(x.htc)">styled</p>',
    "mixed": '<div onclick="steal()"><object data="x.swf"></object><embed src="x.swf">'
    '<form action="http://evil.example/"><input name="q"></form>'
    '<svg onload="alert(1)"></svg><math><mi>x</mi></math></div>',
}
INERT_HTML = (
    '<p>Plain <b>bold</b> and <a href="https://example.org/a?b=1&amp;c=2">a link'
    '</a>, <img src="https://img.example/p.jpg" alt="x">, '
    '<span class=odd   title="kept as is">odd spacing</span></p>'
)


def billion_laughs() -> bytes:
    """Ten levels of ten-fold entity expansion: 10^9 ``lol`` if a parser expands them."""
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    doctype = "<!DOCTYPE rss [" + "".join(entities) + "]>\n"
    return rss(
        item(
            "&lol9;",
            "http://hostile.example/laughs",
            "laughs",
        ).replace("&amp;lol9;", "&lol9;"),
        doctype=doctype,
    ).encode()


def external_entity(secret_file: Path) -> bytes:
    """A feed whose title and description pull a local file in as an external entity."""
    doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret_file}">]>\n'
    entry = (
        "<item><title>before &xxe; after</title><link>http://hostile.example/xxe</link>"
        "<guid>xxe</guid><description>text &xxe; text</description></item>"
    )
    return rss(entry, doctype=doctype).encode()


def parameter_entity(secret_file: Path) -> bytes:
    """The same through a parameter entity, which a DTD-loading parser would read."""
    doctype = (
        f'<!DOCTYPE rss [<!ENTITY % pe SYSTEM "file://{secret_file}"> %pe;'
        f'<!ENTITY % remote SYSTEM "file://{secret_file}">]>\n'
    )
    return rss(
        item("parameter entity", "http://hostile.example/pe", "pe"), doctype=doctype
    ).encode()


def many_items(count: int) -> bytes:
    """A feed of ``count`` small items with distinct guids."""
    items = "".join(
        f"<item><title>n{i}</title><link>http://hostile.example/{i}</link><guid>g{i}</guid></item>"
        for i in range(count)
    )
    return rss(items).encode()


def gzip_member(zeros: int, step: int = MIB) -> bytes:
    """One complete gzip member of ``zeros`` zero bytes, compressed ``step`` at a time."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(step)
    parts = [z.compress(block) for _ in range(zeros // step)]
    parts.append(z.flush())
    return b"".join(parts)


# --- raw socket servers -----------------------------------------------------------------


class RawServer:
    """A TCP server on a loopback address that counts every connection it accepts.

    ``answer`` None holds each connection open and never sends a byte (the silent
    server); bytes are sent back once the request headers arrived, then closed (a trap
    that would hand over bait if anything ever reached it).
    """

    def __init__(self, host: str, answer: bytes | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self._answer = answer
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def url(self, path: str = "/", name: str | None = None) -> str:
        """``http://host:port/path``; ``name`` replaces the address (e.g. ``localhost``)."""
        host = name or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.accepted += 1
            if self._answer is None:
                self._held.append(conn)  # never read, never answered, closed at stop()
            else:
                threading.Thread(target=self._bait, args=(conn,), daemon=True).start()

    def _bait(self, conn: socket.socket) -> None:
        assert self._answer is not None
        with conn:
            conn.settimeout(2)
            try:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(self._answer)
            except OSError:
                pass

    def start(self) -> RawServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def bait_response(secret: str) -> bytes:
    """What a trap would answer: a feed-and-page-looking body full of the marker."""
    body = page(f"{TRAP_MARK} {secret}", f"<p>{TRAP_MARK} {secret}</p>").encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def _bind_v6_trap(answer: bytes) -> RawServer | None:
    try:
        return RawServer("::1", answer)
    except OSError:
        return None  # no IPv6 loopback in this container


# --- the hostile server -------------------------------------------------------------------


class HostileServer:
    """The attack routes on 127.0.0.1, a silent server, and traps on refused addresses."""

    def __init__(self, secret_file: Path, secret: str) -> None:
        self.secret_file = secret_file
        self.secret = secret
        self.http = LoopbackServer("127.0.0.1")
        self.silent = RawServer("127.0.0.1")
        bait = bait_response(secret)
        self.trap_v4 = RawServer("127.0.0.2", bait)  # another loopback address
        self.trap_local = RawServer("127.0.0.1", bait)  # reached as http://localhost:PORT
        self.trap_v6 = _bind_v6_trap(bait)
        self.sent: Counter[str] = Counter()
        self.finished: set[str] = set()  # generated bodies sent to their very end
        self._add_routes()

    @property
    def traps(self) -> list[RawServer]:
        return [t for t in (self.trap_v4, self.trap_local, self.trap_v6) if t is not None]

    def trap_hits(self) -> int:
        """Connections that reached any trap (must stay zero)."""
        return sum(t.accepted for t in self.traps)

    def url(self, path: str) -> str:
        return self.http.url(path)

    @property
    def hits(self) -> Counter[str]:
        return self.http.hits

    # --- routes ---

    def _add_routes(self) -> None:
        route = self.http.route
        route(
            "/control.xml",
            (
                200,
                RSS_TYPE,
                rss(
                    item(
                        "control entry",
                        "http://control.example/1",
                        "control-1",
                        "<p>the healthy control feed</p>",
                    )
                ).encode(),
            ),
        )
        route(
            "/drip",
            lambda _r: Response(
                200,
                dict(RSS_TYPE),
                self.http.drip(
                    rss(item("dripped", "http://hostile.example/d", "d")).encode(), every=1.0
                ),
            ),
        )
        route("/huge", lambda _r: Response(200, dict(RSS_TYPE), self._huge()))
        route(
            "/gzip-bomb",
            lambda _r: Response(200, {**RSS_TYPE, "Content-Encoding": "gzip"}, self._bomb()),
        )
        route("/loop/a", (302, {"Location": "/loop/b"}, b""))
        route("/loop/b", (302, {"Location": "/loop/a"}, b""))
        route("/to-private", lambda _r: Response(302, {"Location": self.trap_v4.url("/feed.xml")}))
        route("/to-metadata", (301, {"Location": METADATA_URL}, b""))
        route("/to-file", lambda _r: Response(302, {"Location": f"file://{self.secret_file}"}))
        route(
            "/to-localhost",
            lambda _r: Response(
                307, {"Location": self.trap_local.url("/feed.xml", name="localhost")}
            ),
        )
        route("/laughs", (200, RSS_TYPE, billion_laughs()))
        route("/xxe", (200, RSS_TYPE, external_entity(self.secret_file)))
        route("/xxe-param", (200, RSS_TYPE, parameter_entity(self.secret_file)))
        whole = rss(
            item("complete one", "http://hostile.example/t1", "t1")
            + item("complete two", "http://hostile.example/t2", "t2")
            + item("cut short", "http://hostile.example/t3", "t3")
        ).encode()
        route("/truncated", (200, RSS_TYPE, whole[: whole.index(b"cut short") + 4]))
        route("/empty", (200, RSS_TYPE, b""))
        route("/html", (200, HTML_TYPE, page("Not a feed", "<p>Welcome!</p>").encode()))
        bad = rss(
            item(
                "bad \udcff bytes", "http://hostile.example/u", "u", "<p>caf\udce9 \udcfe\udcff</p>"
            )
        ).encode("utf-8", "surrogateescape")
        route("/invalid-utf8", (200, RSS_TYPE, bad))
        gbk = rss(
            item("美国之音新闻", "http://hostile.example/gbk", "gbk", "<p>中文内容，繁體字</p>")
        ).encode("gbk")
        route("/gbk-as-utf8", (200, RSS_TYPE, gbk))
        route("/status/404", (404, {}, b"not here"))
        route("/status/410", (410, {}, b"gone"))
        route("/status/429", (429, {"Retry-After": "120"}, b"slow down"))
        route("/status/500", (500, {}, b"<html>Internal Server Error</html>"))
        route("/status/503", (503, {"Retry-After": "600"}, b"maintenance"))
        route("/many", lambda _r: Response(200, dict(RSS_TYPE), self._many))
        self._active_routes()
        self._title_routes()
        self._link_routes()

    def _active_routes(self) -> None:
        items = "".join(
            item(f"active {name}", f"http://hostile.example/active/{name}", f"active-{name}", html)
            for name, html in ACTIVE_SNIPPETS.items()
        )
        items += item("inert", "http://hostile.example/inert", "inert", INERT_HTML)
        self.http.route("/active", (200, RSS_TYPE, rss(items).encode()))
        links = ""
        for name, html in ACTIVE_SNIPPETS.items():
            path = f"/active-page/{name}"
            self.http.route(path, (200, HTML_TYPE, page(f"active page {name}", html).encode()))
            links += item(f"page {name}", self.url(path), f"page-{name}")
        self.http.route("/active-pages", (200, RSS_TYPE, rss(links).encode()))

    def _title_routes(self) -> None:
        items, pages = "", ""
        for n, title in enumerate(HOSTILE_TITLES):
            items += item(title, f"http://hostile.example/title/{n}", f"title-{n}")
            path = f"/title-page/{n}"
            self.http.route(path, (200, HTML_TYPE, page(title, "<p>x</p>").encode()))
            pages += item(f"page {n}", self.url(path), f"title-page-{n}")
        # A NUL is not XML: the feed sends it raw, as a broken server would.
        self.http.route("/titles", (200, RSS_TYPE, rss(items).encode()))
        self.http.route("/title-pages", (200, RSS_TYPE, rss(pages).encode()))

    def _link_routes(self) -> None:
        links = [
            METADATA_URL,
            self.trap_v4.url("/article"),
            "http://[::1]:9/article",
            "file:///etc/passwd",
            f"file://{self.secret_file}",
            self.trap_local.url("/article", name="localhost"),
        ]
        if self.trap_v6 is not None:
            links[2] = self.trap_v6.url("/article")
        self.article_links = tuple(links)
        items = "".join(item(f"link {n}", link, f"link-{n}") for n, link in enumerate(links))
        self.http.route("/private-links", (200, RSS_TYPE, rss(items).encode()))

    # --- generated bodies ---

    def _counted(self, name: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sent[name] += len(chunk)
            yield chunk
        self.finished.add(name)

    def _huge(self) -> Iterator[bytes]:
        head = rss(item("huge", "http://hostile.example/h", "h")).encode()
        head = head[: head.index(b"</description>")]
        padding = b"<!-- 2 GB of padding, never a complete feed -->".ljust(64 * KIB, b" ")

        def chunks() -> Iterator[bytes]:
            yield head
            for _ in range((HUGE_BODY_BYTES - len(head)) // len(padding)):
                yield padding

        return self._counted("/huge", chunks())

    @cached_property
    def bomb_member(self) -> bytes:
        return gzip_member(BOMB_MEMBER_ZEROS)

    def _bomb(self) -> Iterator[bytes]:
        member = self.bomb_member

        def chunks() -> Iterator[bytes]:
            yield _gzip(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
            for _ in range(BOMB_MEMBERS):
                yield member

        return self._counted("/gzip-bomb", chunks())

    @cached_property
    def _many(self) -> bytes:
        return many_items(50_000)

    # --- lifecycle ---

    def start(self) -> HostileServer:
        self.http.start()
        for server in (self.silent, *self.traps):
            server.start()
        return self

    def stop(self) -> None:
        self.http.stop()
        for server in (self.silent, *self.traps):
            server.stop()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _gzip(data: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()
