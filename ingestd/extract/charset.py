"""Page bytes -> text: which charset the page is really in. Pure.

Pages often declare one charset in the header and another in a meta tag (or lie in
both). Each candidate is tried strictly; the first that decodes the bytes without
error wins, and UTF-8 with replacement is the last resort.
"""

from __future__ import annotations

import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "ascii": "utf-8",
}


def decode_page(content: bytes, content_type: str) -> str:
    """Bytes of an HTML page -> text, trusting whichever declared charset really fits."""
    candidates = []
    header = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", content_type, re.I)
    if header:
        candidates.append(header.group(1))
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "gb18030", "big5hkscs"]
    if content.startswith(b"\xef\xbb\xbf"):
        candidates.insert(0, "utf-8-sig")
    for name in candidates:
        codec = _SUPERSETS.get(name.lower(), name)
        try:
            return content.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", errors="replace")
