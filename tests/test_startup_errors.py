"""Issue 16, item 4: start-up problems with the archive folder or the SQLite database end
in one line naming the folder or file and the cause (or are fixed), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SEEDS

#: The slow lane (./dev test --all, CI).
pytestmark = pytest.mark.slow

FEED = f'[[feeds]]\nname = "voa"\nurl = "file:{SEEDS / "demo" / "voa.xml"}"\n'


def fetch(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestd", "fetch", "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, database: str, archive_dir: str) -> Path:
    config = tmp_path / "ingestd.toml"
    config.write_text(
        f'database = "{database}"\narchive_dir = "{archive_dir}"\n{FEED}', encoding="utf-8"
    )
    return config


@contextmanager
def read_only_mount(folder: Path) -> Iterator[Path]:
    """A real read-only tmpfs on ``folder`` (errno 30, as in the report); skip if not allowed."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("parent", ["read-only parent", "read-only folder", "a file in the way"])
def test_an_archive_folder_that_cannot_be_made_is_one_line(tmp_path: Path, parent: str) -> None:
    """Item 4: archive_dir under a read-only parent (or a file) -> one line, no traceback."""
    problem, cause = "cannot create the archive folder", "Read-only file system"
    if parent == "a file in the way":
        (tmp_path / "blocked").write_text("not a folder")
        done = fetch(write(tmp_path, "sqlite:///state.db", "blocked/sub/archive"))
        cause = "Not a directory"
    elif parent == "read-only parent":
        with read_only_mount(tmp_path / "ro"):
            done = fetch(write(tmp_path, "sqlite:///state.db", "ro/sub/archive"))
    else:  # the folder exists, on a disk mounted read-only
        with read_only_mount(tmp_path / "ro"):
            subprocess.run(["mount", "-o", "remount,rw", str(tmp_path / "ro")], check=True)
            (tmp_path / "ro" / "sub" / "archive").mkdir(parents=True)
            subprocess.run(["mount", "-o", "remount,ro", str(tmp_path / "ro")], check=True)
            done = fetch(write(tmp_path, "sqlite:///state.db", "ro/sub/archive"))
        problem = "cannot write in the archive folder"
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ingestd: {problem} ")
    assert lines[0].endswith(f"/sub/archive: {cause}")
    assert done.returncode == 1


def test_a_missing_database_folder_is_created(tmp_path: Path) -> None:
    """Item 4: a SQLite database whose folder is missing: the folder is made, as the
    archive folder is."""
    done = fetch(write(tmp_path, "sqlite:///state/db/ingestd.db", "archive"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "state" / "db" / "ingestd.db").is_file()
    assert (tmp_path / "archive" / "articles" / "voa" / "1048575.md").is_file()


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("sqlite://relative.db", "sqlite:///relative.db"),
        ("sqlite://", "sqlite:///ingestd.db"),
        ("sqlite:///", "sqlite:///ingestd.db"),
    ],
)
def test_a_sqlite_url_without_a_file_is_a_configuration_error(
    tmp_path: Path, url: str, fix: str
) -> None:
    """Item 4: `sqlite://relative.db` (two slashes) names no file: exit 2 with the fix."""
    done = fetch(write(tmp_path, url, "archive"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "line 1: database:" in line and "names no database file" in line
    assert f"write {fix} " in line  # the fix
    assert not (tmp_path / "archive").exists()
