"""The command line: parser, commands, and the wiring of settings into running parts.

The only package that reads configuration (``ingestd.config``).
"""

from ingestd.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
