"""The one exception tree of ingestd.

Every error ingestd raises on purpose is an ``IngestdError``; anything else that
escapes is a bug. Foreign exceptions are wrapped at one point per layer: httpx in
``fetch``, feedparser in ``parse``, lxml/readability in ``extract``, SQLAlchemy in
``store``, OS errors while writing files in ``archive``.

    IngestdError
    ├── ConfigError          bad configuration file or value (names key and line)
    ├── FetchError           the network layer could not deliver a usable body
    │   ├── HTTPStatusError  the server answered with a non-success status
    │   ├── TooLarge         body exceeded the decompressed-size cap
    │   ├── Refused          the network guard refused the address or scheme
    │   └── TooManyRedirects
    ├── NotModified          a conditional GET answered 304 (a signal, not a failure)
    ├── ParseError           a feed document could not be read at all
    ├── ExtractError         no article could be extracted from a page
    │   └── NoArticle        the page holds no article text at all
    ├── FormatError          an archived file is not in format A or B (line + expectation)
    ├── ArchiveError         the archive folder could not be written
    └── StorageError         the database failed
"""

from __future__ import annotations


class IngestdError(Exception):
    """Base of every error ingestd raises deliberately."""


class ConfigError(IngestdError):
    """The configuration is unusable; the message names the key and what is wrong."""


class FetchError(IngestdError):
    """A resource could not be fetched."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(
        self, message: str, *, url: str = "", status: int, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


class TooLarge(FetchError):
    """The (decompressed) body was larger than the configured cap."""


class Refused(FetchError):
    """The network guard refused to connect (private address, bad scheme)."""


class TooManyRedirects(FetchError):
    """More redirects than allowed."""


class NotModified(IngestdError):
    """A conditional request answered 304 Not Modified."""


class ParseError(IngestdError):
    """A feed could not be parsed into any entries."""


class ExtractError(IngestdError):
    """No article could be extracted from a page."""


class NoArticle(ExtractError):
    """The page was read, but holds no article text (a script-built page, an empty one)."""


class FormatError(IngestdError):
    """Text is not a valid archive file; carries the 1-based line and what was expected."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.line = line
        self.reason = message


class ArchiveError(IngestdError):
    """An archive file could not be written or read."""


class StorageError(IngestdError):
    """The database failed; wraps the driver's exception."""
