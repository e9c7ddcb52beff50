"""Server-Sent Events as a client reads them, free of I/O: lines in, events out.

Parsed as the HTML standard says (`text/event-stream`): `field: value` lines, one
space after the colon dropped; a blank line ends an event; lines starting with `:`
are comments (Burrow's heartbeats). Only what Burrow sends is kept: `id`, `event`
and `data` (several `data` lines joined by newlines).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from burrow.codec import body_from_fields
from burrow.errors import BackendUnavailable
from burrow.model import Message


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
