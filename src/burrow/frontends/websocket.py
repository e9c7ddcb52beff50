"""WebSocket streams: `GET /v1.0/{a}/{q}?stream=ws` upgraded, the queue's messages as
they come (as SSE's, from a `Feed`) and commands on the queue over the same
connection, in a small JSON protocol (docs/push.md#websocket):

    server → {"type": "message", "id", "ttl", "hide", "body"[, "base64"]}
    client → {"type": "put"|"claim"|"delete"|"ack", "ref": ANY, ...}
    server → {"type": "ok", "ref", ...} or {"type": "error", "ref", "status", "error"}

Admission is at the upgrade, as a GET (a token header, or the `token` query
parameter: browsers cannot set headers on a WebSocket); a refusal is an HTTP answer
with the JSON error, as any request's. Each command is admitted again with its own
method (a put as PUT, a claim as POST, a delete as DELETE), so writes need a writer
key and count against the rate limits. Commands run one at a time, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from burrow.auth import Guard
from burrow.codec import message_fields
from burrow.errors import BurrowError, InvalidRequest, NoMatch, NotFound
from burrow.feed import Ended, Feed, open_feed
from burrow.frontends.admission import token_request
from burrow.frontends.asgi import JSON, Receive, Response, Scope, Send, path_segments, query_params
from burrow.frontends.v1_bodies import batch_draft
from burrow.frontends.v1_params import NO_CHANGE
from burrow.frontends.v1_subscriptions import stream_subscription
from burrow.model import Attributes, Filters
from burrow.service import Service

logger = logging.getLogger(__name__)

PARAMS = frozenset({"stream", "marker", "subscription", "token"})
GOING_AWAY = 1001  # the server is shutting down: reconnect (to another one)
FAILED = 1011  # the stream's reads failed: reconnect
Reply = dict[str, Any]


class WebSocketStreams:
    """The app of every WebSocket request."""

    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            session = await self._open(scope)
        except BurrowError as error:
            await _refuse(send, Response.error(error))
            return
        await send({"type": "websocket.accept"})
        await session.run(receive, send)

    async def _open(self, scope: Scope) -> Session:
        path = path_segments(scope)
        if len(path) != 3 or path[0] != "v1.0" or not all(path[1:]):
            raise NotFound("a WebSocket stream is of a queue: /v1.0/{account}/{queue}")
        query = query_params(scope)
        if not PARAMS.issuperset(query):
            unknown = ", ".join(sorted(query.keys() - PARAMS))
            allowed = ", ".join(sorted(PARAMS))
            raise InvalidRequest(f"unknown query parameter(s) {unknown}; allowed here: {allowed}")
        if query.get("stream") != "ws":
            raise InvalidRequest("a WebSocket upgrade is for stream=ws")
        account, queue, token = path[1], path[2], query.get("token")
        self.service.admit(self.guard, token_request(scope, "GET", account, token))
        name = stream_subscription(query.get("marker"), query.get("subscription"))
        # The cursor moves on the client's acks (after it has handled the messages).
        feed = await open_feed(self.service, account, queue, query.get("marker"), name)
        return Session(self, feed, scope, token, name)


class Session:
    """One connection: its feed written out, its commands answered."""

    def __init__(
        self,
        streams: WebSocketStreams,
        feed: Feed,
        scope: Scope,
        token: str | None,
        subscription: str | None,
    ) -> None:
        self.service = streams.service
        self.guard = streams.guard
        self.feed = feed
        self.scope = scope
        self.token = token
        self.subscription = subscription
        self.commands: dict[str, tuple[str, Callable[[dict[str, Any]], Awaitable[Reply]]]] = {
            "put": ("PUT", self.put),
            "claim": ("POST", self.claim),
            "delete": ("DELETE", self.delete),
            "ack": ("POST", self.ack),
        }

    async def run(self, receive: Receive, send: Send) -> None:
        await self.feed.serve(self._write(send), self._serve(receive, send))

    async def _write(self, send: Send) -> None:
        """The feed's messages, until it ends; then the connection is closed."""
        try:
            while True:
                message = await self.feed.next()
                await _send(send, {"type": "message", **message_fields(message)})
        except Ended:
            await send({"type": "websocket.close", "code": GOING_AWAY})
        except BurrowError as error:
            await _send(send, {"type": "error", "ref": None, "error": error.message})
            await send({"type": "websocket.close", "code": FAILED})

    async def _serve(self, receive: Receive, send: Send) -> None:
        """Answer each command the client sends, in order, until it goes away."""
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            raw = event.get("text")
            await _send(send, await self._answer(event.get("bytes") if raw is None else raw))

    async def _answer(self, raw: str | bytes | None) -> Reply:
        ref = None
        try:
            command = _command(raw)
            ref = command.pop("ref", None)
            method, run = self.commands[command.pop("type")]
            request = token_request(self.scope, method, self.feed.account, self.token)
            self.service.admit(self.guard, request)
            return {"type": "ok", "ref": ref, **await run(command)}
        except BurrowError as error:
            return {"type": "error", "ref": ref, "status": error.status, "error": error.message}

    # Commands -------------------------------------------------------------------------

    async def put(self, command: dict[str, Any]) -> Reply:
        """`{"type": "put", "body", "base64"?, "id"?, "ttl"?, "hide"?}`: as a batch entry."""
        feed = self.feed
        stored = await self.service.put_messages(
            feed.account, feed.queue, [batch_draft(command, NO_CHANGE)]
        )
        ((message_id, created),) = stored
        return {"id": message_id, "created": created}

    async def claim(self, command: dict[str, Any]) -> Reply:
        """`{"type": "claim", "hide": N, "limit"?: 1}`: up to `limit` visible messages,
        hidden for `hide` seconds; `messages` is empty when none are visible."""
        _only(command, {"hide", "limit"})
        hide, limit = _count(command, "hide"), _count(command, "limit", 1)
        if not hide:
            raise InvalidRequest("a claim needs hide, the seconds to hide what it takes")
        try:
            taken = await self.service.update_messages(
                self.feed.account, self.feed.queue, Attributes(hide=hide), Filters(limit)
            )
        except NoMatch:
            taken = []
        return {"messages": [message_fields(message) for message in taken]}

    async def delete(self, command: dict[str, Any]) -> Reply:
        """`{"type": "delete", "id", "receipt"?}`: one message (with a receipt: only
        while that receive is its latest)."""
        _only(command, {"id", "receipt"})
        receipt = command.get("receipt")
        if receipt is not None and not isinstance(receipt, str):
            raise InvalidRequest("receipt must be a string")
        feed = self.feed
        await self.service.delete_message(feed.account, feed.queue, _id(command), receipt)
        return {"id": command["id"]}

    async def ack(self, command: dict[str, Any]) -> Reply:
        """`{"type": "ack", "id"}`: the stream's subscription's cursor moves to `id` (what
        the client has handled, and everything before it)."""
        _only(command, {"id"})
        if self.subscription is None:
            raise InvalidRequest("ack is for a stream of a subscription (subscription=NAME)")
        feed = self.feed
        await self.service.subscriptions.ack(
            feed.account, feed.queue, self.subscription, _id(command)
        )
        return {"id": command["id"]}


def _command(raw: str | bytes | None) -> dict[str, Any]:
    try:
        command = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"a command is a JSON object: {error}") from error
    if not isinstance(command, dict):
        raise InvalidRequest("a command is a JSON object")
    if command.get("type") not in ("put", "claim", "delete", "ack"):
        raise InvalidRequest("a command's type is put, claim, delete or ack")
    return command


def _only(command: dict[str, Any], fields: set[str]) -> None:
    unknown = command.keys() - fields
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(sorted(unknown))}")


def _count(command: dict[str, Any], name: str, default: int = 0) -> int:
    value = command.get(name, default)
    if type(value) is not int or value < 0:
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return value


def _id(command: dict[str, Any]) -> str:
    value = command.get("id")
    if not isinstance(value, str):
        raise InvalidRequest("id must be a message id, a string")
    return value


async def _send(send: Send, reply: Reply) -> None:
    await send({"type": "websocket.send", "text": orjson.dumps(reply).decode()})


async def _refuse(send: Send, response: Response) -> None:
    """An upgrade refused: the HTTP answer any request refused so gets."""
    headers = [(b"content-type", JSON), *response.headers]
    start = {"type": "websocket.http.response.start", "status": response.status}
    await send({**start, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": response.body})
