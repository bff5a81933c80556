"""``ingestd replay --raw``: each archived file rebuilt from its raw record must come out
byte for byte; ``--fixtures`` turns the checked files into self-contained fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingestd.cli import main
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.test_fetch_e2e import Setup, feed_toml, item, rss
from tests.test_fetch_e2e import setup as setup  # noqa: F401
from tests.test_reprocess import serve


def replay(setup: Setup, *args: str | Path, config: bool = True) -> tuple[int, dict[str, Any]]:
    setup.capsys.readouterr()
    options = ["--config", str(setup.config)] if config else []
    code = main(["replay", "--raw", "--json", *options, *map(str, args)])
    return code, json.loads(setup.capsys.readouterr().out)


def test_captured_files_replay_identically_and_become_fixtures(
    setup: Setup, loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(loopback, 2)  # pages: format B from each article page
    body = rss(item("one", "http://x.example/1", "1", content="<p>内容</p>"))
    loopback.route("/a.xml", (200, {"Content-Type": "application/rss+xml"}, body))
    setup.write(
        feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S")
        + feed_toml("a", loopback.url("/a.xml"))
    )
    setup.config.write_text(setup.config.read_text() + '[archive]\nraw = "all"\n')
    assert setup.fetch()[0] == 0
    articles = setup.root / "archive" / "articles"
    fixtures = tmp_path / "fixtures"
    code, out = replay(setup, articles, "--fixtures", fixtures)
    assert (code, out["files"], out["identical"]) == (0, 3, 3), out
    assert len(list(fixtures.glob("*/fixture.json"))) == 3

    # The fixtures alone: no configuration, no archive, no database.
    monkeypatch.chdir(tmp_path)
    code, out = replay(setup, fixtures, config=False)
    assert (code, out["files"], out["identical"]) == (0, 3, 3), out

    [expected] = list((fixtures / "a-1048575").glob("expected"))
    expected.write_bytes(expected.read_bytes().replace("内容".encode(), "改了".encode()))
    code, out = replay(setup, fixtures, config=False)
    assert code == 1 and out["differ"] == [str(expected)]


def test_a_file_without_a_raw_record_is_named(setup: Setup, loopback: LoopbackServer) -> None:
    serve(loopback, 1)
    setup.write(feed_toml("p", loopback.url("/f.xml"), format="repost", source="s", site="S"))
    setup.config.write_text(setup.config.read_text() + '[archive]\nraw = "off"\n')
    assert setup.fetch()[0] == 0
    code, out = replay(setup, setup.root / "archive" / "articles")
    assert code == 1
    [problem] = out["unreadable"]
    assert "no raw record" in problem["error"]
