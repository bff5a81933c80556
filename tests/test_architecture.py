"""The design holds: import contracts, types, lint, and an honest public surface."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ingestd import cli, errors

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold() -> None:
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    result = run(str(BIN / "ruff"), "check", "ingestd", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", "ingestd", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(str(BIN / "mypy"), "--no-error-summary")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_strict_for_every_module() -> None:
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["strict"] is True and mypy["packages"] == ["ingestd"]
    assert "overrides" not in mypy, "no module is exempt from strict checking"


def test_every_error_is_an_ingestd_error() -> None:
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, errors.IngestdError), name
            assert name in (errors.__doc__ or ""), f"{name} missing from the drawn tree"


def test_cli_commands_have_help() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, child in sub.choices.items():  # type: ignore[union-attr]
        assert child.description or child.format_help(), name
    assert "replay" in sub.choices  # type: ignore[operator]


@pytest.mark.slow
def test_python_dash_m_entry_point() -> None:
    result = run(sys.executable, "-m", "ingestd", "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ingestd ")


def test_ci_runs_the_slow_lane_in_both_passes() -> None:
    # ./dev test alone is the fast lane; CI must not lose the slow tests with it.
    passes = [
        line.split()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.startswith("run_pass ")
    ]
    assert len(passes) == 2
    assert all("--all" in words for words in passes), passes


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in (REPO / "ingestd").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_the_pipeline_is_the_order_of_the_stages_only() -> None:
    import inspect

    from ingestd import pipeline

    lines, _start = inspect.getsourcelines(pipeline.Pipeline)
    assert len(lines) < 120
    # Where a feed or page comes from is the retrievers' business (ingestd/fetch/retrieve.py).
    assert "file:" not in inspect.getsource(pipeline)
