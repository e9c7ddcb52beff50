"""How `burrow serve` exits when stopped: 0 once every request is answered (not killed
by the signal that stopped it), 1 when the drain is cut short; with `--workers`, the
parent says the same of its workers."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from tests.conftest import ServerFactory
from tests.servers import BurrowServer

# `Expect: 100-continue`: the server says when the request runs and waits for its body.
PUT_HEAD = (
    b"PUT /v1.0/a/q/m HTTP/1.1\r\nHost: burrow\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@contextmanager
def put_in_flight(server: BurrowServer) -> Iterator[socket.socket]:
    """A connection whose PUT runs, waiting for its body: in flight until it is sent."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(PUT_HEAD)
        assert sock.recv(len(CONTINUE)) == CONTINUE
        yield sock


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {seconds:g} s"
        time.sleep(0.02)


def _stopped_listening(server: BurrowServer) -> bool:
    parts = urlsplit(server.url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=30).close()
    except ConnectionRefusedError:
        return True
    return False


def _signal(server: BurrowServer, signum: int) -> None:
    assert server.process is not None
    server.process.send_signal(signum)


def _exit_status(server: BurrowServer) -> int:
    assert server.process is not None
    return server.process.wait(30)


def _drain_with_a_request_in_flight(server: BurrowServer, signum: int) -> int:
    with put_in_flight(server) as sock:
        _signal(server, signum)
        wait_until(lambda: _stopped_listening(server), "the server to stop taking connections")
        sock.sendall(b"abcd")  # the body: the drain answers the request
        assert sock.recv(12) == b"HTTP/1.1 201"
    return _exit_status(server)


def test_sigterm_after_a_clean_drain_exits_0(start_server: ServerFactory) -> None:
    server = start_server()
    assert _drain_with_a_request_in_flight(server, signal.SIGTERM) == 0  # not -SIGTERM
    assert "Burrow stopped" in server.log()


def test_sigint_after_a_clean_drain_exits_0(start_server: ServerFactory) -> None:
    server = start_server()
    assert _drain_with_a_request_in_flight(server, signal.SIGINT) == 0


def test_a_drain_cut_short_exits_1(start_server: ServerFactory) -> None:
    server = start_server()
    with put_in_flight(server):
        _signal(server, signal.SIGTERM)
        wait_until(lambda: _stopped_listening(server), "the server to stop taking connections")
        _signal(server, signal.SIGINT)  # a second Ctrl+C: stop now
        assert _exit_status(server) == 1
    assert "the drain was cut short: 1 request(s) unanswered" in server.log()


def test_workers_stopped_after_a_clean_drain_exit_0(start_server: ServerFactory) -> None:
    storage = start_server()
    server = start_server(storage.url, "--workers", "2")
    wait_until(lambda: len(server.workers()) == 2, "two workers")
    assert server.stop() == 0
    assert server.log().count("Burrow stopped") == 2
    assert "while stopping" not in server.log()


def test_a_worker_whose_drain_is_cut_short_makes_the_server_exit_1(
    start_server: ServerFactory,
) -> None:
    storage = start_server()
    server = start_server(storage.url, "--workers", "2")
    wait_until(lambda: len(server.workers()) == 2, "two workers")
    with put_in_flight(server):
        _signal(server, signal.SIGTERM)
        wait_until(lambda: _stopped_listening(server), "the workers to stop taking connections")
        for pid in server.workers():  # the one with the PUT is still draining
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass  # drained already
        assert _exit_status(server) == 1
    assert re.search(r"worker \d+ exited \(1\) while stopping", server.log())


def _running(pid: int) -> bool:
    """Whether the process is alive (one that has exited and awaits its reaping is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_supervisor_is_killed(start_server: ServerFactory) -> None:
    storage = start_server()
    server = start_server(storage.url, "--workers", "2")
    wait_until(lambda: len(server.workers()) == 2, "two workers")
    workers = server.workers()
    _signal(server, signal.SIGKILL)
    assert _exit_status(server) == -signal.SIGKILL
    wait_until(lambda: not any(map(_running, workers)), "the workers to stop", seconds=30)
    wait_until(lambda: _stopped_listening(server), "the port to be free")
