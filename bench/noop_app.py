"""The ceiling: a raw ASGI app that does no queue work at all.

Served by the same stack as Burrow (uvicorn, uvloop, httptools, --no-access-log,
1 worker), it shows how fast the HTTP layer alone can go on this machine:

    uvicorn noop_app:app --app-dir bench --loop uvloop --http httptools --no-access-log

It reads every request body, then answers:
- GET                             → 200 `["v1.0"]`
- PUT                             → 201, empty body
- POST / DELETE on /v1.0/{a}/{q}  → 200, a JSON list of `limit` (default 10) messages
                                    `{"id", "ttl", "hide", "body"}` (the claim/pop shape),
                                    or of their ids with `detail=id`
- POST /v1.0/{a}/{q}/-/delete     → 200, the ids of its JSON body (a delete by ids)
- any other DELETE / POST         → 204
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY = "x" * 100
_MAX_LIMIT = 1000


def _messages(n: int) -> bytes:
    return orjson.dumps(
        [{"id": f"noop-{i}", "ttl": 600, "hide": 60, "body": _BODY} for i in range(n)]
    )


def _ids(n: int) -> bytes:
    return orjson.dumps([f"noop-{i}" for i in range(n)])


_LISTS: dict[int, bytes] = {n: _messages(n) for n in (1, 10, 100)}
_ID_LISTS: dict[int, bytes] = {n: _ids(n) for n in (1, 10, 100)}
_JSON = [(b"content-type", b"application/json")]


def _start(status: int, body: bytes, json: bool) -> Message:
    headers = [(b"content-length", str(len(body)).encode())]
    if json:
        headers += _JSON
    return {"type": "http.response.start", "status": status, "headers": headers}


_ROOT = b'["v1.0"]'
_START_ROOT = _start(200, _ROOT, True)
_START_201 = _start(201, b"", False)
_START_204 = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY: Message = {"type": "http.response.body", "body": b""}


def _limit(query: bytes) -> int:
    for part in query.split(b"&"):
        if part.startswith(b"limit="):
            try:
                return max(1, min(_MAX_LIMIT, int(part[6:])))
            except ValueError:
                return 10
    return 10


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    # Read the whole request body, as a real handler must.
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)

    method: str = scope["method"]
    if method == "PUT":
        await send(_START_201)
        await send(_EMPTY)
        return
    if method == "GET":
        await send(_START_ROOT)
        await send({"type": "http.response.body", "body": _ROOT})
        return
    # POST / DELETE: a queue-level call (/v1.0/a/q) answers like a claim or a pop.
    path: str = scope["path"]
    if path.count("/") == 3:
        query: bytes = scope["query_string"]
        n = _limit(query)
        if b"detail=id" in query:
            answer = _ID_LISTS.get(n) or _ids(n)
        else:
            answer = _LISTS.get(n) or _messages(n)
        await _json(send, answer)
        return
    if method == "POST" and path.endswith("/-/delete"):
        listed = orjson.loads(body or b"[]")
        await _json(send, orjson.dumps([i["id"] if isinstance(i, dict) else i for i in listed]))
        return
    await send(_START_204)
    await send(_EMPTY)


async def _json(send: Send, body: bytes) -> None:
    await send(_start(200, body, True))
    await send({"type": "http.response.body", "body": body})
