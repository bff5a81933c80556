"""status, feeds and extract commands; start-up reconciliation of rows and files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ingestd.cli import main
from ingestd.formats import repost
from ingestd.replay_page import build_page
from tests.conftest import SEEDS
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import Setup, feed_toml, item, rss


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str], database_url: str) -> Setup:
    return Setup(tmp_path, capsys, database_url)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_ok_and_failing_feeds(
    setup: Setup, loopback: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    loopback.route("/ok.xml", (200, {}, rss(item("a", "http://x.example/a", "a"))))
    loopback.route("/bad.xml", (500, {}, b"down"))
    setup.write(
        feed_toml("good", loopback.url("/ok.xml")) + feed_toml("broken", loopback.url("/bad.xml"))
    )
    setup.fetch()
    code, out, _ = run(capsys, "status", "--config", str(setup.config), "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["feeds"]}
    assert rows["good"]["state"] == "ok" and rows["good"]["entries"] == 1
    broken = rows["broken"]
    assert broken["state"].startswith("failing since")
    assert broken["consecutive_errors"] == 1 and broken["last_status"] == 500
    assert "500" in broken["last_error"]
    assert broken["next_check"] is not None
    code, out, _ = run(capsys, "status", "--config", str(setup.config))
    assert "broken" in out and "failing since" in out


def test_feeds_add_list_remove_keep_comments(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.write("# my feeds\n" + feed_toml("one", "https://one.example/feed"))
    config = str(setup.config)
    assert (
        run(
            capsys,
            "feeds",
            "add",
            "two",
            "https://two.example/rss",
            "--interval",
            "2h",
            "--config",
            config,
        )[0]
        == 0
    )
    code, out, _ = run(capsys, "feeds", "list", "--config", config, "--json")
    names = [f["name"] for f in json.loads(out)["feeds"]]
    assert names == ["one", "two"]
    assert json.loads(out)["feeds"][1]["interval_seconds"] == 7200
    code, _, err = run(capsys, "feeds", "add", "two", "https://x.example/", "--config", config)
    assert code == 2 and "duplicate feed name 'two'" in err
    assert run(capsys, "feeds", "remove", "one", "--config", config)[0] == 0
    text = setup.config.read_text()
    assert "# my feeds" in text and "one.example" not in text and "two.example" in text
    code, _, err = run(capsys, "feeds", "remove", "nope", "--config", config)
    assert code == 2 and "no feed named 'nope'" in err


def test_feeds_disable_and_enable(
    setup: Setup, loopback: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    loopback.route("/f.xml", (200, {}, rss(item("a", "http://x.example/a", "a"))))
    setup.write(feed_toml("f", loopback.url("/f.xml")))
    config = str(setup.config)
    assert run(capsys, "feeds", "disable", "f", "--reason", "holiday", "--config", config)[0] == 0
    code, out = setup.fetch()
    assert code == 0 and out["archived"] == 0 and loopback.hits["/f.xml"] == 0
    assert "disabled: holiday" in out["errors"][0]["error"]
    assert run(capsys, "feeds", "enable", "f", "--config", config)[0] == 0
    assert setup.fetch()[1]["archived"] == 1


def test_extract_prints_the_repost_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = (SEEDS / "004_a3e85a139a601f97.txt").read_text(encoding="utf-8")
    doc = repost.parse(seed)
    page = build_page(doc).encode("utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(page)))
    code, out, _ = run(capsys, "extract", "--source", doc.source, "--site", "GNews")
    assert code == 0
    assert out == seed


def test_extract_format_a_sanitizes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "A paragraph of real article text that is long enough to count. " * 8
    page = (
        f"<html><head><title>T</title></head><body><article><p>{text}</p>"
        "<p>more<script>alert(1)</script></p></article></body></html>"
    ).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(page)))
    code, out, _ = run(capsys, "extract", "--format", "feed", "--url", "https://a.example/x")
    assert code == 0
    lines = out.split("\n")
    assert lines[1] == "[T](https://a.example/x)" and lines[2] == "------"
    assert "real article text" in lines[4] and "script" not in out


def test_extract_empty_page_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"  ")))
    code, _, err = run(capsys, "extract")
    assert code == 1 and "empty page" in err


def test_startup_reconciles_rows_and_files(setup: Setup, loopback: LoopbackServer) -> None:
    items = "".join(item(f"n{i}", f"http://x.example/{i}", str(i)) for i in range(3))
    loopback.route("/r.xml", (200, {}, rss(items)))
    setup.write(feed_toml("r", loopback.url("/r.xml")))
    assert setup.fetch()[1]["archived"] == 3
    folder = setup.file("r").parent
    # What a crash can leave: a temporary file, a file whose row never committed,
    # and a row whose file is gone.
    (folder / ".ingestd-tmp-deadbeef").write_text("half")
    orphan = folder / "1048000.md"
    orphan.write_text("orphan")
    (folder / "1048575.md").unlink()
    code, out = setup.fetch()
    assert code == 0
    assert out["archived"] == 1  # the entry whose file was lost is archived again
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["1048572.md", "1048573.md", "1048574.md"]
    moved = list((setup.root / "archive" / "orphans").rglob("1048000.md"))
    assert len(moved) == 1 and moved[0].read_text() == "orphan"
    with setup.store() as store:
        paths = set(dict(store.archive_paths_in_order()))
    assert paths == {f"articles/r/{n}" for n in names}
