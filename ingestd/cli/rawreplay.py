"""``ingestd replay --raw``: do today's extraction and rules still make each archived file,
byte for byte, from the response its raw record kept? And ``--fixtures DIR``: the same
files as self-contained test fixtures, checked later without the archive or database.

A fixture is a folder holding ``fixture.json`` (the feed's settings and what the entry's
row keeps), ``expected`` (the archive file's bytes) and ``record.warc.gz`` (the one
response record it was built from). ``ingestd replay --raw FOLDER`` checks every fixture
below FOLDER; archive files (``*.md`` under the archive folder) are checked through the
database of the configuration.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestd import capture, config
from ingestd.cli.runtime import open_runtime
from ingestd.config import Settings
from ingestd.errors import ArchiveError, ExtractError, ParseError
from ingestd.replay import FileResult, ReplayReport, short_diff
from ingestd.reprocess import Source, rebuild
from ingestd.store import EntryRecord
from ingestd.types import NEWLINE_STYLES, ArchiveFormat, FeedSpec

FIXTURE = "fixture.json"
EXPECTED = "expected"
RECORD = "record.warc.gz"


def check(settings: Settings | None, paths: Iterable[Path], fixtures: Path | None) -> ReplayReport:
    """Check the fixtures and archive files under ``paths``; export those to ``fixtures``."""
    report = ReplayReport()
    files: list[Path] = []
    for path in paths:
        found = list(_fixture_folders(path))
        for folder in found:
            report.results.append(_check_fixture(folder))
        if not found:
            files += [p for p in ([path] if path.is_file() else sorted(path.rglob("*.md")))]
    if files:
        if settings is None:
            raise ArchiveError("archive files need the configuration of their archive")
        report.results += _check_archived(settings, files, fixtures)
    return report


def _fixture_folders(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p.parent for p in path.rglob(FIXTURE))


def _check_fixture(folder: Path) -> FileResult:
    expected_path = folder / EXPECTED
    try:
        about = json.loads((folder / FIXTURE).read_text(encoding="utf-8"))
        spec, feed_url, source = _from_json(about)
        recorded = capture.read(folder, capture.RawRef(RECORD, 0))
        return _compare(expected_path, expected_path.read_bytes(), spec, feed_url, source, recorded)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return FileResult(expected_path, error=f"not a readable fixture: {exc}")
    except ArchiveError as exc:
        return FileResult(expected_path, error=str(exc))


def _check_archived(
    settings: Settings, files: list[Path], fixtures: Path | None
) -> list[FileResult]:
    root = settings.archive_dir.resolve()
    specs = {f.spec.name: f.spec for f in settings.feeds}
    results = []
    runtime = open_runtime(settings, sync=False)
    try:
        feeds = {record.id: record for record in runtime.store.list_feeds()}
        for path in files:
            try:
                relative = path.resolve().relative_to(root).as_posix()
            except ValueError:
                results.append(FileResult(path, error=f"not in the archive folder {root}"))
                continue
            entry = runtime.store.entry_at(relative)
            feed = feeds.get(entry.feed_id) if entry else None
            if entry is None or feed is None or feed.name not in specs:
                results.append(
                    FileResult(path, error="no entry of a configured feed has this file")
                )
                continue
            if entry.raw_file is None or entry.raw_offset is None:
                results.append(FileResult(path, error="no raw record (captured with raw = off)"))
                continue
            try:
                recorded = capture.read(root, capture.RawRef(entry.raw_file, entry.raw_offset))
                data = path.read_bytes()
            except (ArchiveError, OSError) as exc:
                results.append(FileResult(path, error=str(exc)))
                continue
            spec, source = specs[feed.name], Source.of(entry)
            results.append(_compare(path, data, spec, feed.url, source, recorded))
            if fixtures is not None:
                _export(fixtures, spec, feed.url, entry, source, data, recorded)
    finally:
        runtime.close()
    return results


def _compare(
    path: Path,
    data: bytes,
    spec: FeedSpec,
    feed_url: str,
    source: Source,
    recorded: capture.Captured,
) -> FileResult:
    try:
        rebuilt = rebuild(spec, feed_url, source, recorded)
    except (ExtractError, ParseError) as exc:
        return FileResult(path, error=str(exc))
    if rebuilt.encode("utf-8") == data:
        return FileResult(path, identical=True)
    return FileResult(path, diff=short_diff(data.decode("utf-8", "replace"), rebuilt))


def _export(
    fixtures: Path,
    spec: FeedSpec,
    feed_url: str,
    entry: EntryRecord,
    source: Source,
    data: bytes,
    recorded: capture.Captured,
) -> None:
    folder = fixtures / f"{spec.name}-{entry.file_id}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EXPECTED).write_bytes(data)
    capture.write_single(folder / RECORD, recorded)
    (folder / FIXTURE).write_text(
        json.dumps(_to_json(spec, feed_url, source), ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )


def _to_json(spec: FeedSpec, feed_url: str, source: Source) -> dict[str, Any]:
    feed = dataclasses.asdict(spec)
    feed["format"] = spec.format.value
    feed["newlines"] = next(k for k, v in NEWLINE_STYLES.items() if v == spec.newlines)
    entry = dataclasses.asdict(source)
    entry["published"] = source.published.isoformat()
    return {"feed": feed, "feed_url": feed_url, "entry": entry}


def _from_json(about: dict[str, Any]) -> tuple[FeedSpec, str, Source]:
    feed = dict(about["feed"])
    feed["format"] = ArchiveFormat(feed["format"])
    feed["newlines"] = NEWLINE_STYLES[feed["newlines"]]
    entry = dict(about["entry"])
    entry["published"] = datetime.fromisoformat(entry["published"])
    return FeedSpec(**feed), str(about["feed_url"]), Source(**entry)


def settings_if_any(explicit: str | None) -> Settings | None:
    """The configuration, when there is one (fixtures alone need none)."""
    path = config.find_config(explicit)
    return config.load(path) if explicit or path.exists() else None
