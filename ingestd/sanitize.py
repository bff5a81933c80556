"""Sanitizing item and article HTML with nh3. Pure.

Content without active parts passes through byte for byte (format A keeps the
feed's HTML exactly, malformed attributes and all); content with active parts
(script, style, iframe, object, embed, form, ``on*`` handlers, ``javascript:``
URLs, ...) is cleaned by nh3 and so re-serialized.

nh3 keeps the text of an element it does not allow, except for names it knows from
SVG and MathML (``text``, ``desc``, ``g``, ...): it drops those with everything
inside, even outside any ``<svg>``. Pages use such names for their own wrappers
(CleanEval's ``<text>`` around a whole page), so unknown elements outside SVG and
MathML are unwrapped before nh3 sees them: their text stays, their tag goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
import nh3
from lxml import etree

ACTIVE_TAGS = frozenset(
    {
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "base",
        "meta",
        "link",
        "svg",
        "math",
        "template",
        "noscript",
    }
)
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "poster",
        "background",
        "srcset",
        "lowsrc",
        "dynsrc",
    }
)
_ACTIVE_SCHEME = re.compile(
    r"^\s*(javascript|vbscript|data\s*:\s*text/html|livescript)", re.IGNORECASE
)
_CHEAP_SIGNS = re.compile(
    r"<\s*/?\s*(" + "|".join(sorted(ACTIVE_TAGS)) + r")\b|\bon[a-z]+\s*=|script\s*:|data\s*:",
    re.IGNORECASE,
)
_TAG_NAME = re.compile(r"<\s*([A-Za-z][A-Za-z0-9:_-]*)")
_FOREIGN = ("svg", "math")
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "title", "lang", "dir", "class"},
    "img": {"alt", "align", "width", "height", "src", "title"},
    "a": {"href", "hreflang", "title"},
}
_SAFE_STYLE = {
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "text-align",
    "text-decoration",
    "width",
    "height",
    "margin",
    "padding",
    "font-size",
}


@dataclass(frozen=True)
class Sanitized:
    """The HTML to archive and whether it had to be cleaned."""

    html: str
    cleaned: bool


def has_active_content(html: str) -> bool:
    """True when ``html`` holds anything that could run in a browser."""
    if not _CHEAP_SIGNS.search(html):
        return False  # fast path: no tag, handler or scheme that could be active
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return True  # cannot tell: treat as active and let nh3 rebuild it
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag.lower() in ACTIVE_TAGS:
            return True
        for name, value in element.attrib.items():
            lowered = name.lower()
            if lowered.startswith("on"):
                return True
            if lowered in URL_ATTRIBUTES and _ACTIVE_SCHEME.match(value or ""):
                return True
    return False


def sanitize(html: str) -> Sanitized:
    """Return ``html`` untouched when it is inert, else nh3's cleaned version."""
    if not has_active_content(html):
        return Sanitized(html, cleaned=False)
    cleaned = nh3.clean(
        _unwrap_unknown(html),
        attributes=_ALLOWED_ATTRIBUTES,
        filter_style_properties=_SAFE_STYLE,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    return Sanitized(cleaned, cleaned=True)


def _unwrap_unknown(html: str) -> str:
    """``html`` with elements neither nh3 nor ACTIVE_TAGS names reduced to their content."""
    names = {name.lower() for name in _TAG_NAME.findall(html)}
    if names <= nh3.ALLOWED_TAGS | ACTIVE_TAGS:
        return html  # nothing unknown: leave the bytes to nh3 as they are
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    unknown = [
        el
        for el in root.iterdescendants()
        if isinstance(el.tag, str)
        and el.tag.lower() not in nh3.ALLOWED_TAGS | ACTIVE_TAGS
        and not any(a.tag in _FOREIGN for a in el.iterancestors())
    ]
    for el in unknown:
        el.drop_tag()
    inner = (root.text or "") + "".join(
        etree.tostring(child, method="html", encoding="unicode") for child in root
    )
    return str(inner)
