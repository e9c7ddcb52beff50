"""`ring:///path/ring.toml`: a proxy placing each account on a set of members per zone.

Placement (see `ring_placement`; the calls that go to one owner: `ring_routing`): an
account has `replicas` members in each zone; a request uses the set of the caller's
zone (`X-Burrow-Zone`, else the proxy's) and another zone's only while its own has no
live member. Within the set, a message lives on the first live member of its id's order.

Reading across a set (`ring_listing`, with `ring_pages` and `ring_merge`): listings merge
the members' own orders, which is creation order across members when ids grow with
time, as the ids the server makes do. A page asks every member at once for at most
`limit` messages after its own place. After a marker, the member holding it goes on
after it; each other member goes on where the page that ended at that marker left it
(remembered by this proxy) or, for a marker this proxy did not hand out, from its
first message with a greater id. Claims and pops look at the members' next matches
first, then ask each member to take its share of the first `limit`, so they never
return more than `limit` and never take messages they then drop: each message is
still claimed or popped exactly once. Accounts and queues merge every member's
whole list of names. A long poll waits on every live member at once.

Receives are claims (each member stores the receipt in its own atomic claim), and a
call on one receive goes where a call by id does. Counts add up the set's members.
A queue's info lives on the account's first live member (in set order): every info of
an account on one member, so that their order is that member's and a compare-and-set
is one atomic step there. While it is down the next one takes new infos; a read asks
the members in set order and takes the first info found, a write goes where that read
found it, a delete reaches every member, and a listing merges them all. Subscriptions
are kept the same way, each where its first document was stored; listings by name merge
the members' sorted names, and the store-wide one asks every live member.

Health (`ring_members`): a member whose call fails with `BackendUnavailable` is skipped,
for a backoff that doubles from 0.5 s to 30 s; a background probe brings it back when
it answers again. Reads skip a dead member (its messages wait for it to return);
writes go to the next member of the id's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from burrow.backends import ring_routing as routing
from burrow.backends.background import stop_tasks
from burrow.backends.base import Backend, DeleteTarget, Health, Subscription, SubscriptionKey
from burrow.backends.ring_listing import RingListings, merged_names
from burrow.backends.ring_members import RingMembers, RingSubscription, each, on
from burrow.backends.ring_placement import RingConfig
from burrow.errors import BackendUnavailable, NoMatch
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


class RingBackend(Backend):
    shared_between_processes = True

    def __init__(self, config: RingConfig, open_member: Callable[[str], Backend]) -> None:
        self.config = config
        self.members = RingMembers(config, open_member)
        self._listings = RingListings(self.members)
        self._prober: asyncio.Task[None] | None = None
        self._subscriptions: set[RingSubscription] = set()

    async def open(self) -> None:
        await self.members.open()
        self._prober = asyncio.create_task(self.members.probe_forever())

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.interrupt()
        await stop_tasks([*self._listings.repairs, self._prober])
        await self.members.close()

    async def health(self) -> Health:
        return await self.members.health()

    # Accounts and queues --------------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await merged_names(
            self.members.live(), lambda b: b.get_accounts(ALL_ITEMS), filters, "accounts"
        )

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)

        async def drop(backend: Backend, name: str) -> list[str]:
            return await backend.delete_queues(name, ALL_ITEMS)

        for name in names:
            await each(self.members.live(), drop, name)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        members = self.members.live_set(account)
        return await merged_names(
            members, lambda b: b.get_queues(account, ALL_ITEMS), filters, "queues"
        )

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        names = await self.get_queues(account, filters)

        async def drop(backend: Backend, name: str) -> list[Message]:
            return await backend.delete_messages(account, name, Filters(match_hidden=True))

        for name in names:
            await each(self.members.live_set(account), drop, name)
        return names

    # Messages in a queue --------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._listings.get_messages(account, queue, filters)

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._listings.take(
            account,
            queue,
            filters,
            lambda b, f: b.update_messages(account, queue, attributes, f),
            gone_after=False,
        )

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._listings.take(
            account,
            queue,
            filters,
            lambda b, f: b.delete_messages(account, queue, f),
            gone_after=True,
        )

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        return await routing.put_messages(self.members, account, queue, messages, quota)

    # One message ----------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await routing.by_id(
            self.members,
            account,
            queue,
            message_id,
            lambda b: b.get_message(account, queue, message_id),
        )

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        return await routing.by_id(
            self.members,
            account,
            queue,
            message_id,
            lambda b: b.update_message(account, queue, message_id, attributes, receipt),
        )

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        return await routing.by_id(
            self.members,
            account,
            queue,
            message_id,
            lambda b: b.delete_message(account, queue, message_id, receipt),
        )

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        return await routing.delete_listed(self.members, account, queue, targets)

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        """The sum of the live members' counts (a member that is down is not counted)."""
        counts = await each(
            self.members.live_set(account), lambda b: b.count_messages(account, queue)
        )
        oldest = [c.oldest for c in counts if c.oldest]
        return MessageCounts(
            sum(c.visible for c in counts),
            sum(c.in_flight for c in counts),
            sum(c.delayed for c in counts),
            sum(c.bytes for c in counts),
            min(oldest, default=0.0),
            max((c.newest for c in counts), default=0.0),
        )

    # Queue info (see the module: on the account's first live member) ---------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        _, info = await routing.holder(
            self.members, account, lambda b: b.get_queue_info(account, queue)
        )
        return info

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        holder, _ = await routing.holder(
            self.members, account, lambda b: b.get_queue_info(account, queue)
        )
        return await on(holder, lambda b: b.set_queue_info(account, queue, info, expected))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        """Deleted on every live member, so that no copy written elsewhere while the
        first member was down comes back."""
        deleted = await each(
            self.members.live_set(account), lambda b: b.delete_queue_info(account, queue)
        )
        return any(deleted)

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        members = self.members.live_set(account)
        return await merged_names(
            members, lambda b: b.list_queue_infos(account, ALL_ITEMS), filters, "queues"
        )

    # Subscriptions (as queue info: on the account's first live member) -----------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        _, document = await routing.holder(
            self.members, account, lambda b: b.get_subscription(account, queue, name)
        )
        return document

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        holder, _ = await routing.holder(
            self.members, account, lambda b: b.get_subscription(account, queue, name)
        )
        return await on(
            holder, lambda b: b.set_subscription(account, queue, name, document, expected)
        )

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        """Deleted on every live member, as a queue's info is."""
        deleted = await each(
            self.members.live_set(account), lambda b: b.delete_subscription(account, queue, name)
        )
        return any(deleted)

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        """Each member's first `limit` after the marker, merged: those hold the first
        `limit` of all."""
        listings = await each(
            self.members.live_set(account), lambda b: b.list_subscriptions(account, queue, filters)
        )
        names = sorted(set().union(*listings))[: filters.limit]
        if not names:
            raise NoMatch("subscriptions")
        return names

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        pages = await each(self.members.live(), lambda b: b.list_all_subscriptions(after, limit))
        return sorted(set().union(*pages))[:limit]

    # Waiting --------------------------------------------------------------------------

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        try:
            members = self.members.live_set(account)
        except BackendUnavailable:
            members = []
        subscription = RingSubscription(
            self._subscriptions,
            [(s, s.backend.subscribe(account, queue, filters)) for s in members],
        )
        self._subscriptions.add(subscription)
        return subscription
