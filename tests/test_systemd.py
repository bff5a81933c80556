"""systemd/ingestd.service: systemd accepts it, and it runs the installed ``ingestd run``."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ingestd.cli.main import build_parser, cmd_run
from ingestd.config import ServiceSettings
from tests.conftest import REPO

UNIT = REPO / "systemd" / "ingestd.service"


def directives(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file; systemd allows a key more than once."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"([A-Za-z]+)=(.*)$", line.strip())
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def seconds(value: str) -> float:
    """A systemd time span as plain seconds (``45``, ``45s``, ``1min``, ``1min 30s``)."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value))


UNIT_TEXT = UNIT.read_text(encoding="utf-8")
KEYS = directives(UNIT_TEXT)


def test_exec_start_runs_the_declared_entry_point_with_run() -> None:
    [exec_start] = KEYS["ExecStart"]
    binary, *args = shlex.split(exec_start)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(binary).name in scripts and scripts[Path(binary).name] == "ingestd.console:main"
    assert binary == "/opt/ingestd/.venv/bin/ingestd"
    assert args == ["run", "--config", "/etc/ingestd/ingestd.toml"]
    assert build_parser().parse_args(args).handler is cmd_run


def test_unit_is_a_notify_service_with_watchdog_reload_and_hardening() -> None:
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "60", "Restart": "on-failure",
        "User": "ingestd", "Group": "ingestd", "WorkingDirectory": "/var/lib/ingestd",
        "ReadWritePaths": "/var/lib/ingestd", "ProtectSystem": "strict",
        "NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }  # fmt: skip
    assert {key: KEYS.get(key, [None])[-1] for key in expected} == expected
    # systemd must wait for the whole grace period before it kills.
    assert seconds(KEYS["TimeoutStopSec"][-1]) > ServiceSettings().grace


@pytest.mark.slow
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs the systemd package)")
    installed = Path(sys.executable).parent / "ingestd"
    if not installed.is_file():
        pytest.skip(f"the ingestd entry point is not installed at {installed} (pip install -e .)")
    # verify checks that ExecStart's program exists: point it at this venv's entry point.
    copy = tmp_path / "ingestd.service"
    copy.write_text(
        UNIT_TEXT.replace("/opt/ingestd/.venv/bin/ingestd", str(installed)), encoding="utf-8"
    )
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    # Warnings (unknown keys, bad values) leave the exit status at 0: any line about
    # the unit is a failure too.
    about_unit = [line for line in output.splitlines() if "ingestd.service" in line]
    assert done.returncode == 0 and about_unit == [], output
