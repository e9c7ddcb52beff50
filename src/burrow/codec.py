"""How messages travel as JSON in the v1.0 API; the server and the client share it.

JSON carries text, so a body that is valid UTF-8 is a JSON string, and any other
body is base64 with the flag `"base64": true`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from burrow.model import Message


def body_fields(body: bytes) -> dict[str, Any]:
    """`{"body": text}`, or `{"body": base64, "base64": True}` when not UTF-8."""
    try:
        return {"body": body.decode()}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "base64": True}


def body_from_fields(text: str, encoded: bool) -> bytes:
    """The bytes of a JSON body; `ValueError` if `encoded` and it is not base64."""
    if not encoded:
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError("a base64 body is not valid base64") from error


def message_fields(message: Message) -> dict[str, Any]:
    """A message at `detail=all`: `{id, ttl, hide, body[, base64]}`."""
    return {"id": message.id, "ttl": message.ttl, "hide": message.hide, **body_fields(message.body)}


def message_from_fields(data: dict[str, Any]) -> Message:
    """A message rendered at `detail=all` (or `attributes`: the body is then empty)."""
    body = body_from_fields(data.get("body", ""), bool(data.get("base64")))
    return Message(str(data["id"]), body, int(data["ttl"]), int(data["hide"]))
