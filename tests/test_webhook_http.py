"""The webhook POSTs' HTTP/1.1 client against a real socket server whose every answer the
test writes: keep-alive, connections the endpoint closes, interim and oversized answers,
answers that are not HTTP, TLS, and ids beyond ASCII."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import standardwebhooks

from burrow.model import Message
from burrow.webhook_sender import Sender, subscription_path

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PATH = subscription_path("acme", "orders", "billing")
NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


@dataclass
class Request:
    connection: int  # which connection it came on: 1, 2, ...
    head: bytes
    body: bytes

    def headers(self) -> dict[str, str]:
        lines = self.head.decode().split("\r\n")[1:]
        return {name.lower(): value.strip() for name, value in (i.split(":", 1) for i in lines)}


@dataclass
class Endpoint:
    """Answers each request with `answer(request)`'s bytes; closes the connection after
    one that says `connection: close`, or after each when `close_after` (unannounced)."""

    answer: Callable[[Request], bytes] = lambda request: NO_CONTENT
    close_after: bool = False
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        number = self._connections
        try:
            while head := (await reader.readuntil(b"\r\n\r\n"))[:-4]:
                request = Request(number, head, b"")
                length = int(request.headers().get("content-length", 0))
                request.body = await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answer(request)
                writer.write(answer)
                await writer.drain()
                if self.close_after or b"\r\nconnection: close\r\n" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(endpoint: Endpoint, tls: ssl.SSLContext | None = None) -> AsyncIterator[None]:
    server = await asyncio.start_server(endpoint.serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    endpoint.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/hook?from=burrow"
    try:
        yield
    finally:
        server.close()


def saying(answer: bytes) -> Callable[[Request], bytes]:
    return lambda request: answer


def message(message_id: str = "m-1") -> Message:
    return Message(message_id, b'{"total": 12}', ttl=60, hide=0)


async def post_all(endpoint: Endpoint, *ids: str, tls: ssl.SSLContext | None = None) -> list[str]:
    """Each message POSTed in turn by one sender; each outcome's verdict and reason."""
    sender = Sender(2.0, tls or httpx.create_ssl_context())
    try:
        outcomes = [await sender.post(endpoint.url, SECRET, PATH, message(i)) for i in ids]
    finally:
        await sender.close()
    return [f"{outcome.verdict.value}: {outcome.why}" for outcome in outcomes]


async def test_posts_go_one_after_another_on_one_kept_connection() -> None:
    endpoint = Endpoint()
    async with serving(endpoint):
        assert await post_all(endpoint, "a", "b", "c") == ["delivered: HTTP 204"] * 3
    assert [r.connection for r in endpoint.requests] == [1, 1, 1]
    first = endpoint.requests[0]
    assert first.head.startswith(b"POST /hook?from=burrow HTTP/1.1\r\n")
    headers = first.headers()
    assert headers["host"] == endpoint.url.split("/")[2]
    assert headers["content-type"] == "application/json"
    assert headers["burrow-subscription"] == PATH
    assert standardwebhooks.Webhook(SECRET).verify(first.body, headers)["id"] == "a"


async def test_a_message_id_beyond_ascii_travels_as_utf8_and_verifies() -> None:
    endpoint = Endpoint()
    async with serving(endpoint):
        assert await post_all(endpoint, "commande-é☃") == ["delivered: HTTP 204"]
    headers = endpoint.requests[0].headers()
    assert headers["webhook-id"] == "commande-é☃"
    assert standardwebhooks.Webhook(SECRET).verify(endpoint.requests[0].body, headers)


async def test_a_connection_the_endpoint_closes_is_made_anew() -> None:
    endpoint = Endpoint(close_after=True)
    async with serving(endpoint):
        outcomes = []
        sender = Sender(2.0, httpx.create_ssl_context())
        try:
            for n in range(3):
                outcomes.append((await sender.post(endpoint.url, SECRET, PATH, message())).why)
                if n == 0:  # (the close seen while idle; the next one races the POST)
                    await asyncio.sleep(0.2)
        finally:
            await sender.close()
    assert outcomes == ["HTTP 204"] * 3
    assert [r.connection for r in endpoint.requests] == [1, 2, 3]


async def test_an_interim_answer_is_skipped_and_a_large_one_drops_the_connection() -> None:
    large = b"x" * (100 * 1024)
    answers = iter(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n" + NO_CONTENT,
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(large), large),
            b"HTTP/1.1 503 Busy\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe rest, until the connection ends",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
        ]
    )
    endpoint = Endpoint(lambda request: next(answers))
    async with serving(endpoint):
        found = await post_all(endpoint, "1", "2", "3", "4", "5")
    assert found == [
        "delivered: HTTP 204",
        "delivered: HTTP 200",
        "failed: HTTP 503",
        "delivered: HTTP 200",
        "delivered: HTTP 204",
    ]
    # After the large answer (read no further) and the one the endpoint closed: new ones.
    assert [r.connection for r in endpoint.requests] == [1, 1, 2, 2, 3]


async def test_an_answer_that_is_not_http_or_none_at_all_is_a_failure() -> None:
    for answer, why in (
        (b"SSH-2.0-OpenSSH_9.6\r\n", "ProtocolError: not an HTTP/1.1 answer"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "ProtocolError: the connection"),
        (b"", "ProtocolError: the connection closed before an answer"),
    ):
        endpoint = Endpoint(saying(answer), close_after=True)
        async with serving(endpoint):
            (outcome,) = await post_all(endpoint, "m")
        assert outcome.startswith(f"failed: {why}"), outcome


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate of 127.0.0.1, and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_an_https_endpoint_is_delivered_to_when_its_certificate_is_trusted(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    endpoint = Endpoint()
    async with serving(endpoint, served):
        assert await post_all(endpoint, "a", "b", tls=trusting) == ["delivered: HTTP 204"] * 2
        (refused,) = await post_all(endpoint, "c")  # the usual trust store: not this one
    assert refused.startswith("failed: ConnectError: ") and "CERTIFICATE_VERIFY_FAILED" in refused
    assert [r.connection for r in endpoint.requests] == [1, 1]
