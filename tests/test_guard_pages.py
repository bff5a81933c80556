"""Issue 16, item 7: the network guard's refusals say how to allow an address; a feed's own
``allow_private = true`` covers its article pages on its own host; a page's error names its
URL once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingestd.cli import main
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import item, rss

TEXT = "A paragraph of real article text that is long enough to count as one. " * 8
PAGE = f"<html><head><title>T</title></head><body><article><p>{TEXT}</p></article></body>"


def test_a_trusted_feeds_pages_on_its_host_are_fetched_others_refused_with_the_way_out(
    loopback: LoopbackServer, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: allow_private = true on an intranet feed (127.0.0.1) lets its pages on that
    host through; a page elsewhere (127.0.0.2) is refused with how to allow it, and the
    error names the page's URL once."""
    with LoopbackServer(host="127.0.0.2") as other:
        other.route("/x.html", (200, {"Content-Type": "text/html"}, PAGE.encode()))
        loopback.route("/a.html", (200, {"Content-Type": "text/html"}, PAGE.encode()))
        elsewhere = other.url("/x.html")
        items = item("home", loopback.url("/a.html"), "a") + item("away", elsewhere, "x")
        loopback.route("/f.xml", (200, {"Content-Type": "application/rss+xml"}, rss(items)))
        config = tmp_path / "ingestd.toml"
        config.write_text(
            f'database = "{database_url}"\narchive_dir = "archive"\n'
            f'[[feeds]]\nname = "intranet"\nurl = "{loopback.url("/f.xml")}"\n'
            'format = "repost"\nsource = "s"\nallow_private = true\n',
            encoding="utf-8",
        )
        capsys.readouterr()
        code = main(["fetch", "--config", str(config), "--json"])
        summary = json.loads(capsys.readouterr().out)
        assert other.hits["/x.html"] == 0
    assert loopback.hits["/a.html"] == 1 and summary["archived"] == 1
    assert code == 1  # the refused page is an entry not archived
    [problem] = summary["entry_errors"]
    assert problem["link"] == elsewhere
    error = problem["error"]
    assert error.count(elsewhere) == 1, error
    assert "127.0.0.2 is a non-public address" in error
    assert 'add "127.0.0.2" to [fetch] allow_private' in error
    [warning] = [w["warning"] for w in summary["warnings"]]
    assert warning.count(elsewhere) == 1, warning
