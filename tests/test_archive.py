"""Archive files: atomic writes, safe names, descending ids, index lists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestd import archive, naming
from ingestd.errors import ArchiveError
from tests.disk import archived_files


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("../../etc/x", "_.._etc_x"),
        ("..\\..\\x", "_.._x"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        (".hidden", "hidden"),
        ('a/b:c*d?e|f<g>h"i\x00j\nk', "a_b_c_d_e_f_g_h_i_j_k"),
        ("...", "_"),
        ("", "_"),
        ("trailing dot. ", "trailing dot"),
    ],
)
def test_safe_component(title: str, expected: str) -> None:
    assert naming.safe_component(title) == expected


def test_reserved_name_prefix_stays_within_the_byte_bound() -> None:
    """Found by tests/test_fuzz.py: "_" before a reserved name overran max_bytes."""
    assert naming.safe_component("CON", max_bytes=3) == "_CO"
    long = naming.safe_component("CON." + "x" * 300)
    assert long.startswith("_CON.") and len(long.encode()) == naming.MAX_NAME_BYTES


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_safe_component_is_always_one_safe_name(title: str) -> None:
    name = naming.safe_component(title)
    assert name and name not in {".", ".."}
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert len(name.encode("utf-8")) <= naming.MAX_NAME_BYTES
    assert not naming._WINDOWS_RESERVED.fullmatch(name)


def test_file_names() -> None:
    assert naming.file_name(1048575) == "1048575.md"
    long = naming.file_name(1048574, "标题" * 2000)
    assert long.startswith("1048574_标题") and long.endswith(".md")
    assert len(long.encode()) <= naming.MAX_NAME_BYTES


def test_write_atomic_writes_exact_bytes(tmp_path: Path) -> None:
    text = "---\r\ntitle: x\r\n---\r\n`s` [l](u)\n\r\nbody\r\n"
    path = archive.write_atomic(tmp_path, "articles/gnews/1048575.md", text)
    assert path.read_bytes() == text.encode()
    assert archived_files(tmp_path) == {"articles/gnews/1048575.md"}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(archive.TEMP_MARK)]


def test_write_refuses_to_leave_the_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="outside the archive"):
        archive.write_atomic(tmp_path / "a", "../escape.md", "x")
    assert not (tmp_path / "escape.md").exists()


def test_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    # A folder where the file should go makes the final rename fail after the
    # temporary file was written: the temporary must not stay behind.
    blocker = tmp_path / "articles" / "a" / "1.md"
    blocker.mkdir(parents=True)
    with pytest.raises(ArchiveError, match="cannot write"):
        archive.write_atomic(tmp_path, "articles/a/1.md", "x")
    assert sorted(p.name for p in blocker.parent.iterdir()) == ["1.md"]
    assert blocker.is_dir()


def test_sweep_removes_only_temporaries(tmp_path: Path) -> None:
    archive.write_atomic(tmp_path, "articles/a/1.md", "keep")
    stray = tmp_path / "articles" / "a" / f"{archive.TEMP_MARK}dead"
    stray.write_text("half")
    (tmp_path / "orphans").mkdir()
    (tmp_path / "orphans" / "2.md").write_text("moved aside")  # not an archive file
    swept = archive.ArchiveSweep(tmp_path)
    assert list(swept) == ["articles/a/1.md"] == sorted(archived_files(tmp_path))
    assert swept.removed == [stray]


def test_sweep_lists_files_in_the_order_of_their_full_paths(tmp_path: Path) -> None:
    # A folder's files come where their whole paths sort, not right after its name:
    # "a-b/..." sorts before "a/..." ("-" < "/") though the folder "a" sorts first.
    names = [
        "articles/a/2.md",
        "articles/a/10.md",
        "articles/a-b/1.md",
        "articles/a.md",
        "articles/a0/1.md",
        "articles/Z/1.md",
        "articles/é/1.md",
        "articles/a/b/1.md",
    ]
    for name in names:
        archive.write_atomic(tmp_path, name, "x")
    (tmp_path / "articles" / "a-b" / f"{archive.TEMP_MARK}young").write_text("half")
    swept = archive.ArchiveSweep(tmp_path, older_than=0.0)  # every temporary is young
    assert list(swept) == sorted(names)
    assert swept.removed == []


def test_sweep_refuses_an_archive_folder_it_cannot_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Skipping it (as os.walk does) would make every row of that folder look lost.
    archive.write_atomic(tmp_path, "articles/a/1.md", "x")
    (tmp_path / "lost+found").mkdir()
    real = os.scandir
    refused = {str(tmp_path / "articles" / "a"), str(tmp_path / "lost+found")}

    def scandir(path: str) -> object:
        if path in refused:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ArchiveError, match=r"cannot list archive folder .*articles/a: Perm"):
        list(archive.ArchiveSweep(tmp_path))
    refused.remove(str(tmp_path / "articles" / "a"))  # outside articles/: passed over
    assert list(archive.ArchiveSweep(tmp_path)) == ["articles/a/1.md"]


def test_a_symlink_in_the_archive_cannot_lead_writes_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "archive"
    (root / "articles").mkdir(parents=True)
    (root / "articles" / "planted").symlink_to(outside)
    with pytest.raises(ArchiveError, match="outside the archive"):
        archive.write_new(root, "articles/planted/1.md", "x")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("with_syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_sync_batches_makes_unsynced_files_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_syncfs: bool
) -> None:
    synced: list[str] = []
    if not with_syncfs:
        monkeypatch.setattr(archive, "_libc_syncfs", lambda: None)
        real = archive.os.fsync
        monkeypatch.setattr(archive.os, "fsync", lambda fd: synced.append("f") or real(fd))
    paths = [
        archive.write_new(tmp_path, f"articles/a/{n}.md", f"text {n}", durable=False)
        for n in range(3)
    ]
    assert all(p is not None for p in paths)
    archive.sync_batches({tmp_path / "articles" / "a": [p for p in paths if p is not None]})
    assert [p.read_text() for p in paths if p is not None] == ["text 0", "text 1", "text 2"]
    assert synced == ([] if with_syncfs else ["f", "f", "f", "f"])  # three files, one folder
    if with_syncfs:
        assert archive._libc_syncfs() is not None  # Linux: the one-call path was taken
