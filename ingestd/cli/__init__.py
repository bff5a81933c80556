"""The command line: parser, commands, and the wiring of settings into running parts.

The only package that reads configuration (``ingestd.config``). Importing it is cheap:
the commands load their stack when called. The ``ingestd`` script and a parse-pool
worker (which re-imports the main module) both import this package; only the first
needs the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ingestd`` command (see ``ingestd.cli.main``)."""
    from ingestd.cli.main import main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see ``ingestd.cli.main``)."""
    from ingestd.cli.main import build_parser as build

    return build()
