"""The OpenAPI 3.1 document of the REST API, built from the server's own limits.

Served at `GET /openapi.json`. Every route, parameter, body and error is here,
extensions included, so that clients can be generated and the API fuzzed
(`tests/test_openapi.py` runs schemathesis against a live server).
"""

from __future__ import annotations

from burrow.config import Limits
from burrow.frontends.openapi_schemas import Schema, ref, schemas
from burrow.frontends.v1_bodies import BASE64
from burrow.frontends.v1_params import MAX_DIGITS, VIEWS

JSON = "application/json"
OCTETS = "application/octet-stream"
ERRORS = {
    400: "bad input: number, id, encoding, parameter or body",
    401: "no, unknown or revoked credentials",
    403: "the credentials do not allow this",
    404: "unknown path, nothing matched, or no such message",
    405: "a method this path does not have (any not listed here); `Allow` names those it has",
    408: "the request's headers or body did not arrive in time",
    409: "a quota would be exceeded (`quota` names it); a queue's info: not stored",
    413: "body or batch too large",
    429: "over a rate limit; `Retry-After` says in how many seconds to try again",
    501: "a transfer coding other than chunked (`Transfer-Encoding: gzip, chunked`)",
    503: "the storage backend is unavailable",
}
# The headers some errors always carry.
ERROR_HEADERS = {
    401: "WWW-Authenticate",
    405: "Allow",
    429: "Retry-After",
}
# Every call below /v1.0 may answer these; the calls that take a body add 409 and 413.
# (408 and 501 come from the HTTP layer, before the path is read: every call has them.)
V1_ERRORS = (400, 401, 403, 404, 405, 408, 429, 501, 503)
# `/`, `/health` and `/openapi.json` take no credentials and no query (but `/health?live`).
META_ERRORS = (400, 405, 408, 501)
LARGEST_NUMBER = 10**MAX_DIGITS - 1  # of a query parameter
TRUE_OR_FALSE = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"  # a flag, in any letter case


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _param(name: str, where: str, schema: Schema, description: str) -> Schema:
    required = where == "path"
    return {"name": name, "in": where, "required": required, "schema": schema,
            "description": description}  # fmt: skip


def _unused(param: Schema) -> Schema:
    """A filter v1.0 accepted on a call it does not change: still taken (and checked)."""
    description = "Has no effect here; accepted (and checked) as v1.0 accepted it."
    return {**param, "deprecated": True, "description": description}


def _error(status: int) -> Schema:
    response = _json(ERRORS[status], ref("Error"))
    if status in ERROR_HEADERS:
        header = {"required": True, "schema": {"type": "string"}}
        response["headers"] = {ERROR_HEADERS[status]: header}
    return response


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(status): _error(status) for status in statuses}


def _operation(
    summary: str,
    params: list[Schema],
    responses: dict[str, Schema],
    *errors: int,
    body: Schema | None = None,
    body_required: bool = True,
) -> Schema:
    all_responses = {**responses, **_errors(*V1_ERRORS, *errors)}
    operation: Schema = {"summary": summary, "parameters": params, "responses": all_responses}
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": body}
    return operation


def _meta(summary: str, schema: Schema) -> Schema:
    responses = {"200": _json(summary, schema), **_errors(*META_ERRORS)}
    return {"get": {"summary": summary, "security": [], "responses": responses}}


def _health() -> Schema:
    """`/health`: readiness (the backend's report; 503 when failing), or with `live`,
    liveness (the process answers: always 200)."""
    report = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "degraded", "failing", "live"]},
            "reason": {"type": "string", "description": "why it is degraded or failing"},
        },
    }
    live = _param(
        "live", "query", {"type": "string", "enum": [""]},
        "Given (with no value): only whether the process answers, without asking the backend.",
    )  # fmt: skip
    responses = {
        "200": _json("ok, or degraded (serving with a part missing); with live: live", report),
        "503": _json("failing: the backend cannot serve, or writes are not acknowledged", report),
        **_errors(*META_ERRORS),
    }
    summary = "Health, for load balancers (readiness; with live, liveness)"
    return {
        "get": {
            "summary": summary,
            "security": [],
            "parameters": [{**live, "allowEmptyValue": True}],
            "responses": responses,
        }
    }


def _whoami() -> Schema:
    """`GET /whoami`: the token's key, role and accounts (the dashboard's; docs/dashboard.md)."""
    nullable = {"type": ["string", "null"]}
    me = {
        "type": "object",
        "required": ["key", "role", "accounts"],
        "properties": {
            "key": {**nullable, "description": "the key's id; null on a server without keys"},
            "role": {"enum": ["reader", "writer", "admin", None]},
            "accounts": {"type": "array", "items": {"type": "string"}},
        },
    }
    get = {
        "summary": "Who the token is: its key's id, role and accounts",
        "security": [{"token": []}, {"bearer": []}, {}],
        "responses": {"200": _json("the key", me), **_errors(400, 401, 405, 408, 429, 501)},
    }
    return {"get": get}


def _metrics() -> Schema:
    """`GET /metrics`: Prometheus' text format (docs/monitoring.md)."""
    text = {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}
    get = {
        "summary": "Metrics, in Prometheus' text format (an admin key or the metrics token)",
        "security": [{"token": []}, {"bearer": []}, {}],
        "responses": {
            "200": {"description": "every metric (docs/monitoring.md)", "content": text},
            **_errors(400, 401, 403, 405, 408, 429, 501),
        },
    }
    return {"get": get}


def _sign() -> Schema:
    """`POST /sign`: a signed URL on the rights of the caller's token (docs/security.md)."""
    order = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "methods"],
        "properties": {
            "path": {
                "type": "string",
                "pattern": "^/v1\\.0/[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/.*)?$",
                "maxLength": 4096,
                "description": "the path prefix the URL is good for: an account, queue or message",
            },
            "methods": {
                "type": "array",
                "minItems": 1,
                "maxItems": 4,
                "items": {"enum": ["GET", "PUT", "POST", "DELETE"]},
            },
            "expires": {"type": "integer", "minimum": 1, "default": 3600},
        },
    }
    url = {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}
    errors = _errors(400, 401, 403, 405, 408, 413, 429, 501, 503)
    post = {
        "summary": "Sign a URL within the token's rights (a token only, never a signed URL)",
        "security": [{"token": []}, {"bearer": []}],
        "requestBody": {"required": True, "content": {JSON: {"schema": order}}},
        "responses": {"200": _json("the signed URL's path and query", url), **errors},
    }
    return {"post": post}


def _delete_listed(queue: list[Schema], message_detail: Schema, limits: Limits) -> Schema:
    """`POST …/-/delete`: messages deleted by id (several claimed ones acknowledged)."""
    detail = {**message_detail, "description": f"{message_detail['description']} Default id."}
    target = {
        "anyOf": [
            ref("Id"),
            {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {"id": ref("Id"), "receipt": {"anyOf": [ref("Id"), {"enum": [""]}]}},
            },
        ]
    }
    items = {"type": "array", "items": target, "minItems": 1,
             "maxItems": limits.max_batch_messages}  # fmt: skip
    answer = {
        "200": _json("the messages deleted, in the order given (none there: [])", ref("Messages")),
        "204": {"description": "detail=none"},
    }
    summary = "Delete messages by id, each with its receipt or none (extension)"
    operation = _operation(summary, [*queue, detail], answer, 413, body={JSON: {"schema": items}})
    return {"post": operation}


def _info(queue: list[Schema], limits: Limits) -> Schema:
    """`/v1.0/{a}/{q}/-/info`: the queue's info document (an extension), written by
    compare-and-set: `If-Match` names the document it replaces by its `ETag`."""
    binary = {"type": "string", "format": "binary"}
    tag = {"ETag": {"required": True, "schema": {"type": "string"},
                    "description": "the document's tag (its SHA-256, quoted)"}}  # fmt: skip
    stored = {
        "description": "the info document",
        "headers": tag,
        "content": {OCTETS: {"schema": binary}},
    }
    if_match = _param(
        "If-Match", "header", {"type": "string"},
        "Store only if the queue's info is the one of this ETag (* for any); without it, "
        "only if the queue has none.",
    )  # fmt: skip
    body = {OCTETS: {"schema": {**binary, "maxLength": limits.max_body_bytes}}}
    return {
        "get": _operation("The queue's info (extension)", queue, {"200": stored}),
        "put": _operation(
            "Store the queue's info, compared and set (extension)",
            [*queue, if_match],
            {"204": {"description": "stored", "headers": tag}},
            409,
            413,
            body=body,
            body_required=False,  # none is an empty document
        ),
        "delete": _operation(
            "Forget the queue's info; its messages stay (extension)",
            queue,
            {"204": {"description": "forgotten"}},
        ),
    }


def _subscriptions(
    queue: list[Schema], names: list[Schema], names_answer: dict[str, Schema]
) -> dict[str, Schema]:
    """`/v1.0/{a}/{q}/-/subscriptions` and one subscription below it (an extension, see
    `burrow.subscriptions`)."""
    one = [*queue, _param("name", "path", ref("Id"), "The subscription's name.")]
    answer = _json("the subscription (the webhook's secret only if the server made it)",
                   ref("Subscription"))  # fmt: skip
    ack = {**_param("ack", "query", ref("Id"), "The message handled: the cursor moves to it."),
           "required": True}  # fmt: skip
    body = {JSON: {"schema": ref("SubscriptionOrder")}}
    moved = {"204": {"description": "the cursor moved"}}
    document = _param(
        "document", "query", {"type": "string", "pattern": TRUE_OR_FALSE, "default": "false"},
        "true (admins only, for proxies): the subscription's document as stored, secret "
        "and all, with its ETag; a PUT stores its body so, compared and set by If-Match "
        "as a queue's info.",
    )  # fmt: skip
    if_match = _param(
        "If-Match", "header", {"type": "string"},
        "With document=true: store only if the stored document has this ETag.",
    )  # fmt: skip
    shown = {**answer["content"], OCTETS: {"schema": {"type": "string", "format": "binary"}}}
    one_shown = {"description": "the subscription; with document=true, as stored", "content": shown}
    stored = {"204": {"description": "document=true: stored"}}
    return {
        "/v1.0/{account}/{queue}/-/subscriptions": {
            "get": _operation("The queue's subscriptions, by name (extension)", names, names_answer)
        },
        "/v1.0/{account}/{queue}/-/subscriptions/{name}": {
            "get": _operation("One subscription (extension)", [*one, document], {"200": one_shown}),
            "put": _operation(
                "Create (201) or change (200) a subscription: an empty body is the defaults",
                [*one, document, if_match],
                {"201": answer, "200": answer, **stored},
                409,
                413,
                body=body,
                body_required=False,
            ),
            "post": _operation("Acknowledge: move the cursor (extension)", [*one, ack], moved),
            "delete": _operation(
                "Delete the subscription; no message is touched (extension)",
                one,
                {"204": {"description": "deleted"}},
            ),
        },
    }


def document(limits: Limits) -> Schema:
    """The whole document; the maximums are this server's."""
    ident = ref("Id")
    seconds = {"type": "integer", "minimum": 0}
    ttl = _param("ttl", "query", {**seconds, "maximum": limits.max_ttl}, "Seconds to live.")
    hide = _param("hide", "query", {**seconds, "maximum": limits.max_hide}, "Seconds hidden.")
    count = {"type": "integer", "minimum": 1, "maximum": limits.max_limit}
    page = limits.default_limit
    limit = _param(
        "limit", "query", {**count, "default": page},
        f"At most this many items; without it, the first {page} (the server's default_limit): "
        "page on with marker.",
    )  # fmt: skip
    pop_limit = _param(
        "limit", "query", count,
        f"At most this many messages; without it, the first {page} (the server's "
        "default_limit) when the answer returns them, and every match at detail=none (a purge).",
    )  # fmt: skip
    delete_limit = _param("limit", "query", count, "At most this many; without it, every match.")
    marker = _param("marker", "query", {"type": "string"}, "Start strictly after this id.")
    name_detail = _param(
        "detail", "query", {"type": "string", "enum": ["none", "id", "all"]},
        "none, id (names) or all ({id} objects).",
    )  # fmt: skip
    stats_detail = "; stats (an extension): their stats instead"
    listing_detail = _param(
        "detail", "query", {"type": "string", "enum": ["none", "id", "all", "stats"]},
        f"none, id (names) or all ({{id}} objects){stats_detail}.",
    )  # fmt: skip
    message_detail = _param(
        "detail", "query", {"type": "string", "enum": list(VIEWS)},
        "How much of each message to return; full (an extension): all, and its receives, "
        "latest receipt, sent and first received times and meta.",
    )  # fmt: skip
    match_hidden = _param(
        "match_hidden", "query",
        {"type": "string", "pattern": TRUE_OR_FALSE, "default": "false"},
        "Include hidden messages: true or false, in any letter case (v1.0 clients send True).",
    )  # fmt: skip
    wait = _param(
        "wait", "query", {**seconds, "maximum": limits.max_wait},
        "Long poll: wait up to this many seconds for a match.",
    )  # fmt: skip
    info = _param(
        "info", "query", {"type": "string", "pattern": TRUE_OR_FALSE, "default": "false"},
        "true: the queues that have info instead (an extension), in the order of their first.",
    )  # fmt: skip
    receipt = _param(
        "receipt", "query", {"anyOf": [ident, {"enum": [""]}]},
        "An extension. On a queue, a receive: each message taken counts a receive and keeps "
        "this receipt. On one message: act only if its latest receive has this receipt "
        "(none has the empty one), else 404.",
    )  # fmt: skip
    meta = _param(
        "meta", "query", {"type": "string", "pattern": f"^{BASE64.pattern}$"},
        "An extension: what the caller keeps with the message besides its body, in base64.",
    )  # fmt: skip
    batch_detail = _param(
        "detail", "query", {"type": "string", "enum": ["id", "all"]},
        "id (the ids) or all ({id, created} objects).",
    )  # fmt: skip
    quotas = [
        _param(name, "query", {"type": "integer", "minimum": 0, "maximum": LARGEST_NUMBER},
               f"A stricter {what} than the server's (0 = the server's), e.g. from a proxy.")
        for name, what in (
            ("max_queue_messages", "cap on messages in the queue"),
            ("max_account_queues", "cap on queues in the account"),
            ("max_account_bytes", "cap on body bytes in the account"),
        )
    ]  # fmt: skip
    subscription = _param(
        "subscription", "query", ident,
        "An extension: the messages after this subscription's cursor, hidden ones too; "
        "marker and match_hidden have no effect with it, and detail=stats answers the "
        "stats all the same. The cursor stays.",
    )  # fmt: skip
    stream = _param(
        "stream", "query", {"type": "string", "enum": ["sse", "ws"]},
        "An extension (docs/push.md#streams): sse answers a text/event-stream of the "
        "queue's messages as they come, hidden ones too, after Last-Event-ID, marker or "
        "the subscription's cursor; ws, with a WebSocket upgrade, the same and commands. "
        "No other parameter but marker or subscription goes with it.",
    )  # fmt: skip
    account = [_param("account", "path", ident, "The account (tenant).")]
    queue = [*account, _param("queue", "path", ident, "The queue.")]
    message = [*queue, _param("message", "path", ident, "The message id.")]
    unused = [_unused(match_hidden), _unused(wait)]
    name_delete = [delete_limit, marker, name_detail, *unused]
    queue_filters = [marker, match_hidden, wait, message_detail]
    listing = [limit, marker, listing_detail, *unused]
    queue_listing = [*listing, info]
    all_subscriptions = _param(
        "subscriptions", "query", info["schema"],
        "true: instead, every subscription of the store as ACCOUNT/QUEUE/NAME, in that "
        "order (an extension, for proxies); marker is then one of those, and only limit "
        "(max_limit at most) goes with it.",
    )  # fmt: skip
    queue_view = _param(
        "detail", "query", {"type": "string", "enum": [*VIEWS, "stats"]},
        f"{message_detail['description'][:-1]}; stats (an extension): the queue's stats.",
    )  # fmt: skip
    one_filters = [message_detail, _unused(delete_limit), _unused(marker), *unused]

    none: dict[str, Schema] = {"204": {"description": "detail=none, or nothing to return"}}
    names = {"200": _json("names", ref("Names")), **none}
    either = "detail=stats: {}".format
    names_or_stats = {
        "200": _json(either("each account's"), {"anyOf": [ref("Names"), ref("AccountsStats")]}),
        **none,
    }
    queues_or_stats = {
        "200": _json(either("each queue's"), {"anyOf": [ref("Names"), ref("QueuesStats")]}),
        **none,
    }
    messages_or_stats = {
        "200": _json(either("the queue's"), {"anyOf": [ref("Messages"), ref("QueueStats")]}),
        **none,
    }
    messages = {"200": _json("messages", ref("Messages")), **none}
    binary = {"type": "string", "format": "binary"}
    one: dict[str, Schema] = {
        "200": {
            "description": "the message; with detail=body or id, raw bytes",
            "content": {JSON: {"schema": ref("Message")}, OCTETS: {"schema": binary}},
        },
        **none,
    }
    created = {"201": _json("ids in input order (detail=all: with created)", ref("Stored"))}
    put_one = {"201": {"description": "created"}, "204": {"description": "replaced"}}
    raw_body = {OCTETS: {"schema": {**binary, "maxLength": limits.max_body_bytes}}}
    batch_body = {JSON: {"schema": ref("Batch")}}
    strings = {"type": "array", "items": {"type": "string"}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Burrow",
            "version": "1.0",
            "description": (
                "A multi-tenant message queue service: the v1.0 REST API. A listing, claim or "
                f"pop without `limit` answers the first {page} matches (default_limit); page "
                "on with `marker`. A method a path does not list answers 405."
            ),
        },
        "security": [{"token": []}, {"bearer": []}, {}],
        "paths": {
            "/": _meta("API versions", strings),
            "/health": _health(),
            "/openapi.json": _meta("This document", {"type": "object"}),
            "/sign": _sign(),
            "/whoami": _whoami(),
            "/metrics": _metrics(),
            "/v1.0": {
                "get": _operation(
                    "List accounts (admin); with subscriptions=true, every subscription",
                    [*listing, all_subscriptions],
                    names_or_stats,
                ),
                "delete": _operation("Delete all in matched accounts (admin)", name_delete, names),
            },
            "/v1.0/{account}": {
                "get": _operation(
                    "List the account's queues (holding messages, or with info=true having info)",
                    account + queue_listing,
                    queues_or_stats,
                ),
                "delete": _operation("Delete matched queues", account + name_delete, names),
            },
            "/v1.0/{account}/{queue}": {
                "get": _operation(
                    "List messages (fan-out); with subscription, those after its cursor",
                    [*queue, limit, marker, match_hidden, wait, queue_view, subscription, stream],
                    messages_or_stats,
                ),
                "post": _operation(
                    "Update matched messages (a claim with hide; with receipt, a receive)",
                    [*queue, limit, *queue_filters, ttl, hide, receipt],
                    messages,
                ),
                "delete": _operation(
                    "Delete matched (a pop)", [*queue, pop_limit, *queue_filters], messages
                ),
                "put": _operation(
                    "Batch insert (extension)",
                    [*queue, ttl, hide, batch_detail, *quotas],
                    created,
                    409,
                    413,
                    body=batch_body,
                ),
            },
            "/v1.0/{account}/{queue}/{message}": {
                "get": _operation("One message, hidden or not", [*message, *one_filters], one),
                "put": _operation(
                    "Create or replace",
                    [*message, ttl, hide, *quotas, meta],
                    put_one,
                    409,
                    413,
                    body=raw_body,
                    body_required=False,  # none is an empty message, as in v1.0
                ),
                "post": _operation(
                    "Update attributes (with receipt: of that receive only)",
                    [*message, ttl, hide, *one_filters, receipt],
                    one,
                ),
                "delete": _operation(
                    "Delete the message (with receipt: while that receive is its latest)",
                    [*message, *one_filters, receipt],
                    one,
                ),
            },
            "/v1.0/{account}/{queue}/-/counts": {
                "get": _operation(
                    "The queue's messages counted by state (extension)",
                    queue,
                    {"200": _json("counts (zeros for a queue with none)", ref("Counts"))},
                ),
            },
            "/v1.0/{account}/{queue}/-/delete": _delete_listed(queue, message_detail, limits),
            "/v1.0/{account}/{queue}/-/info": _info(queue, limits),
            **_subscriptions(queue, [*queue, *listing[:2], name_detail, *unused], names),
        },
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": schemas(limits, seconds),
        },
    }
