"""One named test per attack of the hostile server (``tests/hostile/server.py``).

Each test runs ``ingestd fetch`` in a child process over the attack plus a healthy
control feed, with ``[fetch] timeout = 3`` and ``connect_timeout = 2``. It states its
bounds in the ``harness.run`` call: ``seconds`` is wall time including the child's
start-up (about one second), ``memory_mb`` the child's peak resident memory (about
90 MB at rest; the body cap is the default 15,000,000 bytes). ``harness.run`` also
asserts the invariants listed in ``conftest.py``; the test asserts what a person
sees (the error in ``ingestd fetch --json`` and ``ingestd status``) and what the
server saw.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestd import archive, naming
from tests.hostile.conftest import Harness, hostile_feed
from tests.hostile.server import (
    ACTIVE_SNIPPETS,
    BOMB_MEMBERS,
    HOSTILE_TITLES,
    HUGE_BODY_BYTES,
    INERT_HTML,
    MIB,
    HostileServer,
)

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow

FAST = 10.0  # seconds: start-up plus an attack answered at once
TIMEOUT_BOUND = 10.0  # seconds: start-up plus the 3 s fetch timeout
SMALL_MB = 160.0  # peak RSS of a run that reads at most one capped body (~95 MB at rest)


# --- connections that never finish -------------------------------------------------------


def test_never_answers(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("silent", hostile.silent.url("/feed.xml")),
        seconds=TIMEOUT_BOUND,
        memory_mb=SMALL_MB,
    )
    error = harness.recorded_error(run, "silent")
    assert "timed out" in error and hostile.silent.url("/feed.xml") in error
    assert hostile.silent.accepted == 1  # it connected, then gave up on the silence


def test_drip(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("drip", hostile.url("/drip")), seconds=TIMEOUT_BOUND, memory_mb=SMALL_MB
    )
    error = harness.recorded_error(run, "drip")
    assert "timed out after 3 s" in error  # the total deadline, not the per-read one


# --- bodies that never end or explode ------------------------------------------------------


def test_huge_chunked_body(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(hostile_feed("huge", hostile.url("/huge")), seconds=FAST, memory_mb=SMALL_MB)
    error = harness.recorded_error(run, "huge")
    assert "body larger than 15,000,000 bytes" in error
    # It stopped reading at the cap: far less than the 2 GB on offer left the server.
    assert hostile.sent["/huge"] < 64 * MIB < HUGE_BODY_BYTES
    assert "/huge" not in hostile.finished


def test_gzip_bomb(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("bomb", hostile.url("/gzip-bomb")), seconds=FAST, memory_mb=SMALL_MB
    )
    error = harness.recorded_error(run, "bomb")
    assert "body larger than 15,000,000 bytes" in error
    # 160 members of 64 MiB of zeros were on offer (10 GiB inflated, ~10 MB on the wire);
    # the client hung up long before the end (what left the server is socket buffers).
    assert "/gzip-bomb" not in hostile.finished
    assert hostile.sent["/gzip-bomb"] < BOMB_MEMBERS * len(hostile.bomb_member)


# --- redirects ----------------------------------------------------------------------------


def test_redirect_loop(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("loop", hostile.url("/loop/a")), seconds=FAST, memory_mb=SMALL_MB
    )
    error = harness.recorded_error(run, "loop")
    assert "more than 5 redirects" in error
    assert hostile.hits["/loop/a"] + hostile.hits["/loop/b"] == 6  # the first GET + 5 hops


def test_redirect_to_private_address(harness: Harness, hostile: HostileServer) -> None:
    # Both feeds are trusted (allow_private) for their own host, 127.0.0.1 only.
    run = harness.run(
        hostile_feed("to-private", hostile.url("/to-private")),
        hostile_feed("to-localhost", hostile.url("/to-localhost")),
        seconds=FAST,
        memory_mb=SMALL_MB,
    )
    error = harness.recorded_error(run, "to-private")
    assert "refused, 127.0.0.2 is a non-public address" in error
    error = harness.recorded_error(run, "to-localhost")
    assert "refused, localhost is a non-public address (127.0.0.1)" in error
    assert hostile.trap_v4.accepted == hostile.trap_local.accepted == 0


def test_redirect_to_file_url_and_metadata_address(
    harness: Harness, hostile: HostileServer
) -> None:
    # 169.254.169.254 cannot be bound here: the guard refuses it from the literal address,
    # before any connection (the message proves which check fired).
    run = harness.run(
        hostile_feed("to-file", hostile.url("/to-file")),
        hostile_feed("to-metadata", hostile.url("/to-metadata")),
        seconds=FAST,
        memory_mb=SMALL_MB,
    )
    error = harness.recorded_error(run, "to-file")
    assert "refused, only http and https may be fetched" in error
    error = harness.recorded_error(run, "to-metadata")
    assert "refused, 169.254.169.254 is a non-public address" in error


# --- XML attacks ----------------------------------------------------------------------------


def test_billion_laughs(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("laughs", hostile.url("/laughs")), seconds=FAST, memory_mb=SMALL_MB
    )
    # No expansion: the entry survives with the entity left as it was written.
    assert run.summary["errors"] == []
    [text] = harness.texts("laughs")
    assert "lollol" not in text and len(text) < 2000
    [warning] = [w["warning"] for w in run.summary["warnings"] if w["feed"] == "laughs"]
    assert warning.startswith("feed is malformed but readable")


def test_external_entity(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("xxe", hostile.url("/xxe")),
        hostile_feed("xxe-param", hostile.url("/xxe-param")),
        seconds=FAST,
        memory_mb=SMALL_MB,
    )
    # harness.run asserts the secret is nowhere; the entries still arrive without it.
    assert run.summary["errors"] == []
    [text] = harness.texts("xxe")
    heading = "[before  after](http://hostile.example/xxe)"  # the entity dropped
    assert heading in text or heading.replace("  ", " &xxe; ") in text  # or left as written
    assert len(harness.texts("xxe-param")) == 1


# --- broken feeds ----------------------------------------------------------------------------


def test_truncated_feed(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("truncated", hostile.url("/truncated")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert run.summary["errors"] == []
    titles = "".join(harness.texts("truncated"))
    assert "[complete one]" in titles and "[complete two]" in titles
    [warning] = [w["warning"] for w in run.summary["warnings"] if w["feed"] == "truncated"]
    assert warning.startswith("feed is malformed but readable")


def test_empty_200(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("empty", hostile.url("/empty")), seconds=FAST, memory_mb=SMALL_MB
    )
    error = harness.recorded_error(run, "empty")
    assert "empty response: the server sent no feed" in error


def test_html_instead_of_feed(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(hostile_feed("html", hostile.url("/html")), seconds=FAST, memory_mb=SMALL_MB)
    error = harness.recorded_error(run, "html")
    assert "the server sent an HTML page, not an RSS or Atom feed" in error


def test_invalid_utf8(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("badutf8", hostile.url("/invalid-utf8")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert run.summary["errors"] == []
    [path] = harness.files("badutf8")
    text = path.read_bytes().decode("utf-8")  # the archive is valid UTF-8 whatever came in
    assert "(http://hostile.example/u)" in text


def test_gbk_labelled_utf8(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("gbk", hostile.url("/gbk-as-utf8")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert run.summary["errors"] == []
    [text] = harness.texts("gbk")
    assert "[美国之音新闻](http://hostile.example/gbk)" in text
    assert "中文内容，繁體字" in text


# --- HTTP errors ------------------------------------------------------------------------------


def test_http_404(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("missing", hostile.url("/status/404")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert harness.recorded_error(run, "missing").endswith("HTTP 404 Not Found")
    assert harness.status("missing")["enabled"] is True


def test_http_410(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("gone", hostile.url("/status/410")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert harness.recorded_error(run, "gone").endswith("HTTP 410 Gone")
    row = harness.status("gone")
    assert row["enabled"] is False and "ingestd feeds enable" in row["state"]


def test_http_429_retry_after(harness: Harness, hostile: HostileServer) -> None:
    before = datetime.now(UTC)
    run = harness.run(
        hostile_feed("busy", hostile.url("/status/429")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert harness.recorded_error(run, "busy").endswith("HTTP 429 Too Many Requests")
    next_check = harness.record("busy").next_check_at
    assert next_check is not None
    assert (next_check.replace(tzinfo=UTC) - before).total_seconds() >= 120  # Retry-After


def test_http_500(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("broken", hostile.url("/status/500")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert harness.recorded_error(run, "broken").endswith("HTTP 500 Internal Server Error")


def test_http_503_retry_after(harness: Harness, hostile: HostileServer) -> None:
    before = datetime.now(UTC)
    run = harness.run(
        hostile_feed("down", hostile.url("/status/503")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert harness.recorded_error(run, "down").endswith("HTTP 503 Service Unavailable")
    next_check = harness.record("down").next_check_at
    assert next_check is not None
    assert (next_check.replace(tzinfo=UTC) - before).total_seconds() >= 600


# --- volume ------------------------------------------------------------------------------------


def test_fifty_thousand_items(harness: Harness, hostile: HostileServer) -> None:
    # 4.4 MB of feed: parsing takes ~6 s; archiving is capped per poll, the rest waits.
    run = harness.run(hostile_feed("many", hostile.url("/many")), seconds=30, memory_mb=300)
    assert run.summary["errors"] == []
    assert run.summary["new_entries"] == 50_001  # with the control entry
    cap = 500
    assert run.summary["archived"] == cap + 1
    assert len(harness.files("many")) == harness.status("many")["entries"] == cap
    [warning] = [w["warning"] for w in run.summary["warnings"] if w["feed"] == "many"]
    assert "49,500 more new entries" in warning


# --- active content ------------------------------------------------------------------------------


def test_active_content_in_items(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("active", hostile.url("/active")), seconds=FAST, memory_mb=SMALL_MB
    )
    assert run.summary["errors"] == []
    texts = harness.texts("active")
    assert len(texts) == len(ACTIVE_SNIPPETS) + 1  # harness.run checked none is active
    # Inert HTML passes byte for byte, odd spacing and all.
    assert sum(text.endswith(f"\n\n{INERT_HTML}\n") for text in texts) == 1
    joined = "".join(texts)
    for kept in ("<p>one</p>", "<p>two</p>", "click", "styled", "frame"):
        assert kept in joined  # cleaning removed the active parts, not the text


def test_active_content_in_pages(harness: Harness, hostile: HostileServer) -> None:
    # Article pages live on 127.0.0.1 here, so [fetch] allow_private lets the pages through.
    run = harness.run(
        hostile_feed("pages-a", hostile.url("/active-pages"), fetch_page=True),
        hostile_feed(
            "pages-b",
            hostile.url("/active-pages"),
            format="repost",
            source="hostile",
            site="Hostile",
        ),
        seconds=FAST + 5,
        memory_mb=SMALL_MB,
        allow_private=("127.0.0.1",),
    )
    assert run.summary["errors"] == []
    for feed in ("pages-a", "pages-b"):
        texts = harness.texts(feed)
        assert len(texts) == len(ACTIVE_SNIPPETS)
        assert all("Paragraph 5 of an ordinary article" in t for t in texts)


# --- hostile titles ----------------------------------------------------------------------


def test_hostile_titles(harness: Harness, hostile: HostileServer) -> None:
    run = harness.run(
        hostile_feed("titles", hostile.url("/titles")),
        hostile_feed("title-pages", hostile.url("/title-pages"), format="repost", source="hostile"),
        seconds=FAST + 5,
        memory_mb=SMALL_MB,
        allow_private=("127.0.0.1",),
    )
    assert run.summary["errors"] == []
    # harness.run checked every file is articles/<feed>/<id>.md under the archive.
    for feed in ("titles", "title-pages"):
        texts = harness.texts(feed)
        assert len(texts) == len(HOSTILE_TITLES)
        for text in texts:
            assert "\x00" not in text
    # Format A keeps its five lines whatever the title holds.
    assert all(text.count("\n") == 5 for text in harness.texts("titles"))
    heading = "".join(harness.texts("titles"))
    assert "[../../etc/x](" in heading and "[CON](" in heading and "T" * 5000 in heading
    # Names made from these titles (the older {id}_{title}.md naming) stay one safe part.
    for title in HOSTILE_TITLES:
        name = naming.file_name(1048575, title)
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert len(name.encode()) <= naming.MAX_NAME_BYTES
        assert archive.inside(harness.archive, harness.archive / "articles" / "x" / name)


# --- article links to places that must never be fetched ----------------------------------


def test_private_article_links(harness: Harness, hostile: HostileServer) -> None:
    # [fetch] allow_private is empty: only the feeds' own URLs (allow_private per feed) are
    # trusted, never their article links. Traps listen on 127.0.0.2, on a 127.0.0.1 port
    # named as localhost, and on [::1] when this machine has IPv6 loopback; 169.254.169.254
    # cannot be bound, so its refusal is shown by the guard's message (before connecting).
    run = harness.run(
        hostile_feed("links-b", hostile.url("/private-links"), format="repost", source="s"),
        hostile_feed("links-a", hostile.url("/private-links"), fetch_page=True),
        seconds=FAST,
        memory_mb=SMALL_MB,
    )
    assert hostile.trap_hits() == 0
    assert run.summary["errors"] == [] and run.summary["archived"] == 1  # the control entry
    for feed in ("links-a", "links-b"):
        assert not harness.files(feed)
        warnings = [w["warning"] for w in run.summary["warnings"] if w["feed"] == feed]
        assert len(warnings) == len(hostile.article_links)
        joined = "\n".join(warnings)
        assert "169.254.169.254 is a non-public address" in joined
        assert "127.0.0.2 is a non-public address" in joined
        assert "localhost is a non-public address" in joined
        assert "[::1] is a non-public address" in joined or "::1 is a non-public" in joined
        assert joined.count("a file: link is only followed for a local feed") == 2
