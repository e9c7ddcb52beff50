"""The Burrow REST API v1.0: wire format in, service calls out, wire format back.

Paths below `/v1.0`: `[]` all accounts, `[a]` one account, `[a, q]` one queue,
`[a, q, m]` one message. Extensions (docs/api.md), each where v1.0 answers 400, 404 or
405: `PUT /v1.0/{a}/{q}` inserts a JSON batch; what a proxy needs to store through
this server (receives with a `receipt`, calls on one receive, `meta`, `detail=full`,
the `info=true` listing) are parameters v1.0 refused; a queue's counts and info are
`[a, q, "-", "counts"]` and `[a, q, "-", "info"]`, four segments, which v1.0 never had.
Its query parameters are read by `v1_params`, answers made by `v1_answers`, and the
calls on subscriptions and streams handled by `v1_subscriptions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from burrow.auth import Guard, covering_method
from burrow.errors import InvalidRequest, MethodNotAllowed, NotFound
from burrow.frontends import v1_answers as answer
from burrow.frontends.admission import signed_request, token_request
from burrow.frontends.asgi import Answer, Receive, Response, Scope, read_body
from burrow.frontends.v1_answers import NO_CONTENT
from burrow.frontends.v1_bodies import (
    MAX_SIGN_BYTES,
    batch_draft,
    batch_list,
    delete_targets,
    sign_order,
)
from burrow.frontends.v1_documents import compare_and_set
from burrow.frontends.v1_params import (
    ATTRIBUTES,
    BATCH_DETAILS,
    DETAIL_OF_VIEW,
    FILTERS,
    NAME_DETAILS,
    NO_PARAMS,
    QUOTAS,
    Params,
)
from burrow.frontends.v1_subscriptions import (
    DOCUMENT,
    DOCUMENT_PARAMS,
    SUBSCRIPTION,
    SUBSCRIPTIONS,
    V1Subscriptions,
)
from burrow.metrics_recorder import ROUTE
from burrow.model import Attributes, Detail, Draft
from burrow.service import Service

CREATED = Response(201)
# The extension resources of a queue: `/v1.0/{a}/{q}/-/{resource}`; and one subscription,
# `/v1.0/{a}/{q}/-/subscriptions/{name}` (the shape `SUBSCRIPTION`).
DELETE = "delete"  # `POST …/-/delete`: messages deleted by id, several at once
QUEUE_RESOURCES = frozenset({"counts", "info", DELETE, SUBSCRIPTIONS})
# Each shape of path (`_shape`) as /metrics names its route.
SHAPE_ROUTES: dict[int | str, str] = {
    0: "/v1.0",
    1: "/v1.0/{account}",
    2: "/v1.0/{account}/{queue}",
    3: "/v1.0/{account}/{queue}/{message}",
    **{resource: f"/v1.0/{{account}}/{{queue}}/-/{resource}" for resource in QUEUE_RESOURCES},
    SUBSCRIPTION: "/v1.0/{account}/{queue}/-/subscriptions/{name}",
}


Handler = Callable[[Scope, Receive, list[str], Params], Awaitable[Answer]]


class BurrowV1:
    """Handles every request below `/v1.0`."""

    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard
        self.subscriptions = V1Subscriptions(service, guard)
        subscriptions = self.subscriptions
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
            (SUBSCRIPTIONS, "GET"): (subscriptions.get_subscriptions, FILTERS),
            (SUBSCRIPTION, "GET"): (subscriptions.get_subscription, DOCUMENT_PARAMS),
            (SUBSCRIPTION, "PUT"): (subscriptions.put_subscription, DOCUMENT_PARAMS),
            (SUBSCRIPTION, "POST"): (subscriptions.ack_subscription, frozenset({"ack"})),
            (SUBSCRIPTION, "DELETE"): (subscriptions.delete_subscription, NO_PARAMS),
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
        account = path[0] if path else None
        if shape == SUBSCRIPTION and query.get(DOCUMENT, "").lower() == "true":
            account = None  # admitted as a call across accounts: admins only
        self.service.admit(self.guard, signed_request(scope, query, method, account))
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
        (`V1Subscriptions.all_subscriptions`); with `detail=stats`, each account's stats (whatever
        `subscriptions` says, as `subscription=NAME` does for a queue's)."""
        if p.stats():
            p.flag(SUBSCRIPTIONS)
            return Response.json(await self.service.accounts_stats(p.name_filters()))
        detail = p.detail(Detail.ID, NAME_DETAILS)
        if p.flag(SUBSCRIPTIONS):
            return answer.names(
                await self.subscriptions.all_subscriptions(p.name_filters()), detail
            )
        return answer.names(await self.service.get_accounts(p.name_filters()), detail)

    async def delete_accounts(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.NONE, NAME_DETAILS)
        return answer.names(await self.service.delete_accounts(p.name_filters()), detail)

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
        return answer.names(await listing(path[0], p.name_filters()), detail)

    async def delete_queues(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.NONE, NAME_DETAILS)
        return answer.names(await self.service.delete_queues(path[0], p.name_filters()), detail)

    # Messages of a queue -----------------------------------------------------------

    async def get_messages(self, s: Scope, r: Receive, path: list[str], p: Params) -> Answer:
        """A listing; with `subscription`, the messages after its cursor; with `stream`,
        a stream of them; or with `detail=stats`, the queue's stats (the other
        parameters checked, of no effect)."""
        if p.text("stream") is not None:
            return await self.subscriptions.event_stream(s, r, path, p)
        name = p.text(SUBSCRIPTION)
        if p.stats():
            p.check_unused_filters()
            if name is not None:
                self.service.check_id("subscription", name)
            return Response.json((await self.service.queue_stats(path[0], path[1])).as_json())
        if name is not None:
            return await self.subscriptions.read_subscription(path, name, p)
        view = p.view(Detail.ALL)
        found = await self.service.get_messages(
            path[0], path[1], p.filters(), p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return answer.messages(found, view)

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
        return answer.messages(updated, view)

    async def delete_messages(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        view = p.view(Detail.NONE)
        deleted = await self.service.delete_messages(
            path[0], path[1], p.filters(), p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return answer.messages(deleted, view)

    async def delete_listed_messages(
        self, s: Scope, r: Receive, path: list[str], p: Params
    ) -> Response:
        """`POST …/-/delete`: the listed messages deleted (docs/api.md); answers those
        deleted in `detail` (`id` unless given), leaving out what was not there."""
        view = p.view(Detail.ID)
        limits = self.service.limits_for(path[0])
        body = await read_body(s, r, limits.max_batch_bytes, limits.body_timeout)
        deleted = await self.service.delete_listed_messages(path[0], path[1], delete_targets(body))
        return answer.messages(deleted, view)

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
        return answer.one(await self.service.get_message(*path), view)

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
        return answer.one(updated, view)

    async def delete_message(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """A delete; with `receipt`, only while that receive is the message's latest."""
        view = p.view(Detail.NONE)
        p.check_unused_filters()
        deleted = await self.service.delete_message(path[0], path[1], path[2], self._receipt(p))
        return answer.one(deleted, view)

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
        return answer.document(info)

    async def put_info(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """Store the body as the queue's info (see `compare_and_set`)."""
        account, queue, service = path[0], path[1], self.service
        return await compare_and_set(
            s,
            r,
            service.limits_for(account),
            lambda: service.get_queue_info(account, queue),
            lambda info, expected: service.set_queue_info(account, queue, info, expected),
        )

    async def delete_info(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        if not await self.service.delete_queue_info(path[0], path[1]):
            raise NotFound("the queue has no info")
        return NO_CONTENT


def _prefix_account(prefix: str) -> str:
    """The account of a `/v1.0/…` path prefix, percent-decoded as the API reads it."""
    try:
        return unquote_to_bytes(prefix.split("/")[2]).decode()
    except UnicodeDecodeError as error:
        raise InvalidRequest("path is not valid UTF-8 once decoded") from error


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
