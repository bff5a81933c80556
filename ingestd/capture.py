"""Raw capture: what the servers sent, kept as WARC records (ISO 28500) beside the archive.

Each archived entry can point at the response it was built from (``RawRef``: a WARC
file under ``raw/`` of the archive folder and the record's offset), so an archive made
before an extraction improvement can be rebuilt (``ingestd reprocess``) and a disputed
file checked against the bytes the server sent. warcio builds and reads the records;
what is ingestd's own is where they go and how a crash is survived:

- one gzip member per record, the response and its request appended in one write to a
  file only this writer appends to; the file is synced (``RawWriter.sync``) before any
  database row names a record in it, like archive files;
- a file being written has a marker in ``raw/.open/`` naming its writer; at start-up
  ``repair`` cuts a dead writer's file back to the end of its last whole gzip member
  (a kill mid-write leaves at most one half record, at the tail) and drops the marker;
- a payload this writer already recorded is written as a ``revisit`` record (same
  payload digest) that names where the full record is (``Ingestd-Payload-Location``).

The stored body is the decoded one (what extraction reads): ``Content-Encoding`` and
``Transfer-Encoding`` are dropped from the recorded headers and ``Content-Length`` is
the stored length, so every reader sees a consistent HTTP message.

Blocking (files): callers on an event loop run these in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from ingestd import __version__
from ingestd.capture_repair import OPEN_DIR as OPEN_DIR
from ingestd.capture_repair import RAW_DIR as RAW_DIR
from ingestd.capture_repair import Repaired as Repaired
from ingestd.capture_repair import marker_of
from ingestd.capture_repair import repair as repair
from ingestd.capture_repair import warc_files as warc_files
from ingestd.capture_repair import whole_length as whole_length
from ingestd.errors import ArchiveError
from ingestd.faults import armed, crash_point
from ingestd.types import Fetched

log = logging.getLogger("ingestd.capture")

#: A WARC file is closed and a new one started past this size (a common crawler size).
DEFAULT_FILE_BYTES = 1_000_000_000
#: Payload digests remembered for revisit records, oldest forgotten first (about 600
#: bytes each with their URL, date and record id: some 60 MB at this limit).
DEDUP_LIMIT = 100_000
#: The extension header of a revisit record: "FILE OFFSET" of the full record.
LOCATION_HEADER = "Ingestd-Payload-Location"
_DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
_GZIP_LEVEL = 1  # a third of the CPU of level 6 for 5% more disk (bench/RESULTS.md)


@dataclass(frozen=True)
class RawRef:
    """Where a record is: its WARC file (relative to the archive folder) and offset."""

    file: str
    offset: int


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange to record: what was asked and what came back (decoded body)."""

    url: str
    status: int
    headers: Mapping[str, str]
    payload: bytes
    request_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Captured:
    """A recorded response read back: its URL, status, headers and payload."""

    url: str
    status: int
    headers: dict[str, str]
    payload: bytes
    date: str
    revisit: bool = False  # the record was a revisit; payload comes from the full one


@dataclass(frozen=True)
class _Seen:
    ref: RawRef
    url: str
    date: str
    record_id: str


class RawWriter:
    """Appends WARC records to the rotating files of one writer (thread-safe)."""

    def __init__(
        self,
        root: Path,
        owner: str,
        clock: Callable[[], datetime],
        *,
        max_file_bytes: int = DEFAULT_FILE_BYTES,
        dedup_limit: int = DEDUP_LIMIT,
    ) -> None:
        self.root = root
        self.owner = owner
        self.clock = clock
        self.max_file_bytes = max_file_bytes
        self.dedup_limit = dedup_limit
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._relative = ""
        self._size = 0
        self._dirty = False
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._counter = 0

    def write(self, exchange: Exchange) -> RawRef:
        """Record one response (or a revisit of an identical payload) and its request."""
        digest = payload_digest(exchange.payload)
        date = datetime_to_iso_date(self.clock().replace(tzinfo=None), use_micros=True)
        with self._lock:
            try:
                self._ensure_file()
            except OSError as exc:
                raise ArchiveError(f"raw capture: cannot start a WARC file: {exc}") from exc
            ref = RawRef(self._relative, self._size)
            seen = self._seen.get(digest)
            builder = WARCWriter(io.BytesIO(), gzip=False, warc_version="1.1")
            if seen is None:
                response = _response(builder, exchange, digest, date)
            else:
                response = _revisit(builder, exchange, digest, date, seen)
            request = _request(builder, exchange, date)
            record_id = response.rec_headers.get_header("WARC-Record-ID")
            request.rec_headers.add_header("WARC-Concurrent-To", record_id)
            blob = _gzip_record(response) + _gzip_record(request)
            self._append(blob)
            if seen is None:
                self._remember(digest, _Seen(ref, exchange.url, date, record_id))
            return ref

    def sync(self) -> None:
        """Make every record written so far durable (before rows name them)."""
        with self._lock:
            if self._fd is not None and self._dirty:
                os.fsync(self._fd)
                self._dirty = False

    def close(self) -> None:
        """Sync and close the current file; it is then whole and needs no repair."""
        with self._lock:
            self._close_file()

    # --- files -----------------------------------------------------------------------

    def _ensure_file(self) -> None:
        now = self.clock()
        folder = Path(RAW_DIR, now.strftime("%Y/%m/%d"))
        # A new file past the size limit, and on a new day (a daemon runs for months).
        same_day = self._relative.startswith(folder.as_posix() + "/")
        if self._fd is not None and self._size < self.max_file_bytes and same_day:
            return
        self._close_file()
        (self.root / folder).mkdir(parents=True, exist_ok=True)
        stamp = now.strftime("%Y%m%d%H%M%S")
        while True:
            self._counter += 1
            name = f"ingestd-{stamp}-{os.getpid()}-{self._counter:05d}.warc.gz"
            relative = (folder / name).as_posix()
            marker = marker_of(self.root, relative)
            marker.parent.mkdir(parents=True, exist_ok=True)
            # The marker first: a file a crash leaves behind is always one to check.
            try:
                with open(marker, "x", encoding="utf-8") as note:
                    note.write(self.owner + "\n")
            except FileExistsError:
                continue  # another writer's file of the same name, being written
            _sync_folder(marker.parent)
            try:
                fd = os.open(self.root / relative, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                marker.unlink(missing_ok=True)
                continue
            break
        _sync_folder((self.root / relative).parent)
        self._fd, self._relative, self._size = fd, relative, 0
        builder = WARCWriter(io.BytesIO(), gzip=False, warc_version="1.1")
        info = builder.create_warcinfo_record(
            name, {"software": f"ingestd/{__version__}", "format": "WARC File Format 1.1"}
        )
        self._append(_gzip_record(info))

    def _append(self, blob: bytes) -> None:
        assert self._fd is not None
        try:
            _write_all(self._fd, blob)
        except OSError as exc:
            self._undo(exc)
            raise ArchiveError(
                f"raw capture: cannot write {self.root / self._relative}: {exc}"
            ) from exc
        self._size += len(blob)
        self._dirty = True

    def _undo(self, exc: OSError) -> None:
        """Take a part-written record back (a full disk); else leave the file to repair."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # Its marker stays: the next start cuts the half record. Later ones go elsewhere.
            os.close(self._fd)
            self._fd = None
            log.error("raw capture %s left for start-up repair: %s", self._relative, exc)

    def _close_file(self) -> None:
        if self._fd is None:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd, self._dirty = None, False
        marker_of(self.root, self._relative).unlink(missing_ok=True)

    def _remember(self, digest: str, seen: _Seen) -> None:
        self._seen[digest] = seen
        if len(self._seen) > self.dedup_limit:
            self._seen.popitem(last=False)


def _write_all(fd: int, blob: bytes) -> None:
    view = memoryview(blob)
    if armed("raw-half-written"):  # the crash test's kill in the middle of a record
        view = view[os.write(fd, view[: len(view) // 2]) :]
        crash_point("raw-half-written")
    while view:
        view = view[os.write(fd, view) :]


def exchange_of(fetched: Fetched, request_headers: Mapping[str, str]) -> Exchange:
    """The exchange a fetch result records (its final URL, after any redirects)."""
    return Exchange(fetched.url, fetched.status, fetched.headers, fetched.content, request_headers)


def write_single(path: Path, recorded: Captured) -> None:
    """Write one response record (a revisit's full payload included) to a new file."""
    exchange = Exchange(recorded.url, recorded.status, recorded.headers, recorded.payload)
    builder = WARCWriter(io.BytesIO(), gzip=False, warc_version="1.1")
    record = _response(builder, exchange, payload_digest(recorded.payload), recorded.date)
    path.write_bytes(_gzip_record(record))


def payload_digest(payload: bytes) -> str:
    """The WARC payload digest of ``payload`` (``sha1:`` and base32, as warcio writes it)."""
    return "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode("ascii")


def read(root: Path, ref: RawRef) -> Captured:
    """The response recorded at ``ref``, a revisit's payload taken from its full record.

    Raises ArchiveError (naming the file and offset) when there is no whole record there.
    """
    record = _read_one(root, ref)
    if record.revisit:
        location = record.headers.pop(LOCATION_HEADER.lower(), "")
        file, _, offset = location.rpartition(" ")
        if not file or not offset.isdigit():
            raise ArchiveError(f"{ref.file}@{ref.offset}: revisit record without its location")
        full = _read_one(root, RawRef(file, int(offset)))
        return Captured(record.url, record.status, record.headers, full.payload, record.date, True)
    return record


def _read_one(root: Path, ref: RawRef) -> Captured:
    where = f"{ref.file}@{ref.offset}"
    try:
        with open(root / ref.file, "rb") as stream:
            stream.seek(ref.offset)
            record = next(iter(ArchiveIterator(stream)), None)
            # warcio falls back to reading ARC, where any bytes make a header line: a
            # wrong offset inside a compressed record can come back as an "ARC record".
            if record is None or record.format != "warc":
                raise ArchiveError(f"{where}: no WARC record there")
            if record.rec_type not in ("response", "revisit"):
                raise ArchiveError(f"{where}: no response record there")
            payload = record.content_stream().read()
            extra = {
                name.lower(): value
                for name, value in record.rec_headers.headers
                if name.lower() == LOCATION_HEADER.lower()
            }
            http = record.http_headers
            headers = {name.lower(): value for name, value in http.headers} if http else {}
            status = int(http.get_statuscode() or 0) if http else 0
            return Captured(
                url=record.rec_headers.get_header("WARC-Target-URI") or "",
                status=status,
                headers={**headers, **extra},
                payload=payload,
                date=record.rec_headers.get_header("WARC-Date") or "",
                revisit=record.rec_type == "revisit",
            )
    except (OSError, ArchiveLoadFailed, ValueError, zlib.error, EOFError) as exc:
        raise ArchiveError(f"{where}: cannot read the raw record: {exc}") from None


# --- records -----------------------------------------------------------------------


def _http_headers(exchange: Exchange) -> StatusAndHeaders:
    try:
        phrase = HTTPStatus(exchange.status).phrase
    except ValueError:
        phrase = "Unknown"
    kept = [(k, v) for k, v in exchange.headers.items() if k.lower() not in _DROPPED_HEADERS]
    kept.append(("Content-Length", str(len(exchange.payload))))
    return StatusAndHeaders(f"{exchange.status} {phrase}", kept, protocol="HTTP/1.1")


def _response(builder: WARCWriter, exchange: Exchange, digest: str, date: str) -> Any:
    return builder.create_warc_record(
        exchange.url,
        "response",
        payload=io.BytesIO(exchange.payload),
        length=len(exchange.payload),
        http_headers=_http_headers(exchange),
        warc_headers_dict={"WARC-Date": date, "WARC-Payload-Digest": digest},
    )


def _revisit(builder: WARCWriter, exchange: Exchange, digest: str, date: str, seen: _Seen) -> Any:
    record = builder.create_revisit_record(
        exchange.url,
        digest,
        seen.url,
        seen.date,
        http_headers=_http_headers(exchange),
        warc_headers_dict={"WARC-Date": date},
    )
    record.rec_headers.add_header("WARC-Refers-To", seen.record_id)
    record.rec_headers.add_header(LOCATION_HEADER, f"{seen.ref.file} {seen.ref.offset}")
    return record


def _request(builder: WARCWriter, exchange: Exchange, date: str) -> Any:
    target = exchange.url
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", parts.netloc), *exchange.request_headers.items()]
    request = StatusAndHeaders(f"GET {path}", headers, protocol="HTTP/1.1", is_http_request=True)
    return builder.create_warc_record(
        target, "request", http_headers=request, warc_headers_dict={"WARC-Date": date}
    )


def _gzip_record(record: Any) -> bytes:
    """One record as one gzip member (warcio writes it; ingestd picks the level)."""
    plain = io.BytesIO()
    WARCWriter(plain, gzip=False, warc_version="1.1").write_record(record)
    deflate = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return deflate.compress(plain.getvalue()) + deflate.flush()


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
