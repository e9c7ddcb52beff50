"""Server-Sent Events as a client reads them, free of I/O: lines in, events out.

Parsed as the HTML standard says (`text/event-stream`): `field: value` lines, one
space after the colon dropped; a blank line ends an event; lines starting with `:`
are comments (Burrow's heartbeats). Only what Burrow sends is kept: `id`, `event`
and `data` (several `data` lines joined by newlines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from burrow.client.endpoint import DEFAULT_TIMEOUT
from burrow.client.wire import path
from burrow.codec import body_from_fields
from burrow.errors import BackendUnavailable
from burrow.model import Message

# A stream's reads wait for heartbeats (15 s apart by default): a read this long with
# nothing, not even one, means the connection is dead; the client reconnects.
READ_TIMEOUT = 60.0
RECONNECT_DELAY = 1.0  # seconds before reconnecting after a dropped stream


@dataclass(slots=True)
class StreamRequest:
    """Where a client's stream reads, and from which message: a reconnect starts after
    the last one it had (`Last-Event-ID`)."""

    account: str
    queue: str
    marker: str | None = None
    subscription: str | None = None

    def url_path(self) -> str:
        return path(self.account, self.queue)

    last_id: str | None = None  # of the last message read

    def arguments(self) -> dict[str, Any]:
        """What `httpx.Client.stream` is called with (besides "GET")."""
        return {
            "url": self.url_path(),
            "params": self.params(),
            "headers": {} if self.last_id is None else {"last-event-id": self.last_id},
            "timeout": httpx.Timeout(DEFAULT_TIMEOUT, read=READ_TIMEOUT),
        }

    def read(self, parser: EventParser, line: str) -> Message | None:
        """The message a line ends, if any (its id kept for a reconnect)."""
        event = parser.line(line)
        if event is None:
            return None
        message = message_of(event)
        self.last_id = message.id
        return message

    def params(self) -> dict[str, str]:
        params = {"stream": "sse"}
        if self.marker is not None:
            params["marker"] = self.marker
        if self.subscription is not None:
            params["subscription"] = self.subscription
        return params


@dataclass(frozen=True, slots=True)
class Event:
    id: str | None
    event: str
    data: str


class EventParser:
    """Feed it a stream's lines (without their line breaks); it returns each event whole."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data and not self._event:
            return None
        found = Event(self._id, self._event or "message", "\n".join(self._data))
        self._event, self._data = "", []  # (the id stays: the stream's last event id)
        return found


def message_of(event: Event) -> Message:
    """The message of a Burrow `message` event; an `error` event (the server's reads
    failed: reconnect) raises `BackendUnavailable`."""
    fields = orjson.loads(event.data)
    if event.event == "error":
        raise BackendUnavailable(f"the stream ended: {fields['error']}")
    body = body_from_fields(fields["body"], fields.get("base64", False))
    return Message(fields["id"], body, fields["ttl"], fields["hide"])
