"""The program's entry point: the command line loads with the collector off, and what
loaded is frozen before the command runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import ingestd

REPO = Path(__file__).resolve().parents[1]

# Run in a child: freezing the test process's objects would keep them for good.
PROBE = """
import gc, sys
import ingestd.cli
cli = sys.modules["ingestd.cli.main"]  # the module; ingestd.cli.main is its function
seen = {}
def command():
    seen.update(frozen=gc.get_freeze_count(), enabled=gc.isenabled(),
                loaded="ingestd.pipeline" in sys.modules)
    return 7
cli.main = command
gc.enable()
from ingestd.console import main
status = main()
print(status, seen["frozen"] > 10000, seen["enabled"], seen["loaded"])
"""


@pytest.mark.slow
def test_the_command_runs_after_its_modules_are_frozen_and_the_collector_is_back_on() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["7", "True", "True", "True"], done.stderr


@pytest.mark.slow
def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    probe = PROBE.replace("gc.enable()", "gc.disable()")
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["7", "True", "False", "True"], done.stderr


@pytest.mark.slow
def test_python_dash_m_and_the_console_script_use_the_entry_point() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ingestd": "ingestd.console:main"}
    done = subprocess.run(
        [sys.executable, "-m", "ingestd", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"ingestd {ingestd.__version__}")
