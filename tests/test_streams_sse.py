"""SSE streams (`?stream=sse`) on a real server: fan-out, resuming, backpressure."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends.conftest import ring_url
from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.streams import NO_POOL_LIMIT, read_events, rss_bytes, sse
from tests.test_auth import add_key
from tests.waiting import PATIENCE, eventually, within

READERS = 200
MESSAGES = 30


async def put(
    http: httpx.AsyncClient, url: str, ids: list[str], headers: dict[str, str] | None = None
) -> None:
    batch = [{"id": i, "body": f"b-{i}"} for i in ids]
    response = await http.put(url, json=batch, headers=headers)
    assert response.status_code == 201, response.text


async def test_every_reader_gets_every_message_in_order(
    memory_server: BurrowServer, account: str
) -> None:
    queue = f"{memory_server.url}/v1.0/{account}/fan"
    ids = [f"m{n:03}" for n in range(MESSAGES)]
    async with httpx.AsyncClient(limits=NO_POOL_LIMIT, timeout=PATIENCE * 6) as http:
        await put(http, queue, ids[:10])  # some before the readers come, the rest after
        opened = [asyncio.Event() for _ in range(READERS)]
        readers = [
            asyncio.create_task(read_events(http, f"{queue}?stream=sse", MESSAGES, opened=o))
            for o in opened
        ]
        await within(asyncio.gather(*(o.wait() for o in opened)), "every stream open", 60)
        for start in range(10, MESSAGES, 5):
            await put(http, queue, ids[start : start + 5])
        found = await within(asyncio.gather(*readers), "every reader's messages", 60)
    for messages in found:
        assert [m.id for m in messages] == ids
        assert messages[-1].body == f"b-{ids[-1]}".encode()


async def test_a_reader_resumes_after_last_event_id_and_misses_nothing(
    memory_server: BurrowServer, account: str
) -> None:
    queue = f"{memory_server.url}/v1.0/{account}/resume"
    stream = f"{queue}?stream=sse"
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        await put(http, queue, ["a", "b", "c"])
        first = await within(read_events(http, stream, 2), "the first two")
        assert [m.id for m in first] == ["a", "b"]  # and then the reader went away
        await put(http, queue, ["d", "e"])
        resumed = read_events(http, stream, 3, headers={"Last-Event-ID": "b"})
        assert [m.id for m in await within(resumed, "the rest")] == ["c", "d", "e"]
        # `marker` starts a stream too; a reconnect's Last-Event-ID wins over it.
        marked = read_events(http, f"{stream}&marker=a", 1, headers={"Last-Event-ID": "d"})
        assert [m.id for m in await within(marked, "after d")] == ["e"]
        assert [m.id for m in await within(read_events(http, f"{stream}&marker=c", 1), "d")] == [
            "d"
        ]


async def test_a_stream_goes_on_when_its_last_message_is_deleted(
    memory_server: BurrowServer, account: str
) -> None:
    """A v1.0 listing after a marker it cannot find starts at the queue's start: a
    stream whose last message is deleted (a worker took it) must not read again what
    it had read before it."""
    queue = f"{memory_server.url}/v1.0/{account}/work"
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        await put(http, queue, ["x1", "x2"])
        await put(http, queue, ["x3"])
        async with sse(http, f"{queue}?stream=sse") as messages:
            read = [(await within(anext(messages), "a message")).id for _ in range(3)]
            assert read == ["x1", "x2", "x3"]
            assert (await http.delete(f"{queue}/x3")).status_code == 204
            await put(http, queue, ["x4"])
            assert (await within(anext(messages), "x4")).id == "x4"
            await put(http, queue, ["x5"])
            assert (await within(anext(messages), "x5")).id == "x5"


async def test_an_idle_stream_sends_heartbeats(start_server: ServerFactory, tmp_path: Path) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nstream_heartbeat = 0.2\n")
    server = start_server("memory://", "--config", str(config))
    async with (
        httpx.AsyncClient(timeout=PATIENCE) as http,
        http.stream("GET", f"{server.url}/v1.0/acme/idle?stream=sse") as response,
    ):
        lines = response.aiter_lines()

        async def heartbeat() -> None:
            while await anext(lines) != ": heartbeat":
                pass

        await within(heartbeat(), "a heartbeat")


def test_a_slow_reader_holds_a_bounded_amount_of_server_memory(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """A reader that stops reading makes the stream stop reading the queue: the server
    holds its buffer (4 messages) and the socket's, not the queue's 60 MiB."""
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nstream_buffer = 4\n")
    server = start_server(f"sqlite:///{tmp_path}/slow.db", "--config", str(config))
    body, count = "x" * (256 * 1024), 240
    queue = f"{server.url}/v1.0/acme/big"
    with httpx.Client(timeout=PATIENCE * 3) as http:
        for start in range(0, count, 15):
            batch = [{"id": f"m{n:04}", "body": body} for n in range(start, start + 15)]
            assert http.put(queue, json=batch).status_code == 201
    before = rss_bytes(server.pid)
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /v1.0/acme/big?stream=sse HTTP/1.1\r\nhost: x\r\n\r\n")
        first = sock.recv(64 * 1024)
        assert first.startswith(b"HTTP/1.1 200"), first
        # A stream that ignored its client would read all 240 messages in well under a
        # second meanwhile; this one reads what its buffer holds, then waits.
        peak = max(_rss_after(server.pid, 0.25) for _ in range(8))
        received = _read_all(sock, count, first)
    assert peak - before < 20 * 1024 * 1024, f"grew {(peak - before) >> 20} MiB"
    assert received == [f"m{n:04}" for n in range(count)]


def _rss_after(pid: int, seconds: float) -> int:
    """The process's RSS `seconds` from now (samples of the server while the reader idles)."""
    time.sleep(seconds)
    return rss_bytes(pid)


def _read_all(sock: socket.socket, count: int, start: bytes) -> list[str]:
    """The ids of the stream's first `count` events (`start`: what was read already),
    read as fast as they come."""
    sock.settimeout(PATIENCE)
    ids: list[str] = []
    chunk, pending = start, b""  # pending: a line not yet ended
    while True:
        *lines, pending = (pending + chunk).split(b"\n")
        ids += [line[4:].decode() for line in lines if line.startswith(b"id: ")]
        if len(ids) >= count:
            return ids[:count]
        chunk = sock.recv(1 << 20)
        assert chunk, "the stream ended early"


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("stream=sse&limit=3", 400, "unknown query parameter(s) limit"),
        ("stream=bogus", 400, "stream must be sse"),
        ("stream=ws", 400, "WebSocket upgrade"),
        ("stream=sse&marker=" + "m" * 300, 400, "marker id longer than"),
    ],
)
def test_bad_stream_requests_are_refused(
    server_url: str, query: str, status: int, error: str
) -> None:
    response = httpx.get(f"{server_url}/v1.0/acme/q?{query}", timeout=PATIENCE)
    assert response.status_code == status
    assert error in response.json()["error"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BurrowServer, str, str]]:
    """A server with keys: it, a writer's token and a reader's, both of account `a`."""
    workdir = tmp_path_factory.mktemp("keyed")
    keyfile = workdir / "keys.json"
    writer, reader = add_key(keyfile, "writer", "a"), add_key(keyfile, "reader", "a")
    server = BurrowServer(workdir, "memory://", "--auth", f"keys:{keyfile}").start()
    yield server, writer, reader
    server.kill()


async def test_a_reader_key_may_stream_and_no_key_may_not(
    keyed: tuple[BurrowServer, str, str],
) -> None:
    server, writer, reader = keyed
    stream = f"{server.url}/v1.0/a/q?stream=sse"
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        await put(http, f"{server.url}/v1.0/a/q", ["m"], headers={"x-auth-token": writer})
        found = await within(read_events(http, stream, 1, headers={"x-auth-token": reader}), "m")
        assert [m.id for m in found] == ["m"]
        assert (await http.get(stream)).status_code == 401
        other = await http.get(stream.replace("/a/", "/b/"), headers={"x-auth-token": reader})
        assert other.status_code == 403


async def test_a_writers_stream_moves_its_subscriptions_cursor_and_a_readers_does_not(
    keyed: tuple[BurrowServer, str, str],
) -> None:
    server, writer, reader = keyed
    queue = f"{server.url}/v1.0/a/subscribed"
    subscription = f"{queue}/-/subscriptions/s"
    stream = f"{queue}?stream=sse&subscription=s"
    as_writer, as_reader = {"x-auth-token": writer}, {"x-auth-token": reader}
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        await put(http, queue, ["m1", "m2"], headers=as_writer)
        made = await http.put(subscription, json={"start": "oldest"}, headers=as_writer)
        assert made.status_code == 201, made.text

        async def at(expected: str | None) -> bool:
            found = await http.get(subscription, headers=as_reader)
            assert found.status_code == 200, found.text
            return bool(found.json()["cursor"] == expected)

        read = await within(read_events(http, stream, 2, headers=as_reader), "the reader's")
        assert [m.id for m in read] == ["m1", "m2"]
        assert await at(None)
        # (The cursor moves as each event is written: a client that leaves at once may
        # get the last ones again, as at-least-once allows. These wait for it, connected.)
        async with sse(http, stream, as_writer) as messages:
            ids = [(await within(anext(messages), "the writer's")).id for _ in range(2)]
            assert ids == ["m1", "m2"]
            await eventually(lambda: at("m2"), "the cursor at m2")
        await put(http, queue, ["m3"], headers=as_writer)
        async with sse(http, stream, as_writer) as messages:
            assert (await within(anext(messages), "after m2")).id == "m3"
            await eventually(lambda: at("m3"), "the cursor at m3")
        # A reader resumes by Last-Event-ID, wherever the cursor is.
        resumed = read_events(http, stream, 1, headers={**as_reader, "Last-Event-ID": "m2"})
        assert [m.id for m in await within(resumed, "m3")] == ["m3"]
        for query, status in (("&subscription=nope", 404), ("&subscription=s&marker=m1", 400)):
            refused = await http.get(f"{queue}?stream=sse{query}", headers=as_reader)
            assert refused.status_code == status, refused.text


async def test_open_streams_end_when_the_server_stops(start_server: ServerFactory) -> None:
    server = start_server()
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        opened = asyncio.Event()
        reader = asyncio.create_task(
            read_events(http, f"{server.url}/v1.0/acme/q?stream=sse", 1, opened=opened)
        )
        await within(opened.wait(), "the stream open")
        status = await asyncio.to_thread(server.stop)
        with pytest.raises(AssertionError, match="the stream ended after 0 of 1"):
            await within(reader, "the stream's end")
    assert status == 0


async def test_a_stream_of_a_subscription_through_a_ring_of_two_remote_members(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """Messages spread over two members (replicas 2), each a server reached over HTTP; the
    subscription lives on the first. A stream sees every message, the ones put while it is
    open too, in order, and (no keys: a writer's stream) moves the cursor."""
    members = [(start_server().url, "az1") for _ in range(2)]
    server = start_server(ring_url(tmp_path / "ring.toml", 2, members))
    queue = f"{server.url}/v1.0/a/q"
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        made = await http.put(f"{queue}/-/subscriptions/s", json={"start": "oldest"})
        assert made.status_code == 201, made.text

        async def put_one(n: int) -> str:  # ids the server makes, in time order
            response = await http.put(queue, json=[{"body": f"b{n}"}])
            assert response.status_code == 201, response.text
            return str(response.json()[0])

        ids = [await put_one(n) for n in range(4)]
        async with sse(http, f"{queue}?stream=sse&subscription=s") as messages:
            found = [(await within(anext(messages), "a stored one")).id for _ in range(4)]
            ids += [await put_one(n) for n in range(4, 8)]
            found += [(await within(anext(messages), "a new one")).id for _ in range(4)]

            async def at_last() -> bool:
                state = await http.get(f"{queue}/-/subscriptions/s")
                return bool(state.json()["cursor"] == ids[-1])

            await eventually(at_last, "the cursor at the last message")
        spread = [await http.get(f"{url}/v1.0/a/q", params={"detail": "id"}) for url, _ in members]
    assert found == ids
    assert all(response.status_code == 200 for response in spread), "all on one member"
