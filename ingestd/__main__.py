"""Allow ``python -m ingestd``."""

from ingestd.cli import main

raise SystemExit(main())
