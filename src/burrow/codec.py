"""How messages travel as JSON in the v1.0 API; the server and the client share it.

JSON carries text, so a body that is valid UTF-8 is a JSON string, and any other
body is base64 with the flag `"base64": true`. A message's meta is always base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
    return from_base64(text)


def to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def from_base64(text: str) -> bytes:
    """The bytes of base64 text; `ValueError` if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError("not valid base64") from error


def message_fields(message: Message) -> dict[str, Any]:
    """A message at `detail=all`: `{id, ttl, hide, body[, base64]}`."""
    return {"id": message.id, "ttl": message.ttl, "hide": message.hide, **body_fields(message.body)}


def full_fields(message: Message) -> dict[str, Any]:
    """A message at `detail=full` (an extension): `all`'s fields and the rest of what
    `Message` holds, its meta in base64."""
    meta = message.meta
    return {
        "id": message.id,
        "ttl": message.ttl,
        "hide": message.hide,
        **body_fields(message.body),
        "receives": message.receives,
        "receipt": message.receipt,
        "sent": message.sent,
        "first_received": message.first_received,
        "meta": to_base64(meta) if meta else "",
    }


def message_from_fields(data: dict[str, Any]) -> Message:
    """A message rendered at `detail=all` or `full` (or `attributes`: the body is then
    empty); what `all` leaves out takes `Message`'s defaults."""
    body = body_from_fields(data.get("body", ""), bool(data.get("base64")))
    meta = data.get("meta")
    return Message(
        str(data["id"]),
        body,
        int(data["ttl"]),
        int(data["hide"]),
        int(data.get("receives", 0)),
        str(data.get("receipt", "")),
        float(data.get("sent", 0.0)),
        float(data.get("first_received", 0.0)),
        from_base64(meta) if meta else b"",
    )


def info_tag(info: bytes) -> str:
    """The entity tag of a queue's info document (`ETag`, `If-Match`): its SHA-256."""
    return f'"{hashlib.sha256(info).hexdigest()}"'
