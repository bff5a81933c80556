"""Issue 16, item 9: the rough edges of the command line a new user hits."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestd.cli import build_parser, main
from ingestd.store import open_store
from tests.loopback import LoopbackServer
from tests.loopback import loopback_fixture as loopback_fixture  # noqa: F401
from tests.storehelp import feed_named, set_feed_state
from tests.test_fetch_e2e import feed_toml

TEXT = "A paragraph of real article text that is long enough to count as one. " * 8
PAGE = (
    "<html><head><title>Budget passes</title></head><body><nav>Home</nav><article>"
    f"<h1>Budget passes</h1><p>{TEXT}</p></article></body></html>"
).encode()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, database_url: str, feeds: str, allow: str = "[]") -> Path:
    config = tmp_path / "ingestd.toml"
    config.write_text(
        f'database = "{database_url}"\narchive_dir = "archive"\n'
        f"[fetch]\nallow_private = {allow}\n{feeds}",
        encoding="utf-8",
    )
    return config


def test_common_options_go_before_the_command_as_well(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 9: `ingestd --config X status` (as git takes options); after it still works."""
    config = str(write_config(tmp_path, database_url, feed_toml("a", "https://a.example/")))
    code, out, err = run(capsys, "--config", config, "-v", "feeds", "list", "--json")
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["feeds"]] == ["a"]
    code, out, err = run(capsys, "--config", config, "--log-format", "json", "status", "--json")
    assert code == 0 and json.loads(out)["feeds"] == [], err  # nothing polled yet
    code, out, _ = run(capsys, "feeds", "list", "--config", config, "--json")
    assert code == 0 and json.loads(out)["feeds"][0]["name"] == "a"
    # Given both ways, the one after the command wins (it is the more specific).
    code, out, _ = run(capsys, "--config", "/nowhere.toml", "feeds", "list", "--config", config)
    assert code == 0 and out.startswith("a\t")


def test_verbose_help_says_what_it_does_on_every_command() -> None:
    """Item 9: `-v` said "log every feed", also on commands that have no feeds."""
    parser = build_parser()
    helps = [action.help for action in parser._actions if "-v" in action.option_strings]
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in sub.choices.values():  # type: ignore[union-attr]
        helps += [a.help for a in command._actions if "-v" in a.option_strings]
    assert helps and all("every feed" not in (h or "") for h in helps)
    assert all("info" in (h or "") for h in helps)


@pytest.mark.slow
def test_extract_reads_a_file_or_fetches_a_url_through_the_guard(
    loopback: LoopbackServer, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 9: `ingestd extract FILE|URL` besides stdin; a URL goes through the guard."""
    loopback.route("/page.html", (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE))
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    code, out, err = run(capsys, "extract", str(page))
    assert code == 0, err
    assert out.startswith("---\ntitle: Budget passes\n---\n") and "real article text" in out

    url = loopback.url("/page.html")
    os.chdir(tmp_path)
    code, _, err = run(capsys, "extract", url)  # no configuration: the guard's defaults
    assert code == 1 and "127.0.0.1 is a non-public address" in err
    assert loopback.hits["/page.html"] == 0
    config = write_config(tmp_path, database_url, "", allow='["127.0.0.1"]')
    code, out, err = run(capsys, "extract", url, "--format", "feed", "--config", str(config))
    assert code == 0, err
    assert f"[Budget passes]({url})" in out and "real article text" in out
    code, _, err = run(capsys, "extract", str(tmp_path / "missing.html"))
    assert code == 1 and "missing.html" in err and "Traceback" not in err


def _on_a_terminal(args: list[str], cwd: Path, columns: int = 80) -> str:
    """Run ingestd with stdout on a pseudo-terminal of ``columns``; what it printed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingestd", *args], stdout=follower, stderr=subprocess.PIPE,
        cwd=cwd, env=env,
    )  # fmt: skip
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(leader)
    return output.decode("utf-8", "replace")


def test_status_on_a_terminal_is_a_readable_table_and_plain_for_scripts(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 9: on an 80-column terminal, status is a table whose times can be read (they
    were cut to "2026-12-0…"); piped, it stays tab-separated; a disabled feed shows no
    next check."""
    feeds = feed_toml("world-news", "https://a.example/") + feed_toml("gone", "https://b.example/")
    config = write_config(tmp_path, database_url, feeds)
    soon = datetime.now(UTC) + timedelta(minutes=25)
    with open_store(database_url) as store:
        store.sync_feeds(
            [
                ("world-news", "https://a.example/", "feed", 1800),
                ("gone", "https://b.example/", "feed", 1800),
            ],
            soon,
        )
        news = feed_named(store, "world-news")
        assert news is not None
        set_feed_state(
            store, news.id, next_check_at=soon, last_fetch_at=soon - timedelta(minutes=85)
        )
        store.disable_feed("gone", "410 Gone")
    shown = _on_a_terminal(["status", "--config", str(config)], tmp_path)
    assert "━" in shown or "─" in shown  # a drawn table
    assert "…" not in shown, shown
    assert "in 25m" in shown or "in 24m" in shown, shown
    assert "1h ago" in shown or "59m ago" in shown, shown

    code, out, _ = run(capsys, "status", "--config", str(config))
    lines = out.splitlines()
    assert lines[0].split("\t")[:2] == ["name", "state"]
    gone = next(line.split("\t") for line in lines if line.startswith("gone\t"))
    header = lines[0].split("\t")
    assert gone[header.index("next_check")] == "-"
    code, out, _ = run(capsys, "status", "--config", str(config), "--json")
    rows = {row["name"]: row for row in json.loads(out)["feeds"]}
    assert rows["gone"]["next_check"] is None and rows["gone"]["due"] is False
    assert rows["world-news"]["next_check"] is not None


def test_feeds_list_marks_disabled_feeds_and_add_refuses_a_url_already_polled(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 9: `feeds list` shows which feeds are disabled; `feeds add` refuses a URL
    already configured with the same format (a repost of it is still allowed)."""
    config = write_config(tmp_path, database_url, feed_toml("a", "https://a.example/rss"))
    with open_store(database_url) as store:
        store.sync_feeds([("a", "https://a.example/rss", "feed", 1800)], datetime.now(UTC))
        store.disable_feed("a", "410 Gone: the server says the feed is gone for good")
    code, out, _ = run(capsys, "feeds", "list", "--config", str(config))
    assert code == 0 and "disabled: 410 Gone" in out
    code, out, _ = run(capsys, "feeds", "list", "--config", str(config), "--json")
    [row] = json.loads(out)["feeds"]
    assert row["enabled"] is False and row["disabled_reason"].startswith("410 Gone")

    before = config.read_text()
    code, _, err = run(
        capsys, "feeds", "add", "b", "https://a.example/rss", "--config", str(config)
    )
    assert code == 2 and "already polls https://a.example/rss" in err and "'a'" in err
    assert config.read_text() == before
    code, _, err = run(
        capsys, "feeds", "add", "a-repost", "https://a.example/rss", "--format", "repost",
        "--source", "me", "--config", str(config),
    )  # fmt: skip
    assert code == 0, err
