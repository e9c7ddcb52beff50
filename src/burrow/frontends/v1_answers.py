"""How the v1.0 API answers: names (of accounts, queues, subscriptions), messages and
one message at the detail asked for, and stored documents with their tag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burrow.codec import body_fields, full_fields, info_tag, message_fields
from burrow.frontends.asgi import OCTETS, Response
from burrow.frontends.v1_params import FULL
from burrow.model import Detail, Message

NO_CONTENT = Response(204)


def names(found: list[str], detail: Detail) -> Response:
    """Names at `detail`: none (204), their list (`id`), or a list of `{"id": …}`."""
    if detail is Detail.NONE:
        return NO_CONTENT
    if detail is Detail.ALL:
        return Response.json([{"id": name} for name in found])
    return Response.json(found)


def _id(message: Message) -> str:
    return message.id


def _body(message: Message) -> str:
    body: str = body_fields(message.body)["body"]
    return body


def _attributes(message: Message) -> dict[str, Any]:
    return {"id": message.id, "ttl": message.ttl, "hide": message.hide}


# A message's rendering in each view but none; picked once for a whole listing.
RENDER: dict[str, Callable[[Message], Any]] = {
    Detail.ID: _id,
    Detail.ATTRIBUTES: _attributes,
    Detail.BODY: _body,
    Detail.ALL: message_fields,
    FULL: full_fields,
}


def messages(found: list[Message], view: str) -> Response:
    """A listing of messages in `view` (`v1_params.Params.view`), or 204 for none."""
    if view is Detail.NONE:
        return NO_CONTENT
    render = RENDER[view]
    return Response.json([render(m) for m in found])


def one(message: Message, view: str) -> Response:
    """One message in `view`; its body or its id alone as raw bytes."""
    if view is Detail.NONE:
        return NO_CONTENT
    if view is Detail.BODY:
        return Response(200, message.body, OCTETS)
    if view is Detail.ID:
        return Response(200, message.id.encode(), OCTETS)
    return Response.json(RENDER[view](message))


def document(stored: bytes) -> Response:
    """A stored document (a queue's info, a subscription's) with its tag."""
    return Response(200, stored, OCTETS, [(b"etag", info_tag(stored).encode())])


def not_stored(why: str) -> Response:
    """A compare-and-set that did not store: 409 (the caller reads the document again)."""
    return Response.json({"error": why}, 409)
