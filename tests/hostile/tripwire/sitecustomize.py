"""Loaded at start-up by the hostile suite's ``ingestd`` child (through PYTHONPATH).

Refuses, before any packet leaves, every TCP connection to an address that is not
loopback, and says so on stderr: the suite then stays on this machine even if the
network guard it tests regresses, and the harness fails the test on the mark.
Active only when ``INGESTD_TEST_TRIPWIRE`` is set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

MARK = "TRIPWIRE: refused a connection to "


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket path
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False  # an unresolved name: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _install() -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    inet = (socket.AF_INET, socket.AF_INET6)

    def refuse(address: Any) -> None:
        sys.stderr.write(f"{MARK}{address!r}\n")
        sys.stderr.flush()
        raise ConnectionRefusedError(111, "hostile-suite tripwire: not a loopback address")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in inet and not _is_loopback(address):
            refuse(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in inet and not _is_loopback(address):
            refuse(address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


if os.environ.get("INGESTD_TEST_TRIPWIRE"):
    _install()
