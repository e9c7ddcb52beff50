"""Caps on what the HTTP layer buffers before a request reaches the application.

httptools, under uvicorn, keeps every header line and the whole URL in memory
with no bound; a client could send megabytes of them. This protocol counts as it
parses and gives up early: the client gets uvicorn's 400 and the connection is
closed, before more is buffered. (uvicorn's protocol class is configurable; its
callbacks are stable in the pinned version.)
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


class RequestTooLarge(Exception):
    """Raised inside a parser callback: httptools turns it into a parse error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _header_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            raise RequestTooLarge("URL too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            raise RequestTooLarge("request headers too large")
        super().on_header(name, value)
