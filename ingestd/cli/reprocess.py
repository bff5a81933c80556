"""``ingestd reprocess``: rebuild archived entries from their raw records."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ingestd.cli.runtime import open_runtime
from ingestd.cli.search import moment
from ingestd.config import Settings
from ingestd.errors import ConfigError

if TYPE_CHECKING:
    from ingestd.reprocess import Summary


def add_arguments(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> Any:
    """The ``reprocess`` command; returns its parser."""
    cmd = sub.add_parser(
        "reprocess",
        parents=[common],
        help="rebuild archived files from their raw records with today's extraction",
        description="Rebuild each archived entry from the response its raw record (WARC) "
        "holds, with today's extraction and format rules. A file that changes is replaced "
        "atomically; the text it had is kept as a revision. Safe beside running daemons.",
    )
    cmd.add_argument("--feed", action="append", default=[], metavar="NAME",
                     help="only this feed (repeatable)")  # fmt: skip
    cmd.add_argument("--since", type=moment, metavar="DATE",
                     help="only entries first seen at or after DATE (ISO 8601)")  # fmt: skip
    cmd.add_argument("--dry-run", action="store_true", help="change nothing; list what would")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    return cmd


def command(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``reprocess``; 0 when every entry was rebuilt or unchanged, else 1."""
    names = args.feed or [f.spec.name for f in settings.feeds]
    unknown = sorted(set(names) - {f.spec.name for f in settings.feeds})
    if unknown:
        raise ConfigError(f"no feed named {', '.join(map(repr, unknown))} in {settings.path}")
    from ingestd.reprocess import Job, Reprocessor  # loads extraction: only for this command

    runtime = open_runtime(settings, sync=False)
    try:
        stored = {record.name: record for record in runtime.store.list_feeds()}
        jobs = [Job(stored[f.spec.name], f.spec) for f in settings.feeds
                if f.spec.name in names and f.spec.name in stored]  # fmt: skip
        worker = Reprocessor(
            runtime.store, settings.archive_dir, runtime.owner, runtime.clock,
            lease_seconds=settings.schedule.lease,
        )  # fmt: skip
        with _progress(not args.json and sys.stderr.isatty()) as tick:
            summary = worker.run(jobs, since=args.since, dry_run=args.dry_run, progress=tick)
    finally:
        runtime.close()
    _report(summary, args)
    return 1 if summary.failed or summary.busy else 0


def _report(summary: Summary, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({
            "entries": summary.seen, "unchanged": summary.unchanged, "changed": summary.changed,
            "no_raw_record": summary.no_raw, "failed": summary.failed, "busy": summary.busy,
            "dry_run": args.dry_run, "paths": summary.paths,
        }, ensure_ascii=False))  # fmt: skip
        return
    for path in summary.paths:
        print(f"{'would change' if args.dry_run else 'changed'}\t{path}")
    for line in summary.failed:
        print(f"failed\t{line}", file=sys.stderr)
    for name in summary.busy:
        print(f"busy\tfeed {name}: a daemon kept polling it; not reprocessed", file=sys.stderr)
    verb = "would change" if args.dry_run else "changed"
    print(
        f"{summary.seen} entries: {summary.unchanged} unchanged, {summary.changed} {verb}, "
        f"{summary.no_raw} without a raw record, {len(summary.failed)} failed"
    )


def _progress(wanted: bool) -> AbstractContextManager[Any]:
    """A progress bar on a terminal: a callable told the summary after each entry."""
    if not wanted:
        return nullcontext(None)
    return _Bar()


class _Bar:
    def __enter__(self) -> Any:
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.__enter__()
        self.task = self.bar.add_task("reprocessing entries", total=None)
        return self.tick

    def tick(self, summary: Summary) -> None:
        self.bar.update(self.task, completed=summary.seen)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)
