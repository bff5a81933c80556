"""``ingestd fetch`` end to end, over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingestd.cli import main
from ingestd.formats import feed as format_a
from ingestd.formats import repost as format_b
from ingestd.replay import build_feed
from ingestd.replay_page import build_page
from ingestd.store import Store, open_store
from tests.conftest import SEEDS
from tests.db import table_names
from tests.loopback import LoopbackServer, Request, Response
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import entry_with_key, feed_named, fetch_log

SEED_A = (SEEDS / "000_8d4ffb861fbb6860.txt").read_bytes()
SEED_B = (SEEDS / "004_a3e85a139a601f97.txt").read_bytes()


def rss(items: str, encoding: str = "utf-8", declared: str | None = None) -> bytes:
    head = f'<?xml version="1.0" encoding="{declared or encoding}"?>\n'
    body = (
        f'<rss version="2.0"><channel><title>t</title><link>http://x.example/</link>'
        f"{items}</channel></rss>"
    )
    return (head + body).encode(encoding)


def item(
    title: str,
    link: str,
    guid: str | None = None,
    content: str = "<p>body</p>",
    date: str = "Mon, 28 Feb 2022 22:29:57 GMT",
) -> str:
    escaped = content.replace("&", "&amp;").replace("<", "&lt;")
    guid_xml = f"<guid>{guid}</guid>" if guid else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_xml}"
        f"<pubDate>{date}</pubDate><description>{escaped}</description></item>"
    )


def conditional(body: bytes, etag: str = '"v1"', ctype: str = "application/rss+xml") -> Any:
    """A handler that answers 304 when the client sends the current ETag."""

    def handle(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(304, {"ETag": etag})
        return Response(
            200,
            {"Content-Type": ctype, "ETag": etag, "Last-Modified": "Mon, 28 Feb 2022 23:00:00 GMT"},
            body,
        )

    return handle


@dataclass
class Setup:
    """A config file in tmp_path, its database (``database_url``), and ways to run ingestd."""

    root: Path
    capsys: pytest.CaptureFixture[str]
    database: str

    @property
    def config(self) -> Path:
        return self.root / "ingestd.toml"

    def write(self, feeds: str, allow: str = '["127.0.0.1"]') -> None:
        self.config.write_text(
            f'database = "{self.database}"\narchive_dir = "archive"\n'
            f"[fetch]\ntimeout = 10\nallow_private = {allow}\n{feeds}",
            encoding="utf-8",
        )

    def fetch(self, *names: str) -> tuple[int, dict[str, Any]]:
        self.capsys.readouterr()
        code = main(["fetch", "--config", str(self.config), "--json", *names])
        return code, json.loads(self.capsys.readouterr().out)

    def store(self) -> Store:
        return open_store(self.database)

    def file(self, feed: str, file_id: int = 1048575) -> Path:
        return self.root / "archive" / "articles" / feed / f"{file_id}.md"


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str], database_url: str) -> Setup:
    return Setup(tmp_path, capsys, database_url)


def feed_toml(name: str, url: str, **extra: str) -> str:
    lines = [f'[[feeds]]\nname = "{name}"\nurl = "{url}"']
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def test_both_seeds_come_out_byte_identical_then_304(
    setup: Setup, loopback: LoopbackServer
) -> None:
    doc_a = format_a.parse(SEED_A.decode())
    doc_b = format_b.parse(SEED_B.decode())
    loopback.route("/a.xml", conditional(build_feed(doc_a)))
    page = build_page(doc_b)
    loopback.route(
        "/b/2181912.html", (200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())
    )
    feed_b = rss(item(doc_b.title, loopback.url("/b/2181912.html"), guid="2181912"))
    loopback.route("/b.xml", conditional(feed_b, etag='"b1"'))
    setup.write(
        feed_toml("voa", loopback.url("/a.xml"), sanitize="false").replace('"false"', "false")
        + feed_toml(
            "gnews", loopback.url("/b.xml"), format="repost", source=doc_b.source, site="GNews"
        )
    )
    code, out = setup.fetch()
    assert out["errors"] == []
    assert code == 0
    assert (out["feeds"], out["ok"], out["archived"], out["new_entries"]) == (2, 2, 2, 2)
    assert setup.file("voa").read_bytes() == SEED_A
    assert setup.file("gnews").read_bytes() == SEED_B

    with setup.store() as store:
        voa = feed_named(store, "voa")
        assert voa is not None and voa.etag == '"v1"' and voa.last_status == 200
        entry = entry_with_key(store, voa.id, f"guid:{doc_a.link}")
        assert entry is not None and entry.archive_path == "articles/voa/1048575.md"
        assert entry.published_at is not None
        assert int(entry.published_at.timestamp() * 1000) == doc_a.pubdate_ms
        assert [f.outcome for f in fetch_log(store, voa.id)] == ["ok"]

    code, out = setup.fetch()
    assert code == 0
    assert (out["not_modified"], out["archived"]) == (2, 0)
    second = [r for r in loopback.requests if r.path == "/a.xml"][-1]
    assert second.headers["if-none-match"] == '"v1"'
    assert second.headers["if-modified-since"] == "Mon, 28 Feb 2022 23:00:00 GMT"
    assert loopback.hits["/b/2181912.html"] == 1
    assert sorted(p.name for p in setup.file("voa").parent.iterdir()) == ["1048575.md"]


def test_gbk_feed_and_lying_charset(setup: Setup, loopback: LoopbackServer) -> None:
    gbk = rss(item("美国之音新闻", "http://x.example/1", guid="1"), encoding="gbk")
    lying = rss(
        item("德国之声新闻", "http://x.example/2", guid="2"), encoding="gbk", declared="utf-8"
    )
    loopback.route("/gbk.xml", (200, {"Content-Type": "application/rss+xml"}, gbk))
    loopback.route("/lie.xml", (200, {"Content-Type": "text/xml; charset=utf-8"}, lying))
    setup.write(
        feed_toml("gbk", loopback.url("/gbk.xml")) + feed_toml("lie", loopback.url("/lie.xml"))
    )
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 2
    assert "[美国之音新闻](http://x.example/1)" in setup.file("gbk").read_text()
    assert "[德国之声新闻](http://x.example/2)" in setup.file("lie").read_text()


def test_truncated_feed_keeps_its_complete_items(setup: Setup, loopback: LoopbackServer) -> None:
    whole = rss(item("one", "http://x.example/1", "1") + item("two", "http://x.example/2", "2"))
    truncated = whole[: whole.index(b"<item><title>two") + 30]
    loopback.route("/t.xml", (200, {"Content-Type": "application/rss+xml"}, truncated))
    setup.write(feed_toml("t", loopback.url("/t.xml")))
    code, out = setup.fetch()
    assert code == 0 and out["archived"] >= 1
    assert "[one](http://x.example/1)" in setup.file("t", 1048575).read_text()
    with setup.store() as store:
        feed = feed_named(store, "t")
        assert feed is not None and feed.last_error is None


def test_duplicate_guids_are_all_archived(setup: Setup, loopback: LoopbackServer) -> None:
    items = "".join(item(f"n{i}", f"http://x.example/{i}", guid="same") for i in range(10))
    loopback.route("/d.xml", (200, {"Content-Type": "application/rss+xml"}, rss(items)))
    setup.write(feed_toml("d", loopback.url("/d.xml")))
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 10
    assert len(list(setup.file("d").parent.iterdir())) == 10


def test_changed_content_is_a_revision_not_a_second_file(
    setup: Setup, loopback: LoopbackServer
) -> None:
    version = {"content": "<p>first</p>"}

    def handle(_request: Request) -> Response:
        body = rss(item("t", "http://x.example/1", "g", content=version["content"]))
        return Response(200, {"Content-Type": "application/rss+xml"}, body)

    loopback.route("/c.xml", handle)
    setup.write(feed_toml("c", loopback.url("/c.xml")))
    assert setup.fetch()[1]["archived"] == 1
    version["content"] = "<p>edited</p>"
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 0
    assert [p.name for p in setup.file("c").parent.iterdir()] == ["1048575.md"]
    assert "<p>first</p>" in setup.file("c").read_text()  # never silently overwritten
    with setup.store() as store:
        feed = feed_named(store, "c")
        assert feed is not None
        entry = entry_with_key(store, feed.id, "guid:g")
        assert entry is not None
        assert [r.revision for r in store.revisions(entry.id)] == [1, 2]


def test_an_entry_with_a_very_long_guid_is_known_on_the_next_poll(
    setup: Setup, loopback: LoopbackServer
) -> None:
    # Identity keys over 1 kB are stored as their hash; the next poll must still
    # recognise the entry, not archive it again (or write and remove its file).
    # (No link: a guid-keyed entry may also be matched by its link.)
    long_guid = "urn:" + "x" * 2000
    no_link = (
        f'<item><title>long</title><guid isPermaLink="false">{long_guid}</guid>'
        "<description>body</description></item>"
    )
    body = rss(no_link + item("short", "http://x.example/s", "s"))
    loopback.route("/l.xml", (200, {"Content-Type": "application/rss+xml"}, body))
    setup.write(feed_toml("l", loopback.url("/l.xml")))
    assert setup.fetch()[1]["archived"] == 2
    code, out = setup.fetch()
    assert code == 0 and (out["new_entries"], out["archived"]) == (0, 0)
    assert len(list(setup.file("l").parent.iterdir())) == 2


@pytest.mark.slow
def test_a_cycle_of_304s_loads_no_parsing_stack(setup: Setup, loopback: LoopbackServer) -> None:
    # A cron `fetch` where nothing changed starts, asks, gets 304s and exits: the
    # parsing, extraction and rendering libraries are not loaded for it.
    loopback.route("/n.xml", conditional(rss(item("n", "http://x.example/n", "n"))))
    setup.write(feed_toml("n", loopback.url("/n.xml")))
    assert setup.fetch()[1]["archived"] == 1
    code = (
        "import sys\nfrom ingestd.cli import main\n"
        "status = main(['fetch', '--config', sys.argv[1], '--json'])\n"
        "heavy = ['feedparser', 'readability', 'ingestd.pool.steps', 'ingestd.render',\n"
        "         'ingestd.extract', 'ingestd.formats', 'ingestd.replay', 'markdown_it', 'nh3']\n"
        "if 'sqlite' in sys.argv[2]:\n    heavy.append('sqlalchemy.dialects.postgresql')\n"
        "print(status, sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    warm = subprocess.run(
        [sys.executable, "-c", code, str(setup.config), setup.database],
        cwd=setup.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(warm.stdout)["not_modified"] == 1, warm.stderr
    assert warm.stderr.strip().splitlines()[-1] == "0 []"


def test_file_feed(setup: Setup) -> None:
    (setup.root / "local.xml").write_bytes(rss(item("local", "http://x.example/l", "l")))
    setup.write(feed_toml("local", "file:local.xml"))
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 1
    assert "[local](http://x.example/l)" in setup.file("local").read_text()


@pytest.mark.parametrize(
    ("route", "status", "words"),
    [
        (
            (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body>hi</body></html>"),
            200,
            "HTML page, not an RSS or Atom feed",
        ),
        ((404, {}, b"gone fishing"), 404, "404"),
        ((500, {}, b"oops"), 500, "500"),
    ],
)
def test_failures_are_recorded_with_status(
    setup: Setup, loopback: LoopbackServer, route: Any, status: int, words: str
) -> None:
    loopback.route("/bad.xml", route)
    loopback.route("/good.xml", (200, {}, rss(item("ok", "http://x.example/ok", "ok"))))
    setup.write(
        feed_toml("bad", loopback.url("/bad.xml")) + feed_toml("good", loopback.url("/good.xml"))
    )
    code, out = setup.fetch()
    assert code == 1
    assert (out["failed"], out["ok"], out["archived"]) == (1, 1, 1)
    [error] = out["errors"]
    assert error["feed"] == "bad" and words in error["error"]
    with setup.store() as store:
        bad = feed_named(store, "bad")
        assert bad is not None
        assert bad.last_status == status and bad.consecutive_errors == 1
        assert bad.last_error is not None and words in bad.last_error
        [fetch] = fetch_log(store, bad.id)
        assert (fetch.outcome, fetch.status) == ("failed", status)


def test_guard_refuses_private_article_link(setup: Setup, loopback: LoopbackServer) -> None:
    with LoopbackServer(host="127.0.0.2") as trap:
        trap.route("/secret.html", (200, {}, b"<html><body><p>secret</p></body></html>"))
        feed = rss(item("x", trap.url("/secret.html"), "x"))
        loopback.route("/f.xml", (200, {"Content-Type": "application/rss+xml"}, feed))
        setup.write(feed_toml("guarded", loopback.url("/f.xml"), format="repost", source="s"))
        code, out = setup.fetch()
        assert trap.hits["/secret.html"] == 0
    assert out["ok"] == 1 and out["archived"] == 0  # the feed itself (127.0.0.1) was allowed
    assert loopback.hits["/f.xml"] == 1
    assert not setup.file("guarded").exists()


def test_bad_config_exits_2_without_touching_the_database(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.write('[[feeds]]\nname = "x"\nurl = "ftp://nope"\n')
    code = main(["fetch", "--config", str(setup.config)])
    assert code == 2
    err = capsys.readouterr().err
    assert "line 8: feeds[0].url: expected an http(s)://" in err
    assert table_names(setup.database) == set()


def test_unknown_feed_name_is_a_usage_error(setup: Setup, loopback: LoopbackServer) -> None:
    setup.write(feed_toml("a", loopback.url("/a.xml")))
    assert main(["fetch", "--config", str(setup.config), "nope"]) == 2
