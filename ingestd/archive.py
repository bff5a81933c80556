"""The archive folder: atomic file writes, safe names, site index lists.

Layout (as in the format-A archive): ``articles/{feed}/{id}.md``, ids counting
down from 0xFFFFF so the newest file sorts first, and ``lists/{feed}.md``. Every
write goes to a temporary file in the same folder, is fsynced, then renamed over
the target, so a crash leaves either the old file, the new file, or a stray
temporary file that start-up (``ArchiveSweep``) removes; never half a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

from ingestd.errors import ArchiveError
from ingestd.naming import candidates, file_name, safe_component

TEMP_MARK = ".ingestd-tmp-"
ARCHIVE_ID_FILE = ".ingestd-archive-id"


def articles_dir(root: Path, feed: str) -> Path:
    """The folder holding one feed's files."""
    return root / "articles" / safe_component(feed)


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` lies under ``root`` once both are resolved."""
    return path.resolve().is_relative_to(root.resolve())


@functools.lru_cache(maxsize=1024)
def _folder_inside(root: Path, folder: Path) -> bool:
    # Resolved once per folder: a symbolic link planted in the archive cannot lead
    # writes elsewhere, and thousands of files per folder do not each pay for it.
    return folder.resolve().is_relative_to(root.resolve())


def _plainly_inside(relative: str) -> bool:
    # The names ingestd makes (safe components, no links of its own) are inside by
    # construction; resolving each one costs a system call per path element.
    parts = relative.split("/")
    return (
        not relative.startswith("/")
        and "\\" not in relative
        and all(p not in ("", ".", "..") for p in parts)
    )


def write_atomic(root: Path, relative: str, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8, bytes as given) to ``root/relative`` atomically (synced
    unless ``durable`` is false)."""
    written = _write(root, relative, text, replace=True, durable=durable)
    assert written is not None  # replacing never finds the name taken
    return written


def write_new(root: Path, relative: str, text: str, *, durable: bool = True) -> Path | None:
    """Like ``write_atomic``, but never replace a file: None when the name is taken.

    The finished temporary file is hard-linked to its name, which fails if the
    name exists, so two writers (two daemons on a shared volume) cannot clobber
    each other's files. With ``durable`` false nothing is synced: the caller makes a
    whole batch durable with ``sync_batches`` before relying on it.
    """
    return _write(root, relative, text, replace=False, durable=durable)


def _write(
    root: Path, relative: str, text: str, *, replace: bool, durable: bool = True
) -> Path | None:
    target = root / relative
    if not (_plainly_inside(relative) and _folder_inside(root, target.parent)):
        raise ArchiveError(f"refusing to write outside the archive: {relative!r}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create folder {target.parent}: {exc.strerror or exc}") from exc
    temp = target.with_name(f"{TEMP_MARK}{secrets.token_hex(6)}")
    try:
        with open(temp, "xb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if replace:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)
            except FileExistsError:
                return None
            finally:
                temp.unlink(missing_ok=True)
        if durable:
            fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):  # on a read-only disk this fails as well
            temp.unlink(missing_ok=True)
        raise ArchiveError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def write_numbered(
    root: Path, folder_name: str, next_id: int, texts: Sequence[str]
) -> list[tuple[str, int]]:
    """Write ``texts`` as new files of one feed's folder, numbered down from ``next_id``.

    Each takes the first free id at or below the one after its predecessor and never
    replaces a file (a taken name is a crash's orphan not yet moved aside, or another
    daemon's file). Nothing is synced: the caller makes the files durable with
    ``sync_batches`` before recording them. Returns (relative path, id) per text; on
    an error, the files already written are removed again.
    """
    folder = articles_dir(Path(), folder_name)
    written: list[tuple[str, int]] = []
    try:
        for text in texts:
            relative, used = _write_below(root, folder, next_id, text)
            written.append((relative, used))
            next_id = used - 1
    except BaseException:
        for relative, _used in written:
            (root / relative).unlink(missing_ok=True)
        raise
    return written


def write_unnamed(root: Path, folder_name: str, texts: Sequence[str]) -> list[str]:
    """Write ``texts`` as temporary files in one feed's folder, to be named later.

    Nothing is synced. ``name_written`` gives them their numbered names, one batch at a
    time just before the batch's rows are committed, so a crash leaves temporaries
    (which start-up removes) rather than files without rows. Returns their relative
    paths, in order; on an error, the ones already written are removed again.
    """
    folder = articles_dir(Path(), folder_name)
    target = root / folder
    if not (_plainly_inside(folder.as_posix()) and _folder_inside(root, target)):
        raise ArchiveError(f"refusing to write outside the archive: {folder.as_posix()!r}")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create folder {target}: {exc.strerror or exc}") from exc
    written: list[str] = []
    try:
        for text in texts:
            relative = (folder / f"{TEMP_MARK}{secrets.token_hex(6)}").as_posix()
            with open(root / relative, "xb") as handle:
                handle.write(text.encode("utf-8"))
            written.append(relative)
    except OSError as exc:
        discard(root, written)
        raise ArchiveError(f"cannot write in {target}: {exc.strerror or exc}") from exc
    except BaseException:
        discard(root, written)
        raise
    return written


def name_written(
    root: Path, folder_name: str, next_id: int, temporaries: Sequence[str]
) -> list[tuple[str, int]]:
    """Give files ``write_unnamed`` wrote their numbered names, down from ``next_id``.

    As ``write_numbered``: each takes the first free id at or below the one after its
    predecessor, never replacing a file. Returns (relative path, id) per file; the
    temporaries are gone. On an error, the files named so far are removed again.
    """
    folder = articles_dir(Path(), folder_name)
    named: list[tuple[str, int]] = []
    try:
        for temporary in temporaries:
            relative, used = _link_below(root, folder, next_id, root / temporary)
            named.append((relative, used))
            next_id = used - 1
    except BaseException:
        discard(root, [relative for relative, _used in named])
        discard(root, temporaries)
        raise
    discard(root, temporaries)
    return named


def discard(root: Path, relatives: Iterable[str]) -> None:
    """Remove these files of the archive (written, but no row will name them)."""
    for relative in relatives:
        (root / relative).unlink(missing_ok=True)


def _link_below(root: Path, folder: Path, file_id: int, temporary: Path) -> tuple[str, int]:
    for candidate in candidates(file_id):
        relative = (folder / file_name(candidate)).as_posix()
        try:
            os.link(temporary, root / relative)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ArchiveError(f"cannot write {root / relative}: {exc.strerror or exc}") from exc
        return relative, candidate
    raise ArchiveError(f"no free file name below {file_id} in {folder}")


def _write_below(root: Path, folder: Path, file_id: int, text: str) -> tuple[str, int]:
    for candidate in candidates(file_id):
        relative = (folder / file_name(candidate)).as_posix()
        if write_new(root, relative, text, durable=False) is not None:
            return relative, candidate
    raise ArchiveError(f"no free file name below {file_id} in {folder}")


def sync_batches(batches: Mapping[Path, Sequence[Path]]) -> None:
    """Make new files durable, contents and names, given by the folder holding them.

    One ``syncfs`` of the archive's filesystem costs about what a single ``fsync``
    does, where a batch of 100 files would need 100 of them (0.4 ms each on the
    disk measured in bench/RESULTS.md). Where ``syncfs`` is missing (not Linux),
    each file and then its folder are synced.
    """
    if not batches:
        return
    current = next(iter(batches))
    try:
        if _syncfs(current):
            return
        for current, paths in batches.items():
            for path in paths:
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
            fsync_dir(current)
    except OSError as exc:
        raise ArchiveError(f"cannot sync {current}: {exc.strerror or exc}") from exc


def _syncfs(folder: Path) -> bool:
    function = _libc_syncfs()
    if function is None:
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        if function(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
    finally:
        os.close(fd)
    return True


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    # The standard library has os.sync (every filesystem) but no syncfs (one).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


def archive_identity(root: Path) -> str:
    """This archive folder's id, created on first use (``.ingestd-archive-id``).

    Daemons sharing one database may write to separate disks or to one shared
    volume; the id says which rows' files this folder is expected to hold.
    """
    marker = root / ARCHIVE_ID_FILE
    make_root(root)
    last: ArchiveError | None = None
    for _attempt in range(5):
        try:
            return marker.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ArchiveError(f"cannot read {marker}: {exc.strerror or exc}") from exc
        try:
            # None means another daemon on the same volume made it first: read theirs.
            write_new(root, ARCHIVE_ID_FILE, secrets.token_hex(16) + "\n")
        except ArchiveError as exc:
            last = exc  # a daemon starting beside us swept our temporary file: again
    cause = last.__cause__ if last is not None else None
    reason = getattr(cause, "strerror", None) or str(last)
    raise ArchiveError(f"cannot write in the archive folder {root}: {reason}")


def make_root(root: Path) -> None:
    """Create the archive folder (and its parents); ArchiveError names it and the cause."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(
            f"cannot create the archive folder {root}: {exc.strerror or exc}"
        ) from None


def fsync_dir(folder: Path) -> None:
    """Make new names in ``folder`` durable (a rename or link is on disk only then)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArchiveSweep:
    """Start-up's one walk of the archive: removes crash leftovers, yields the files.

    Iterating yields the relative POSIX paths of the files under ``articles/``, in
    code-point order (what ``sorted`` gives, and a database's binary collation), so
    start-up repair can merge them with the rows sorted the same way and hold one
    folder at a time in memory, never the whole archive. Temporary files on the way
    are removed, unless younger than ``older_than`` (a Unix time): on a shared archive
    they may be another live daemon's files in the making. ``removed`` lists them
    once the iteration ends.
    """

    def __init__(self, root: Path, older_than: float | None = None) -> None:
        self.root = root
        self.older_than = older_than
        self.removed: list[Path] = []

    def __iter__(self) -> Iterator[str]:
        return self._folder(str(self.root), "")

    def _folder(self, folder: str, relative: str) -> Iterator[str]:
        try:
            with os.scandir(folder) as scan:
                # A folder sorts as its name plus "/": then the paths below it come
                # exactly where their full strings sort among their neighbours'.
                listed = sorted((e.name + "/" if e.is_dir() else e.name, e) for e in scan)
        except FileNotFoundError:
            return  # gone while we walked
        except OSError as exc:
            if relative.startswith("articles/") or relative == "":
                raise ArchiveError(
                    f"cannot list archive folder {folder}: {exc.strerror or exc}"
                ) from exc
            return  # elsewhere (lost+found on a mount point, say) like os.walk: skip
        for key, entry in listed:
            if key.endswith("/"):
                if not entry.is_symlink():
                    yield from self._folder(entry.path, relative + key)
            elif entry.name.startswith(TEMP_MARK):
                self._sweep(Path(entry.path), top=not relative)
            elif relative.startswith("articles/"):
                yield relative + entry.name

    def _sweep(self, path: Path, top: bool) -> None:
        limit = self.older_than
        if top:
            # Beside the archive id (the only file ingestd makes in the root) a daemon
            # starting next to us may be making that id right now.
            limit = min(limit or 1e300, _an_hour_ago())
        if limit is not None and _mtime(path) >= limit:
            return
        path.unlink(missing_ok=True)
        self.removed.append(path)


def _an_hour_ago() -> float:
    return time.time() - 3600


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone already: nothing to sweep
