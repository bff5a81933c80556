"""Shared fixtures: where the corpus is, the seeds, and the test database of each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db import BACKENDS, fresh_schema, pg_url

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


def corpus_root() -> Path:
    """The shared corpus: $INGESTD_CORPUS, else ../shared/corpus beside the repository."""
    return Path(os.environ.get("INGESTD_CORPUS", REPO.parent / "shared" / "corpus"))


def require_corpus(sub: str = "") -> Path:
    """The corpus folder ``sub``; skip (or fail, under INGESTD_REQUIRE_CORPUS) if absent."""
    path = corpus_root() / sub
    if not path.is_dir():
        message = f"corpus not found at {path} (set INGESTD_CORPUS)"
        if os.environ.get("INGESTD_REQUIRE_CORPUS"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def corpus_files(sub: str) -> list[Path]:
    """Archive files (*.md) under a corpus folder, sorted; [] when the corpus is absent."""
    path = corpus_root() / sub
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*.md") if p.is_file())


def file_id(path: Path) -> str:
    """A short readable test id for a corpus file."""
    return f"{path.parent.parent.name[:12]}/{path.name[:40]}"


@pytest.fixture
def seeds() -> Path:
    return SEEDS


# --- the database of each test: SQLite, or PostgreSQL with --db=postgresql ------------------

#: Fixtures that give a test a database; a test using one is marked ``db``.
DB_FIXTURES = frozenset({"database_url", "db_url", "pg_schema"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        dest="all_lanes",
        help="run the slow lane too (tests marked slow: child processes, daemons, crashes, "
        "whole-corpus sweeps); without it and without a path, only the fast lane runs",
    )
    parser.addoption(
        "--db",
        choices=BACKENDS,
        default=os.environ.get("INGESTD_TEST_DB") or "sqlite",
        help="the backend of the database_url fixture: sqlite (default, or $INGESTD_TEST_DB) "
        "or postgresql (a fresh schema per test on $INGESTD_TEST_POSTGRES)",
    )


def _fast_lane(config: pytest.Config) -> bool:
    """Only the fast lane: no --all, and no test file or folder named on the command line."""
    named = config.args_source is not pytest.Config.ArgsSource.TESTPATHS
    return not (config.getoption("all_lanes") or named)


def pytest_report_header(config: pytest.Config) -> list[str]:
    lane = "fast (tests marked slow deselected; --all runs them)" if _fast_lane(config) else "all"
    return [f"ingestd test database: {config.getoption('db')}", f"ingestd test lane: {lane}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that opens a database ``db``: ``--db=postgresql -m db`` runs them all.

    In the fast lane (``./dev test`` alone), tests marked ``slow`` are deselected.
    """
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
    if _fast_lane(config):
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the chosen backend, only this test's.

    SQLite: ``tmp_path/state.db``. PostgreSQL: a new schema on the test server, dropped
    after the test.
    """
    if request.config.getoption("db") == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with fresh_schema() as schema:
        yield pg_url(schema)
