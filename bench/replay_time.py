"""Per-file replay time of two ingestd source trees, side by side in one run.

    python -m bench.replay_time --base /tmp/base-checkout [--this DIR] [--rounds 5] [PATH...]

``--base`` is another checkout of ingestd (e.g. ``git archive <commit> | tar -x -C DIR``);
the contender is ``--this`` (default: this working tree). PATHs default to the seeds
and the format-B corpus folders. Each round runs one worker process per tree,
alternating (base, this, base, this, ...); a worker imports ingestd from its tree only
(checked) and times ``replay_file`` on every file once, after one untimed warm-up
pass. A file's time is its minimum over the rounds. Prints one JSON object: totals,
the ratio of totals, and the median and 90th percentile of the per-file ratios
(this tree / base).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = [
    REPO / "seeds",
    REPO.parent / "shared" / "corpus" / "format-b",
    REPO.parent / "shared" / "corpus" / "format-b-more",
]


def _format_b_files(paths: list[Path]) -> list[str]:
    files: list[str] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in candidates:
            if file.suffix in {".md", ".txt"} and file.read_bytes().startswith(b"---"):
                files.append(str(file))
    return files


def _worker(files: list[str]) -> None:
    import ingestd.replay
    from ingestd.replay import replay_file  # imported from this worker's tree

    print(ingestd.replay.__file__, file=sys.stderr)

    for name in files:  # warm-up: imports, regex compilation, lxml caches
        replay_file(Path(name))
    times = {}
    for name in files:
        start = time.perf_counter()
        replay_file(Path(name))
        times[name] = time.perf_counter() - start
    json.dump(times, sys.stdout)


def _run(tree: Path, files: list[str]) -> dict[str, float]:
    # Run as a script from the tree itself, so that neither the current folder nor
    # this checkout comes before the tree on sys.path.
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *files],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    if not out.stderr.startswith(str(tree)):
        raise SystemExit(f"worker imported ingestd from elsewhere: {out.stderr.strip()}")
    times: dict[str, float] = json.loads(out.stdout)
    return times


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Compare the per-file replay time of ``--base`` and this tree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--this", type=Path, default=REPO)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    if args.worker:
        _worker([str(p) for p in args.paths])
        return
    if args.base is None:
        parser.error("--base is required")
    files = _format_b_files(args.paths or DEFAULT_PATHS)
    best: dict[str, dict[str, float]] = {"base": {}, "this": {}}
    for _ in range(args.rounds):
        for label, tree in (("base", args.base), ("this", args.this)):
            for name, seconds in _run(tree, files).items():
                best[label][name] = min(seconds, best[label].get(name, seconds))
    ratios = [best["this"][f] / best["base"][f] for f in files]
    base_total, this_total = sum(best["base"].values()), sum(best["this"].values())
    report = {
        "files": len(files),
        "rounds": args.rounds,
        "base_total_s": round(base_total, 3),
        "this_total_s": round(this_total, 3),
        "base_ms_per_file": round(1000 * base_total / len(files), 2),
        "this_ms_per_file": round(1000 * this_total / len(files), 2),
        "ratio_of_totals": round(this_total / base_total, 3),
        "median_file_ratio": round(statistics.median(ratios), 3),
        "p90_file_ratio": round(_percentile(ratios, 0.9), 3),
        "largest_file_ratios": [
            [
                Path(f).parent.parent.name[:12],
                Path(f).name,
                _ms(best["base"][f]),
                _ms(best["this"][f]),
            ]
            for f in sorted(files, key=lambda f: best["this"][f] / best["base"][f])[-5:]
        ],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
