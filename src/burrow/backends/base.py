"""The storage contract every backend implements, and every frontend relies on.

All methods are coroutines and take the account (tenant) as a required first
argument. Every id follows the service's rules (1 to 255 printable characters,
no `/`, not `.` or `..`; see `Service.check_id`), so a backend may put ids in
URLs or keys. Listings are in creation order; `Filters.marker` means strictly
after that id. Message listings see visible messages only unless `match_hidden`
is set.
Operations that find nothing raise `NoMatch` (lists) or `MessageNotFound` (one
message); they never return an empty list (`delete_listed_messages`, which passes by
what it does not find, may). Expired messages are never returned.

Each method is atomic on its own: concurrent `update_messages` calls that hide
what they match (a claim) or `delete_messages` calls (a pop) never both obtain
the same message.

Besides messages, a backend keeps each queue's info (an SQS queue's attributes, tags
and policy, as one opaque document the frontend writes): queues are implicit in v1.0
(they exist while they hold messages) and explicit in SQS, and the two live apart, so
that a v1.0 queue's listing never depends on its info nor its info on its messages.
Likewise each queue's durable subscriptions (`burrow.subscriptions`): one opaque document
a subscription, kept apart from the messages (a queue that holds none keeps them).
"""

from __future__ import annotations

import abc
import asyncio
from types import TracebackType
from typing import Any, Self

from burrow.errors import BackendUnavailable, MessageNotFound
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)

SubscriptionKey = tuple[str, str, str]
"""A subscription's (account, queue, name)."""

DeleteTarget = tuple[str, str | None]
"""A message to delete by id: (its id, the receipt of its latest receive or None)."""

DELETES_AT_ONCE = 16  # of a delete by ids done one message at a time (a remote store's)

Health = dict[str, Any]
"""What `Backend.health` reports: `status` (`ok`, `degraded`, `failing`), `reason` unless
ok, and whatever else tells how the backend's parts are."""


def healthy(**parts: Any) -> Health:
    return {"status": "ok", **parts}


def degraded(reason: str, **parts: Any) -> Health:
    """Serving, with a part missing: `GET /health` still answers 200."""
    return {"status": "degraded", "reason": reason, **parts}


def failing(reason: str, **parts: Any) -> Health:
    """Not serving (or not acknowledging writes): `GET /health` answers 503."""
    return {"status": "failing", "reason": reason, **parts}


class KnownFault(BackendUnavailable):
    """A call refused for a fault the backend has logged already and `health` reports
    (a database deleted under the server, a disk that refuses writes): a 503 that is not
    logged again for each request."""


class Subscription(abc.ABC):
    """Wake-ups for one queue: a write to it, or a hidden message becoming visible.

    Taken before looking at the queue so that no change between the look and the
    wait goes unnoticed; a backend may learn from that look when the queue's next
    hidden message shows. What a backend keeps for wake-ups is bounded by its
    subscriptions: nothing for a queue nobody subscribes to, however many messages
    are hidden in it (at most one pending deadline per subscribed queue).
    """

    @abc.abstractmethod
    async def wait(self, seconds: float) -> bool:
        """Sleep until the queue may have changed since the last wait, or `seconds` pass.

        Returns False when the backend is closing and waiting is pointless.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Make the pending and every later `wait` return False at once (shutting down)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop receiving wake-ups."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Backend(abc.ABC):
    """Storage of accounts, queues and messages.

    Opened and closed explicitly, best as `async with backend:`.
    """

    # True when several server processes may use the same store at once (and see
    # each other's writes and wake-ups): `burrow serve --workers N` needs it.
    shared_between_processes = False
    # True when the store is in this process's memory or files, not on an engine a
    # network away.
    embedded = False

    def prepare(self) -> None:  # noqa: B027 (most backends need no set-up)
        """Make ready what the worker processes will share, once, before they start and
        open it each (`--workers`): a schema to create or migrate, say."""

    async def open(self) -> None:  # noqa: B027 (most backends need no set-up)
        """Acquire resources (files, pools, background tasks)."""

    async def close(self) -> None:  # noqa: B027
        """Release resources; pending waiters are woken and told to stop."""

    async def health(self) -> Health:
        """How the backend is, for `GET /health`: `healthy()`, `degraded(reason)` or
        `failing(reason)`; backends made of parts say how each part is.

        `failing` means calls fail or writes are not acknowledged (the engine does not
        answer, the files are gone): the server answers 503 so that load balancers send
        the traffic elsewhere. `degraded` means it serves, with less (a ring member
        down, a wake-up connection being re-established): 200. Called for every probe
        of a load balancer, so cheap: in-memory state, or one round trip to the engine
        with a short timeout. Never raises.
        """
        return healthy()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Accounts -------------------------------------------------------------

    @abc.abstractmethod
    async def get_accounts(self, filters: Filters) -> list[str]:
        """Names of accounts holding messages."""

    @abc.abstractmethod
    async def delete_accounts(self, filters: Filters) -> list[str]:
        """Delete every message (hidden ones too) of the matched accounts."""

    # Queues -----------------------------------------------------------------

    @abc.abstractmethod
    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        """Names of the account's queues holding messages."""

    @abc.abstractmethod
    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        """Delete every message (hidden ones too) of the matched queues."""

    # Messages in a queue ------------------------------------------------------

    @abc.abstractmethod
    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        """Matched messages, oldest first."""

    @abc.abstractmethod
    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        """Set the given attributes on the matched messages; returns them updated.

        With `attributes.receipt`, a receive: see `Attributes`.
        """

    @abc.abstractmethod
    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        """Delete the matched messages; returns what was deleted."""

    @abc.abstractmethod
    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        """Create or replace messages atomically, in order; True where one was created.

        A replace sets body, ttl, hide and meta anew (and what `Message` says a replace
        starts anew) and keeps the message's place.
        When the batch would take the queue or account past `quota`, raises
        `QuotaExceeded` and stores none of it; the check and the write are one
        atomic step, so concurrent writers cannot overshoot together.
        """

    # One message ---------------------------------------------------------------

    @abc.abstractmethod
    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        """One message by id, hidden or not."""

    @abc.abstractmethod
    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        """Set the given attributes on one message; returns it updated.

        With a `receipt`, only while the message's latest receive is the one that receipt
        names: else `MessageNotFound`, and nothing changes. Never a receive itself
        (`attributes.receipt` is None).
        """

    @abc.abstractmethod
    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        """Delete one message; returns it as it was. `receipt` as for `update_message`."""

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        """Delete each listed message as `delete_message` would (with a receipt, only
        while that receive is its latest); returns those deleted, in the order listed,
        passing by the rest. The ids are distinct. Each delete is atomic on its own; a
        backend that can do them in one step (one commit) does."""

        async def delete(message_id: str, receipt: str | None) -> Message | None:
            try:
                return await self.delete_message(account, queue, message_id, receipt)
            except MessageNotFound:
                return None

        found: list[Message | None] = []
        for start in range(0, len(targets), DELETES_AT_ONCE):  # round trips overlap
            chunk = targets[start : start + DELETES_AT_ONCE]
            found += await asyncio.gather(*(delete(*target) for target in chunk))
        return [message for message in found if message is not None]

    @abc.abstractmethod
    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        """How many messages the queue holds, by state (zeros for an unknown queue)."""

    # Queue info --------------------------------------------------------------------

    @abc.abstractmethod
    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        """The queue's info document, None if it has none."""

    @abc.abstractmethod
    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        """Store `info` only if the stored document is `expected` (None: there is none),
        in one atomic step, so that concurrent read-modify-writes cannot lose one another's
        change; True if stored. A queue's place among the account's infos is that of its
        first one."""

    @abc.abstractmethod
    async def delete_queue_info(self, account: str, queue: str) -> bool:
        """Forget the queue's info; True if it had one. Its messages are not touched."""

    @abc.abstractmethod
    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        """Names of the account's queues that have info, in the order their first info was
        stored; `marker` and `limit` as for listings (`NoMatch` if none)."""

    # Subscriptions -------------------------------------------------------------------

    @abc.abstractmethod
    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        """The subscription's document, None if there is no such subscription."""

    @abc.abstractmethod
    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        """Store `document` only if the stored one is `expected` (None: there is none), in
        one atomic step (a compare-and-set, as `set_queue_info`); True if stored."""

    @abc.abstractmethod
    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        """Forget the subscription; True if there was one. No message is touched."""

    @abc.abstractmethod
    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        """Names of the queue's subscriptions in name order (by code point); `marker` means
        strictly after that name (known or not), `limit` as for listings; `NoMatch` if
        none."""

    @abc.abstractmethod
    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        """Every (account, queue, name) of the store in order (by code point, account
        first), strictly after `after`, at most `limit`: an empty list at the end (what
        webhook delivery pages through)."""

    # Waiting ---------------------------------------------------------------------

    @abc.abstractmethod
    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        """Start receiving wake-ups for one queue (use as a context manager).

        `filters` are those of the waiting request: a backend that cannot be told
        of changes (a remote one) may use them to wait for a match instead.
        """

    async def put_message(
        self, account: str, queue: str, message: NewMessage, quota: Quota = NO_QUOTA
    ) -> bool:
        """Create or replace one message; True if it was created."""
        (created,) = await self.put_messages(account, queue, [message], quota)
        return created
