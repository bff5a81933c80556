"""What the archive folder holds on disk, read independently of ingestd's own walk."""

from __future__ import annotations

import os
from pathlib import Path

from ingestd.archive import TEMP_MARK


def archived_files(root: Path) -> set[str]:
    """Relative POSIX paths of the archive files under ``root/articles`` (no temporaries)."""
    return {
        Path(folder, name).relative_to(root).as_posix()
        for folder, _dirs, names in os.walk(root / "articles")
        for name in names
        if not name.startswith(TEMP_MARK)
    }
