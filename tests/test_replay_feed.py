"""Replay of format A: rebuilt RSS item -> feedparser -> render equals the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingestd import cli
from ingestd.formats import feed
from ingestd.parse import parse_feed
from ingestd.replay import build_feed, replay_file
from tests.conftest import SEEDS, corpus_files, file_id

A_FILES = corpus_files("format-a")

# Titles ending in an ASCII space. feedparser strips every element's text and
# FORMATS.md's rule strips JavaScript whitespace, so no feed item can yield such a
# title through the pipeline. The original archiver did not strip these (the DW
# URL slugs, e.g. ".../%E2%80%9D%20/a-53954515", show the source titles had the
# space). They stay exact under parse/render (tests/formats/test_identity.py).
KNOWN_A_EXCEPTIONS = {
    "1048263_《她的交易艺术》：梅拉尼娅·特朗普新传记 .md",
    "1048206_新冠疫情下 同志繼續「驕傲」 .md",
    "1048567_瑞典智库：中国去年至少增加三十枚核弹头 .md",
    "1048280_耶拿：德国的“光学之都” .md",
}


def test_seed_a_replays() -> None:
    result = replay_file(SEEDS / "000_8d4ffb861fbb6860.txt")
    assert result.identical, result.diff


@pytest.mark.parametrize("path", A_FILES, ids=[file_id(p) for p in A_FILES])
def test_corpus_a_replays(path: Path) -> None:
    result = replay_file(path)
    assert result.error is None
    if path.name in KNOWN_A_EXCEPTIONS:
        assert not result.identical
        assert result.diff.count("\n-[") == 1  # only the title line differs
    else:
        assert result.identical, result.diff


def test_known_exceptions_exist_in_corpus() -> None:
    names = {p.name for p in A_FILES}
    assert names >= KNOWN_A_EXCEPTIONS or not A_FILES


def test_rebuilt_feed_is_a_real_feed_with_the_fields() -> None:
    doc = feed.parse((SEEDS / "000_8d4ffb861fbb6860.txt").read_text(encoding="utf-8"))
    xml = build_feed(doc)
    assert doc.content.encode() not in xml  # content travels XML-escaped, not verbatim
    parsed = parse_feed(xml)
    assert parsed.bozo is None
    (item,) = parsed.entries
    assert item.title == doc.title
    assert item.published is not None
    assert int(item.published.timestamp() * 1000) == doc.pubdate_ms


def test_lone_carriage_return_survives_the_feed() -> None:
    doc = feed.FeedDoc(1000, "t", "https://a.example/", "<p>one\rtwo</p>")
    (item,) = parse_feed(build_feed(doc)).entries
    assert item.content == "<p>one\rtwo</p>"


def test_cli_replay_seed_a_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["replay", "--json", str(SEEDS / "000_8d4ffb861fbb6860.txt")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out == {"files": 1, "identical": 1, "differ": [], "unreadable": []}


def test_cli_replay_reports_differ_and_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.md"
    good.write_bytes((SEEDS / "000_8d4ffb861fbb6860.txt").read_bytes())
    differ = tmp_path / "differ.md"
    differ.write_text("<!--1-->\n[ padded ](https://a.example/)\n------\n\n<p>x</p>\n")
    broken = tmp_path / "broken.md"
    broken.write_bytes(b"\xff\xfe not text")
    junk = tmp_path / "junk.md"
    junk.write_text("hello\n")
    code = cli.main(["replay", "--json", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["files"] == 4 and out["identical"] == 1
    assert out["differ"] == [str(differ)]
    errors = {e["path"]: e["error"] for e in out["unreadable"]}
    assert "UTF-8" in errors[str(broken)]
    assert "not an archive file" in errors[str(junk)]
    code = cli.main(["replay", str(differ)])
    text = capsys.readouterr().out
    assert code == 1
    assert "-[ padded ](https://a.example/)" in text
    assert text.rstrip().endswith("1 files: 0 identical, 1 differ, 0 unreadable")


def test_cli_replay_missing_path_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", "/nonexistent/x"]) == 2
    assert "no such file" in capsys.readouterr().err
