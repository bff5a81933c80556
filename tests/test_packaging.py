"""The package says what it is under: the MIT licence, as an SPDX expression (PEP 639)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_is_mit_with_its_text() -> None:
    project = PROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the ingestd authors" in text
    assert "Permission is hereby granted, free of charge" in text
    # PEP 639: an SPDX expression and a licence classifier may not stand together.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    # Older setuptools refuse a string licence, or write no License-Expression.
    [setuptools] = [r for r in PROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    least = tuple(int(part) for part in setuptools.removeprefix("setuptools>=").split("."))
    assert least >= (77, 0, 3)


def test_the_installed_package_carries_the_licence() -> None:
    metadata = importlib.metadata.metadata("ingestd")
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
