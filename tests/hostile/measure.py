"""Run a command and report its peak resident memory: ``measure.py REPORT -- CMD...``.

The hostile harness starts ``ingestd`` through this small launcher instead of
directly: Linux carries the parent's memory high-water mark into a child across
fork and exec, so a child forked straight from a large pytest process reports
pytest's peak, not its own. Forked from this launcher (standard library only, a few
MB), the child's ``ru_maxrss`` is its own. The report is JSON:
``{"exit": code, "maxrss_kib": n}``; the launcher exits with the child's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    report, separator, *command = argv
    assert separator == "--" and command, __doc__
    child = subprocess.Popen(command)
    _pid, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    with open(report, "w", encoding="utf-8") as handle:
        json.dump({"exit": code, "maxrss_kib": usage.ru_maxrss}, handle)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
