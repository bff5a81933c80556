"""Page bytes -> text: which charset the page is really in. Pure.

Pages often declare one charset in the header and another in a meta tag (or lie in
both), and old pages declare none. The candidates are, in order: a byte-order
mark, the header's charset, the meta tag's, then UTF-8, GB18030 and Big5-HKSCS
(the archive's sources are mostly Chinese). The first candidate that decodes the
bytes without an error wins. When none does (a stray invalid byte in an otherwise
GBK page), the candidate that needs the fewest replacement characters wins, so one
bad byte costs one character instead of the whole page.
"""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.I)
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}
_FALLBACKS = ("utf-8", "gb18030", "big5hkscs")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_page(content: bytes, content_type: str) -> str:
    """Bytes of an HTML page -> text, trusting whichever declared charset really fits."""
    candidates = _candidates(content, content_type)
    for codec in candidates:
        try:
            return content.decode(codec)
        except UnicodeDecodeError:
            continue
    decoded = [content.decode(codec, errors="replace") for codec in candidates]
    # min() keeps the first of equals: a declared charset wins a tie.
    return min(decoded, key=lambda text: text.count("\ufffd"))


def _candidates(content: bytes, content_type: str) -> list[str]:
    """Codec names to try, most trusted first, each known to Python and listed once."""
    names = [codec for bom, codec in _BOMS if content.startswith(bom)]
    header = _HEADER_CHARSET.search(content_type)
    if header:
        names.append(header.group(1))
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        names.append(meta.group(1).decode("ascii", "ignore"))
    names += _FALLBACKS
    out: list[str] = []
    for name in names:
        codec = _known(_SUPERSETS.get(name.lower(), name))
        if codec and codec not in out:
            out.append(codec)
    return out


def _known(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None
