"""The v1.0 API's subscriptions (`burrow.subscriptions`, docs/push.md): a queue's
durable readers below `/v1.0/{a}/{q}/-/subscriptions/…`, read after their cursor and
moved on by acks, their webhooks and stored documents, and a queue's SSE stream, which
may follow one of them."""

from __future__ import annotations

from burrow.auth import Guard
from burrow.errors import InvalidRequest, NoMatch, NotFound
from burrow.feed import open_feed
from burrow.frontends import v1_answers as answer
from burrow.frontends.admission import may_write
from burrow.frontends.asgi import Receive, Response, Scope, headers, read_body
from burrow.frontends.sse import EventStream
from burrow.frontends.v1_bodies import subscription_order
from burrow.frontends.v1_documents import compare_and_set
from burrow.frontends.v1_params import DETAIL_OF_VIEW, NAME_DETAILS, Params
from burrow.model import Detail, Filters
from burrow.service import Service

# `/v1.0/{a}/{q}/-/subscriptions` (and `GET /v1.0?subscriptions=true`: all of them); one
# of them, the path shape `SUBSCRIPTION`, or the `subscription=NAME` a queue is read by.
SUBSCRIPTIONS = "subscriptions"
SUBSCRIPTION = "subscription"
# `?document=true` on one subscription: its stored document as it is (for admins only: it
# holds the webhook's secret), which a proxy in front of this server reads and writes.
DOCUMENT = "document"
DOCUMENT_PARAMS = frozenset({DOCUMENT})
STREAM_PARAMS = frozenset({"stream", "marker", SUBSCRIPTION})
LAST_EVENT_ID = frozenset({b"last-event-id"})


class V1Subscriptions:
    """Handles the v1.0 calls on subscriptions and streams (`BurrowV1` routes them)."""

    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard

    async def read_subscription(self, path: list[str], name: str, p: Params) -> Response:
        """After the cursor, hidden messages too: `marker` and `match_hidden` are checked
        as for any listing and have no effect."""
        view = p.view(Detail.ALL)
        limit = p.filters().limit
        found = await self.service.subscriptions.read(
            path[0], path[1], name, limit, p.wait(), detail=DETAIL_OF_VIEW[view]
        )
        return answer.messages(found, view)

    async def event_stream(self, s: Scope, r: Receive, path: list[str], p: Params) -> EventStream:
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

    async def get_subscriptions(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        detail = p.detail(Detail.ID, NAME_DETAILS)
        names = await self.service.subscriptions.names(path[0], path[1], p.name_filters())
        return answer.names(names, detail)

    async def get_subscription(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """The subscription as the API shows it; with `document=true`, as stored."""
        if p.flag(DOCUMENT):
            stored = await self.service.subscriptions.document(path[0], path[1], path[4])
            if stored is None:
                raise NotFound(f"no subscription {path[4]!r} on this queue")
            return answer.document(stored)
        subscription = await self.service.subscriptions.get(path[0], path[1], path[4])
        return Response.json(subscription.as_json())

    async def put_subscription(self, s: Scope, r: Receive, path: list[str], p: Params) -> Response:
        """Create (201) or change (200) the subscription; the answer shows the webhook's
        secret when the server made it (the only time it is shown). With `document=true`,
        the body is the stored document, compared and set (`compare_and_set`)."""
        account, queue, name = path[0], path[1], path[4]
        if p.flag(DOCUMENT):
            subscriptions = self.service.subscriptions
            return await compare_and_set(
                s,
                r,
                self.service.limits_for(account),
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

    async def all_subscriptions(self, filters: Filters) -> list[str]:
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
        return answer.NO_CONTENT

    async def delete_subscription(
        self, s: Scope, r: Receive, path: list[str], p: Params
    ) -> Response:
        await self.service.subscriptions.delete(path[0], path[1], path[4])
        return answer.NO_CONTENT


def stream_subscription(marker: str | None, name: str | None) -> str | None:
    """A stream's subscription (None: none), which starts it unless `Last-Event-ID`."""
    if name is not None and marker is not None:
        raise InvalidRequest("a stream starts at its subscription's cursor or at marker, not both")
    return name
