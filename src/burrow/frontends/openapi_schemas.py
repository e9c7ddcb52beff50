"""The component schemas of the OpenAPI document (`openapi`): ids, messages, batches,
counts, stats, subscriptions and errors, as the server checks them."""

from __future__ import annotations

import functools
import sys
from typing import Any

from burrow.config import Limits
from burrow.frontends.v1_bodies import BASE64
from burrow.stats import SUMMED
from burrow.subscriptions import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS,
    MAX_URL_LENGTH,
    SECRET,
    STARTS,
    URL,
)

Schema = dict[str, Any]


@functools.cache
def printable_ranges() -> tuple[tuple[int, int], ...]:
    """The code point ranges (first, last) of the characters `str.isprintable` accepts,
    the characters an id may hold (`Service.check_id`), by this Python's Unicode database.

    (The code points are filtered in C, in a tenth of a second: a Python loop over all
    1.1 million takes twice as long, once per server process.)
    """
    codes = map(ord, filter(str.isprintable, map(chr, range(sys.maxunicode + 1))))
    found: list[tuple[int, int]] = []
    for code in codes:
        if found and found[-1][1] == code - 1:
            found[-1] = (found[-1][0], code)
        else:
            found.append((code, code))
    return tuple(found)


def _id_pattern() -> str:
    """What `Service.check_id` accepts but for length and `.` and `..`: printable
    characters, `/` excepted. Code points of the BMP are written `\\uXXXX`, which ECMA-262,
    Python and Rust regexes all read alike; no escape of the others is, so they are
    written as themselves."""
    slash = ord("/")
    ranges: list[tuple[int, int]] = []
    for first, last in printable_ranges():
        if first <= slash <= last:
            ranges += [(first, slash - 1), (slash + 1, last)]
        else:
            ranges.append((first, last))
    spans = (_char(first) + ("-" + _char(last) if last > first else "") for first, last in ranges)
    return f"^[{''.join(spans)}]+$"


def _char(code: int) -> str:
    return f"\\u{code:04X}" if code <= 0xFFFF else chr(code)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _subscription_schemas() -> dict[str, Schema]:
    epoch = {"type": "number", "minimum": 0}
    attempts = {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS}
    url = {"type": "string", "maxLength": MAX_URL_LENGTH, "pattern": f"^{URL.pattern}$"}
    webhook = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": url,
            "secret": {"type": "string", "pattern": f"^{SECRET.pattern}$",
                       "description": "without it, the server makes one (shown once)"},
            "max_attempts": {**attempts, "default": DEFAULT_MAX_ATTEMPTS},
            "dead_letter_queue": {**ref("Id"), "description": "default: {queue}-dead"},
        },
    }  # fmt: skip
    delivery = {
        "type": "object",
        "properties": {
            "holder": {"type": ["string", "null"]},
            "until": epoch,
            "failures": {"type": "integer", "minimum": 0},
            "next_attempt": epoch,
            "disabled": {"type": ["string", "null"]},
            "dead_lettered": {"type": "integer", "minimum": 0},
            "last_error": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["at", "message", "error"],
                        "properties": {
                            "at": epoch,
                            "message": {"type": "string"},
                            "error": {"type": "string"},
                        },
                    },
                ],
                "description": "the webhook's last failed attempt (null: none since it was set)",
            },
        },
    }
    return {
        "SubscriptionOrder": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "start": {"enum": list(STARTS), "default": "newest"},
                "webhook": {"anyOf": [{"type": "null"}, webhook]},
            },
        },
        "Subscription": {
            "type": "object",
            "required": ["name", "cursor", "created", "webhook", "delivery"],
            "properties": {
                "name": {"type": "string"},
                "cursor": {"type": ["string", "null"], "description": "the last message acked"},
                "created": epoch,
                "webhook": {"anyOf": [{"type": "null"}, webhook]},
                "delivery": delivery,
            },
        },
    }


def schemas(limits: Limits, seconds: Schema) -> dict[str, Schema]:
    epoch = {"type": "number", "minimum": 0}
    age = {"type": ["number", "null"], "minimum": 0, "description": "seconds; null: no message"}
    counted = list(SUMMED)
    message = {
        "type": "object",
        "required": ["id", "ttl", "hide"],
        "properties": {
            "id": {"type": "string"},
            "ttl": seconds,
            "hide": seconds,
            "body": {"type": "string"},
            "base64": {"type": "boolean", "description": "the body is base64: not UTF-8"},
            # detail=full (an extension) adds these:
            "receives": {"type": "integer", "minimum": 0},
            "receipt": {"type": "string", "description": "the latest receive's; empty if none"},
            "sent": {"type": "number", "description": "when put (epoch seconds)"},
            "first_received": {"type": "number", "description": "epoch seconds; 0 if never"},
            "meta": {"type": "string", "contentEncoding": "base64"},
        },
    }
    name = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
    entry = {
        "type": "object",
        "required": ["body"],
        "additionalProperties": False,
        "properties": {
            "id": ref("Id"),
            "body": {"type": "string"},
            "base64": {"type": "boolean"},
            "ttl": {**seconds, "maximum": limits.max_ttl},
            "hide": {**seconds, "maximum": limits.max_hide},
            "meta": {
                "type": "string",
                "pattern": f"^{BASE64.pattern}$",
                "description": "an extension: as the PUT's meta parameter",
            },
        },
        # A base64 body is base64 (as the server reads it); any other is any text.
        "if": {"required": ["base64"], "properties": {"base64": {"const": True}}},
        "then": {"properties": {"body": {"pattern": f"^{BASE64.pattern}$"}}},
    }
    return {
        "Id": {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.max_id_length,
            "format": "burrow-id",  # (a name for the rule: fuzzers may draw ids faster)
            "pattern": _id_pattern(),
            "not": {"enum": [".", ".."]},
            "description": (
                f"1 to {limits.max_id_length} printable characters (none of Unicode's "
                "control, format, surrogate, private-use, unassigned or separator code "
                "points but the space), not `/`, and not `.` or `..`; percent-encoded "
                "UTF-8 in a URL."
            ),
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "quota": {"type": "string"}},
        },
        "Names": {"type": "array", "items": {"anyOf": [{"type": "string"}, name]}},
        "Stored": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "required": ["id", "created"],
                        "properties": {"id": {"type": "string"}, "created": {"type": "boolean"}},
                    },
                ]
            },
        },
        "Message": message,
        "Counts": {
            "type": "object",
            "required": ["visible", "in_flight", "delayed", "bytes", "oldest", "newest"],
            "properties": {
                "visible": seconds,
                "in_flight": {**seconds, "description": "hidden, received at least once"},
                "delayed": {**seconds, "description": "hidden, never received"},
                "bytes": {**seconds, "description": "of the bodies stored"},
                "oldest": {**epoch, "description": "when the first message was put; 0: none"},
                "newest": {**epoch, "description": "when the last message was put; 0: none"},
            },
        },
        "QueueStats": {
            "type": "object",
            "required": [*counted, "oldest_age", "newest_age"],
            "properties": {
                **dict.fromkeys(counted, seconds),
                "oldest_age": age,
                "newest_age": age,
            },
        },
        "QueuesStats": {"type": "object", "additionalProperties": ref("QueueStats")},
        "AccountsStats": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["queues", *counted, "oldest_age", "newest_age"],
                "properties": {
                    **dict.fromkeys(["queues", *counted], seconds),
                    "oldest_age": age,
                    "newest_age": age,
                },
            },
        },
        **_subscription_schemas(),
        "Messages": {"type": "array", "items": {"anyOf": [{"type": "string"}, ref("Message")]}},
        "Batch": {
            "type": "array",
            "minItems": 1,
            "maxItems": limits.max_batch_messages,
            "items": entry,
        },
    }
