"""What raw capture costs: cold ``ingestd fetch`` of the benchmark farm with
``[archive] raw = "off"``, ``"pages"`` and ``"all"``, side by side in one run.

    .venv/bin/python -m bench.raw_cost [--feeds 1000] [--rounds 3] [--modes off,pages,all]
    .venv/bin/python -m bench.raw_cost --cases pages --modes off,pages --rounds 6

One farm (``bench.farm``: ``--feeds`` feeds of 20 items, and 25 feeds whose 500 items
link to article pages of 50-150 KB) is served by nginx (or the Python fallback). Every
round runs, for each mode in a rotating order, two cold fetches (a new database and
archive each, on a tmpfs when ``/dev/shm`` exists): the farm's feeds (entries from
their items; with "pages" nothing is recorded, with "all" every feed document) and the
page feeds (``fetch_page = true``: every page is recorded unless "off"). It prints
wall and CPU seconds per run (CPU of the process tree, as ``bench.compare`` measures
it), the disk the archive files and the WARC files take, and the medians; every WARC
file written is checked with ``warcio check`` (digests included).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from bench import compare, farm, serve

REPO = Path(__file__).resolve().parent.parent


def write_config(run: Path, urls: list[str], raw: str, pages: bool) -> Path:
    """An ingestd configuration for one cold run."""
    lines = [
        f'database = "sqlite:///{run / "ingestd.db"}"',
        f'archive_dir = "{run / "archive"}"',
        "[archive]",
        f'raw = "{raw}"',
        "[fetch]",
        "concurrency = 4",
        "per_host = 4",
        'allow_private = ["127.0.0.1"]',
    ]
    for url in urls:
        name = url.rsplit("/", 1)[-1].removesuffix(".xml")
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
        if pages:
            lines.append("fetch_page = true")
    config = run / "ingestd.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def disk(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (allocated blocks)."""
    if not folder.exists():
        return 0
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def check_warcs(folder: Path) -> int:
    """``warcio check`` every WARC file under ``folder``; returns how many passed."""
    files = sorted(folder.rglob("*.warc.gz")) if folder.exists() else []
    if files:
        done = subprocess.run(
            [sys.executable, "-m", "warcio.cli", "check", *map(str, files)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"warcio check failed: {done.stdout[-2000:]}")
    return len(files)


def main() -> None:
    """Parse the options, run the rounds, print every run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="off,pages,all")
    parser.add_argument("--cases", default="feeds,pages", help="feeds, pages or both")
    shm = Path("/dev/shm")
    default_dir = shm / "ingestd-raw-cost" if shm.is_dir() else REPO / "bench" / "out" / "raw"
    parser.add_argument("--dir", type=Path, default=default_dir)
    args = parser.parse_args()
    modes = args.modes.split(",")

    work = args.dir
    shutil.rmtree(work, ignore_errors=True)
    try:
        compare.CGROUP.mkdir(exist_ok=True)
    except OSError:
        print("raw_cost: no cpuacct cgroup; CPU is the main process's alone", file=sys.stderr)
    port = serve.free_port()
    info = farm.generate(work / "farm", f"http://{serve.HOST}:{port}", feeds=args.feeds)
    server: serve.StaticServer
    if serve.nginx_binary():
        server = serve.Nginx(work / "farm", work / "nginx", port)
    else:
        server = serve.PythonServer(work / "farm", port)
    python = REPO / ".venv" / "bin" / "python"
    cases = {"feeds": (info.feed_urls(), False), "pages": (info.pipeline_urls(), True)}
    cases = {name: case for name, case in cases.items() if name in args.cases.split(",")}
    results: dict[tuple[str, str], list[tuple[float, float, int, int, int]]] = defaultdict(list)
    server.start()
    try:
        for number in range(args.rounds):
            order = modes[number % len(modes) :] + modes[: number % len(modes)]
            for mode in order:
                for case, (urls, pages) in cases.items():
                    run = work / "runs" / f"{number}-{mode}-{case}"
                    run.mkdir(parents=True)
                    config = write_config(run, urls, mode, pages)
                    wall, cpu, summary = compare.fetch(python, REPO, config)
                    archived = int(summary["archived"])  # type: ignore[call-overload]
                    raw, files = disk(run / "archive" / "raw"), disk(run / "archive" / "articles")
                    warcs = check_warcs(run / "archive" / "raw")
                    results[mode, case].append((wall, cpu, archived, files, raw))
                    print(
                        f"round {number + 1} raw={mode:<5} {case:<5}: wall {wall:.2f} s, "
                        f"CPU {cpu:.2f} s, archived {archived}, files {files / 1e6:.1f} MB, "
                        f"WARC {raw / 1e6:.1f} MB in {warcs} files (warcio check: ok)",
                        flush=True,
                    )
                    shutil.rmtree(run)
    finally:
        server.stop()
        if compare.CGROUP.exists():
            compare.CGROUP.rmdir()
    for (mode, case), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        walls = sorted(r[0] for r in runs)
        cpus = sorted(r[1] for r in runs)
        archived, files, raw = runs[0][2], runs[0][3], runs[0][4]
        per_1000 = raw / archived * 1000 / 1e6 if archived else 0.0
        print(
            f"{case:<5} raw={mode:<5}: wall median {statistics.median(walls):.2f} s "
            f"({walls[0]:.2f}-{walls[-1]:.2f}), CPU median {statistics.median(cpus):.2f} s "
            f"({cpus[0]:.2f}-{cpus[-1]:.2f}); {archived} entries, files {files / 1e6:.1f} MB, "
            f"WARC {raw / 1e6:.1f} MB ({per_1000:.1f} MB per 1,000 entries)"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
