"""Durable subscriptions: named readers of one queue whose cursor the backend keeps.

A subscription sees every message of its queue once, in queue order, hidden or not (a
hide is a work queue's business; a subscription reads independently of it), for as
long as the message lives (its ttl). Reading returns the messages after the cursor and
leaves it; an acknowledgement moves it, so a reader that fails before acknowledging gets
the batch again (at least once). Nothing is copied per subscription: the cursor is a
message id, used as a listing `marker`.

A listing whose marker is unknown starts from the queue's start, so once the cursor's
message has expired or been deleted a read would deliver old messages again. The
document therefore keeps the cursor message's `sent` time too: when a read's first
message was put before it, one `get_message` tells whether the cursor's message is
still there, and if not the read skips the messages put before it.

Each subscription is one JSON document in the backend (`Backend.get_subscription`),
changed by compare-and-set loops, so that concurrent acknowledgements and webhook
leases never lose one another's change.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from burrow.backends.base import SubscriptionKey
from burrow.config import Limits
from burrow.errors import InvalidRequest, MessageNotFound, NoMatch, NotFound
from burrow.model import Detail, Filters, Message

if TYPE_CHECKING:
    from burrow.service import Service

STARTS = ("newest", "oldest")
DEFAULT_MAX_ATTEMPTS = 8
MAX_ATTEMPTS = 100
MAX_URL_LENGTH = 2048
# What a webhook's URL may be: http(s), a host name or address (IPv6 in brackets), a
# port, and a path and query of printable ASCII (percent-encoded beyond it).
URL = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:[/?#][!-~]*)?")
SECRET_PREFIX = "whsec_"
# A secret is the prefix and base64 (RFC 4648, padded) of 18 to 50 bytes, as Standard
# Webhooks has them; the server makes 24.
SECRET = re.compile(r"whsec_(?:[A-Za-z0-9+/]{4}){6,16}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
DEAD = "-dead"  # the default dead-letter queue's suffix to the queue's name
EVERY_PAGE = 1000  # subscriptions `every` asks the backend for at once


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where messages are pushed. An empty `secret` (or `dead_letter_queue`) given to
    `Subscriptions.create` asks for the default: a new random secret (`{queue}-dead`)."""

    url: str
    secret: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    dead_letter_queue: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The state of a subscription's webhook delivery, written by whoever delivers it.

    `holder` is the process holding the lease until `until` (epoch seconds); `failures`
    counts failed attempts at the message after the cursor, tried next at
    `next_attempt`; `disabled` says why delivery stopped (None: it goes on);
    `dead_lettered` counts the messages put on the dead-letter queue.
    """

    holder: str | None = None
    until: float = 0.0
    failures: int = 0
    next_attempt: float = 0.0
    disabled: str | None = None
    dead_lettered: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """The last failed attempt of a webhook: when (epoch seconds), at which message, and
    why (`HTTP 500`, `no answer within 10 s`, `ConnectError: …`)."""

    at: float
    message: str
    error: str


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as stored: `cursor` is the id of the last message acknowledged (None:
    from the queue's start), `cursor_sent` when that message was put (see the module),
    `last_error` its webhook's last failed attempt (None: none since it was set).

    (`last_error` is shown in `delivery` but stored beside it, where a server of an
    earlier version, which reads the fields it knows, passes it by.)"""

    name: str
    cursor: str | None
    created: float
    webhook: Webhook | None = None
    delivery: Delivery = Delivery()
    cursor_sent: float = 0.0
    last_error: DeliveryError | None = None

    def as_json(self, *, secret: bool = False) -> dict[str, Any]:
        """What the API answers: never the webhook's secret unless `secret` (the one answer
        that creates it)."""
        webhook = None
        if self.webhook is not None:
            webhook = dataclasses.asdict(self.webhook)
            if not secret:
                del webhook["secret"]
        delivery = dataclasses.asdict(self.delivery)
        error = self.last_error
        delivery["last_error"] = None if error is None else dataclasses.asdict(error)
        return {
            "name": self.name,
            "cursor": self.cursor,
            "created": self.created,
            "webhook": webhook,
            "delivery": delivery,
        }


# What a document holds: every field but the name, which is the backend's key.
STORED = tuple(field.name for field in dataclasses.fields(Subscription) if field.name != "name")


def encode(subscription: Subscription) -> bytes:
    """The document (orjson writes the webhook and delivery dataclasses itself: a tenth
    of `asdict`'s cost, paid on every acknowledgement)."""
    return orjson.dumps({name: getattr(subscription, name) for name in STORED})


def decode(name: str, document: bytes) -> Subscription:
    fields = orjson.loads(document)
    webhook = fields["webhook"]
    error = fields.get("last_error")  # (a document of an earlier version has none)
    return Subscription(
        name,
        fields["cursor"],
        fields["created"],
        None if webhook is None else Webhook(**webhook),
        Delivery(**fields["delivery"]),
        fields["cursor_sent"],
        None if error is None else DeliveryError(**error),
    )


def checked(name: str, document: bytes) -> bytes:
    """`document` if it is a subscription as `encode` writes it, every field of its type
    (what a proxy stores through this server), else `InvalidRequest`: a document stored
    as given must not fail the reads and deliveries that decode it later."""
    try:
        subscription = decode(name, document)
        webhook, delivery = subscription.webhook, subscription.delivery
        error = subscription.last_error
        fine = (
            _optional(subscription.cursor, str)
            and _numbers(subscription.created, subscription.cursor_sent, delivery.until)
            and _numbers(delivery.next_attempt)
            and (webhook is None or _webhook_typed(webhook))
            and _optional(delivery.holder, str)
            and _optional(delivery.disabled, str)
            and _integers(delivery.failures, delivery.dead_lettered)
            and (error is None or _error_typed(error))
        )
    except (ValueError, KeyError, TypeError):  # not JSON, a field missing or unknown
        fine = False
    if not fine:
        raise InvalidRequest("the body is not a subscription document")
    return document


def _webhook_typed(webhook: Webhook) -> bool:
    texts = (webhook.url, webhook.secret, webhook.dead_letter_queue)
    return all(isinstance(text, str) for text in texts) and _integers(webhook.max_attempts)


def _error_typed(error: DeliveryError) -> bool:
    return _numbers(error.at) and isinstance(error.message, str) and isinstance(error.error, str)


def _optional(value: object, kind: type) -> bool:
    return value is None or isinstance(value, kind)


def _numbers(*values: object) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _integers(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


Edit = Callable[[Subscription], Subscription | None]


class Subscriptions:
    """The subscriptions of every queue, on `Service.subscriptions`."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._backend = service.backend

    async def create(
        self,
        account: str,
        queue: str,
        name: str,
        start: str = "newest",
        webhook: Webhook | None = None,
    ) -> tuple[Subscription, bool]:
        """Create the subscription, starting after the queue's last message ("newest") or at
        its first ("oldest"); True if created. An existing one keeps its cursor (`start`
        is then ignored) and takes the new `webhook` (None: none), its delivery started
        anew (failures forgotten, a disabled one enabled again)."""
        limits = self._ids(account, queue, name)
        if start not in STARTS:
            raise InvalidRequest(f"start must be one of {', '.join(STARTS)}, not {start!r}")
        if webhook is not None:
            webhook = self._checked(webhook, queue)
        while True:
            stored = await self._backend.get_subscription(account, queue, name)
            if stored is not None:
                old = decode(name, stored)
                kept = Delivery(old.delivery.holder, old.delivery.until)
                delivery = dataclasses.replace(kept, dead_lettered=old.delivery.dead_lettered)
                changed = dataclasses.replace(
                    old, webhook=webhook, delivery=delivery, last_error=None
                )
                if await self._backend.set_subscription(
                    account, queue, name, encode(changed), stored
                ):
                    return changed, False
                continue
            cursor = await self._last(account, queue, limits) if start == "newest" else None
            made = Subscription(
                name,
                None if cursor is None else cursor.id,
                time.time(),
                webhook,
                cursor_sent=0.0 if cursor is None else cursor.sent,
            )
            if await self._backend.set_subscription(account, queue, name, encode(made), None):
                return made, True

    async def get(self, account: str, queue: str, name: str) -> Subscription:
        """The subscription (`NotFound` if none)."""
        self._ids(account, queue, name)
        stored = await self._backend.get_subscription(account, queue, name)
        if stored is None:
            raise _not_found(name)
        return decode(name, stored)

    async def delete(self, account: str, queue: str, name: str) -> None:
        self._ids(account, queue, name)
        if not await self._backend.delete_subscription(account, queue, name):
            raise _not_found(name)

    async def names(self, account: str, queue: str, filters: Filters) -> list[str]:
        """The queue's subscriptions, in name order (a page of them; `NoMatch` if none)."""
        limits = self._ids(account, queue)
        filters = self._service.check_filters(Filters(filters.limit, filters.marker), limits)
        return await self._backend.list_subscriptions(account, queue, filters)

    async def read(
        self,
        account: str,
        queue: str,
        name: str,
        limit: int | None = None,
        wait: int = 0,
        *,
        detail: Detail = Detail.ALL,
    ) -> list[Message]:
        """The messages after the cursor, in order, hidden ones too (`NoMatch` if none,
        after waiting up to `wait` s for one); the cursor stays where it is."""
        subscription = await self.get(account, queue, name)
        cursor = subscription.cursor
        found = await self._service.get_messages(
            account, queue, Filters(limit, cursor, True), wait, detail=detail
        )
        if cursor is None or found[0].sent >= subscription.cursor_sent:
            return found
        try:
            await self._backend.get_message(account, queue, cursor)
        except MessageNotFound:  # the listing started over: skip what was put before
            since = subscription.cursor_sent
            return await self._put_since(account, queue, since, limit, wait, detail)
        return found

    async def ack(self, account: str, queue: str, name: str, message_id: str) -> None:
        """Move the cursor to `message_id` (what a reader has handled, and all before it)."""
        await self.change(account, queue, name, await self.acked(account, queue, name, message_id))

    async def acked(
        self, account: str, queue: str, name: str, message_id: str
    ) -> Callable[[Subscription], Subscription]:
        """The edit of `ack` (for `change`, alone or with more)."""
        self._ids(account, queue, name)
        self._service.check_id("message", message_id)
        try:
            sent = (await self._backend.get_message(account, queue, message_id)).sent
        except MessageNotFound:  # gone already: the skip stays at the older cursor's time
            sent = 0.0

        def move(subscription: Subscription) -> Subscription:
            return dataclasses.replace(
                subscription, cursor=message_id, cursor_sent=max(sent, subscription.cursor_sent)
            )

        return move

    async def change(self, account: str, queue: str, name: str, edit: Edit) -> Subscription | None:
        """Apply `edit` to the stored subscription until no one else changed it meanwhile
        (compare-and-set); `edit` returns the new state, or None to leave it (then so does
        this). `NotFound` if there is no such subscription."""
        self._ids(account, queue, name)
        while True:
            stored = await self._backend.get_subscription(account, queue, name)
            if stored is None:
                raise _not_found(name)
            changed = edit(decode(name, stored))
            if changed is None:
                return None
            if await self._backend.set_subscription(account, queue, name, encode(changed), stored):
                return changed

    # The stored documents as they are, for a server storing through this one (the
    # `http` backend; docs/api.md "Extensions for proxies"): they hold webhook secrets.

    async def document(self, account: str, queue: str, name: str) -> bytes | None:
        self._ids(account, queue, name)
        return await self._backend.get_subscription(account, queue, name)

    async def store_document(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        """A compare-and-set of the document (`checked`): True if stored."""
        self._ids(account, queue, name)
        checked(name, document)
        return await self._backend.set_subscription(account, queue, name, document, expected)

    async def page(self, after: SubscriptionKey | None, limit: int) -> list[SubscriptionKey]:
        """Every (account, queue, name) of the store strictly after `after`, at most
        `limit`, in order ([] at the end)."""
        if after is not None:
            self._ids(*after)
        return await self._backend.list_all_subscriptions(after, limit)

    async def every(self) -> AsyncIterator[SubscriptionKey]:
        """Every (account, queue, name) of the store, in order, a page at a time."""
        after: SubscriptionKey | None = None
        while True:
            page = await self._backend.list_all_subscriptions(after, EVERY_PAGE)
            for key in page:
                yield key
            if len(page) < EVERY_PAGE:
                return
            after = page[-1]

    # Internals -------------------------------------------------------------------------

    def _ids(self, account: str, queue: str, name: str | None = None) -> Limits:
        check = self._service.check_id
        check("queue", queue)
        if name is not None:
            check("subscription", name)
        return self._service.limits_for(check("account", account))

    def _checked(self, webhook: Webhook, queue: str) -> Webhook:
        """The webhook with its defaults filled in, once every field is checked (400)."""
        if len(webhook.url) > MAX_URL_LENGTH or not URL.fullmatch(webhook.url):
            raise InvalidRequest(
                f"webhook url must be an http or https URL of at most {MAX_URL_LENGTH}"
                " printable ASCII characters"
            )
        if webhook.secret and not SECRET.fullmatch(webhook.secret):
            raise InvalidRequest(
                f"webhook secret must be {SECRET_PREFIX} and the base64 of 18 to 50 bytes"
            )
        if not 1 <= webhook.max_attempts <= MAX_ATTEMPTS:
            raise InvalidRequest(f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS}")
        # The default stays an id: a queue's name at the longest loses its end to the suffix.
        longest = self._service.limits.max_id_length - len(DEAD)
        dead = webhook.dead_letter_queue or queue[:longest] + DEAD
        self._service.check_id("dead_letter_queue", dead)
        if dead == queue:
            raise InvalidRequest("dead_letter_queue must not be the subscription's own queue")
        return Webhook(webhook.url, webhook.secret or new_secret(), webhook.max_attempts, dead)

    async def _last(self, account: str, queue: str, limits: Limits) -> Message | None:
        """The queue's last message, hidden or not (None if it holds none): a walk through
        its listing, a page at a time (done once, when a subscription starts "newest")."""
        last = None
        while True:
            marker = None if last is None else last.id
            try:
                page = await self._backend.get_messages(
                    account, queue, Filters(limits.max_limit, marker, True)
                )
            except NoMatch:
                return last
            last = page[-1]

    async def _put_since(
        self,
        account: str,
        queue: str,
        sent: float,
        limit: int | None,
        wait: int,
        detail: Detail,
    ) -> list[Message]:
        """The first messages of the queue put at `sent` or later (at most `limit`)."""
        limits = self._service.limits_for(account)
        limit = limit or limits.default_limit
        marker = None
        while True:
            page = await self._service.get_messages(
                account, queue, Filters(limits.max_limit, marker, True), wait, detail=detail
            )
            newer = list(itertools.dropwhile(lambda message: message.sent < sent, page))
            if newer:
                return newer[:limit]
            marker = page[-1].id


def _not_found(name: str) -> NotFound:
    return NotFound(f"no subscription {name!r} on this queue")
