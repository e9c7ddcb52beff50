"""WebSocket streams (`?stream=ws`) on a real server: the stream and each command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from tests.servers import BurrowServer
from tests.test_auth import add_key
from tests.waiting import PATIENCE, within


def ws_url(server: BurrowServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


class Peer:
    """One connection's frames, split into the stream's messages and command replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def call(self, ref: int | str, **command: Any) -> dict[str, Any]:
        await self.ws.send(orjson.dumps({"ref": ref, **command}).decode())
        return await within(self._reply(), f"the reply to {command}")

    async def _reply(self) -> dict[str, Any]:
        while True:
            frame = orjson.loads(await self.ws.recv())
            if frame["type"] != "message":
                return dict(frame)
            self.messages.append(frame)

    async def message(self) -> dict[str, Any]:
        if not self.messages:
            frame = orjson.loads(await within(self.ws.recv(), "a message"))
            assert frame["type"] == "message", frame
            return dict(frame)
        return self.messages.pop(0)


async def test_each_command_round_trips(memory_server: BurrowServer, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    async with connect(ws_url(memory_server, f"{queue}?stream=ws"), compression=None) as ws:
        peer = Peer(ws)
        put = await peer.call(1, type="put", id="m1", body="hello", ttl=60)
        assert put == {"type": "ok", "ref": 1, "id": "m1", "created": True}
        assert await peer.message() == {
            "type": "message", "id": "m1", "ttl": 60, "hide": 0, "body": "hello"
        }  # fmt: skip
        generated = await peer.call("two", type="put", body="\u00e9t\u00e9")
        assert generated["ref"] == "two" and generated["created"] is True
        assert (await peer.message())["id"] == generated["id"]
        # Messages put over HTTP come on the stream too.
        async with httpx.AsyncClient(timeout=PATIENCE) as http:
            response = await http.put(f"{memory_server.url}{queue}/m3", content=b"\xff")
            assert response.status_code == 201
        assert await peer.message() == {
            "type": "message", "id": "m3", "ttl": 600, "hide": 0, "body": "/w==", "base64": True
        }  # fmt: skip

        claimed = await peer.call(3, type="claim", hide=30, limit=2)
        assert [m["id"] for m in claimed["messages"]] == ["m1", generated["id"]]
        assert all(m["hide"] == 30 for m in claimed["messages"])
        deleted = await peer.call(4, type="delete", id="m1")
        assert deleted == {"type": "ok", "ref": 4, "id": "m1"}
        assert (await peer.call(5, type="delete", id="m1"))["status"] == 404
        assert (await peer.call(6, type="claim", hide=30))["messages"] == [
            {"id": "m3", "ttl": 600, "hide": 30, "body": "/w==", "base64": True}
        ]
        assert (await peer.call(7, type="claim", hide=30))["messages"] == []
        ack = await peer.call(8, type="ack", id="m3")
        assert ack["type"] == "error" and ack["status"] == 400


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "a command is a JSON object"),
        ('{"type": "pop", "ref": 1}', "a command's type is put, claim, delete or ack"),
        ('{"type": "put", "ref": 1}', "each batch entry needs a string body"),
        ('{"type": "put", "ref": 1, "body": "x", "ttl": -1}', "ttl must be a non-negative"),
        ('{"type": "claim", "ref": 1}', "a claim needs hide"),
        ('{"type": "claim", "ref": 1, "hide": 5, "limit": 0}', "limit must be an integer from 1"),
        ('{"type": "delete", "ref": 1, "id": 7}', "id must be a message id"),
        ('{"type": "delete", "ref": 1, "id": "m", "x": 1}', "unknown field(s) x"),
    ],
)
async def test_bad_commands_get_errors_and_the_connection_stays(
    memory_server: BurrowServer, account: str, frame: str, error: str
) -> None:
    async with connect(ws_url(memory_server, f"/v1.0/{account}/q?stream=ws")) as ws:
        await ws.send(frame)
        reply = orjson.loads(await within(ws.recv(), "the error"))
        assert reply["type"] == "error" and reply["status"] == 400
        assert error in reply["error"]
        peer = Peer(ws)
        assert (await peer.call(2, type="put", body="still open"))["type"] == "ok"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1.0/a?stream=ws", 404), ("/v1.0/a/q", 400), ("/v1.0/a/q?stream=ws&limit=1", 400)],
)
async def test_bad_upgrades_are_refused_with_the_error(
    memory_server: BurrowServer, path: str, status: int
) -> None:
    refused = await within(refusal(ws_url(memory_server, path)), "the refusal")
    assert refused.status_code == status
    assert "error" in orjson.loads(refused.body or b"")


async def refusal(url: str) -> Response:
    """The HTTP answer to an upgrade that must be refused."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    return refused.value.response


async def test_streams_are_admitted_at_the_upgrade_and_writes_need_a_writer(
    tmp_path: Path,
) -> None:
    keyfile = tmp_path / "keys.json"
    writer, reader = add_key(keyfile, "writer", "a"), add_key(keyfile, "reader", "a")
    server = BurrowServer(tmp_path, "memory://", "--auth", f"keys:{keyfile}").start()
    try:
        refused = await within(refusal(ws_url(server, "/v1.0/a/q?stream=ws")), "the 401")
        assert refused.status_code == 401
        url = ws_url(server, f"/v1.0/a/q?stream=ws&token={reader}")
        headers = {"X-Auth-Token": writer}
        async with (
            connect(url) as by_reader,
            connect(ws_url(server, "/v1.0/a/q?stream=ws"), additional_headers=headers) as by_writer,
        ):
            reading, writing = Peer(by_reader), Peer(by_writer)
            assert (await reading.call(1, type="put", body="no"))["status"] == 403
            assert (await writing.call(1, type="put", id="m", body="yes"))["type"] == "ok"
            assert (await reading.message())["id"] == "m"
            assert (await reading.call(2, type="claim", hide=5))["status"] == 403
            assert (await reading.call(3, type="delete", id="m"))["status"] == 403
    finally:
        server.kill()


async def test_a_subscriptions_cursor_moves_on_the_clients_acks(
    memory_server: BurrowServer, account: str
) -> None:
    queue = f"/v1.0/{account}/subscribed"
    subscription = f"{memory_server.url}{queue}/-/subscriptions/s"
    url = ws_url(memory_server, f"{queue}?stream=ws&subscription=s")
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        batch = [{"id": "m1", "body": "1"}, {"id": "m2", "body": "2"}]
        assert (await http.put(f"{memory_server.url}{queue}", json=batch)).status_code == 201
        assert (await http.put(subscription, json={"start": "oldest"})).status_code == 201
        async with connect(url) as ws:
            peer = Peer(ws)
            assert [(await peer.message())["id"] for _ in range(2)] == ["m1", "m2"]
            assert (await http.get(subscription)).json()["cursor"] is None  # written, not acked
            assert await peer.call(1, type="ack", id="m1") == {"type": "ok", "ref": 1, "id": "m1"}
            assert (await http.get(subscription)).json()["cursor"] == "m1"
        async with connect(url) as ws:
            assert (await Peer(ws).message())["id"] == "m2"
    refused = await within(refusal(ws_url(memory_server, f"{queue}?stream=ws&subscription=x")), "")
    assert refused.status_code == 404
