"""Text rules shared by both formats: JavaScript whitespace and WHATWG URLs."""

from __future__ import annotations

import ada_url

#: JavaScript's ``\s`` class (ECMAScript WhiteSpace + LineTerminator), which the
#: program that wrote format A used for every strip. Python's str.strip() differs:
#: it also strips U+001C..U+001F and U+0085 but not U+FEFF.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_strip(text: str) -> str:
    """Strip leading and trailing JavaScript whitespace, as ``String.prototype.trim``."""
    return text.strip(JS_WHITESPACE)


def whatwg_href(url: str) -> str:
    """Serialize ``url`` as the WHATWG URL standard does (a browser's ``new URL(u).href``).

    An unparseable URL is kept as it came (stripped), so a feed with a broken link
    still archives; the caller records that the link was not a URL.
    """
    candidate = js_strip(url)
    try:
        return str(ada_url.URL(candidate).href)
    except ValueError:
        return candidate


def is_whatwg_url(url: str) -> bool:
    """True when ``url`` parses as an absolute WHATWG URL."""
    return bool(ada_url.check_url(url))
