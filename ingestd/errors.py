"""The one exception tree of ingestd.

Every error ingestd raises on purpose is an ``IngestdError``; anything else that
escapes is a bug. Foreign exceptions are wrapped at one point per layer: httpx in
``fetch``, feedparser in ``parse``, lxml/readability in ``extract``, SQLAlchemy in
``store``, OS errors while writing files in ``archive``.

Every one of them survives pickling with its fields (pool results cross processes).

    IngestdError
    ├── ConfigError          bad configuration file or value (names key and line)
    ├── FetchError           the network layer could not deliver a usable body
    │   ├── HTTPStatusError  the server answered with a non-success status
    │   ├── TooLarge         body exceeded the decompressed-size cap
    │   ├── Refused          the network guard refused the address or scheme
    │   └── TooManyRedirects
    ├── NotModified          a conditional GET answered 304 (a signal, not a failure;
    │                        carries the 304's headers and where the feed moved)
    ├── ParseError           a feed document could not be read at all
    ├── ExtractError         no article could be extracted from a page
    │   └── NoArticle        the page holds no article text at all
    ├── FormatError          an archived file is not in format A or B (line + expectation)
    ├── ArchiveError         the archive folder could not be written
    └── StorageError         the database failed
"""

from __future__ import annotations

from typing import Any


class IngestdError(Exception):
    """Base of every error ingestd raises deliberately."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), which loses keyword-only fields (status,
        # retry_after, line...): rebuild from the message and the instance's fields.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[IngestdError], args: tuple[Any, ...], fields: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


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
    """A conditional request answered 304 Not Modified: its headers (names lower-cased,
    for scheduling) and ``permanent_url``, where the feed moved to for good, if it did."""

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        headers: dict[str, str] | None = None,
        permanent_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.headers = headers or {}
        self.permanent_url = permanent_url


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
