"""Caps on what the HTTP layer buffers, and waits for, before a request reaches the app.

httptools, under uvicorn, keeps every header line and the whole URL in memory
with no bound; a client could send megabytes of them. This protocol counts as it
parses and gives up early: the client gets uvicorn's 400 and the connection is
closed, before more is buffered.

uvicorn also waits forever for the headers of a request (its keep-alive timer
only runs between requests, and not before the first), so a client dribbling a
byte at a time holds a connection open indefinitely (slowloris). Here the
headers must be complete within `header_timeout` of the connection opening or of
the request's first byte; otherwise the client gets a 408 and is disconnected.
A timer set and cancelled for every request is costly (about 2 µs with uvloop),
so a connection has one timer, set lazily: a header phase notes when it began
and ends with the headers; the timer, when it fires, times out the pending phase
if that has had its time, sets itself again for the time the phase has left if
not, and lapses if no phase is pending (the next request's first byte sets it).
httptools implements one transfer coding, chunked, and refuses (400) a request
whose last coding is not chunked, as HTTP requires; but it reads `gzip, chunked`
as chunked and passes the still gzipped body on, which would be stored as sent.
Such a request is answered 501 (Not Implemented, RFC 9112 section 6.1) before the
app sees it; its chunked framing still holds, so the connection stays usable.

(uvicorn's protocol class is configurable; its callbacks are stable in the
pinned version.)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from burrow.frontends.asgi import Receive, Response, Scope, Send

MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


class RequestTooLarge(Exception):
    """Raised inside a parser callback: httptools turns it into a parse error."""


_TIMED_OUT_BODY = b'{"error":"request headers did not arrive in time"}'
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TIMED_OUT_BODY), _TIMED_OUT_BODY)
)
_CODING_NOT_IMPLEMENTED = Response.json(
    {"error": "the only transfer coding implemented is chunked: send the body with chunked "
              "alone, or with a Content-Length"},
    501,
)  # fmt: skip


async def _refuse_coding(scope: Scope, receive: Receive, send: Send) -> None:
    """The app of a request with a transfer coding other than chunked."""
    await _CODING_NOT_IMPLEMENTED.send(send)


def _only_chunked(codings: bytes) -> bool:
    """Whether the `Transfer-Encoding` values (each after a comma) name chunked alone."""
    names = [name.strip(b" \t").lower() for name in codings.split(b",")]
    return [name for name in names if name] == [b"chunked"]


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = 10.0  # seconds; `bounded_protocol` makes classes with others
    _header_bytes = 0
    _headers_since: float | None = None  # loop time the pending header phase began
    _header_timer: asyncio.TimerHandle | None = None  # at most one per connection
    _timer_due = 0.0  # loop time `_header_timer` was set for
    _transfer_codings = b""  # the request's `Transfer-Encoding` values, each after a comma

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        self._arm_header_timer(self._headers_since + self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._transfer_codings = b""
        if self._headers_since is None:  # else the connection's first request: timed from it
            self._headers_since = self.loop.time()
        if self._header_timer is None:
            self._arm_header_timer(self._headers_since + self.header_timeout)

    def on_headers_complete(self) -> None:
        self._headers_since = None  # a pending timer now finds nothing to time out
        if not self._transfer_codings or _only_chunked(self._transfer_codings):
            super().on_headers_complete()
            return
        app, self.app = self.app, _refuse_coding  # for this request (uvicorn reads it here)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _arm_header_timer(self, due: float) -> None:
        self._timer_due = due
        self._header_timer = self.loop.call_at(due, self._headers_timed_out)

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self._headers_since is None or self.transport.is_closing():
            return  # no header phase pending: the next one sets a timer again
        deadline = self._headers_since + self.header_timeout
        if deadline > self._timer_due:  # this phase began after the timer was set
            self._arm_header_timer(deadline)
        elif self.cycle is not None and not self.cycle.response_complete:
            # A response is still being written: not idle.
            self._arm_header_timer(self.loop.time() + self.header_timeout)
        else:
            self.transport.write(_TIMED_OUT)
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            raise RequestTooLarge("URL too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            raise RequestTooLarge("request headers too large")
        super().on_header(name, value)
        if self.headers[-1][0] == b"transfer-encoding":  # (lowered by uvicorn)
            self._transfer_codings += b"," + value


def bounded_protocol(header_timeout: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with this server's header timeout."""
    return type(
        "BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"header_timeout": header_timeout}
    )
