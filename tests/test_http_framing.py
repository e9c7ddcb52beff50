"""How a request's body is framed and coded on the wire, on a live server, over raw sockets
(an HTTP client would not send what these tests send).

The only transfer coding the server implements is chunked: a request with any other
(`gzip, chunked`) is answered 501 and nothing is stored, and its chunked framing
still holds, so the connection goes on. A content coding (`Content-Encoding: gzip`)
is the body's own business: v1.0 bodies are opaque bytes, stored and returned as sent.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

BODY = b"resize 1.jpg"
GZIPPED = gzip.compress(BODY)


class Connection:
    """One HTTP/1.1 connection: raw requests out, (status, headers, body) back."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.replies = self.sock.makefile("rb")

    def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.sock.sendall(request)
        status = int(self.replies.readline().split()[1])
        headers: dict[bytes, bytes] = {}
        while (line := self.replies.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, self.replies.read(int(headers.get(b"content-length", 0)))

    def close(self) -> None:
        self.replies.close()
        self.sock.close()


@pytest.fixture
def connection(server_url: str) -> Iterator[Connection]:
    opened = Connection(server_url)
    yield opened
    opened.close()


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])


def _put(path: str, headers: bytes, body: bytes) -> bytes:
    return b"PUT %s HTTP/1.1\r\nHost: burrow\r\n%s\r\n%s" % (path.encode(), headers, body)


def _get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: burrow\r\n\r\n" % path.encode()


@pytest.mark.parametrize(
    "codings",
    [
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: GZIP ,Chunked\r\n",
        b"Transfer-Encoding: x-custom, chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",  # the same, in two lines
    ],
)
def test_a_transfer_coding_besides_chunked_is_501_and_nothing_is_stored(
    server_url: str, connection: Connection, account: str, codings: bytes
) -> None:
    path = f"/v1.0/{account}/q/m"
    status, headers, body = connection.exchange(_put(path, codings, _chunked(GZIPPED)))
    assert status == 501, body
    assert headers[b"content-type"] == b"application/json"
    assert "chunked" in orjson.loads(body)["error"]
    # The body's chunks were read past: the next request on the connection is answered.
    status, _, _ = connection.exchange(_get(path))
    assert status == 404
    assert httpx.get(f"{server_url}/v1.0/{account}").status_code == 404


def test_a_chunked_body_is_stored_unchunked(
    server_url: str, connection: Connection, account: str
) -> None:
    chunked = b"Transfer-Encoding: chunked\r\n"
    status, _, _ = connection.exchange(_put(f"/v1.0/{account}/q/m", chunked, _chunked(BODY)))
    assert status == 201
    stored = httpx.get(f"{server_url}/v1.0/{account}/q/m", params={"detail": "body"})
    assert stored.content == BODY


def test_a_content_coding_is_stored_and_returned_as_sent(
    connection: Connection, account: str
) -> None:
    coded = b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(GZIPPED)
    status, _, _ = connection.exchange(_put(f"/v1.0/{account}/q/m", coded, GZIPPED))
    assert status == 201
    status, headers, body = connection.exchange(_get(f"/v1.0/{account}/q/m?detail=body"))
    assert (status, body) == (200, GZIPPED)
    assert b"content-encoding" not in headers  # the bytes as sent, not a coding of them
