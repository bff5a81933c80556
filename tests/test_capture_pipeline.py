"""Raw capture in the pipeline: ``[archive] raw`` decides what ``ingestd fetch`` records,
and every archived entry's row names a record that reads back as what the server sent."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.cli import main as warcio_main

from ingestd import capture, config
from ingestd.capture import RawRef
from ingestd.errors import ConfigError
from ingestd.store import EntryRecord
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import Setup, feed_toml, item, rss
from tests.test_fetch_e2e import setup as setup  # noqa: F401

ARTICLE = (
    "<html><head><title>T</title></head><body><article><h1>标题</h1>"
    + "<p>这是一篇足够长的文章，用来让正文提取认出它是一篇文章。</p>" * 12
    + "</article></body></html>"
).encode()
HTML = {"Content-Type": "text/html; charset=utf-8"}


def rows(setup: Setup) -> list[EntryRecord]:
    with setup.store() as store:
        return [entry for _feed, entry in store.list_entries()]


def kinds(root: Path) -> list[str]:
    found = []
    for path in capture.warc_files(root):
        with open(path, "rb") as stream:
            found += [record.rec_type for record in ArchiveIterator(stream)]
    return found


def pages_feed(loopback: LoopbackServer, count: int, same_body: bool = False) -> None:
    links = []
    for n in range(count):
        body = ARTICLE if same_body else ARTICLE.replace(b"<h1>", f"<h1>{n} ".encode())
        loopback.route(f"/p/{n}.html", (200, HTML, body))
        links.append(item(f"t{n}", loopback.url(f"/p/{n}.html"), guid=f"g{n}"))
    loopback.route("/f.xml", (200, {"Content-Type": "application/rss+xml"}, rss("".join(links))))


def test_default_records_each_page_and_a_revisit_for_a_repeated_one(
    setup: Setup, loopback: LoopbackServer
) -> None:
    pages_feed(loopback, 2, same_body=True)
    setup.write(feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S"))
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 2
    archive = setup.root / "archive"
    entries = rows(setup)
    assert len(entries) == 2
    for entry in entries:
        assert entry.raw_file is not None and entry.raw_offset is not None
        recorded = capture.read(archive, RawRef(entry.raw_file, entry.raw_offset))
        assert recorded.payload == ARTICLE
        assert recorded.url == entry.link
        assert recorded.status == 200
    # The feed document is not recorded with "pages"; the second page is a revisit.
    assert kinds(archive) == ["warcinfo", "response", "request", "revisit", "request"]
    assert list((archive / "raw" / ".open").iterdir()) == [], "the file was closed"
    [path] = list(capture.warc_files(archive))
    with pytest.raises(SystemExit) as done, redirect_stdout(io.StringIO()):
        warcio_main(["check", str(path)])
    assert done.value.code in (0, None)


def test_all_records_the_feed_document_and_its_entries_point_at_it(
    setup: Setup, loopback: LoopbackServer
) -> None:
    body = rss(item("one", "http://x.example/1", "1") + item("two", "http://x.example/2", "2"))
    loopback.route("/a.xml", (200, {"Content-Type": "application/rss+xml", "ETag": '"1"'}, body))
    setup.write(feed_toml("a", loopback.url("/a.xml")))
    setup.config.write_text(
        setup.config.read_text() + '[archive]\nraw = "all"\nraw_file_mb = 1\n', encoding="utf-8"
    )
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 2
    archive = setup.root / "archive"
    refs = {(e.raw_file, e.raw_offset) for e in rows(setup)}
    [(file, offset)] = refs  # both entries came from the one document
    assert file is not None and offset is not None
    assert capture.read(archive, RawRef(file, offset)).payload == body


def test_off_records_nothing(setup: Setup, loopback: LoopbackServer) -> None:
    pages_feed(loopback, 1)
    setup.write(feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S"))
    setup.config.write_text(setup.config.read_text() + '[archive]\nraw = "off"\n')
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 1
    assert not (setup.root / "archive" / "raw").exists()
    assert [(e.raw_file, e.raw_offset) for e in rows(setup)] == [(None, None)]


def test_a_bad_raw_setting_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "ingestd.toml"
    with pytest.raises(ConfigError, match=r'line 2: archive\.raw: expected "off", "pages" or'):
        config.loads('[archive]\nraw = "everything"\n', path)
    assert config.loads("", path).archive.raw == "pages"
