"""Command line: run | fetch | replay | feeds | status | extract.

The only module that reads configuration and wires the stages together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ingestd import __version__
from ingestd.replay import replay_paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ingestd", description="Feed ingestion daemon with archive normalization."
    )
    parser.add_argument("--version", action="version", version=f"ingestd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = sub.add_parser(
        "replay", help="rebuild archived files from their sources and compare bytes"
    )
    replay.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.set_defaults(handler=cmd_replay)
    return parser


def cmd_replay(args: argparse.Namespace) -> int:
    """``ingestd replay PATH...``."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"ingestd replay: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    report = replay_paths(args.paths)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        for result in report.differ:
            print(f"DIFFER {result.path}")
            print(result.diff)
        for result in report.unreadable:
            print(f"UNREADABLE {result.path}: {result.error}")
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ingestd`` command."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    return int(handler(args))
