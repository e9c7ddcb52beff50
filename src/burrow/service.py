"""The rules every frontend goes through: validation, limits, defaults, long polls.

Frontends translate their wire format into these calls; backends only store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

from burrow.activity import Activity
from burrow.audit import Refusal
from burrow.auth import Guard, Request
from burrow.backends.base import Backend, DeleteTarget, Subscription
from burrow.bounded import purge, take_within
from burrow.config import Limits
from burrow.errors import InvalidRequest, MessageNotFound, NoMatch, PayloadTooLarge, Unauthorized
from burrow.ids import new_ids
from burrow.limits import RateLimiter
from burrow.locality import caller_zone
from burrow.model import (
    NO_QUOTA,
    Attributes,
    Detail,
    Draft,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)
from burrow.stats import QueueStats, account_summary
from burrow.subscriptions import Subscriptions

T = TypeVar("T")
WITH_BODIES = frozenset({Detail.BODY, Detail.ALL})


class Service:
    """Validates requests against each account's `Limits` and runs them on the backend."""

    def __init__(
        self, backend: Backend, limits: Limits, accounts: Mapping[str, Limits] | None = None
    ) -> None:
        self.backend = backend
        self.limits = limits
        self._accounts = accounts or {}
        # Built once: `Limits.quota` makes a new one on every call.
        self._quota = limits.quota
        self._quotas = {name: own.quota for name, own in self._accounts.items()}
        self.rate_limiter = RateLimiter(limits, self._accounts)
        self._waiting: set[Subscription] = set()
        self._draining = False
        self.activity = Activity()
        self.subscriptions = Subscriptions(self)

    def limits_for(self, account: str) -> Limits:
        """The account's own limits (`[accounts.NAME]`), else the server's."""
        return self._accounts.get(account, self.limits)

    def quota_for(self, account: str) -> Quota:
        """The account's quota (see `limits_for`)."""
        return self._quotas.get(account, self._quota)

    def admit(self, guard: Guard, request: Request) -> str | None:
        """Admission: the one step every frontend's request takes before its call.

        In order: an address that has failed to authenticate too often is refused (429)
        before its credentials are read; the account id is checked (400), before any
        log names it; `guard` judges the credentials (401/403, audited in aggregate, a
        401 counted against the address); then the account's and the credential's rate
        limits (429). Sets the caller's zone for the backends. Returns the id of the
        key that allowed the request (None with no keys in use).
        """
        limiter = self.rate_limiter
        limiter.check_address(request.address)
        if request.account is not None:
            self.check_id("account", request.account)
        verdict = guard.check(request.credentials, request.method, request.account)
        refusal = verdict.refusal
        if refusal is not None:
            if refusal.status == Unauthorized.status:
                limiter.failed_authentication(request.address)
            limiter.audit.add(
                Refusal(
                    refusal.status,
                    refusal.message,
                    request.method,
                    request.account,
                    verdict.key_id,
                    request.address,
                )
            )
            raise refusal
        limiter.check(request.account, verdict.key_id)
        caller_zone.set(request.zone)
        return verdict.key_id

    # Validation --------------------------------------------------------------

    def check_id(self, kind: str, value: str) -> str:
        """Ids are 1..max_id_length characters, no control characters, not `.`/`..`."""
        if not value:
            raise InvalidRequest(f"{kind} id must not be empty")
        if len(value) > self.limits.max_id_length:
            raise InvalidRequest(f"{kind} id longer than {self.limits.max_id_length} characters")
        if value in (".", "..") or "/" in value or not value.isprintable():
            raise InvalidRequest(f"{kind} id contains characters that are not allowed")
        return value

    @staticmethod
    def check_filters(filters: Filters, limits: Limits, paged: bool = True) -> Filters:
        """Check `limit`; a paged call that gives none gets the first `default_limit` matches
        (so one request's answer and work stay bounded; clients page on with `marker`)."""
        if filters.limit is not None:
            check_number("limit", filters.limit, limits.max_limit, minimum=1)
        elif paged:
            return Filters(limits.default_limit, filters.marker, filters.match_hidden)
        return filters

    @staticmethod
    def check_attributes(attributes: Attributes, limits: Limits) -> Attributes:
        if attributes.ttl is not None:
            check_number("ttl", attributes.ttl, limits.max_ttl)
        if attributes.hide is not None:
            check_number("hide", attributes.hide, limits.max_hide)
        return attributes

    def _resolve(
        self, draft: Draft, made: Iterator[str], limits: Limits, max_body_bytes: int
    ) -> NewMessage:
        """The message of a draft; one left without an id takes the next of `made`."""
        if len(draft.body) > max_body_bytes:
            raise PayloadTooLarge(f"message body larger than {max_body_bytes} bytes")
        ttl = limits.default_ttl if draft.ttl is None else draft.ttl
        message_id = next(made) if draft.id is None else self.check_id("message", draft.id)
        return NewMessage(  # positional: half the cost of keywords, paid per message
            message_id,
            draft.body,
            check_number("ttl", ttl, limits.max_ttl),
            check_number("hide", draft.hide or 0, limits.max_hide),
            draft.meta,
        )

    # Accounts and queues -----------------------------------------------------
    # Listings take the default page; deletes take every match unless given a `limit`,
    # as in v1.0 (`DELETE /v1.0` and `DELETE /v1.0/{a}` mean "delete everything").

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self.backend.get_accounts(self.check_filters(filters, self.limits))

    async def delete_accounts(self, filters: Filters) -> list[str]:
        filters = self.check_filters(filters, self.limits, paged=False)
        return await self.backend.delete_accounts(filters)

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        filters = self._account_call(account, filters)
        return await self.backend.get_queues(account, filters)

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        filters = self._account_call(account, filters, paged=False)
        return await self.backend.delete_queues(account, filters)

    # Messages of a queue ---------------------------------------------------------

    # `detail` is what the caller answers with: at `body` and `all` the bodies of one
    # answer stay within `max_response_bytes` (see `bounded`); at the others they are
    # not kept.

    async def get_messages(
        self,
        account: str,
        queue: str,
        filters: Filters,
        wait: int = 0,
        *,
        detail: Detail = Detail.ALL,
    ) -> list[Message]:
        filters, limits = self._queue_call(account, queue, filters, wait)

        def take(step: Filters) -> Awaitable[list[Message]]:
            return self.backend.get_messages(account, queue, step)

        bodies = detail in WITH_BODIES
        return await self._waiting_for(
            account,
            queue,
            filters,
            wait,
            lambda: take_within(take, filters, limits, bodies=bodies, consumes=False),
        )

    async def update_messages(
        self,
        account: str,
        queue: str,
        attributes: Attributes,
        filters: Filters,
        wait: int = 0,
        *,
        detail: Detail = Detail.ALL,
    ) -> list[Message]:
        filters, limits = self._queue_call(account, queue, filters, wait)
        attributes = self.check_attributes(attributes, limits)

        totals = self.activity.of(account, queue) if attributes.hide else None

        async def take(step: Filters) -> list[Message]:
            taken = await self.backend.update_messages(account, queue, attributes, step)
            if totals is not None:
                totals.claimed += len(taken)
            return taken

        # A claim hides what it takes: its next step finds the next visible messages.
        claims = bool(attributes.hide) and not filters.match_hidden
        bodies = detail in WITH_BODIES
        return await self._waiting_for(
            account,
            queue,
            filters,
            wait,
            lambda: take_within(take, filters, limits, bodies=bodies, consumes=claims),
        )

    async def delete_messages(
        self,
        account: str,
        queue: str,
        filters: Filters,
        wait: int = 0,
        *,
        detail: Detail = Detail.ALL,
    ) -> list[Message]:
        """Delete the matched messages (a pop). A caller that does not answer with them
        (`detail` none: a purge, v1.0's default for DELETE) takes every match when it
        gives no `limit`, as in v1.0, in chunks, and gets an empty list back; one that
        does takes the default page."""
        returning = detail is not Detail.NONE
        filters, limits = self._queue_call(account, queue, filters, wait, paged=returning)
        totals = self.activity.of(account, queue)

        async def take(step: Filters) -> list[Message]:
            deleted = await self.backend.delete_messages(account, queue, step)
            totals.deleted += len(deleted)
            return deleted

        async def attempt() -> list[Message]:
            if filters.limit is None:
                await purge(take, filters, limits)
                return []
            bodies = detail in WITH_BODIES
            return await take_within(take, filters, limits, bodies=bodies, consumes=True)

        return await self._waiting_for(account, queue, filters, wait, attempt)

    async def put_messages(
        self,
        account: str,
        queue: str,
        drafts: list[Draft],
        quota: Quota = NO_QUOTA,
        max_body_bytes: int | None = None,
    ) -> list[tuple[str, bool]]:
        """Insert a batch atomically: (id, created) of each (ids generated where none given).

        `quota` may only make the account's quota stricter (a proxy passes on its own).
        `max_body_bytes` is the frontend's own cap on a body if not `[limits]`'s (SQS's
        message size).
        """
        limits = self._queue_ids(account, queue)
        if not drafts:
            raise InvalidRequest("a batch needs at least one message")
        if len(drafts) > limits.max_batch_messages:
            raise PayloadTooLarge(f"a batch holds at most {limits.max_batch_messages} messages")
        max_body = limits.max_body_bytes if max_body_bytes is None else max_body_bytes
        # One call makes the batch's ids: most of an id's cost is shared (lock, clock).
        made = iter(new_ids(sum(draft.id is None for draft in drafts)))
        messages = [self._resolve(draft, made, limits, max_body) for draft in drafts]
        if len({m.id for m in messages}) != len(messages):
            raise InvalidRequest("a batch must not repeat a message id")
        quota = self.quota_for(account).stricter(quota)
        created = await self.backend.put_messages(account, queue, messages, quota)
        self.activity.of(account, queue).put += len(messages)
        return [(m.id, was_created) for m, was_created in zip(messages, created, strict=True)]

    # One message -------------------------------------------------------------------

    async def put_message(
        self, account: str, queue: str, draft: Draft, quota: Quota = NO_QUOTA
    ) -> bool:
        """Create or replace one message; True if it was created."""
        limits = self._queue_ids(account, queue)
        made = iter(new_ids(1) if draft.id is None else ())
        message = self._resolve(draft, made, limits, limits.max_body_bytes)
        quota = self.quota_for(account).stricter(quota)
        created = await self.backend.put_message(account, queue, message, quota)
        self.activity.of(account, queue).put += 1
        return created

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        self._message_ids(account, queue, message_id)
        return await self.backend.get_message(account, queue, message_id)

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        """Set attributes on one message (with a `receipt`: only on that receive of it)."""
        limits = self._message_ids(account, queue, message_id)
        attributes = self.check_attributes(attributes, limits)
        if attributes.receipt is not None:
            raise InvalidRequest("an update of one message is no receive")
        _check_receipt(message_id, receipt)
        return await self.backend.update_message(account, queue, message_id, attributes, receipt)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        """Delete one message (with a `receipt`: only while that receive is its latest)."""
        self._message_ids(account, queue, message_id)
        _check_receipt(message_id, receipt)
        deleted = await self.backend.delete_message(account, queue, message_id, receipt)
        self.activity.of(account, queue).deleted += 1
        return deleted

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        """Delete messages by id (an acknowledgement of several claimed at once): those
        deleted, in the order given; an id the queue does not hold (or whose receipt is
        not its latest receive's) is passed by."""
        limits = self._queue_ids(account, queue)
        if not targets:
            raise InvalidRequest("a delete by ids needs at least one id")
        if len(targets) > limits.max_batch_messages:
            raise PayloadTooLarge(f"a delete by ids names at most {limits.max_batch_messages}")
        # An id named again is passed by (its first entry stands); an empty receipt
        # names no receive, so its entry deletes nothing. Every entry is checked first.
        seen: set[str] = set()
        named: list[DeleteTarget] = []
        for message_id, receipt in targets:
            self.check_id("message", message_id)
            if receipt:
                self.check_id("receipt", receipt)
            if message_id not in seen:
                seen.add(message_id)
                if receipt != "":
                    named.append((message_id, receipt))
        deleted = await self.backend.delete_listed_messages(account, queue, named) if named else []
        self.activity.of(account, queue).deleted += len(deleted)
        return deleted

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        self._queue_ids(account, queue)
        return await self.backend.count_messages(account, queue)

    # Stats (see `stats`) ------------------------------------------------------------

    async def queue_stats(self, account: str, queue: str) -> QueueStats:
        counts = await self.count_messages(account, queue)
        return QueueStats.of(counts, self.activity.totals(account, queue), time.time())

    async def account_stats(self, account: str, filters: Filters) -> dict[str, QueueStats]:
        """The stats of the account's queues holding messages (a page of them, as the
        listing's), in listing order."""
        try:
            queues = await self.get_queues(account, filters)
        except NoMatch:
            return {}
        counts = await asyncio.gather(
            *(self.backend.count_messages(account, queue) for queue in queues)
        )
        now = time.time()
        totals = self.activity.totals
        return {
            queue: QueueStats.of(found, totals(account, queue), now)
            for queue, found in zip(queues, counts, strict=True)
        }

    async def accounts_stats(self, filters: Filters) -> dict[str, dict[str, Any]]:
        """Each account's stats summed over all its queues (`stats.account_summary`), for a
        page of accounts: a look at every queue of each, a page at a time."""
        summaries = {}
        try:
            accounts = await self.get_accounts(filters)
        except NoMatch:
            return {}
        for account in accounts:
            queues: list[QueueStats] = []
            page = Filters(self.limits_for(account).max_limit)
            while True:
                found = await self.account_stats(account, page)
                queues.extend(found.values())
                if len(found) < (page.limit or 0):
                    break
                page = Filters(page.limit, next(reversed(found)))
            summaries[account] = account_summary(queues)
        return summaries

    # Queue info (see `Backend`: what an SQS queue is besides its messages) ------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        self._queue_ids(account, queue)
        return await self.backend.get_queue_info(account, queue)

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        limits = self._queue_ids(account, queue)
        if len(info) > limits.max_body_bytes:
            raise PayloadTooLarge(f"queue info larger than {limits.max_body_bytes} bytes")
        return await self.backend.set_queue_info(account, queue, info, expected)

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        self._queue_ids(account, queue)
        return await self.backend.delete_queue_info(account, queue)

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        filters = self._account_call(account, filters)
        return await self.backend.list_queue_infos(account, filters)

    # Long polls ----------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        """Whether the server is shutting down (`drain`): streams end, long polls return."""
        return self._draining

    @property
    def waiters(self) -> int:
        """Long polls waiting now (for `/metrics`)."""
        return len(self._waiting)

    def drain(self) -> None:
        """Answer every pending long poll now and take no new ones (shutting down)."""
        self._draining = True
        for subscription in self._waiting:
            subscription.interrupt()

    async def _waiting_for(
        self,
        account: str,
        queue: str,
        filters: Filters,
        wait: int,
        attempt: Callable[[], Awaitable[T]],
    ) -> T:
        """Run `attempt`; while it matches nothing, sleep on the queue for up to `wait` s."""
        if wait == 0 or self._draining:
            return await attempt()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self.backend.subscribe(account, queue, filters) as subscription:
            self._waiting.add(subscription)
            try:
                while True:
                    try:
                        return await attempt()
                    except NoMatch:
                        left = deadline - loop.time()
                        if left <= 0 or not await subscription.wait(left):
                            raise
            finally:
                self._waiting.discard(subscription)

    # Id checks -----------------------------------------------------------------------

    def _queue_ids(self, account: str, queue: str) -> Limits:
        """Check the ids; returns the account's limits."""
        self.check_id("queue", queue)
        return self.limits_for(self.check_id("account", account))

    def _message_ids(self, account: str, queue: str, message_id: str) -> Limits:
        self.check_id("message", message_id)
        return self._queue_ids(account, queue)

    def _account_call(self, account: str, filters: Filters, paged: bool = True) -> Filters:
        """Check the account id and the filters against its limits (see `check_filters`)."""
        limits = self.limits_for(self.check_id("account", account))
        return self.check_filters(filters, limits, paged)

    def _queue_call(
        self, account: str, queue: str, filters: Filters, wait: int, paged: bool = True
    ) -> tuple[Filters, Limits]:
        """Check ids, `wait` and the filters; returns the filters and the account's limits."""
        limits = self._queue_ids(account, queue)
        check_number("wait", wait, limits.max_wait)
        return self.check_filters(filters, limits, paged), limits


def check_number(name: str, value: int, maximum: int, minimum: int = 0) -> int:
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{name} must be an integer from {minimum} to {maximum}")
    return value


def _check_receipt(message_id: str, receipt: str | None) -> None:
    """An empty receipt names no receive: what it asks of a message is never done (the
    backends need not agree on how to match it)."""
    if receipt == "":
        raise MessageNotFound(message_id)
