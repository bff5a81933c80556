"""Start-up repair of raw capture: WARC files left open by writers that ended.

A writer marks each file it appends to (``raw/.open/``, the marker names the owner);
a kill can leave half a record at the end of that file, never elsewhere, and rows only
name records synced before their commit. ``repair`` cuts the files of ended writers
back to their last whole record and removes their markers.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ingestd.capture")

RAW_DIR = "raw"
OPEN_DIR = ".open"


@dataclass(frozen=True)
class Repaired:
    """What start-up repair did to WARC files left open by ended writers."""

    files: tuple[str, ...] = ()  # files checked (their markers removed)
    cut: tuple[tuple[str, int], ...] = ()  # files cut back, and the bytes removed


def repair(root: Path, is_ended: Callable[[str], bool]) -> Repaired:
    """Cut the WARC files of ended writers back to their last whole record.

    ``is_ended(owner)`` says whether the writer named in a marker has ended (a live
    writer on this or another host keeps appending to its file; it is left alone).
    """
    markers = root / RAW_DIR / OPEN_DIR
    if not markers.is_dir():
        return Repaired()
    files, cut = [], []
    for marker in sorted(markers.iterdir()):
        owner = marker.read_text(encoding="utf-8", errors="replace").strip()
        if not is_ended(owner):
            continue
        relative = _unmarker(marker.name)
        path = root / relative
        if path.exists():
            size = path.stat().st_size
            whole = whole_length(path)
            if whole < size:
                with open(path, "r+b") as stream:
                    stream.truncate(whole)
                    os.fsync(stream.fileno())
                cut.append((relative, size - whole))
                log.warning("raw capture %s: %d bytes of a half record cut", relative, size - whole)
        marker.unlink(missing_ok=True)
        files.append(relative)
    return Repaired(tuple(files), tuple(cut))


def whole_length(path: Path) -> int:
    """The length of the longest prefix of ``path`` made of whole gzip members."""
    good = consumed = 0
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            data = chunk
            while data:
                try:
                    # Output is only counted, not kept: at most one chunk in memory.
                    inflate.decompress(data, 1 << 20)
                    while inflate.unconsumed_tail and not inflate.eof:
                        inflate.decompress(inflate.unconsumed_tail, 1 << 20)
                except zlib.error:
                    return good
                if inflate.eof:
                    used = len(data) - len(inflate.unused_data)
                    consumed += used
                    good = consumed
                    data = inflate.unused_data
                    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
                else:
                    consumed += len(data)
                    data = b""
    return good


def warc_files(root: Path) -> Iterator[Path]:
    """Every WARC file of the archive folder, in name order."""
    base = root / RAW_DIR
    if base.is_dir():
        yield from sorted(base.rglob("*.warc.gz"))


def marker_of(root: Path, relative: str) -> Path:
    return root / RAW_DIR / OPEN_DIR / relative.removeprefix(RAW_DIR + "/").replace("/", "%")


def _unmarker(name: str) -> str:
    return f"{RAW_DIR}/" + name.replace("%", "/")
