"""Hostile requests at the HTTP level, sent as raw bytes: each gets a 4xx, quickly,
and the server stays healthy for everyone else."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import BurrowServer
from tests.waiting import PATIENCE

TIMEOUT = 1  # the server's body_timeout and header_timeout, in seconds
TIMER_SLACK = 0.05  # the server's event loop may fire a timer a few ms early


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurrowServer]:
    workdir: Path = tmp_path_factory.mktemp("hostile")
    config = workdir / "burrow.toml"
    config.write_text(f"[limits]\nbody_timeout = {TIMEOUT}\nheader_timeout = {TIMEOUT}\n")
    started = BurrowServer(workdir, "memory://", "--config", str(config)).start()
    yield started
    started.kill()


def connect(server: BurrowServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_head(conn: socket.socket) -> bytes:
    """What the server sends up to the end of a response's headers (or of the connection)."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = conn.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply


def exchange(server: BurrowServer, request: bytes) -> bytes:
    """Send `request`; the reply."""
    with connect(server) as conn:
        try:
            conn.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on us first: its reply is still readable
        return read_head(conn)


def stalled(server: BurrowServer, request: bytes, rest: bytes) -> tuple[bytes, float]:
    """Send `request` and hold back `rest` until the server has answered; the reply and
    the seconds it took. `rest` is sent after it, as a late client would."""
    with connect(server) as conn:
        started = time.monotonic()
        conn.sendall(request)
        reply = read_head(conn)
        took = time.monotonic() - started
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(rest)
        return reply, took


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def json_reply(conn: socket.socket) -> bytes:
    """One response with a JSON body; its body may come in a second segment."""
    reply = chunk = conn.recv(65536)
    while chunk and not reply.endswith(b"}"):
        reply += (chunk := conn.recv(65536))
    return reply


CASES = {
    "dot-dot segment": (b"GET /v1.0/a/q/.. HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "traversal inside the path": (b"GET /v1.0/a/../b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "encoded traversal": (b"GET /v1.0/a/%2e%2e%2fb/m HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "enormous query string": (
        b"GET /v1.0/a/q?marker=" + b"m" * 100_000 + b" HTTP/1.1\r\n\r\n",
        400,
    ),
    "enormous header": (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        400,
    ),
    "thousands of headers": (
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(5000))
        + b"\r\n",
        400,
    ),
    "header injection": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Auth-Token: a\rb\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request(server: BurrowServer, name: str) -> None:
    request, expected = CASES[name]
    assert status(exchange(server, request)) == expected
    assert httpx.get(server.url + "/health").status_code == 200


def test_slow_body_is_cut_off(server: BurrowServer) -> None:
    request = b"PUT /v1.0/a/q/m HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"
    reply, took = stalled(server, request, b"67890")  # the body stalls past body_timeout
    assert status(reply) == 408
    assert took >= TIMEOUT - TIMER_SLACK
    assert httpx.get(server.url + "/v1.0/a/q/m").status_code == 404  # nothing was stored


def test_slow_headers_are_cut_off(server: BurrowServer) -> None:
    request = b"GET /v1.0/a/q HTTP/1.1\r\nHost: x\r\n"
    reply, took = stalled(server, request, b"X-More: y\r\n\r\n")  # stalls mid-headers
    assert status(reply) == 408
    assert b"did not arrive in time" in reply
    assert took >= TIMEOUT - TIMER_SLACK
    assert httpx.get(server.url + "/health").status_code == 200


def test_a_silent_connection_is_closed(server: BurrowServer) -> None:
    with connect(server) as conn:
        started = time.monotonic()
        reply = conn.recv(65536)
    assert status(reply) == 408
    assert time.monotonic() - started >= TIMEOUT - TIMER_SLACK


def test_keep_alive_requests_each_get_the_full_header_time(server: BurrowServer) -> None:
    with connect(server) as conn:
        for _ in range(3):  # 3 x 0.6 s on one connection: longer than header_timeout in all
            time.sleep(0.6)
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status(json_reply(conn)) == 200


def test_a_request_begun_later_gets_its_own_header_time(server: BurrowServer) -> None:
    with connect(server) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status(json_reply(conn)) == 200
        time.sleep(0.6)  # within the header time the connection began with
        started = time.monotonic()
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # stalls mid-headers
        reply = conn.recv(65536)
    assert status(reply) == 408
    assert time.monotonic() - started >= TIMEOUT - TIMER_SLACK  # timed from its first byte


def test_headers_stalled_during_a_long_poll_wait_for_its_answer(server: BurrowServer) -> None:
    with connect(server) as conn:
        conn.sendall(b"GET /v1.0/long-poll/q?wait=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the next one stalls
        replies = b""
        while chunk := conn.recv(65536):
            replies += chunk
    answer, timed_out, _ = replies.partition(b"HTTP/1.1 408")
    assert status(answer) == 404  # the long poll got its answer, found nothing
    assert timed_out  # then the stalled request its 408
