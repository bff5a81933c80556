"""Bounded decoding of response bodies: no inflate step ever makes more than the cap.

Bodies are decompressed here, not by httpx: httpx inflates a whole network chunk at
once, and a 64 KB gzip chunk can hold 64 MB. Only gzip and deflate (zlib-wrapped or
raw) are asked for and decoded; a gzip body may hold several members.
"""

from __future__ import annotations

import zlib


class Overflow(Exception):
    """The decoded body passed the cap (turned into TooLarge with the URL)."""


class Identity:
    def feed(self, data: bytes, out: bytearray, limit: int) -> None:
        if len(out) + len(data) > limit:
            raise Overflow
        out += data

    def flush(self, out: bytearray, limit: int) -> None:
        pass


class Inflater:
    """zlib inflate that never produces more than ``limit + 1`` bytes in total."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._z = zlib.decompressobj(wbits)
        self._started = False  # output seen from the current stream
        self._members = 0  # complete gzip members so far
        self._done = False

    def feed(self, data: bytes, out: bytearray, limit: int) -> None:
        while data and not self._done:
            try:
                out += self._z.decompress(data, limit - len(out) + 1)
            except zlib.error as exc:
                data = self._recover(data, exc)
                continue
            self._started = True
            if len(out) > limit:
                raise Overflow
            data = self._after_step()

    def _after_step(self) -> bytes:
        if not self._z.eof:
            return self._z.unconsumed_tail
        rest = self._z.unused_data
        self._members += 1
        if self._wbits & 16:
            # Another gzip member may follow, in this chunk or the next one.
            self._z = zlib.decompressobj(self._wbits)
        else:
            self._done = True  # trailing bytes after a deflate stream are ignored
        return rest

    def _recover(self, data: bytes, exc: zlib.error) -> bytes:
        if self._members:  # garbage after a complete member: keep what we have
            self._done = True
            return b""
        if self._wbits == zlib.MAX_WBITS and not self._started:
            # "deflate" is sent both zlib-wrapped (per the RFC) and raw (per IIS).
            self._wbits = -zlib.MAX_WBITS
            self._z = zlib.decompressobj(self._wbits)
            return data
        raise exc

    def flush(self, out: bytearray, limit: int) -> None:
        if not self._done:
            out += self._z.flush()
            if len(out) > limit:
                raise Overflow


def decoder_for(encoding: str) -> Identity | Inflater:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return Identity()
    if name in ("gzip", "x-gzip"):
        return Inflater(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return Inflater(zlib.MAX_WBITS)
    raise Unsupported(name)


class Unsupported(Exception):
    """A Content-Encoding we did not ask for and cannot decode with a bound."""
