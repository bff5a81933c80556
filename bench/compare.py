"""ingestd against itself: ``ingestd fetch`` of several git revisions, side by side.

    .venv/bin/python -m bench.compare 77ead2b HEAD --feeds 300 --rounds 6
    .venv/bin/python -m bench.compare 77ead2b HEAD --warm-only --rounds 10

Each revision's ``ingestd/`` is taken with ``git archive`` (``WORKTREE`` means the
files as they are) and byte-compiled; all run in one venv of ingestd's dependencies
without ingestd itself (``bench/.venv-compare``, made from ``.venv``'s packages on first
use), each with its tree on ``PYTHONPATH``. One farm (``bench.farm``, feeds x 20 items)
is served by nginx (or the Python fallback); every round runs each revision cold (a new
database and archive) then warm (all 304), in a rotating order (``--warm-only``: one
unmeasured cold run each, then warm runs only, alternating), on a tmpfs when
``/dev/shm`` exists so that ``syncfs`` does not measure other processes' disk writes.
It prints wall and CPU seconds per run and the medians; CPU is the whole process tree's
(a cpuacct cgroup, when this machine lets us make one; else the main process alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench import farm, serve

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "bench" / ".venv-compare"
CGROUP = Path("/sys/fs/cgroup/cpuacct/ingestd-compare")


def contender_python() -> Path:
    """The venv of ingestd's dependencies (without ingestd), made on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        frozen = subprocess.run(
            [str(REPO / ".venv" / "bin" / "pip"), "freeze", "--exclude-editable"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        wanted = [line for line in frozen.splitlines() if not line.startswith("ingestd")]
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    return python


def tree_of(revision: str, folder: Path, python: Path) -> Path:
    """``ingestd/`` of a revision (or the work tree), unpacked and byte-compiled."""
    target = folder / revision.replace("/", "_")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if revision == "WORKTREE":
        shutil.copytree(
            REPO / "ingestd", target / "ingestd", ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        archive = subprocess.run(
            ["git", "archive", revision, "ingestd"], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    subprocess.run([str(python), "-m", "compileall", "-q", str(target / "ingestd")], check=True)
    return target


def write_config(run: Path, urls: list[str], concurrency: int) -> Path:
    lines = [
        f'database = "sqlite:///{run / "ingestd.db"}"',
        f'archive_dir = "{run / "archive"}"',
        "[fetch]",
        f"concurrency = {concurrency}",
        f"per_host = {concurrency}",
        'allow_private = ["127.0.0.1"]',
    ]
    for url in urls:
        name = url.rsplit("/", 1)[-1].removesuffix(".xml")
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
    config = run / "ingestd.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def cpu_seconds() -> float | None:
    """CPU time the cgroup's processes used so far (None without the cgroup)."""
    usage = CGROUP / "cpuacct.usage"
    return int(usage.read_text()) / 1e9 if usage.exists() else None


def fetch(python: Path, tree: Path, config: Path) -> tuple[float, float, dict[str, object]]:
    """One ``ingestd fetch --json``: wall seconds, CPU seconds, its summary."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [str(python), "-m", "ingestd", "fetch", "--config", str(config), "--json"]
    before, rusage = cpu_seconds(), os.times()
    if before is not None:
        command = ["sh", "-c", f'echo $$ > {CGROUP}/cgroup.procs && exec "$@"', "sh", *command]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=config.parent)
    wall = time.monotonic() - started
    if before is not None:
        time.sleep(0.5)  # the parse pool's processes end after their parent
        cpu = (cpu_seconds() or 0.0) - before
    else:
        after = os.times()
        cpu = (after.children_user - rusage.children_user) + (
            after.children_system - rusage.children_system
        )
    summary = json.loads(done.stdout)
    if summary["failed"]:
        raise SystemExit(f"{tree.name}: feeds failed: {done.stderr[-1000:]}")
    return wall, cpu, summary


def main() -> None:
    """Parse the options, run the rounds, print every run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("revisions", nargs="+", help="git revisions, or WORKTREE")
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--warm-only", action="store_true", help="one unmeasured cold run, then warm runs"
    )
    shm = Path("/dev/shm")
    default_dir = shm / "ingestd-compare" if shm.is_dir() else REPO / "bench" / "out" / "compare"
    parser.add_argument("--dir", type=Path, default=default_dir)
    args = parser.parse_args()

    python = contender_python()
    work = args.dir
    shutil.rmtree(work, ignore_errors=True)
    trees = {rev: tree_of(rev, work / "trees", python) for rev in args.revisions}
    try:
        CGROUP.mkdir(exist_ok=True)
    except OSError:
        print("compare: no cpuacct cgroup; CPU is the main process's alone", file=sys.stderr)
    port = serve.free_port()
    info = farm.generate(
        work / "farm", f"http://{serve.HOST}:{port}", feeds=args.feeds, items=args.items,
        pipeline_feeds=0,
    )  # fmt: skip
    server: serve.StaticServer
    if serve.nginx_binary():
        server = serve.Nginx(work / "farm", work / "nginx", port)
    else:
        server = serve.PythonServer(work / "farm", port)
    results: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    server.start()
    configs: dict[str, Path] = {}
    try:
        for number in range(args.rounds):
            order = args.revisions[number % len(args.revisions) :]
            order += args.revisions[: number % len(args.revisions)]
            for revision in order:
                if not args.warm_only or revision not in configs:
                    run = work / "runs" / f"{number}-{revision.replace('/', '_')}"
                    run.mkdir(parents=True)
                    configs[revision] = write_config(run, info.feed_urls(), args.concurrency)
                    if args.warm_only:
                        fetch(python, trees[revision], configs[revision])  # cold, unmeasured
                for phase in ("warm",) if args.warm_only else ("cold", "warm"):
                    wall, cpu, summary = fetch(python, trees[revision], configs[revision])
                    results[revision, phase].append((wall, cpu))
                    print(
                        f"round {number + 1} {revision:>12} {phase}: wall {wall:.2f} s, "
                        f"CPU {cpu:.2f} s, archived {summary['archived']}",
                        flush=True,
                    )
    finally:
        server.stop()
        if CGROUP.exists():
            CGROUP.rmdir()
    for (revision, phase), runs in results.items():
        walls, cpus = sorted(w for w, _ in runs), sorted(c for _, c in runs)
        print(
            f"{revision:>12} {phase}: wall median {statistics.median(walls):.2f} s "
            f"({walls[0]:.2f}-{walls[-1]:.2f}), CPU median {statistics.median(cpus):.2f} s "
            f"({cpus[0]:.2f}-{cpus[-1]:.2f})"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
