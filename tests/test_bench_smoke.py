"""The benchmark at toy scale, so the bench scripts keep working (the numbers come from bench/).

No nginx and no network: the runner's Python static server (ETag, Last-Modified,
304) serves a farm of three feeds; reader joins only when bench/.venv-reader exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench import farm
from bench.profile_report import report
from bench.runner import READER_PYTHON
from bench.serve import PythonServer

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def test_runner_at_toy_scale_prints_the_table(tmp_path: Path) -> None:
    contenders = "ingestd,floor,pipeline" + (",reader" if READER_PYTHON.exists() else "")
    out = tmp_path / "results.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.runner",
            "--feeds",
            "3",
            "--items",
            "3",
            "--pipeline-feeds",
            "1",
            "--rounds",
            "1",
            "--reader-workers",
            "2",
            "--concurrency",
            "2,4",
            "--server",
            "python",
            "--contenders",
            contenders,
            "--dir",
            str(tmp_path / "b"),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    samples = result["samples"]
    # Both concurrency values were tried, and the table names the best of each phase.
    best = result["settings"]["concurrency"]
    assert set(result["ingestd_concurrency_trials_seconds"]["cold"]) == {"2", "4"}
    assert f"| ingestd cold, concurrency={best['cold']} |" in run.stdout
    assert "ingestd / reader" in run.stdout or not READER_PYTHON.exists()
    assert "parse: ingestd's parse CPU s per feed / the floor's" in run.stdout
    for conc in (2, 4):
        cold = samples[f"ingestd cold c{conc}"][0]["output"]
        warm = samples[f"ingestd warm c{conc}"][0]["output"]
        assert (cold["ok"], cold["new_entries"], cold["failed"]) == (3, 9, 0)
        assert cold["parse_cpu_seconds"] > 0
        assert (warm["not_modified"], warm["new_entries"]) == (3, 0)  # the server's 304s
        assert warm["parse_cpu_seconds"] == 0  # nothing parsed on a 304
    # Run folders are removed at the end, not between runs.
    assert not (tmp_path / "b" / "work").exists()
    assert samples["floor feeds"][0]["output"]["entries"] == 9
    busy = samples["floor feeds busy"][0]["output"]
    assert busy["entries"] == 9 and len(busy["cpu_seconds_each"]) == busy["processes"] >= 1
    assert "parse: the same / the floor's with every core parsing" in run.stdout
    # The warm cycle's floor: httpx alone got a 304 for every feed.
    http = samples["floor http"][0]["output"]
    assert (http["feeds"], http["not_modified"], http["concurrency"]) == (3, 3, best["warm"])
    assert f"| floor: httpx alone, all 304, concurrency={best['warm']} |" in run.stdout
    pipeline = samples["pipeline ingestd"][0]["output"]
    assert (pipeline["archived"], pipeline["failed"]) == (20, 0)
    assert samples["pipeline floor"][0]["output"]["pages"] == 20
    assert samples[f"ingestd cold c{best['cold']}"][0]["tree_rss_mb"] > 10
    assert result["machine"]["nproc"] >= 1
    if READER_PYTHON.exists():
        assert any(k.startswith("reader cold") for k in samples)


def test_python_server_answers_conditional_requests(tmp_path: Path) -> None:
    server = PythonServer(tmp_path)
    info = farm.generate(tmp_path, server.base_url, feeds=1, items=2, pipeline_feeds=0)
    server.start()
    try:
        url = info.feed_urls()[0]
        with urllib.request.urlopen(url, timeout=5) as first:
            body, etag = first.read(), first.headers["ETag"]
        assert body.startswith(b"<?xml") and etag
        request = urllib.request.Request(url, headers={"If-None-Match": etag})
        try:
            urllib.request.urlopen(request, timeout=5)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 304
    finally:
        server.stop()


def test_profile_report_counts_inclusive_and_self_samples() -> None:
    collapsed = (
        'process 1:"python";main (ingestd/cli/main.py:10);parse (feedparser/api.py:5) 3\n'
        'process 1:"python";main (ingestd/cli/main.py:10);commit (x/orm.py:9) 1\n'
    )
    text = report(collapsed, title="t")
    assert "4 samples" in text
    assert "100.0%  main (ingestd/cli/main.py)" in text
    assert " 75.0%  parse (feedparser/api.py)" in text
