"""Server-Sent Events: `GET /v1.0/{a}/{q}?stream=sse`, a queue's messages as they come.

One event per message, `id:` its id, `event: message`, `data:` its JSON at
`detail=all`; a comment line every `stream_heartbeat` seconds while there is nothing
to send, so that proxies keep the connection and clients can tell it is alive. The
messages come from a `Feed` (its bounded buffer is the backpressure); the client's
going away ends the stream and its reads.
"""

from __future__ import annotations

import asyncio

import orjson

from burrow.codec import message_fields
from burrow.errors import BurrowError
from burrow.feed import Ended, Feed
from burrow.frontends.asgi import Receive, Send
from burrow.model import Message

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on as it comes
]
OPENED = b": stream open\n\n"  # sent at once: the client knows the stream is being read
HEARTBEAT = b": heartbeat\n\n"


def event(message: Message) -> bytes:
    """A message as one SSE event (ids hold no line breaks: `Service.check_id`)."""
    data = orjson.dumps(message_fields(message))
    return b"id: %s\nevent: message\ndata: %s\n\n" % (message.id.encode(), data)


def error_event(error: BurrowError) -> bytes:
    """What ends a stream its reads failed on; the client reconnects with Last-Event-ID."""
    return b"event: error\ndata: %s\n\n" % orjson.dumps({"error": error.message})


class EventStream:
    """The answer to a stream request: sent as a streaming HTTP response (`send`)."""

    status = 200

    def __init__(self, feed: Feed, receive: Receive, heartbeat: float) -> None:
        self.feed = feed
        self.receive = receive
        self.heartbeat = heartbeat

    async def send(self, send: Send, request_id: bytes | None = None) -> None:
        """Stream until the client goes away or the feed ends; with a `request_id`, as
        its `X-Request-Id` header (`burrow.logs`)."""
        headers = HEADERS if request_id is None else [*HEADERS, (b"x-request-id", request_id)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await _chunk(send, OPENED)
        await self.feed.serve(self._write(send), _disconnected(self.receive))
        await send({"type": "http.response.body", "body": b""})  # (a client gone: ignored)

    async def _write(self, send: Send) -> None:
        """Each message as it comes, heartbeats between, until the feed ends."""
        feed = self.feed
        while True:
            try:
                async with asyncio.timeout(self.heartbeat):
                    message = await feed.next()
            except TimeoutError:
                await _chunk(send, HEARTBEAT)
                continue
            except Ended:
                return
            except BurrowError as error:
                await _chunk(send, error_event(error))
                return
            await _chunk(send, event(message))
            await feed.written(message)


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the request's body, if any, is ignored)."""
    while (await receive())["type"] != "http.disconnect":
        pass
