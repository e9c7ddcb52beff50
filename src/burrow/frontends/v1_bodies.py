"""The JSON bodies of v1.0 requests and their extensions, checked: a batch PUT's
entries (a WebSocket put's too), a delete by ids, a subscription's PUT, a `POST /sign`.
Each refusal is an `InvalidRequest` naming what is wrong."""

from __future__ import annotations

import re
from typing import Any

import orjson

from burrow.codec import body_from_fields, from_base64
from burrow.errors import InvalidRequest
from burrow.keys import signable_methods
from burrow.model import Attributes, Draft
from burrow.subscriptions import DEFAULT_MAX_ATTEMPTS, Webhook

# Sign orders ------------------------------------------------------------------------

SIGN_FIELDS = frozenset({"path", "methods", "expires"})
MAX_SIGN_BYTES = 16 * 1024  # a path of three ids at their longest, percent-encoded, and more
SIGN_BODY = '{"path": "/v1.0/…", "methods": ["GET", …], "expires": SECONDS}'


def sign_order(body: bytes) -> tuple[str, tuple[str, ...], int]:
    """The path prefix, methods and seconds a `POST /sign` body asks for (`expires`, 3600
    if not given)."""
    try:
        order = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"body is not valid JSON: {error}") from error
    if not isinstance(order, dict) or not SIGN_FIELDS.issuperset(order):
        raise InvalidRequest(f"the body must be {SIGN_BODY}")
    prefix, methods = order.get("path"), order.get("methods")
    seconds = _json_integer(order.get("expires", 3600))
    if not isinstance(prefix, str) or not prefix.startswith("/v1.0/"):
        raise InvalidRequest("path must be a string, a /v1.0/… path")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise InvalidRequest("methods must be a list of method names")
    if seconds is None or seconds <= 0:
        raise InvalidRequest("expires must be a positive integer of seconds")
    return prefix, signable_methods(methods), seconds


# Subscription bodies ----------------------------------------------------------------

# A PUT of a subscription: its body's fields, and its webhook's.
SUBSCRIPTION_FIELDS = frozenset({"start", "webhook"})
WEBHOOK_FIELDS = frozenset({"url", "secret", "max_attempts", "dead_letter_queue"})
SUBSCRIPTION_BODY = (
    '{"start": "newest"|"oldest", "webhook": {"url": URL, "secret": "whsec_…",'
    ' "max_attempts": N, "dead_letter_queue": QUEUE}} (every field optional but url)'
)


def subscription_order(body: bytes) -> tuple[str, Webhook | None]:
    """The start and webhook a subscription's PUT body asks for (an empty body: the
    defaults, "newest" and no webhook)."""
    try:
        order = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"body is not valid JSON: {error}") from error
    if not isinstance(order, dict) or not SUBSCRIPTION_FIELDS.issuperset(order):
        raise InvalidRequest(f"the body must be {SUBSCRIPTION_BODY}")
    start = order.get("start", "newest")
    if not isinstance(start, str):
        raise InvalidRequest('start must be "newest" or "oldest"')
    hook = order.get("webhook")
    if hook is None:
        return start, None
    if not isinstance(hook, dict) or not WEBHOOK_FIELDS.issuperset(hook):
        raise InvalidRequest(f"the body must be {SUBSCRIPTION_BODY}")
    url, secret, dead = hook.get("url"), hook.get("secret", ""), hook.get("dead_letter_queue", "")
    attempts = _json_integer(hook.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
    if not isinstance(url, str):
        raise InvalidRequest("a webhook needs a url, a string")
    if not isinstance(secret, str) or not isinstance(dead, str):
        raise InvalidRequest("secret and dead_letter_queue must be strings")
    if attempts is None:
        raise InvalidRequest("max_attempts must be an integer")
    return start, Webhook(url, secret, attempts, dead)


# Batch bodies -----------------------------------------------------------------------

BATCH_FIELDS = frozenset({"id", "body", "base64", "ttl", "hide", "meta"})
# Base64 as RFC 4648 writes it, padded: what the OpenAPI document says a base64 body is,
# whatever else this Python's decoder lets through (excess `=`, in 3.11).
BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def batch_list(body: bytes) -> list[Any]:
    return _json_list(body, "batch body", "messages")


def _json_list(body: bytes, what: str, of: str) -> list[Any]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"{what} is not valid JSON: {error}") from error
    if not isinstance(items, list):
        raise InvalidRequest(f"{what} must be a JSON list of {of}")
    return items


# Deletes by id ------------------------------------------------------------------------

DELETE_FIELDS = frozenset({"id", "receipt"})


def delete_targets(body: bytes) -> list[tuple[str, str | None]]:
    """A `POST …/-/delete` body: a list of ids, or of `{"id": …, "receipt": …}` objects
    (the receipt optional), mixed as the caller likes."""
    return [_delete_target(item) for item in _json_list(body, "body", "ids")]


def _delete_target(item: Any) -> tuple[str, str | None]:
    if isinstance(item, str):
        return item, None
    if not isinstance(item, dict) or not DELETE_FIELDS.issuperset(item):
        raise InvalidRequest('each entry must be an id or {"id": ID, "receipt": RECEIPT}')
    message_id, receipt = item.get("id"), item.get("receipt")
    if not isinstance(message_id, str) or not isinstance(receipt, str | None):
        raise InvalidRequest("an entry's id (required) and receipt must be strings")
    return message_id, receipt


def batch_draft(item: Any, defaults: Attributes) -> Draft:
    """One entry of a batch PUT (a WebSocket put too), checked."""
    if not isinstance(item, dict):
        raise InvalidRequest("each batch entry must be a JSON object")
    if not BATCH_FIELDS.issuperset(item):
        unknown = item.keys() - BATCH_FIELDS
        raise InvalidRequest(f"unknown batch field(s) {', '.join(sorted(unknown))}")
    body = item.get("body")
    if not isinstance(body, str):
        raise InvalidRequest("each batch entry needs a string body")
    if len(item) == 1:  # a body alone, the common entry: the rest are defaults
        return Draft(body.encode(), None, defaults.ttl, defaults.hide)
    if "id" in item and not isinstance(item["id"], str):  # null too: leave it out for a new id
        raise InvalidRequest("a batch entry's id must be a string")
    return Draft(
        _batch_body(body, item.get("base64", False)),
        item.get("id"),
        _batch_number(item, "ttl", defaults.ttl),
        _batch_number(item, "hide", defaults.hide),
        base64_field(item["meta"], "meta") if "meta" in item else b"",
    )


def _batch_body(body: str, encoded: Any) -> bytes:
    if not isinstance(encoded, bool):
        raise InvalidRequest("base64 must be true or false")
    if encoded and not BASE64.fullmatch(body):
        raise InvalidRequest("a base64 body is not valid base64 (RFC 4648, padded)")
    return body_from_fields(body, encoded)  # (JSON text holds no lone surrogate to encode)


def base64_field(text: Any, name: str) -> bytes:
    if not isinstance(text, str) or not BASE64.fullmatch(text):
        raise InvalidRequest(f"{name} must be base64 (RFC 4648, padded)")
    return from_base64(text)


def _batch_number(item: dict[str, Any], name: str, default: int | None) -> int | None:
    """An entry's `ttl` or `hide`: a JSON number with no fraction, as JSON Schema's
    `integer` has it (`330.0` is 330); `null` is no number (leave it out for the default)."""
    if name not in item:
        return default
    value = _json_integer(item[name])
    if value is None or value < 0:
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return value


def _json_integer(value: Any) -> int | None:
    """A JSON number with no fraction, as JSON Schema's `integer` has it (`330.0` is 330);
    None for anything else."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None
