"""``ingestd reprocess``: an archive made by an older extraction (faked with a deliberately
worse extractor) is rebuilt from its raw records; the texts replaced are kept as
revisions, a second run changes nothing, and a feed a daemon holds is waited for."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ingestd import render
from ingestd.cli import main
from ingestd.reprocess import Job, Reprocessor
from ingestd.types import ArchiveFormat, Article, FeedSpec
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import feed_named
from tests.test_fetch_e2e import Setup, feed_toml, item, rss
from tests.test_fetch_e2e import setup as setup  # noqa: F401

HTML = {"Content-Type": "text/html; charset=utf-8"}


def page(n: int) -> bytes:
    paragraphs = "".join(
        f"<p>第{n}篇文章的第{k}段：这是一段足够长的正文，让正文提取认出这是一篇文章。</p>"
        for k in range(8)
    )
    return (
        f"<html><head><title>t{n}</title></head><body><article><h1>标题{n}</h1>"
        f"{paragraphs}<p>最后一段独有的句子{n}号。</p></article></body></html>"
    ).encode()


def serve(loopback: LoopbackServer, count: int) -> None:
    items = ""
    for n in range(count):
        loopback.route(f"/p/{n}.html", (200, HTML, page(n)))
        items += item(f"t{n}", loopback.url(f"/p/{n}.html"), guid=f"g{n}")
    loopback.route("/f.xml", (200, {"Content-Type": "application/rss+xml"}, rss(items)))


def worse_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    """An "older" extractor: it keeps only the article's first paragraph."""
    real = render.extract_article

    def first_paragraph_only(html: str, url: str) -> Article:
        article = real(html, url)
        return replace(article, html=article.html.split("</p>")[0] + "</p>")

    monkeypatch.setattr(render, "extract_article", first_paragraph_only)


def reprocess(setup: Setup, *args: str) -> tuple[int, dict[str, Any]]:
    setup.capsys.readouterr()
    code = main(["reprocess", "--config", str(setup.config), "--json", *args])
    return code, json.loads(setup.capsys.readouterr().out)


def one_page_archived_worse(
    setup: Setup, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> bytes:
    """Feed "p" (repost) archives one page with the "older" extractor; its file's bytes."""
    serve(loopback, 1)
    setup.write(feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S"))
    with monkeypatch.context() as patch:
        worse_extraction(patch)
        assert setup.fetch()[0] == 0
    [old] = files(setup).values()
    return old


def files(setup: Setup) -> dict[str, bytes]:
    base = setup.root / "archive" / "articles"
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*.md")}


def test_an_older_extraction_is_rebuilt_revisions_kept_and_a_second_run_changes_nothing(
    setup: Setup, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(loopback, 1)
    toml = feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S")
    setup.write(toml)
    setup.config.write_text(setup.config.read_text() + '[archive]\nraw = "off"\n')
    assert setup.fetch()[0] == 0  # one entry archived without a raw record
    setup.write(toml)  # raw capture back to its default, "pages"
    serve(loopback, 3)
    with monkeypatch.context() as patch:
        worse_extraction(patch)
        assert setup.fetch()[0] == 0
    old = files(setup)
    assert len(old) == 3
    assert sum("最后一段独有的句子" in d.decode() for d in old.values()) == 1  # only the no-raw one

    code, dry = reprocess(setup, "--dry-run")
    assert code == 0
    assert (dry["entries"], dry["changed"], dry["unchanged"], dry["no_raw_record"]) == (3, 2, 0, 1)
    assert files(setup) == old, "a dry run changes nothing"

    code, done = reprocess(setup)
    assert code == 0 and (done["changed"], done["no_raw_record"], done["failed"]) == (2, 1, [])
    new = files(setup)
    assert set(new) == set(old)
    for path in done["paths"]:
        relative = path.removeprefix("articles/")
        assert new[relative] != old[relative]
        assert "最后一段独有的句子" in new[relative].decode()
    with setup.store() as store:
        for _feed, entry in store.list_entries():
            if entry.archive_path in done["paths"]:
                history = store.revisions(entry.id)
                assert [r.revision for r in history] == [1, 2]
                assert (
                    history[-1].text == old[entry.archive_path.removeprefix("articles/")].decode()
                )
                assert history[-1].content_hash == history[0].content_hash  # polls see no change
        # The rewritten files are in the search index with their new text.
        assert len(store.search_entries("最后一段独有的句子")) == 2

    code, again = reprocess(setup)
    assert code == 0
    assert (again["changed"], again["unchanged"], again["no_raw_record"]) == (0, 2, 1)
    assert files(setup) == new


def test_entries_from_a_recorded_feed_document_are_rebuilt(
    setup: Setup, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = rss(item("one", "http://x.example/1", "1", content="<p>内容一</p>"))
    loopback.route("/a.xml", (200, {"Content-Type": "application/rss+xml"}, body))
    setup.write(feed_toml("a", loopback.url("/a.xml")))
    setup.config.write_text(setup.config.read_text() + '[archive]\nraw = "all"\n')
    real = render.render_items
    with monkeypatch.context() as patch:  # "older rules" wrote a marker into each file
        patch.setattr(render, "render_items", lambda *a: [t + "OLD" for t in real(*a)])
        assert setup.fetch()[0] == 0
    [old] = files(setup).values()
    assert old.endswith(b"OLD")
    code, done = reprocess(setup, "--feed", "a")
    assert code == 0 and done["changed"] == 1
    [new] = files(setup).values()
    assert new == old[: -len(b"OLD")]
    with setup.store() as store:
        [(_feed, entry)] = store.list_entries()
        [first] = store.revisions(entry.id)  # revision 1 was the file: it keeps the old text
        assert first.text == old.decode()


def test_a_kill_between_keeping_the_text_and_the_rewrite_is_finished_once(
    setup: Setup, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = one_page_archived_worse(setup, loopback, monkeypatch)
    with setup.store() as store:
        [(_feed, entry)] = store.list_entries()
        assert store.keep_replaced_text(entry.id, old.decode(), datetime.now(UTC))  # then killed
    code, done = reprocess(setup)
    assert code == 0 and done["changed"] == 1
    with setup.store() as store:
        assert [r.revision for r in store.revisions(entry.id)] == [1, 2]  # kept once


def test_a_feed_a_daemon_holds_is_waited_for(
    setup: Setup, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = one_page_archived_worse(setup, loopback, monkeypatch)
    now = datetime.now(UTC)
    archive = setup.root / "archive"
    spec = FeedSpec("p", loopback.url("/f.xml"), ArchiveFormat.REPOST, source="s", site="S")
    with setup.store() as store:
        record = feed_named(store, "p")
        assert record is not None
        assert store.lease_feeds("daemon", [record.id], now, 300) == {record.id}
        waits: list[float] = []
        held = Reprocessor(store, archive, "me", lambda: now, busy_wait=2, sleep=waits.append)
        summary = held.run([Job(record, spec)])
        assert summary.busy == ["p"] and summary.changed == 0 and len(waits) == 4
        assert list(files(setup).values()) == [old]

        def poll_ends(_seconds: float) -> None:
            store.release_leases_of(["daemon"])

        freed = Reprocessor(store, archive, "me", lambda: now, busy_wait=2, sleep=poll_ends)
        summary = freed.run([Job(record, spec)])
        assert summary.busy == [] and summary.changed == 1
        assert store.active_leases(now) == {}, "the lease is given back"
