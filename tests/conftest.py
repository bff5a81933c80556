"""Shared fixtures: where the corpus is, and the seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
