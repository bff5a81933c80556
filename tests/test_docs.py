"""docs/architecture.md stays true: every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARCHITECTURE = REPO / "docs" / "architecture.md"


def named_modules(text: str) -> set[str]:
    """The paths of ingestd's modules and folders that a text names."""
    return set(re.findall(r"ingestd/[\w/]+(?:\.py)?/?", text))


def test_every_module_the_architecture_names_exists() -> None:
    named = named_modules(ARCHITECTURE.read_text())
    assert len(named) > 30  # the picture names the stages' modules, not a handful
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_stage_module_is_in_the_architecture() -> None:
    named = named_modules(ARCHITECTURE.read_text())
    top = {f"ingestd/{p.name}" for p in (REPO / "ingestd").glob("*.py") if p.stem[0] != "_"}
    left_out = {"ingestd/console.py", "ingestd/faults.py", "ingestd/metrics.py",
                "ingestd/replay.py", "ingestd/replay_page.py", "ingestd/sanitize.py",
                "ingestd/config.py", "ingestd/config_values.py", "ingestd/types.py",
                "ingestd/errors.py"}  # fmt: skip
    assert sorted(top - named - left_out) == []


def test_a_renamed_module_would_be_caught() -> None:
    assert named_modules("see ingestd/nowhere.py") == {"ingestd/nowhere.py"}
    assert not (REPO / "ingestd/nowhere.py").exists()
