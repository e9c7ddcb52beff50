"""The HTTP/1.1 client of webhook POSTs: one keep-alive connection, one request at a time.

A webhook delivery is one small POST and an answer of which only the status (and a
`Retry-After`) matters, sent by one task per subscription, in order. httpx did that at
about 1 ms of CPU a POST (its models, its pool, anyio's streams); this writes the request
in one piece and reads the answer with httptools' parser (uvicorn's), on an asyncio
protocol: several times less. What it does not do, on purpose: redirects (never
followed), proxies, cookies, compression, pipelining (one request in flight, which
ordered delivery wants anyway).

A connection closed by the endpoint while idle is noticed (the protocol learns of it at
once) and made anew before the next POST; one that closes after the POST was written
and before any answer came is tried once more on a new connection, as browsers do for
a keep-alive race: at most a repeat, which `webhook-id` lets a receiver drop.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class ConnectError(OSError):
    """The endpoint could not be reached (refused, unreachable, a TLS handshake failed)."""


class ProtocolError(Exception):
    """The endpoint answered what is not HTTP/1.x, or closed the connection without an
    answer."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None  # the header's value, as sent


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL's requests go, and the start of each request to it (the request line
    and the headers that never change)."""

    scheme: str
    host: str
    port: int
    head: bytes


@functools.lru_cache(maxsize=4096)
def origin_of(url: str, user_agent: str) -> Origin:
    """A webhook URL's origin (the URL was checked when the webhook was set: `URL`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    netloc = f"[{host}]" if ":" in host else host
    if port != default:
        netloc += f":{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {target} HTTP/1.1\r\nhost: {netloc}\r\nuser-agent: {user_agent}\r\n"
        "content-type: application/json\r\n"
    ).encode()
    return Origin(parts.scheme, host, port, head)


class Client:
    """POSTs to whatever URL it is given, over one connection kept to the last origin."""

    def __init__(self, tls: ssl.SSLContext, connect_timeout: float, max_answer_bytes: int) -> None:
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._max_answer_bytes = max_answer_bytes
        self._origin: Origin | None = None
        self._connection: _Connection | None = None

    async def post(self, origin: Origin, headers: dict[str, str], body: bytes) -> Answer:
        """One POST; raises `ConnectError`, `ProtocolError` or `OSError` when no answer
        comes (the caller bounds the time it may take)."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"".join(
            (origin.head, f"content-length: {len(body)}\r\n{lines}\r\n".encode(), body)
        )
        kept = self._connection
        while True:
            connection = await self._connected(origin)
            try:
                return await connection.send(request)
            except _ClosedUnanswered:
                if connection is not kept:  # a new one: the endpoint closes unanswered
                    raise ProtocolError("the connection closed before an answer") from None
            # (a kept one the endpoint closed as the POST went: once more, on a new one)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _connected(self, origin: Origin) -> _Connection:
        connection = self._connection
        if connection is not None and connection.usable and self._origin == origin:
            return connection
        self.close()
        loop = asyncio.get_running_loop()
        tls = self._tls if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._max_answer_bytes),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise ConnectError(f"no connection within {self._connect_timeout:g} s") from None
        except OSError as error:  # (ssl.SSLError is one)
            raise ConnectError(str(error) or type(error).__name__) from error
        self._origin, self._connection = origin, connection
        return connection


class _ClosedUnanswered(Exception):
    """The connection closed after the request was written, before any byte of an answer."""


class _Connection(asyncio.Protocol):
    """One connection: `send` writes a request and waits for its answer's end."""

    def __init__(self, max_answer_bytes: int) -> None:
        self._max = max_answer_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._closed = False
        self._keep = True
        self._reset()

    def _reset(self) -> None:
        self._answered = False  # any byte of the answer came
        self._status = 0
        self._retry_after: str | None = None
        self._framed = False  # its length is told (else its body ends with the connection)
        self._body_bytes = 0

    @property
    def usable(self) -> bool:
        return not self._closed and self._keep

    async def send(self, request: bytes) -> Answer:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._reset()
        self._transport.write(request)
        try:
            return await self._waiter
        except BaseException:  # (failed, or cancelled in the middle of the answer)
            self._keep = False
            raise
        finally:
            self._waiter = None
            if not self.usable:
                self.close()

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # (uvloop's is no subclass)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection is not to trust
            self._keep = False
            self.close()
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._keep = False
            self._finish()
        except httptools.HttpParserError as error:
            self._keep = False
            self._fail(ProtocolError(f"not an HTTP/1.1 answer: {error}"))

    def eof_received(self) -> bool:
        return False  # (close our side too)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._status >= 200 and not self._framed:
            self._finish()  # an answer whose body ends with the connection
        elif self._answered:
            self._fail(ProtocolError("the connection closed in the middle of the answer"))
        else:
            self._fail(_ClosedUnanswered())

    # httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._max:  # the rest is dropped with the connection
            self._keep = False
            self._finish()

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue, 103): the next
            self._reset()
            self._answered = True
            return
        self._keep = self._keep and self._parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Answer(self._status, self._retry_after))

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
