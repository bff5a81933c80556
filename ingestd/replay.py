"""Archived file -> rebuilt source -> the daemon's own stages -> compare bytes.

Format A: the file's item is written into a one-item RSS feed, parsed by
``parse.parse_feed`` and rendered by ``formats.feed.from_item``. Format B: the
body is rendered to HTML by markdown-it-py (CommonMark) and set inside a page
with navigation, sidebar and footer; ``extract.extract_article`` must find the
article again and ``formats.repost.from_article`` must give the body back. Nothing
of the original text travels except through those rebuilt sources.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from ingestd.errors import FormatError, IngestdError
from ingestd.formats import feed, parse_any, render_any
from ingestd.parse import parse_feed
from ingestd.replay_page import replay_repost
from ingestd.types import ArchiveDoc, FeedDoc


@dataclass
class FileResult:
    """The outcome of replaying one file."""

    path: Path
    identical: bool = False
    error: str | None = None
    diff: str = ""


@dataclass
class ReplayReport:
    """All results of one replay run."""

    results: list[FileResult] = field(default_factory=list)

    @property
    def identical(self) -> int:
        return sum(r.identical for r in self.results)

    @property
    def differ(self) -> list[FileResult]:
        return [r for r in self.results if not r.identical and r.error is None]

    @property
    def unreadable(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def ok(self) -> bool:
        return bool(self.results) and self.identical == len(self.results)

    def summary(self) -> str:
        return (
            f"{len(self.results)} files: {self.identical} identical, "
            f"{len(self.differ)} differ, {len(self.unreadable)} unreadable"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "files": len(self.results),
            "identical": self.identical,
            "differ": [str(r.path) for r in self.differ],
            "unreadable": [{"path": str(r.path), "error": r.error} for r in self.unreadable],
        }


def iter_archive_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand folders into the archive files below them (sorted, manifests skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and _looks_archived(child):
                    yield child
        else:
            yield path


def _looks_archived(path: Path) -> bool:
    return path.suffix in {".md", ".txt"} and not path.name.startswith(".")


def replay_paths(paths: Iterable[Path]) -> ReplayReport:
    """Replay every file under ``paths``."""
    report = ReplayReport()
    for path in iter_archive_files(paths):
        report.results.append(replay_file(path))
    return report


def replay_file(path: Path) -> FileResult:
    """Replay one file and compare the bytes that come out with the original."""
    try:
        original = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FileResult(path, error=f"cannot read as UTF-8: {exc}")
    try:
        rebuilt = render_any(replay_doc(parse_any(original)))
    except FormatError as exc:
        return FileResult(path, error=str(exc))
    except IngestdError as exc:
        return FileResult(path, error=f"pipeline failed: {exc}")
    if rebuilt == original:
        return FileResult(path, identical=True)
    return FileResult(path, diff=short_diff(original, rebuilt))


def replay_doc(doc: ArchiveDoc) -> ArchiveDoc:
    """Rebuild the source of ``doc`` and run it through the daemon's stages."""
    if isinstance(doc, FeedDoc):
        return _replay_feed(doc)
    return replay_repost(doc)


# --- format A ---------------------------------------------------------------


def _replay_feed(doc: FeedDoc) -> FeedDoc:
    parsed = parse_feed(build_feed(doc), {"content-type": "application/rss+xml"})
    if len(parsed.entries) != 1:
        raise FormatError(f"rebuilt feed yielded {len(parsed.entries)} items, expected 1")
    item = parsed.entries[0]
    rebuilt = feed.from_item(item.title, item.link, item.content, item.published)
    if doc.pubdate_ms is None:
        # A NaN date cannot travel through a feed; the daemon would use first-seen.
        rebuilt = FeedDoc(None, rebuilt.title, rebuilt.link, rebuilt.content)
    return rebuilt


def build_feed(doc: FeedDoc) -> bytes:
    """An RSS 2.0 document holding one item with the document's fields."""
    date = ""
    if doc.pubdate_ms is not None:
        moment = datetime.fromtimestamp(doc.pubdate_ms / 1000, tz=UTC)
        date = f"<pubDate>{format_datetime(moment, usegmt=True)}</pubDate>"
    item = (
        f"<item><title>{_xml_text(doc.title)}</title>"
        f"<link>{_xml_text(doc.link)}</link>"
        f'<guid isPermaLink="false">{_xml_text(doc.link)}</guid>{date}'
        f"<description>{_xml_text(doc.content)}</description>"
        f"<content:encoded>{_xml_text(doc.content)}</content:encoded></item>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>replay</title><link>http://replay.invalid/</link>"
        f"<description>rebuilt by ingestd replay</description>{item}</channel></rss>\n"
    ).encode()


def _xml_text(text: str) -> str:
    # XML parsers turn a literal CR into LF; a character reference keeps it.
    return html.escape(text, quote=False).replace("\r", "&#13;")


def short_diff(original: str, rebuilt: str, context: int = 1, limit: int = 12) -> str:
    """A few lines of unified diff, with line endings made visible."""
    a = [line.replace("\r", "\\r") for line in original.split("\n")]
    b = [line.replace("\r", "\\r") for line in rebuilt.split("\n")]
    lines = list(difflib.unified_diff(a, b, "original", "replayed", n=context, lineterm=""))
    clipped = [line[:160] for line in lines[:limit]]
    if len(lines) > limit:
        clipped.append(f"... {len(lines) - limit} more diff lines")
    return "\n".join(clipped)
