"""`memory://`: an in-process backend for tests and embedding (nothing persists)."""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from burrow.backends.background import stop_tasks
from burrow.backends.base import Backend, Subscription, SubscriptionKey
from burrow.backends.hide_index import HideIndex
from burrow.backends.memory_messages import (
    BODY,
    EXPIRES,
    HIDDEN_UNTIL,
    ID,
    NUMBER,
    RECEIPT,
    RECEIVES,
    SENT,
    Stored,
    applied,
    expired,
    renumbered,
    report,
    stored,
    visible,
)
from burrow.backends.notify import Notifier
from burrow.backends.split_dict import SplitDict
from burrow.errors import MessageNotFound, NoMatch
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


class Queue(SplitDict[Stored]):
    """A queue's messages by id. Keeps their order itself, so that a listing starts at
    the first message, or right after a marker, without stepping over the messages
    before it or the holes that removes leave (messages are stored with `q.add(new,
    now)`, which keeps a replaced one's place, and removed with `q.remove(id)`;
    `q.changed(message)` stores a new version of one, its body the same). Knows its body
    bytes, and its hide deadlines (for wake-ups). A `SplitDict`: a growing queue never
    stops to rebuild its table."""

    __slots__ = ("bytes", "first", "head", "hidden", "order", "soonest")

    def __init__(self) -> None:
        super().__init__()
        # One entry per hide written, made when the first one is (see `MemoryBackend._hid`).
        self.hidden: HideIndex | None = None
        # Ids in order (a removed one leaves None) from number `first` on (each message
        # holds its number: they only grow, so trimming the front keeps them), and the
        # index of the first slot that may hold one.
        self.order: list[str | None] = []
        self.first = self.head = 0
        self.bytes = 0
        # No message expires before this (the expiry sweep passes the queue by until then).
        self.soonest = math.inf

    def add(self, new: NewMessage, now: float) -> Stored:
        """Store `new`, in the place of the message it replaces or last."""
        old = self.get(new.id)
        if old is None:
            number = self.first + len(self.order)
            self.order.append(new.id)
        else:
            number = old[NUMBER]
            self.bytes -= len(old[BODY])
        self.bytes += len(new.body)
        message = stored(new, now, number)
        self.changed(message)
        return message

    def changed(self, message: Stored) -> None:
        """Store a new version of a stored message (its attributes, not its body)."""
        self[message[ID]] = message
        if 0 < message[EXPIRES] < self.soonest:
            self.soonest = message[EXPIRES]

    def remove(self, message_id: str) -> Stored:
        message = self.pop(message_id)
        self.order[message[NUMBER] - self.first] = None
        self.bytes -= len(message[BODY])
        order, head = self.order, self.head
        while head < len(order) and order[head] is None:
            head += 1
        self.head = head
        front_heavy = head > _MIN_HOLES and head * 16 > len(order)
        if front_heavy or len(order) > 2 * len(self) + _MIN_HOLES:
            self._trim()
        return message

    def _trim(self) -> None:
        """Drop the slots before the first stored id (a queue read from the front), or
        renumber when most are holes between stored ids: a constant per remove, amortised.
        """
        del self.order[: self.head]
        self.first += self.head
        self.head = 0
        if len(self.order) > 2 * len(self) + _MIN_HOLES:
            ids = [key for key in self.order if key is not None]
            for number, key in enumerate(ids, self.first):
                self[key] = renumbered(self[key], number)
            self.order[:] = ids

    def after(self, marker: str | None) -> Iterator[str]:
        """Ids strictly after `marker`; from the start when it is None or not stored."""
        found = None if marker is None else self.get(marker)
        start = self.head if found is None else found[NUMBER] - self.first + 1
        order = self.order
        # (The slots from `start` on without the holes, iterated in C.)
        return filter(None, map(order.__getitem__, range(start, len(order))))


class Account(dict[str, Queue]):
    """An account's queues by name, in order, and the total size of its bodies."""

    __slots__ = ("bytes",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.bytes = 0


_NO_MESSAGES = Queue()  # (never stored into)
_NO_QUEUES: Mapping[str, Queue] = MappingProxyType({})
V = TypeVar("V")
_MIN_HOLES = 1024
_FREE_CHUNK = 5000  # messages freed between two turns of the loop (a few ms)
# A queue's hide index is rebuilt from its messages once it has this many entries more
# than twice its messages (entries outlived by a later hide or a delete): bounded by
# what the queue holds, at an amortised constant cost per hide.
_SPARE_HIDES = 16


def after_marker(keys: Iterable[str], marker: str | None, known: bool) -> Iterator[str]:
    """Keys strictly after `marker`; from the start when the marker is unknown."""
    it = iter(keys)
    if marker is not None and known:
        for key in it:
            if key == marker:
                break
    return it


class MemoryBackend(Backend):
    """Ordered dicts all the way down: account → queue → message id → message.

    A dict keeps insertion order and keeps a key's place when its value is
    replaced, which is exactly the listing order and replace rule of the API.
    Every method does its work without awaiting, so each is atomic on the event
    loop; a delete of queues or accounts then frees what it took a chunk at a time.
    """

    embedded = True

    def __init__(self, sweep_interval: float = 1.0) -> None:
        self._accounts: dict[str, Account] = {}
        self._infos: dict[str, dict[str, bytes]] = {}  # account → queue → info, in order
        self._subscriptions: dict[SubscriptionKey, bytes] = {}  # listed in sorted order
        self._notifier = Notifier(self._next_shown)
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        self._notifier.close()
        await stop_tasks([self._sweeper])

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        return self._notifier.subscribe(account, queue)

    def wakeups(self) -> dict[str, int]:
        """What this backend holds for long polls (see `Notifier.stats`)."""
        return self._notifier.stats()

    # Accounts and queues ---------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        now = time.time()
        return self._names(self._accounts, filters, lambda a: _account_live(a, now), "accounts")

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)
        gone = [queue for name in names for queue in self._accounts.pop(name).values()]
        await _let_go(gone)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        now = time.time()
        queues = self._accounts.get(account, _NO_QUEUES)
        return self._names(queues, filters, lambda q: _queue_live(q, now), "queues")

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        names = await self.get_queues(account, filters)
        queues = self._accounts[account]
        gone = [queues.pop(name) for name in names]
        queues.bytes -= sum(messages.bytes for messages in gone)
        if not queues:
            del self._accounts[account]
        await _let_go(gone)
        return names

    @staticmethod
    def _names(
        items: Mapping[str, V], filters: Filters, live: Callable[[V], bool], what: str
    ) -> list[str]:
        names: list[str] = []
        for name in after_marker(items, filters.marker, filters.marker in items):
            if live(items[name]):
                names.append(name)
                if filters.limit is not None and len(names) >= filters.limit:
                    break
        if not names:
            raise NoMatch(what)
        return names

    # Messages in a queue ------------------------------------------------------

    def _match(self, account: str, queue: str, filters: Filters, now: float) -> list[Stored]:
        messages = self._queue(account, queue)
        matched: list[Stored] = []
        for key in messages.after(filters.marker):
            message = messages[key]
            if expired(message, now) or not (filters.match_hidden or visible(message, now)):
                continue
            matched.append(message)
            if filters.limit is not None and len(matched) >= filters.limit:
                break
        if not matched:
            raise NoMatch()
        return matched

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        now = time.time()
        return [report(m, now) for m in self._match(account, queue, filters, now)]

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        now = time.time()
        messages = self._queue(account, queue)
        matched = [applied(m, attributes, now) for m in self._match(account, queue, filters, now)]
        for message in matched:
            messages.changed(message)
        self._announce(account, queue, matched, now)
        return [report(m, now) for m in matched]

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        now = time.time()
        matched = self._match(account, queue, filters, now)
        for message in matched:
            self._remove(account, queue, message[ID])
        return [report(m, now) for m in matched]

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        now = time.time()
        if quota:
            self._check_quota(account, queue, messages, quota)
        queues = self._accounts.get(account)
        if queues is None:
            queues = self._accounts[account] = Account()
        held = queues.get(queue)
        if held is None:
            held = queues[queue] = Queue()
        created = []
        new_ones = []
        for new in messages:
            old = held.get(new.id)
            created.append(old is None or expired(old, now))
            if old is not None:
                queues.bytes -= len(old[BODY])
                if expired(old, now):
                    held.remove(new.id)  # an expired message is gone: its successor goes last
            message = held.add(new, now)
            queues.bytes += len(new.body)
            new_ones.append(message)
        self._announce(account, queue, new_ones, now)
        return created

    def _check_quota(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota
    ) -> None:
        queues = self._accounts.get(account, Account())
        held = queues.get(queue, _NO_MESSAGES)
        old = [held[m.id] for m in messages if m.id in held]
        quota.check(
            queue_messages=len(held) + len(messages) - len(old),
            account_queues=len(queues) + (queue not in queues),
            account_bytes=queues.bytes
            + sum(len(m.body) for m in messages)
            - sum(len(m[BODY]) for m in old),
        )

    # One message -------------------------------------------------------------------

    def _one(
        self, account: str, queue: str, message_id: str, now: float, receipt: str | None = None
    ) -> Stored:
        message = self._queue(account, queue).get(message_id)
        if message is None or expired(message, now):
            raise MessageNotFound(message_id)
        if receipt is not None and (message[RECEIPT] != receipt or not receipt):
            raise MessageNotFound(message_id)
        return message

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        now = time.time()
        return report(self._one(account, queue, message_id, now), now)

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        now = time.time()
        message = applied(self._one(account, queue, message_id, now, receipt), attributes, now)
        self._queue(account, queue).changed(message)
        self._announce(account, queue, [message], now)
        return report(message, now)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        now = time.time()
        message = self._one(account, queue, message_id, now, receipt)
        self._remove(account, queue, message_id)
        return report(message, now)

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        now = time.time()
        shown = in_flight = delayed = size = 0
        oldest = newest = 0.0
        messages = self._queue(account, queue)
        for key in messages.after(None):  # (a walk, in order: memory is small)
            message = messages[key]
            if expired(message, now):
                continue
            if visible(message, now):
                shown += 1
            elif message[RECEIVES]:
                in_flight += 1
            else:
                delayed += 1
            size += len(message[BODY])
            newest = message[SENT]
            oldest = oldest or message[SENT]
        return MessageCounts(shown, in_flight, delayed, size, oldest, newest)

    # Queue info --------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        return self._infos.get(account, {}).get(queue)

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        infos = self._infos.setdefault(account, {})
        if infos.get(queue) != expected:
            if not infos:
                del self._infos[account]
            return False
        infos[queue] = info
        return True

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        infos = self._infos.get(account, {})
        if infos.pop(queue, None) is None:
            return False
        if not infos:
            del self._infos[account]
        return True

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        infos = self._infos.get(account, {})
        return self._names(infos, filters, lambda info: True, "queues")

    # Subscriptions (few: listings sort what they match) ---------------------------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        return self._subscriptions.get((account, queue, name))

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        key = (account, queue, name)
        if self._subscriptions.get(key) != expected:
            return False
        self._subscriptions[key] = document
        return True

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        return self._subscriptions.pop((account, queue, name), None) is not None

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        marker = filters.marker or ""
        names = (
            name
            for (a, q, name) in self._subscriptions
            if a == account and q == queue and name > marker
        )
        found = sorted(names) if filters.limit is None else heapq.nsmallest(filters.limit, names)
        if not found:
            raise NoMatch("subscriptions")
        return found

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        keys = (key for key in self._subscriptions if after is None or key > after)
        return heapq.nsmallest(limit, keys)

    # Internals -------------------------------------------------------------------------

    def _announce(self, account: str, queue: str, touched: list[Stored], now: float) -> None:
        hidden = [m for m in touched if m[HIDDEN_UNTIL] > now]
        if hidden:
            self._hid(self._accounts[account][queue], hidden, now)
        self._notifier.written(account, queue, (m[HIDDEN_UNTIL] for m in hidden))

    @staticmethod
    def _hid(messages: Queue, hidden: list[Stored], now: float) -> None:
        """Index the deadlines of messages just hidden; rebuild an index grown past
        twice the queue (outdated entries), an amortised constant per hide. Every hide
        comes here, so a queue without an index has no other hidden message."""
        index = messages.hidden
        if index is None:
            messages.hidden = HideIndex((m[HIDDEN_UNTIL], m[ID]) for m in hidden)
        elif len(index) > 2 * len(messages) + _SPARE_HIDES:
            live = ((m[HIDDEN_UNTIL], m[ID]) for m in messages.values() if m[HIDDEN_UNTIL] > now)
            messages.hidden = HideIndex(live)
        else:
            for message in hidden:
                index.add(message[HIDDEN_UNTIL], message[ID])

    def _next_shown(self, account: str, queue: str) -> float | None:
        """When the queue's next hidden message shows (the notifier's lookup)."""
        messages = self._accounts.get(account, _NO_QUEUES).get(queue)
        if messages is None or messages.hidden is None:
            return None

        def deadline_of(message_id: str) -> float | None:
            message = messages.get(message_id)
            return None if message is None else message[HIDDEN_UNTIL]

        return messages.hidden.next_shown(time.time(), deadline_of)

    def _queue(self, account: str, queue: str) -> Queue:
        return self._accounts.get(account, _NO_QUEUES).get(queue, _NO_MESSAGES)

    def _remove(self, account: str, queue: str, message_id: str) -> None:
        queues = self._accounts[account]
        messages = queues[queue]
        queues.bytes -= len(messages.remove(message_id)[BODY])
        if not messages:
            del queues[queue]
            if not queues:
                del self._accounts[account]

    async def purge_expired(self) -> int:
        """Drop expired messages and the queues and accounts they leave empty, looking at
        `_FREE_CHUNK` messages between two turns of the loop (a queue is read a shard at
        a time: copying a million messages at once held the loop for tens of ms). A queue
        none of whose messages is due yet is passed by (walking a million messages took
        200 ms of CPU, every second); a walk finds when the next one is."""
        now = time.time()
        purged = looked = 0
        for account, queue in [(a, q) for a, queues in self._accounts.items() for q in queues]:
            walked = self._queue(account, queue)
            if walked.soonest > now:
                continue
            walked.soonest = math.inf  # (lowered again by what the walk keeps, and by writes)
            for seen in walked.value_lists():
                for start in range(0, len(seen), _FREE_CHUNK):
                    chunk = seen[start : start + _FREE_CHUNK]
                    messages = self._queue(account, queue)  # (gone, or written, meanwhile)
                    later = [m[EXPIRES] for m in chunk if m[EXPIRES] > now]
                    if later and min(later) < messages.soonest:
                        messages.soonest = min(later)
                    for message in [m for m in chunk if 0 < m[EXPIRES] <= now]:
                        if messages.get(message[ID]) is message:
                            self._remove(account, queue, message[ID])
                            purged += 1
                    looked += len(chunk)
                    if looked >= _FREE_CHUNK:
                        looked = 0
                        await asyncio.sleep(0)
        return purged

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            await self.purge_expired()


async def _let_go(gone: list[Queue]) -> None:
    """Free deleted queues a chunk of messages at a time, letting other requests run in
    between (freeing 200,000 messages at once holds the loop for tens of milliseconds).
    They are out of the account already: the delete itself was one atomic step."""
    for messages in gone:
        while messages:
            messages.drop_some(_FREE_CHUNK)
            await asyncio.sleep(0)
        while messages.order:
            del messages.order[-_FREE_CHUNK:]
            await asyncio.sleep(0)


def _queue_live(messages: Queue, now: float) -> bool:
    return any(not expired(m, now) for m in messages.values())


def _account_live(queues: Account, now: float) -> bool:
    return any(_queue_live(q, now) for q in queues.values())
