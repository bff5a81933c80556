"""Summarise py-spy's collapsed stacks (``--format raw``) as a short text report.

    python -m bench.profile_report PROFILE.collapsed > PROFILE.txt

For each process: its share of the samples. Then the functions with the most
inclusive samples (time spent in them and everything they called) and the most
self samples (time in their own code), with file names shortened to the package.
Line numbers are dropped, so one function is one row.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _SITE.sub("", match.group("file"))
    path = re.sub(r".*/work/[^/]+/", "", path)
    return f"{match.group('func')} ({path})"


def _is_process(frame: str) -> bool:
    return frame.startswith("process ")


def report(collapsed: str, *, title: str = "profile", top: int = 40) -> str:
    """The text report of one collapsed-stack profile."""
    processes: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        # py-spy nests a child's stacks under its parents' process frames: the last names it.
        chain = [f for f in frames if _is_process(f)]
        process = chain[-1] if chain else "process ?"
        depth = "  " * max(0, len(chain) - 1)
        processes[depth + re.sub(r"^process \d+:", "", process)[:100]] += count
        functions = [
            _short(f) for f in frames if not _is_process(f) and not f.startswith("thread ")
        ]
        for name in set(functions):
            inclusive[name] += count
        if functions:
            own[functions[-1]] += count
    if not total:
        return f"{title}\n(no samples)\n"
    lines = [title, f"{total} samples", "", "Samples by process:"]
    for name, count in processes.most_common(10):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", f"Top {top} functions by inclusive samples (with callees):"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", f"ingestd's own functions by inclusive samples (top {top // 2}):"]
    mine = [(n, c) for n, c in inclusive.most_common() if "(ingestd/" in n]
    for name, count in mine[: top // 2]:
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines += ["", f"Top {top} functions by self samples (own code):"]
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the report of one collapsed-stack file."""
    if len(argv) != 1:
        print("usage: python -m bench.profile_report PROFILE.collapsed", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        sys.stdout.write(report(handle.read(), title=argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
