"""Command line: run | fetch | replay | feeds | entries | status | extract.

The only module that reads configuration and wires the stages together. Exit
status: 0 success, 1 a feed, an entry's page or a file failed (the rest still done),
2 usage or configuration error (nothing touched).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from ingestd import __version__, config, faults
from ingestd.cli import db, entries, feedsfile, opml, page
from ingestd.cli import reprocess as reprocess_cli
from ingestd.cli.logsetup import setup_logging
from ingestd.cli.report import (
    fetch_summary,
    print_fetch,
    print_status,
    schedule_summary,
    status_rows,
)
from ingestd.cli.runtime import Runtime, open_runtime
from ingestd.errors import ConfigError, IngestdError, StorageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("ingestd")
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand.

    The common options go before the command (``ingestd --config X status``, as git
    takes them) or after it; given both ways, the one after the command wins.
    """
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, suppress=True)
    parser = argparse.ArgumentParser(
        prog="ingestd", description="Feed ingestion daemon with archive normalization."
    )
    parser.add_argument("--version", action="version", version=f"ingestd {__version__}")
    _common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub, common)
    _add_fetch(sub, common)
    _add_status(sub, common)
    _add_feeds(sub, common)
    entries.add_arguments(sub, common).set_defaults(handler=cmd_entries)
    page.add_arguments(sub, common).set_defaults(handler=page.command)
    reprocess_cli.add_arguments(sub, common).set_defaults(handler=cmd_reprocess)
    db.add_arguments(sub, common).set_defaults(handler=cmd_db)
    _add_replay(sub, common)
    return parser


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--config, --log-format and -v; after the command they set only what is given
    (``SUPPRESS``), so they never undo the same option given before it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="configuration file (default: $INGESTD_CONFIG or ./ingestd.toml)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default("text"),
        help="log lines on stderr as text (default) or JSON",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log info messages (each poll, repair, reload), not only warnings and errors",
    )


def _add_run(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "run", parents=[common], help="run the daemon in the foreground (for systemd)",
        description="Poll every feed on its own rhythm until SIGTERM; SIGHUP reloads the "
                    "configuration. Speaks sd_notify when systemd starts it.",
    )  # fmt: skip
    cmd.set_defaults(handler=cmd_run)


def _add_fetch(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "fetch",
        parents=[common],
        help="poll every (or the named) feed once",
        description="Poll every configured feed, or the named ones, once.",
    )
    cmd.add_argument("names", nargs="*", metavar="NAME")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    cmd.set_defaults(handler=cmd_fetch)


def _add_status(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "status",
        parents=[common],
        help="show every feed's health",
        description="Show every feed: state, last fetch, errors, next check.",
    )
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    cmd.set_defaults(handler=cmd_status)


def _add_feeds(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "feeds",
        parents=[common],
        help="list, add, remove, enable feeds",
        description="Manage the feeds of the configuration file.",
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list configured feeds")
    listing.add_argument("--json", action="store_true")
    add = actions.add_parser("add", parents=[common], help="append a feed to the config file")
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument("--format", choices=("feed", "repost"), default="feed")
    add.add_argument("--interval", default=None, help='e.g. "30m"')
    add.add_argument("--source", default=None, help="format B: the backtick text")
    add.add_argument("--site", default=None, help="format B: the label's {site}")
    remove = actions.add_parser("remove", parents=[common], help="remove a feed from the file")
    remove.add_argument("name")
    enable = actions.add_parser("enable", parents=[common], help="re-enable a disabled feed")
    enable.add_argument("name")
    disable = actions.add_parser("disable", parents=[common], help="stop polling a feed")
    disable.add_argument("name")
    disable.add_argument("--reason", default="disabled by command")
    opml.add_arguments(actions, common)
    cmd.set_defaults(handler=cmd_feeds)


def _add_replay(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "replay",
        parents=[common],
        help="rebuild archived files from their sources and compare bytes",
        description="Rebuild each file's feed or page, run it through the pipeline, compare.",
    )
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    cmd.add_argument(
        "--raw", action="store_true",
        help="rebuild each archived file from its raw record (WARC), or check fixture folders",
    )  # fmt: skip
    cmd.add_argument(
        "--fixtures", type=Path, metavar="DIR",
        help="with --raw: also write each archive file checked as a fixture folder under DIR",
    )  # fmt: skip
    cmd.set_defaults(handler=cmd_replay)


# --- commands --------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``ingestd run``: the foreground daemon."""
    from ingestd.cli.service import run_service  # APScheduler loads only for the daemon

    path = config.find_config(args.config)
    return run_service(path, _warned(config.load(path)))


def cmd_fetch(args: argparse.Namespace) -> int:
    """``ingestd fetch [NAME...]``: poll feeds once, archive what is new."""
    settings = _settings(args)
    unknown = [n for n in args.names if n not in {f.spec.name for f in settings.feeds}]
    if unknown:
        raise ConfigError(f"no feed named {', '.join(map(repr, unknown))} in {settings.path}")
    started = time.monotonic()
    with _runtime(settings) as runtime:
        results = asyncio.run(runtime.poll_once(args.names, progress=_progress_wanted(args)))
    summary = fetch_summary(results, time.monotonic() - started)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print_fetch(results, summary)
    return EXIT_FAILED if summary["failed"] or summary["entries_failed"] else EXIT_OK


def cmd_entries(args: argparse.Namespace) -> int:
    """``ingestd entries failed|retry [FEED...]``."""
    return entries.command(_settings(args), args)


def cmd_reprocess(args: argparse.Namespace) -> int:
    """``ingestd reprocess``: rebuild entries from their raw records."""
    return reprocess_cli.command(_settings(args), args)


def cmd_db(args: argparse.Namespace) -> int:
    """``ingestd db stats|prune``."""
    return db.command(_settings(args), args)


def cmd_status(args: argparse.Namespace) -> int:
    """``ingestd status``: every feed's state, errors and next check."""
    settings = _settings(args)
    now = datetime.now(UTC)
    with _runtime(settings, migrate_only=True) as runtime:
        rows = status_rows(runtime.store, now)
        schedule = schedule_summary(runtime.store, now)
    if args.json:
        print(json.dumps({"feeds": rows, "schedule": schedule}, ensure_ascii=False, default=str))
    else:
        print_status(rows, now, schedule)
    return EXIT_OK


def cmd_feeds(args: argparse.Namespace) -> int:
    """``ingestd feeds list|add|remove|enable|disable|import-opml|export-opml``."""
    path = config.find_config(args.config)
    if args.action in ("import-opml", "export-opml"):
        return opml.command(path, args)
    if args.action == "list":
        return _list_feeds(config.load(path), as_json=args.json)
    if args.action == "add":
        _refuse_polled_url(config.load(path), args.url, args.format)
        feedsfile.add_feed(
            path,
            args.name,
            args.url,
            fmt=args.format,
            interval=args.interval,
            source=args.source,
            site=args.site,
        )
        print(f"added feed {args.name!r} to {path}")
        return EXIT_OK
    if args.action == "remove":
        feedsfile.remove_feed(path, args.name)
        print(f"removed feed {args.name!r} from {path} (its archive and history are kept)")
        return EXIT_OK
    settings = config.load(path)
    settings.feed(args.name)  # ConfigError when it is not configured
    with _runtime(settings) as runtime:
        if args.action == "enable":
            runtime.store.enable_feed(args.name, now=datetime.now(UTC))
            print(f"feed {args.name!r} enabled; it is due now")
        else:
            runtime.store.disable_feed(args.name, args.reason)
            print(f"feed {args.name!r} disabled: {args.reason}")
    return EXIT_OK


def _list_feeds(settings: config.Settings, *, as_json: bool) -> int:
    """The configured feeds, and whether the database has them disabled (and why)."""
    with _runtime(settings, migrate_only=True) as runtime:
        stored = {record.name: record for record in runtime.store.list_feeds()}
    rows = []
    for feed in settings.feeds:
        record = stored.get(feed.spec.name)
        rows.append(
            {
                "name": feed.spec.name,
                "url": feed.spec.url,
                "format": feed.spec.format.value,
                "interval_seconds": feed.interval_seconds,
                "enabled": record.enabled if record else True,
                "disabled_reason": record.disabled_reason if record else None,
            }
        )
    if as_json:
        print(json.dumps({"feeds": rows}, ensure_ascii=False))
        return EXIT_OK
    for row in rows:
        line = f"{row['name']}\t{row['format']}\t{row['url']}"
        if not row["enabled"]:
            line += f"\tdisabled: {row['disabled_reason'] or 'no reason recorded'}"
        print(line)
    return EXIT_OK


def _refuse_polled_url(settings: config.Settings, url: str, fmt: str) -> None:
    """A second feed of the same URL and format would archive every entry twice."""
    for feed in settings.feeds:
        if feed.spec.url == url and feed.spec.format.value == fmt:
            raise ConfigError(
                f"{settings.path}: feed {feed.spec.name!r} already polls {url} as format "
                f"{fmt!r}; a second one would archive every entry twice (a feed of another "
                "--format may share the URL)"
            )


def cmd_replay(args: argparse.Namespace) -> int:
    """``ingestd replay PATH...``."""
    from ingestd.replay import replay_paths  # loaded only for this command

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"ingestd replay: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    if args.raw:
        from ingestd.cli import rawreplay  # loads extraction: only for this command

        report = rawreplay.check(rawreplay.settings_if_any(args.config), args.paths, args.fixtures)
    else:
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


# --- helpers -------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> config.Settings:
    return _warned(config.load(config.find_config(args.config)))


def _warned(settings: config.Settings) -> config.Settings:
    """Log what the configuration holds that is valid but probably not meant."""
    for warning in settings.warnings:
        log.warning("configuration: %s", warning)
    return settings


@contextmanager
def _runtime(settings: config.Settings, *, migrate_only: bool = False) -> Iterator[Runtime]:
    runtime = open_runtime(settings, sync=not migrate_only)
    try:
        yield runtime
    finally:
        runtime.close()


def _progress_wanted(args: argparse.Namespace) -> bool:
    return not args.json and sys.stderr.isatty()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ingestd`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_format, verbose=args.verbose)
    if point := config.crash_point():
        faults.arm(point)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"ingestd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"ingestd: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except IngestdError as exc:
        print(f"ingestd: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
