"""The offline demo of config.example.toml: feeds built from the two seeds.

The demo files in seeds/demo/ are generated from the seeds by replay's own
builders; this test keeps them in step (INGESTD_REGEN_DEMO=1 rewrites them).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ingestd.cli import main
from ingestd.formats import feed as format_a
from ingestd.formats import repost as format_b
from ingestd.replay import build_feed
from ingestd.replay_page import build_page
from tests.conftest import REPO, SEEDS

DEMO = SEEDS / "demo"
SEED_A = SEEDS / "000_8d4ffb861fbb6860.txt"
SEED_B = SEEDS / "004_a3e85a139a601f97.txt"
PAGE = "gnews-2181912.html"


def demo_files() -> dict[str, bytes]:
    doc_a = format_a.parse(SEED_A.read_text(encoding="utf-8"))
    doc_b = format_b.parse(SEED_B.read_text(encoding="utf-8"))
    item = (
        f"<item><title>{doc_b.title}</title><link>{PAGE}</link>"
        f'<guid isPermaLink="false">gnews-2181912</guid>'
        "<pubDate>Thu, 17 Mar 2022 17:40:28 GMT</pubDate></item>"
    )
    gnews = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>GNews demo</title><link>https://gnews.org/</link>"
        f"<description>offline demo feed</description>{item}</channel></rss>\n"
    )
    return {
        "voa.xml": build_feed(doc_a),
        "gnews.xml": gnews.encode("utf-8"),
        PAGE: build_page(doc_b).encode("utf-8"),
    }


def test_demo_files_are_current() -> None:
    expected = demo_files()
    if os.environ.get("INGESTD_REGEN_DEMO"):
        for name, data in expected.items():
            (DEMO / name).write_bytes(data)
    for name, data in expected.items():
        assert (DEMO / name).read_bytes() == data, f"seeds/demo/{name} is stale"


def test_example_config_archives_both_seeds_offline(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    line = 'database = "sqlite:///ingestd.db"\n'
    assert example.count(line) == 1, "the example's database line moved"
    (tmp_path / "ingestd.toml").write_text(
        example.replace(line, f'database = "{database_url}"\n'), encoding="utf-8"
    )
    shutil.copytree(DEMO, tmp_path / "seeds" / "demo")
    code = main(
        ["fetch", "--config", str(tmp_path / "ingestd.toml"), "--json", "demo-voa", "demo-gnews"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["archived"] == 2
    articles = tmp_path / "archive" / "articles"
    assert (articles / "demo-voa" / "1048575.md").read_bytes() == SEED_A.read_bytes()
    assert (articles / "demo-gnews" / "1048575.md").read_bytes() == SEED_B.read_bytes()
