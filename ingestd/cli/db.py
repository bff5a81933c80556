"""``ingestd db stats`` and ``ingestd db prune``: the database's size, and its history
pruned by hand (for cron users who do not run the daemon, or to prune at once).

``prune`` applies ``[history]`` as the daemon does, in the same small transactions;
``--vacuum`` (SQLite) rewrites the database once so that later prunes can give space
back to the file system, which databases made before ingestd turned on incremental
auto-vacuum need.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any, TypeAlias

from ingestd import config
from ingestd.cli.runtime import open_runtime
from ingestd.history import Pruner
from ingestd.upkeep import Retention

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_arguments(sub: Subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``db`` command; returns its parser."""
    cmd = sub.add_parser(
        "db",
        parents=[common],
        help="database size and history pruning",
        description="Show rows and size per table, or prune the fetch log as [history] says.",
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", parents=[common], help="rows and size per table")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    prune = actions.add_parser(
        "prune", parents=[common], help="delete fetch log rows [history] no longer keeps"
    )
    prune.add_argument("--json", action="store_true", help="print one JSON object")
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite: then rewrite the database so freed space goes back to the disk "
        "(once, for databases made before auto-vacuum; needs free disk as large as it); "
        "PostgreSQL: then VACUUM (ANALYZE) ingestd's tables (for servers without autovacuum)",
    )
    return cmd


def retention(settings: config.Settings) -> Retention:
    """The pure retention rule from ``[history]``."""
    return Retention(keep=settings.history.keep, keep_last=settings.history.keep_last)


def command(settings: config.Settings, args: argparse.Namespace) -> int:
    """Run ``db stats`` or ``db prune``; 0 on success."""
    runtime = open_runtime(settings, sync=False)
    try:
        store = runtime.store
        result: dict[str, Any] = {}
        if args.action == "prune":
            started = time.monotonic()
            report = Pruner(store, retention(settings), lambda: datetime.now(UTC)).prune_pass()
            if args.vacuum:
                store.vacuum()
            result["pruned"] = {
                "deleted": report.deleted,
                "transactions": report.steps,
                "bytes_freed": report.bytes_freed,
                "vacuumed": bool(args.vacuum),
                "seconds": round(time.monotonic() - started, 3),
            }
        size, free = store.database_bytes()
        result.update(
            database=store.target, bytes=size, free_bytes=free,
            tables=[{"table": t.table, "rows": t.rows, "bytes": t.bytes}
                    for t in store.table_stats()],
        )  # fmt: skip
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    if "pruned" in result:
        done = result["pruned"]
        print(
            f"pruned {done['deleted']:,} fetch log rows in {done['transactions']} "
            f"transactions; {_size(done['bytes_freed'])} given back"
            + ("; database vacuumed" if done["vacuumed"] else "")
        )
    width = max(len(t["table"]) for t in result["tables"])
    for table in result["tables"]:
        size = "-" if table["bytes"] is None else _size(table["bytes"])
        print(f"{table['table']:<{width}}  {table['rows']:>12,} rows  {size:>10}")
    free = f", {_size(result['free_bytes'])} free" if result["free_bytes"] else ""
    print(f"{result['database']}: {_size(result['bytes'])}{free}")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
