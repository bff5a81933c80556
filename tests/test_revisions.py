"""Issue 16, item 2: every revision of an entry keeps its text, and ``ingestd entries show ID
--revisions`` shows them with a unified diff; the archived file is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingestd.cli import main
from ingestd.store import open_store
from tests.loopback import LoopbackServer, Request, Response
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import item, rss

TEXT = "A paragraph of real article text that is long enough to count as one. " * 8


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["feed", "repost"])
def test_every_revision_keeps_its_text_and_shows_as_a_diff(
    fmt: str,
    loopback: LoopbackServer,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Item 2: a stealth edit (title and text) is kept as revision 2 with its text; the
    archived file stays as first archived; `entries show --revisions` prints the diff."""
    version = {"title": "Minister resigns", "content": "<p>He resigned on Monday.</p>"}

    def feed(_request: Request) -> Response:
        body = rss(item(version["title"], loopback.url("/a.html"), "g1", version["content"]))
        return Response(200, {"Content-Type": "application/rss+xml"}, body)

    page = f"<html><head><title>T</title></head><body><article><p>{TEXT}</p></article></body>"
    loopback.route("/f.xml", feed)
    loopback.route("/a.html", (200, {"Content-Type": "text/html"}, page.encode()))
    extra = 'format = "repost"\nsource = "s"\n' if fmt == "repost" else ""
    config = tmp_path / "ingestd.toml"
    config.write_text(
        f'database = "{database_url}"\narchive_dir = "archive"\n'
        '[fetch]\nallow_private = ["127.0.0.1"]\n'
        f'[[feeds]]\nname = "news"\nurl = "{loopback.url("/f.xml")}"\n{extra}',
        encoding="utf-8",
    )
    assert run(capsys, "fetch", "--config", str(config))[0] == 0
    archived = tmp_path / "archive" / "articles" / "news" / "1048575.md"
    original = archived.read_bytes()

    version.update(title="Minister stays", content="<p>He did not resign.</p>")
    code, out = run(capsys, "fetch", "--config", str(config))
    assert code == 0 and "1 revised" in out
    version.update(content="<p>He did not resign. Updated at noon.</p>")
    assert "1 revised" in run(capsys, "fetch", "--config", str(config))[1]
    assert archived.read_bytes() == original  # the file keeps the first version

    code, out = run(
        capsys, "entries", "list", "news", "--revised", "--config", str(config), "--json"
    )
    [entry] = json.loads(out)["entries"]
    assert entry["revisions"] == 3
    with open_store(database_url) as store:
        texts = [r.text for r in store.revisions(entry["id"])]
    assert texts[1] is not None and "[Minister stays]" in texts[1]
    assert texts[2] is not None and "Updated at noon." in texts[2]

    code, out = run(
        capsys, "entries", "show", str(entry["id"]), "--revisions", "--config", str(config)
    )
    assert code == 0
    assert "--- revision 1" in out and "+++ revision 2" in out and "+++ revision 3" in out
    assert "-[Minister resigns]" in out and "+[Minister stays]" in out
    assert "-<p>He resigned on Monday.</p>" in out and "+<p>He did not resign.</p>" in out
    assert "+<p>He did not resign. Updated at noon.</p>" in out
