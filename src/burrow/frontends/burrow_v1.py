"""The Burrow REST API v1.0: wire format in, service calls out, wire format back.

Paths below `/v1.0`: `[]` all accounts, `[a]` one account, `[a, q]` one queue,
`[a, q, m]` one message. Extensions (docs/api.md), each where v1.0 answers 400, 404 or
405: `PUT /v1.0/{a}/{q}` inserts a JSON batch; what a proxy needs to store through
this server (receives with a `receipt`, calls on one receive, `meta`, `detail=full`,
the `info=true` listing) are parameters v1.0 refused; a queue's counts and info are
`[a, q, "-", "counts"]` and `[a, q, "-", "info"]`, four segments, which v1.0 never had.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from burrow.auth import Credentials, Guard, Request, covering_method
from burrow.codec import (
    body_fields,
    full_fields,
    info_tag,
    message_fields,
)
from burrow.errors import InvalidRequest, MethodNotAllowed, NoMatch, NotFound
from burrow.feed import open_feed
from burrow.frontends.asgi import OCTETS, Answer, Receive, Response, Scope, headers, read_body
from burrow.frontends.sse import EventStream
from burrow.frontends.v1_bodies import (
    MAX_SIGN_BYTES,
    base64_field,
    batch_draft,
    batch_list,
    delete_targets,
    sign_order,
    subscription_order,
)
from burrow.keys import SIGNATURE_PARAMS
from burrow.metrics_recorder import ROUTE
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Detail,
    Draft,
    Filters,
    Message,
    Quota,
)
from burrow.service import Service

NAME_DETAILS = (Detail.NONE, Detail.ID, Detail.ALL)
# `GET … ?detail=stats` (an extension): a queue's stats, or each queue's or account's.
STATS = "stats"
DETAILS = {detail.value: detail for detail in Detail}  # quicker than calling the enum
# How a message may be rendered (`detail`): the details, and `full` (an extension:
# `all` and the rest of a `Message`, for a proxy storing through this server).
FULL = "full"
VIEWS: dict[str, str] = {**DETAILS, FULL: FULL}  # each spelling's one object (`is` tells)
DETAIL_OF_VIEW = {**DETAILS, FULL: Detail.ALL}  # what the service is asked for
# v1.0 read these from every call but a PUT, and its client sends whichever its caller
# gives: each is accepted wherever v1.0 took it, and checked even where it has no effect.
FILTERS = frozenset({"limit", "marker", "match_hidden", "detail", "wait"})
MATCHING = frozenset({"limit", "marker", "match_hidden"})  # what `Filters` holds
ATTRIBUTES = frozenset({"ttl", "hide"})
# A caller (a proxy in front of this server) may ask for quotas stricter than ours.
# (In a fixed order, so that of several bad ones the error names the same each time.)
QUOTA_PARAMS = ("max_queue_messages", "max_account_queues", "max_account_bytes")
QUOTAS = frozenset(QUOTA_PARAMS)
BATCH_DETAILS = (Detail.ID, Detail.ALL)
NO_PARAMS: frozenset[str] = frozenset()
NO_CONTENT = Response(204)
CREATED = Response(201)
NO_CHANGE = Attributes()
# The headers every request is read for (token and zone), gathered in one pass.
HEADERS = frozenset({b"x-auth-token", b"authorization", b"x-burrow-zone"})
IF_MATCH = frozenset({b"if-match"})
LAST_EVENT_ID = frozenset({b"last-event-id"})
# The extension resources of a queue: `/v1.0/{a}/{q}/-/{resource}`; and one subscription,
# `/v1.0/{a}/{q}/-/subscriptions/{name}` (the shape `SUBSCRIPTION`).
SUBSCRIPTIONS = "subscriptions"
DELETE = "delete"  # `POST …/-/delete`: messages deleted by id, several at once
QUEUE_RESOURCES = frozenset({"counts", "info", DELETE, SUBSCRIPTIONS})
SUBSCRIPTION = "subscription"
# `?document=true` on one subscription: its stored document as it is (for admins only: it
# holds the webhook's secret), which a proxy in front of this server reads and writes.
DOCUMENT = "document"
DOCUMENT_PARAMS = frozenset({DOCUMENT})
STREAM_PARAMS = frozenset({"stream", "marker", SUBSCRIPTION})
# Each shape of path (`_shape`) as /metrics names its route.
SHAPE_ROUTES: dict[int | str, str] = {
    0: "/v1.0",
    1: "/v1.0/{account}",
    2: "/v1.0/{account}/{queue}",
    3: "/v1.0/{account}/{queue}/{message}",
    **{resource: f"/v1.0/{{account}}/{{queue}}/-/{resource}" for resource in QUEUE_RESOURCES},
    SUBSCRIPTION: "/v1.0/{account}/{queue}/-/subscriptions/{name}",
}


MAX_DIGITS = 12  # of a number in the query (larger than any limit allows)


class Params:
    """Query parameters of one request, checked against what its route accepts."""

    def __init__(self, raw: dict[str, str], allowed: frozenset[str]) -> None:
        self._raw = raw
        self.only(allowed)

    def only(self, allowed: frozenset[str]) -> None:
        """Refuse (400) any parameter but `allowed` (some routes take fewer in one mode)."""
        if not allowed.issuperset(self._raw):
            unknown = self._raw.keys() - allowed
            raise InvalidRequest(
                f"unknown query parameter(s) {', '.join(sorted(unknown))}; "
                f"allowed here: {', '.join(sorted(allowed)) or 'none'}"
            )

    def integer(self, name: str) -> int | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
            raise InvalidRequest(f"{name} must be a non-negative integer, not {value!r}")
        return int(value)

    def flag(self, name: str) -> bool:
        """A boolean: `true` or `false` in any letter case (v1.0 clients send `True`)."""
        value = self._raw.get(name)
        if value is None:
            return False
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise InvalidRequest(f"{name} must be true or false, not {value!r}")
        return lowered == "true"

    def filters(self) -> Filters:
        if MATCHING.isdisjoint(self._raw):
            return ALL_ITEMS
        return Filters(self.integer("limit"), self._raw.get("marker"), self.flag("match_hidden"))

    def name_filters(self) -> Filters:
        """Filters of an account or queue listing, which `match_hidden` and `wait` do not
        change (checked all the same)."""
        self.wait()
        filters = self.filters()
        return Filters(filters.limit, filters.marker) if filters.match_hidden else filters

    def check_unused_filters(self) -> None:
        """A call on one message has no use for filters; a v1.0 client may still send them."""
        self.filters()
        self.wait()

    def attributes(self) -> Attributes:
        if ATTRIBUTES.isdisjoint(self._raw):
            return NO_CHANGE
        return Attributes(self.integer("ttl"), self.integer("hide"))

    def wait(self) -> int:
        return self.integer("wait") or 0

    def quota(self) -> Quota:
        if QUOTAS.isdisjoint(self._raw):
            return NO_QUOTA
        return Quota(**{name: self.integer(name) or 0 for name in QUOTA_PARAMS})

    def detail(self, default: Detail, choices: tuple[Detail, ...] = tuple(Detail)) -> Detail:
        return DETAILS[self.view(default, choices)]

    def view(self, default: str, choices: tuple[str, ...] = tuple(VIEWS)) -> str:
        """How to render messages: a `Detail`, or `FULL`."""
        value = self._raw.get("detail")
        if value is None:
            return default
        if value not in choices:
            raise InvalidRequest(f"detail must be one of {', '.join(choices)}, not {value!r}")
        return VIEWS[value]

    def text(self, name: str) -> str | None:
        return self._raw.get(name)

    def stats(self) -> bool:
        """Whether the call asks for stats (`detail=stats`) rather than a listing."""
        return self._raw.get("detail") == STATS

    def meta(self) -> bytes:
        """A single PUT's `meta`: base64 as RFC 4648 writes it, padded."""
        value = self._raw.get("meta")
        return b"" if value is None else base64_field(value, "meta")


Handler = Callable[[Scope, Receive, list[str], Params], Awaitable[Answer]]


class BurrowV1:
    """Handles every request below `/v1.0`."""

    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard
        # (shape of path, method) → (handler, accepted query parameters); the shape is
        # the depth, or a queue's extension resource (`_shape`)
        self.routes: dict[tuple[int | str, str], tuple[Handler, frozenset[str]]] = {
            (0, "GET"): (self.get_accounts, FILTERS | {SUBSCRIPTIONS}),
            (0, "DELETE"): (self.delete_accounts, FILTERS),
            (1, "GET"): (self.get_queues, FILTERS | {"info"}),
            (1, "DELETE"): (self.delete_queues, FILTERS),
            (2, "GET"): (self.get_messages, FILTERS | {SUBSCRIPTION, "stream"}),
            (2, "POST"): (self.update_messages, FILTERS | ATTRIBUTES | {"receipt"}),
            (2, "DELETE"): (self.delete_messages, FILTERS),
            (2, "PUT"): (self.put_batch, ATTRIBUTES | QUOTAS | {"detail"}),
            (3, "GET"): (self.get_message, FILTERS),
            (3, "PUT"): (self.put_message, ATTRIBUTES | QUOTAS | {"meta"}),
            (3, "POST"): (self.update_message, FILTERS | ATTRIBUTES | {"receipt"}),
            (3, "DELETE"): (self.delete_message, FILTERS | {"receipt"}),
            ("counts", "GET"): (self.get_counts, NO_PARAMS),
            (DELETE, "POST"): (self.delete_listed_messages, frozenset({"detail"})),
            ("info", "GET"): (self.get_info, NO_PARAMS),
            ("info", "PUT"): (self.put_info, NO_PARAMS),
            ("info", "DELETE"): (self.delete_info, NO_PARAMS),
            (SUBSCRIPTIONS, "GET"): (self.get_subscriptions, FILTERS),
            (SUBSCRIPTION, "GET"): (self.get_subscription, DOCUMENT_PARAMS),
            (SUBSCRIPTION, "PUT"): (self.put_subscription, DOCUMENT_PARAMS),
            (SUBSCRIPTION, "POST"): (self.ack_subscription, frozenset({"ack"})),
            (SUBSCRIPTION, "DELETE"): (self.delete_subscription, NO_PARAMS),
        }

    async def handle(
        self, scope: Scope, receive: Receive, path: list[str], query: dict[str, str]
    ) -> Answer:
        shape = _shape(path)
        scope[ROUTE] = SHAPE_ROUTES[shape]
        method: str = scope["method"]
        route = self.routes.get((shape, method))
        if route is None:
            allowed = tuple(m for (known, m) in self.routes if known == shape)
            raise MethodNotAllowed(method, allowed)
        handler, accepted = route
        found = headers(scope, HEADERS)
        credentials = _credentials(scope, query, _token(found))
        account = path[0] if path else None
        if shape == SUBSCRIPTION and query.get(DOCUMENT, "").lower() == "true":
            account = None  # admitted as a call across accounts: admins only
        request = Request(credentials, method, account, _address(scope), _zone(found))
        self.service.admit(self.guard, request)
        return await handler(scope, receive, path, Params(query, accepted))

    async def sign(self, scope: Scope, receive: Receive, query: dict[str, str]) -> Response:
        """`POST /sign`: a signed URL on the rights of the request's token, which must
        itself allow every method asked for (docs/security.md)."""
        if scope["method"] != "POST":
            raise MethodNotAllowed(scope["method"], ("POST",))
        if query:
            raise InvalidRequest("this path takes no query parameters")
        body = await read_body(scope, receive, MAX_SIGN_BYTES, self.service.limits.body_timeout)
        prefix, methods, seconds = sign_order(body)
        request = token_request(scope, covering_method(methods), _prefix_account(prefix))
        key_id = self.service.admit(self.guard, request)
        url = self.guard.sign(key_id, methods, prefix, seconds)
        return Response.json({"url": url})

    # Accounts and queues ------------------------------------------------------

    async def get_accounts(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """The accounts holding messages; with `subscriptions=true`, every subscription
        (`_all_subscriptions`); with `detail=stats`, each account's stats (whatever
        `subscriptions` says, as `subscription=NAME` does for a queue's)."""
        if p.stats():
            p.flag(SUBSCRIPTIONS)
            return Response.json(await self.service.accounts_stats(p.name_filters()))
        detail = p.detail(Detail.ID, NAME_DETAILS)
        if p.flag(SUBSCRIPTIONS):
            return _names(await self._all_subscriptions(p.name_filters()), detail)
        return _names(await self.service.get_accounts(p.name_filters()), detail)

    async def delete_accounts(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.NONE, NAME_DETAILS)
        return _names(await self.service.delete_accounts(p.name_filters()), detail)

    async def get_queues(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """The account's queues holding messages, or with `info=true` those with info; or
        with `detail=stats`, the stats of those holding messages."""
        if p.stats():
            if p.flag("info"):
                raise InvalidRequest("detail=stats is of the queues holding messages: no info")
            found = await self.service.account_stats(path[0], p.name_filters())
            return Response.json({queue: stats.as_json() for queue, stats in found.items()})
        detail = p.detail(Detail.ID, NAME_DETAILS)
        listing = self.service.list_queue_infos if p.flag("info") else self.service.get_queues
        return _names(await listing(path[0], p.name_filters()), detail)

    async def delete_queues(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.NONE, NAME_DETAILS)
        return _names(await self.service.delete_queues(path[0], p.name_filters()), detail)

    # Messages of a queue -----------------------------------------------------------

    async def get_messages(self, s: Scope, r: Receive, path: list[str], p: Params) -> Answer:
        """A listing; with `subscription`, the messages after its cursor; with `stream`,
        a stream of them; or with `detail=stats`, the queue's stats (the other
        parameters checked, of no effect)."""
        if p.text("stream") is not None:
            return await self._event_stream(s, r, path, p)
        name = p.text(SUBSCRIPTION)
        if p.stats():
            p.check_unused_filters()
            if name is not None:
                self.service.check_id("subscription", name)
            return Response.json((await self.service.queue_stats(path[0], path[1])).as_json())
        if name is not None:
            return await self._read_subscription(path, name, p)
        view = p.view(Detail.ALL)
        found = await self.service.get_messages(
            path[0], path[1], p.filters(), p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return _messages(found, view)

    async def _event_stream(self, s: Scope, r: Receive, path: list[str], p: Params) -> EventStream:
        """`?stream=sse`: the queue's messages after `Last-Event-ID`, else `marker` or
        the `subscription`'s cursor, else from its start, as they come; a writer's
        stream of a subscription moves its cursor (docs/push.md#streams)."""
        p.only(STREAM_PARAMS)
        if p.text("stream") != "sse":
            raise InvalidRequest("stream must be sse here (ws: with a WebSocket upgrade)")
        name = stream_subscription(p.text("marker"), p.text(SUBSCRIPTION))
        last = headers(s, LAST_EVENT_ID).get(b"last-event-id")
        marker = last.decode("latin-1") if last else p.text("marker")
        acks = name is not None and may_write(self.guard, s, path[0])
        feed = await open_feed(self.service, path[0], path[1], marker, name, acks)
        return EventStream(feed, r, self.service.limits_for(path[0]).stream_heartbeat)

    async def update_messages(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """An update of the matched messages; with `receipt`, a receive."""
        view = p.view(Detail.NONE)
        attributes = p.attributes()
        receipt = self._receipt(p)
        if receipt is not None:
            attributes = Attributes(attributes.ttl, attributes.hide, receipt)
        updated = await self.service.update_messages(
            path[0], path[1], attributes, p.filters(), p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return _messages(updated, view)

    async def delete_messages(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        view = p.view(Detail.NONE)
        deleted = await self.service.delete_messages(
            path[0], path[1], p.filters(), p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return _messages(deleted, view)

    async def delete_listed_messages(
        self, s: Scope, r: Receive, path: list[str], p: Params
    ) -> Response:
        """`POST …/-/delete`: the listed messages deleted (docs/api.md); answers those
        deleted in `detail` (`id` unless given), leaving out what was not there."""
        view = p.view(Detail.ID)
        limits = self.service.limits_for(path[0])
        body = await read_body(s, r, limits.max_batch_bytes, limits.body_timeout)
        deleted = await self.service.delete_listed_messages(path[0], path[1], delete_targets(body))
        return _messages(deleted, view)

    async def put_batch(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        defaults, detail, quota = p.attributes(), p.detail(Detail.ID, BATCH_DETAILS), p.quota()
        limits = self.service.limits_for(path[0])
        body = await read_body(s, r, limits.max_batch_bytes, limits.body_timeout)
        drafts = [batch_draft(item, defaults) for item in batch_list(body)]
        stored = await self.service.put_messages(path[0], path[1], drafts, quota)
        if detail is Detail.ALL:
            return Response.json([{"id": i, "created": created} for i, created in stored], 201)
        return Response.json([i for i, _ in stored], 201)

    # One message ---------------------------------------------------------------------

    async def get_message(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        view = p.view(Detail.ALL)
        p.check_unused_filters()
        return _one(await self.service.get_message(*path), view)

    async def put_message(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        attributes = p.attributes()
        limits = self.service.limits_for(path[0])
        body = await read_body(s, r, limits.max_body_bytes, limits.body_timeout)
        draft = Draft(body, path[2], attributes.ttl, attributes.hide, p.meta())
        created = await self.service.put_message(path[0], path[1], draft, p.quota())
        return CREATED if created else NO_CONTENT

    async def update_message(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """An update; with `receipt`, only of that receive of the message."""
        view = p.view(Detail.NONE)
        p.check_unused_filters()
        updated = await self.service.update_message(
            path[0], path[1], path[2], p.attributes(), self._receipt(p)
        )
        return _one(updated, view)

    async def delete_message(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """A delete; with `receipt`, only while that receive is the message's latest."""
        view = p.view(Detail.NONE)
        p.check_unused_filters()
        deleted = await self.service.delete_message(path[0], path[1], path[2], self._receipt(p))
        return _one(deleted, view)

    def _receipt(self, p: Params) -> str | None:
        """The `receipt` parameter: an id, or empty (which names no receive)."""
        receipt = p.text("receipt")
        return self.service.check_id("receipt", receipt) if receipt else receipt

    # A queue's extension resources -------------------------------------------------

    async def get_counts(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        counts = await self.service.count_messages(path[0], path[1])
        return Response.json(dataclasses.asdict(counts))

    async def get_info(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        info = await self.service.get_queue_info(path[0], path[1])
        if info is None:
            raise NotFound("the queue has no info")
        return _document(info)

    async def put_info(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """Store the body as the queue's info (see `_compare_and_set`)."""
        account, queue, service = path[0], path[1], self.service
        return await self._compare_and_set(
            s,
            r,
            account,
            lambda: service.get_queue_info(account, queue),
            lambda info, expected: service.set_queue_info(account, queue, info, expected),
        )

    async def _compare_and_set(
        self,
        s: Scope,
        r: Receive,
        account: str,
        get: Callable[[], Awaitable[bytes | None]],
        store: Callable[[bytes, bytes | None], Awaitable[bool]],
    ) -> Response:
        """Store the body as a document (a queue's info, a subscription's) only if there is
        none; with `If-Match`, only if the stored one is the one of that tag (`*`: any).
        409 when not stored."""
        limits = self.service.limits_for(account)
        document = await read_body(s, r, limits.max_body_bytes, limits.body_timeout)
        wanted = headers(s, IF_MATCH).get(b"if-match")
        expected = None
        if wanted is not None:
            expected = await get()
            tag = wanted.decode("latin-1").strip()
            if expected is None or tag not in ("*", info_tag(expected)):
                return _not_stored("the stored document is not the one If-Match names")
        if not await store(document, expected):
            return _not_stored("the document changed meanwhile, or there is one already")
        return Response(204, headers=[(b"etag", info_tag(document).encode())])

    async def delete_info(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        if not await self.service.delete_queue_info(path[0], path[1]):
            raise NotFound("the queue has no info")
        return NO_CONTENT

    # Subscriptions (`burrow.subscriptions`) ---------------------------------------------

    async def _read_subscription(self, path: list[str], name: str, p: Params) -> Response:
        """After the cursor, hidden messages too: `marker` and `match_hidden` are checked
        as for any listing and have no effect."""
        view = p.view(Detail.ALL)
        limit = p.filters().limit
        found = await self.service.subscriptions.read(
            path[0], path[1], name, limit, p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return _messages(found, view)

    async def get_subscriptions(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.ID, NAME_DETAILS)
        names = await self.service.subscriptions.names(path[0], path[1], p.name_filters())
        return _names(names, detail)

    async def get_subscription(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """The subscription as the API shows it; with `document=true`, as stored."""
        if p.flag(DOCUMENT):
            stored = await self.service.subscriptions.document(path[0], path[1], path[4])
            if stored is None:
                raise NotFound(f"no subscription {path[4]!r} on this queue")
            return _document(stored)
        subscription = await self.service.subscriptions.get(path[0], path[1], path[4])
        return Response.json(subscription.as_json())

    async def put_subscription(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """Create (201) or change (200) the subscription; the answer shows the webhook's
        secret when the server made it (the only time it is shown). With `document=true`,
        the body is the stored document, compared and set (`_compare_and_set`)."""
        account, queue, name = path[0], path[1], path[4]
        if p.flag(DOCUMENT):
            subscriptions = self.service.subscriptions
            return await self._compare_and_set(
                s,
                r,
                account,
                lambda: subscriptions.document(account, queue, name),
                lambda new, old: subscriptions.store_document(account, queue, name, new, old),
            )
        limits = self.service.limits_for(account)
        body = await read_body(s, r, limits.max_body_bytes, limits.body_timeout)
        start, webhook = subscription_order(body)
        subscription, created = await self.service.subscriptions.create(
            account, queue, name, start, webhook
        )
        made_secret = webhook is not None and not webhook.secret
        return Response.json(subscription.as_json(secret=made_secret), 201 if created else 200)

    async def _all_subscriptions(self, filters: Filters) -> list[str]:
        """Every subscription of the store as `ACCOUNT/QUEUE/NAME` (ids hold no `/`), in
        order, after `marker` (one of those), a page of at most `limit`."""
        limits = self.service.limits
        filters = self.service.check_filters(filters, limits)
        after = None
        if filters.marker is not None:
            parts = filters.marker.split("/")
            if len(parts) != 3:
                raise InvalidRequest("marker must be ACCOUNT/QUEUE/NAME with subscriptions=true")
            after = (parts[0], parts[1], parts[2])
        found = await self.service.subscriptions.page(after, filters.limit or limits.default_limit)
        if not found:
            raise NoMatch("subscriptions")
        return ["/".join(key) for key in found]

    async def ack_subscription(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """`?ack=ID`: the cursor moves to that message (what the reader has handled)."""
        message_id = p.text("ack")
        if message_id is None:
            raise InvalidRequest("a POST to a subscription acknowledges: ?ack=MESSAGE_ID")
        await self.service.subscriptions.ack(path[0], path[1], path[4], message_id)
        return NO_CONTENT

    async def delete_subscription(
        self, s: Scope, r: Receive, path: list[str], p: Params
    ) -> Response:
        await self.service.subscriptions.delete(path[0], path[1], path[4])
        return NO_CONTENT


# Rendering --------------------------------------------------------------------------


def _credentials(scope: Scope, query: dict[str, str], token: str | None) -> Credentials:
    """The request's token, and its signed URL's parameters (taken out of `query`) if any."""
    if "sig" not in query:
        return Credentials(token, "")
    signed = {name: query.pop(name) for name in SIGNATURE_PARAMS if name in query}
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return Credentials(token, raw_path, signed)


def _prefix_account(prefix: str) -> str:
    """The account of a `/v1.0/…` path prefix, percent-decoded as the API reads it."""
    try:
        return unquote_to_bytes(prefix.split("/")[2]).decode()
    except UnicodeDecodeError as error:
        raise InvalidRequest("path is not valid UTF-8 once decoded") from error


def token_request(
    scope: Scope, method: str, account: str | None, query_token: str | None = None
) -> Request:
    """What admission looks at for a call that takes its token's word alone (no signed
    URL): the token of the headers, else `query_token` (a WebSocket's `token`)."""
    found = headers(scope, HEADERS)
    token = _token(found) or query_token
    return Request(Credentials(token, ""), method, account, _address(scope), _zone(found))


def may_write(guard: Guard, scope: Scope, account: str) -> bool:
    """Whether the request's token (see `token_request`) may write to the account."""
    request = token_request(scope, "POST", account)
    return guard.check(request.credentials, "POST", account).refusal is None


def stream_subscription(marker: str | None, name: str | None) -> str | None:
    """A stream's subscription (None: none), which starts it unless `Last-Event-ID`."""
    if name is not None and marker is not None:
        raise InvalidRequest("a stream starts at its subscription's cursor or at marker, not both")
    return name


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _token(found: dict[bytes, bytes]) -> str | None:
    """`X-Auth-Token`, else an `Authorization: Bearer` token, of the `HEADERS` found."""
    token = found.get(b"x-auth-token")
    if token is None:
        bearer = found.get(b"authorization")
        if bearer is not None and bearer[:7].lower() == b"bearer ":
            token = bearer[7:]
    return None if token is None else token.decode("latin-1")


def _zone(found: dict[bytes, bytes]) -> str | None:
    zone = found.get(b"x-burrow-zone")
    return None if zone is None else zone.decode("latin-1")


def _shape(path: list[str]) -> int | str:
    """What a path names: its depth (0 to 3: v1.0's paths), or for `[a, q, "-", resource]`
    that extension resource of the queue, or for `[a, q, "-", "subscriptions", name]`
    one subscription. Any other path is a 404."""
    if len(path) <= 3 and "" not in path:
        return len(path)
    if len(path) < 4 or path[2] != "-" or not all(path[:2]):
        raise NotFound("no such path")
    if len(path) == 4 and path[3] in QUEUE_RESOURCES:
        return path[3]
    if len(path) == 5 and path[3] == SUBSCRIPTIONS and path[4]:
        return SUBSCRIPTION
    raise NotFound("no such path")


def _names(names: list[str], detail: Detail) -> Response:
    if detail is Detail.NONE:
        return NO_CONTENT
    if detail is Detail.ALL:
        return Response.json([{"id": name} for name in names])
    return Response.json(names)


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


def _messages(messages: list[Message], view: str) -> Response:
    if view is Detail.NONE:
        return NO_CONTENT
    render = RENDER[view]
    return Response.json([render(m) for m in messages])


def _one(message: Message, view: str) -> Response:
    if view is Detail.NONE:
        return NO_CONTENT
    if view is Detail.BODY:
        return Response(200, message.body, OCTETS)
    if view is Detail.ID:
        return Response(200, message.id.encode(), OCTETS)
    return Response.json(RENDER[view](message))


def _document(stored: bytes) -> Response:
    """A stored document (a queue's info, a subscription's) with its tag."""
    return Response(200, stored, OCTETS, [(b"etag", info_tag(stored).encode())])


def _not_stored(why: str) -> Response:
    """A compare-and-set that did not store: 409 (the caller reads the document again)."""
    return Response.json({"error": why}, 409)
