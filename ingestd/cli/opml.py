"""OPML subscription lists: read the feeds out of one, write the configured feeds as one.

Parsed with lxml, not listparser: listparser reads OPML with lxml's HTML parser in
recovery mode, so a broken file passes silently and no error can name its line.
The parser here never touches the network, never expands external entities and
keeps libxml2's limits on entity amplification; a file that declares entities at
all is refused, since no real OPML file needs them.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit

from lxml import etree

from ingestd import PROJECT_URL, config
from ingestd.cli import feedsfile
from ingestd.cli.feedsfile import NewFeed
from ingestd.config import FeedSettings, is_safe_feed_name
from ingestd.errors import ConfigError, IngestdError
from ingestd.types import LF, NEWLINE_STYLES, ArchiveFormat, FeedSpec

#: An OPML file larger than this is not a subscription list.
MAX_BYTES = 10_000_000
_MAX_NAME = 64
#: Exports record each feed's exact name and its settings in this namespace, so export ->
#: import gives the same feeds (other readers ignore attributes they do not know).
NAMESPACE = f"{PROJECT_URL}/opml"
_NAME_ATTRIBUTE = f"{{{NAMESPACE}}}name"
#: ingestd's own outline attributes and the ``[[feeds]]`` keys they hold.
SETTINGS = {
    "format": "format", "interval": "interval", "fetchPage": "fetch_page",
    "source": "source", "label": "label", "site": "site", "imageProxy": "image_proxy",
    "sanitize": "sanitize", "newlines": "newlines", "allowPrivate": "allow_private",
}  # fmt: skip
_FLAGS = {"fetch_page", "sanitize", "allow_private"}
_DEFAULT = FeedSpec(name="", url="")
_URL = re.compile(r"https?://[^/\s?#]+[^\s]*", re.IGNORECASE)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class OpmlError(IngestdError):
    """An OPML file that cannot be read: missing, too large, malformed or hostile."""


@dataclass(frozen=True)
class Outline:
    """One feed outline: its title (or text), its xmlUrl and where it is in the file.

    ``name`` is the feed name an ingestd export recorded, if any.
    """

    title: str
    url: str
    line: int | None = None
    name: str = ""
    #: ingestd's own settings an export recorded: (``[[feeds]]`` key, value as written).
    settings: tuple[tuple[str, str], ...] = ()


@dataclass
class ImportPlan:
    """What an import will add, and what it skips with the reason."""

    add: list[NewFeed] = field(default_factory=list)
    skipped: list[tuple[Outline, str]] = field(default_factory=list)


def read_file(path: Path) -> list[Outline]:
    """The feed outlines of the OPML file at ``path``."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise OpmlError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise OpmlError(f"{path}: larger than {MAX_BYTES} bytes; not a subscription list")
    return parse(data, str(path))


def parse(data: bytes, origin: str = "OPML") -> list[Outline]:
    """The feed outlines (those with an xmlUrl) of an OPML document, folders included."""
    root = _parse_xml(data, origin)
    if etree.QName(root).localname.lower() != "opml":
        raise OpmlError(
            f"{origin}: not an OPML file (the root element is <{etree.QName(root).localname}>)"
        )
    outlines = []
    for element in root.iter("{*}outline"):  # nested folders are outlines too
        attributes = {str(k).lower(): str(v) for k, v in element.attrib.items()}
        url = attributes.get("xmlurl", "").strip()
        if url:
            title = attributes.get("title", "").strip() or attributes.get("text", "").strip()
            name = str(element.get(_NAME_ATTRIBUTE, ""))
            settings = tuple(
                (key, str(element.get(f"{{{NAMESPACE}}}{attribute}")))
                for attribute, key in SETTINGS.items()
                if element.get(f"{{{NAMESPACE}}}{attribute}") is not None
            )
            outlines.append(Outline(_printable(title), url, element.sourceline, name, settings))
    return outlines


def _parse_xml(data: bytes, origin: str) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        # libxml2 appends ", line N, column M"; the line goes in front, like config errors.
        message = re.sub(r", line \d+, column (\d+)$", r" (column \1)", exc.msg or str(exc))
        raise OpmlError(f"{origin}, line {exc.lineno}: not well-formed XML: {message}") from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise OpmlError(
            f"{origin}: declares XML entities; refused (OPML needs none, and "
            "entities are how hostile files read local files or exhaust memory)"
        )
    return root


def plan_import(
    outlines: Iterable[Outline],
    configured: Sequence[FeedSettings],
    *,
    fmt: str = "feed",
    interval: str | None = None,
    source: str | None = None,
) -> ImportPlan:
    """Which outlines become feeds (with unique, safe names) and which are skipped, why.

    An outline an ingestd export wrote is one feed by its name and URL (two feeds may
    share a URL: a feed and its repost), with its own settings; the options give the
    settings of other outlines.
    """
    plan = ImportPlan()
    by_url = {feed.spec.url: feed.spec.name for feed in configured}
    by_name = {feed.spec.name: feed.spec.url for feed in configured}
    taken = {feed.spec.name.casefold() for feed in configured}
    seen: dict[tuple[str, str], Outline] = {}
    for outline in outlines:
        url = _normal_url(outline.url)
        if url is None:
            plan.skipped.append((outline, "not an http(s) URL"))
        elif outline.name and by_name.get(outline.name) == url:
            plan.skipped.append((outline, f"already configured as {outline.name!r}"))
        elif not outline.name and url in by_url:
            plan.skipped.append((outline, f"already configured as {by_url[url]!r}"))
        elif (url, outline.name) in seen:
            first = seen[url, outline.name].line
            plan.skipped.append((outline, f"listed twice (first on line {first})"))
        else:
            try:
                feed = _new_feed(outline, url, taken, fmt, interval, source)
            except OpmlError as exc:
                plan.skipped.append((outline, str(exc)))
                continue
            seen[url, outline.name] = outline
            taken.add(feed.name.casefold())
            plan.add.append(feed)
    return plan


def _new_feed(
    outline: Outline, url: str, taken: set[str], fmt: str, interval: str | None, source: str | None
) -> NewFeed:
    """The feed an outline becomes; OpmlError says which of its settings is wrong.

    An outline an ingestd export wrote carries its own settings (what it leaves out is
    the default); the options only fill in for other outlines.
    """
    if outline.name or outline.settings:
        fmt, interval, source = "feed", None, None
    own: dict[str, str | None] = dict(outline.settings)
    flags = {key: _flag(key, own.pop(key) or "") for key in _FLAGS & set(own)}
    fmt = own.pop("format", None) or fmt
    site = own.pop("site", None)
    if site is None and fmt == "repost" and not outline.name:
        site = outline.title or None
    name = feed_name(outline.title, url, set(taken), preferred=outline.name)
    feed = NewFeed(
        name, url, fmt, own.pop("interval", None) or interval, own.pop("source", None) or source,
        site, extra=(*sorted((k, v) for k, v in own.items() if v is not None),
                     *sorted(flags.items())),
    )  # fmt: skip
    try:
        config.loads("\n".join(feed.table()), Path("OPML"))
    except ConfigError as exc:
        found = re.search(r"feeds\[0\]\.(\w+): (.*)", str(exc))
        key, problem = (found[1], found[2]) if found else ("", str(exc))
        attribute = next((a for a, k in SETTINGS.items() if k == key), key)
        raise OpmlError(f"ingestd:{attribute}: {problem}") from None
    return feed


def _flag(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        attribute = next(a for a, k in SETTINGS.items() if k == key)
        raise OpmlError(f"ingestd:{attribute}: expected true or false, got {value!r}")
    return value == "true"


def feed_name(title: str, url: str, taken: set[str], *, preferred: str = "") -> str:
    """A safe feed name, unique among ``taken``: ``preferred`` if it is a valid name,
    else a slug of ``title``, else of the URL's host.

    ``taken`` holds casefolded names and receives the new one: names that differ
    only in case would share an archive folder on case-insensitive filesystems.
    """
    valid = is_safe_feed_name(preferred)
    base = preferred if valid else _slug(title) or _slug(urlsplit(url).hostname or "") or "feed"
    name, number = base, 2
    while name.casefold() in taken:
        suffix = f"-{number}"
        name = base[: _MAX_NAME - len(suffix)].rstrip("-._") + suffix
        number += 1
    taken.add(name.casefold())
    return name


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c if _name_char(c) else "-" for c in text)
    slug = re.sub(r"-{2,}", "-", kept).strip("-._")[:_MAX_NAME].rstrip("-._")
    return slug if is_safe_feed_name(slug) else ""


def _name_char(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in "_."
    # Letters, digits and combining marks of any script; no symbols, spaces or controls.
    return unicodedata.category(char)[0] in "LNM"


def _normal_url(url: str) -> str | None:
    if not _URL.fullmatch(url) or any(unicodedata.category(c)[0] == "C" for c in url):
        return None
    scheme, rest = url.split(":", 1)
    return scheme.lower() + ":" + rest  # config accepts only lower-case http(s)://


def _printable(text: str) -> str:
    # Titles end up in the TOML file and on the terminal: no control characters.
    return " ".join("".join(c for c in text if unicodedata.category(c)[0] != "C").split())


def export(feeds: Sequence[FeedSettings], *, now: datetime, title: str = "ingestd feeds") -> bytes:
    """OPML 2.0 with one ``rss`` outline per feed (text and title are the feed's name), and
    the feed's name and settings as ``ingestd:`` attributes."""
    root = etree.Element("opml", version="2.0", nsmap={"ingestd": NAMESPACE})
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = etree.SubElement(root, "body")
    for feed in feeds:
        outline = etree.SubElement(
            body,
            "outline",
            type="rss",
            text=feed.spec.name,
            title=feed.spec.name,
            xmlUrl=feed.spec.url,
        )
        outline.set(_NAME_ATTRIBUTE, feed.spec.name)
        for attribute, value in _settings_of(feed).items():
            outline.set(f"{{{NAMESPACE}}}{attribute}", value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _settings_of(feed: FeedSettings) -> dict[str, str]:
    """A feed's settings as attributes: the interval always (the default may differ where
    the file is imported), the rest when they differ from the defaults."""
    spec, newlines = feed.spec, {style: name for name, style in NEWLINE_STYLES.items()}
    values: dict[str, object] = {
        "format": spec.format.value if spec.format is not ArchiveFormat.FEED else None,
        "interval": _duration(feed.interval_seconds),
        "fetchPage": spec.fetch_page or None,
        "source": spec.source or None,
        "label": spec.label if spec.label != _DEFAULT.label else None,
        "site": spec.site or None,
        "imageProxy": spec.image_proxy or None,
        "sanitize": False if not spec.sanitize else None,
        "newlines": newlines[spec.newlines] if spec.newlines != LF else None,
        "allowPrivate": feed.allow_private or None,
    }
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()
            if v is not None}  # fmt: skip


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- commands ------------------------------------------------------------------------


def add_arguments(actions: Subparsers, common: argparse.ArgumentParser) -> None:
    """The ``feeds import-opml`` and ``feeds export-opml`` actions."""
    imp = actions.add_parser(
        "import-opml", parents=[common], help="append the feeds of an OPML file to the config file"
    )
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--format", choices=("feed", "repost"), default="feed")
    imp.add_argument("--interval", default=None, help='e.g. "30m"; default: the config\'s')
    imp.add_argument("--source", default=None, help="format B: the backtick text (required)")
    imp.add_argument("--dry-run", action="store_true", help="show what would be added")
    exp = actions.add_parser(
        "export-opml", parents=[common], help="write the configured feeds as OPML 2.0"
    )
    exp.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="FILE",
        help="write here instead of standard output",
    )


def command(config_path: Path, args: argparse.Namespace) -> int:
    """Run ``feeds import-opml`` or ``feeds export-opml``; the exit status."""
    try:
        if args.action == "import-opml":
            return _import(config_path, args)
        return _export(config_path, args)
    except OpmlError as exc:
        print(f"ingestd: {exc}", file=sys.stderr)
        return 2


def _import(config_path: Path, args: argparse.Namespace) -> int:
    if args.format == "repost" and not args.source:
        raise OpmlError("--format repost needs --source (the backtick text of every feed)")
    settings = config.load(config_path)
    plan = plan_import(
        read_file(args.file),
        settings.feeds,
        fmt=args.format,
        interval=args.interval,
        source=args.source,
    )
    if plan.add:
        # One validated write: every feed is added, or (ConfigError) none is.
        feedsfile.add_feeds(config_path, plan.add, dry_run=args.dry_run)
    verb = "would add" if args.dry_run else "added"
    for feed in plan.add:
        print(f"{verb} {feed.name}\t{feed.url}")
    for outline, reason in plan.skipped:
        print(f"skipped {outline.url} (line {outline.line}): {reason}")
    where = "" if args.dry_run else f" to {config_path}"
    print(
        f"{verb} {len(plan.add)} feeds{where}; skipped {len(plan.skipped)}"
        + (" (dry run: nothing written)" if args.dry_run else "")
    )
    return 0


def _export(config_path: Path, args: argparse.Namespace) -> int:
    settings = config.load(config_path)
    document = export(settings.feeds, now=datetime.now(UTC))
    if args.output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return 0
    try:
        args.output.write_bytes(document)
    except OSError as exc:
        raise OpmlError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {len(settings.feeds)} feeds to {args.output}", file=sys.stderr)
    return 0
