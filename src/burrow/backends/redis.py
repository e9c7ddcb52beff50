"""`redis://`, `redis+sentinel://`, `redis+cluster://`: many Burrow servers on one Redis.

URLs:
    redis://host:port/db
    redis+sentinel://h1:p1,h2:p2/master-name
    redis+cluster://h1:p1,h2:p2
each optionally with `?durability=fsync|replicas|none` (what an acknowledged write
survives, checked when the backend opens: redis_durability.py), `replicas=N` (replicas
that confirm each write, 1 with durability=replicas or its older spelling `durable=1`)
and `wait_ms` (how long they may take, 1000); see docs/redis.md.

Key layout. Every key of an account shares one hash slot: the hash tag is the
account name in hex, so no name can break it. With P = `b:{<hex account>}:`:
    P a            HASH  seq (one counter for queues and messages), bytes,
                         rgen/idx (account index bookkeeping, below)
    P qs           ZSET  queue name -> seq: the account's queues in creation order
    P xq           ZSET  queue name -> its earliest expiry (what the sweeper visits)
    P qb           HASH  queue name -> bytes of its bodies
    P q:<hex q>:o  ZSET  id -> seq: every message in creation order
    P q:<hex q>:r  ZSET  id -> seq: the visible ones (claims never rescan hidden ones)
    P q:<hex q>:h  ZSET  id -> hidden until (ms, server clock)
    P q:<hex q>:x  ZSET  id -> expires (ms); absent = never
    P q:<hex q>:b  HASH  id -> body (binary-safe)
    P q:<hex q>:m  HASH  id -> `<sent ms>:<meta>` (when put, what the frontend keeps)
    P q:<hex q>:v  HASH  id -> `<receives>:<first received ms>:<latest receipt>`
    P q:<hex q>:f  ZSET  id -> hidden until (ms, 0 = visible) of received messages
    P i            HASH  queue name -> its info document (apart from its messages)
    P io           ZSET  queue name -> seq of its first info: the infos' order
    P s:<hex q>    HASH  subscription name -> its document (apart from the messages)
    P sn:<hex q>   ZSET  subscription name -> 0: the queue's subscriptions by name
A replace keeps the id's seq, hence its place, and starts `m`, `v` and `f` anew.
Only received messages are in `v` and `f`: counts by state are set sizes and score
ranges (`f` beside `h`), not walks. A message stored before `m` and `v` existed reads
as never received, with meta b"" and sent 0.0 (unknown). Queue listings and every quota
are exact: they are read and written by the same script as the messages.

Slot rule. One account lives on one shard: its quotas (`max_account_queues`,
`max_account_bytes`) are checked and spent in the write's own script, so
concurrent writers can never overshoot them; a tenant bigger than a shard is
split across accounts. Only the list of accounts, and that of every subscription,
span slots: `redis_index` keeps them, and runs the sweeper.

Clock: deadlines come from `TIME` inside the scripts, never from this process.
Expired messages are skipped by every script and purged by the sweeper.

PUTs without a quota to one queue that wait at the same time run as one PUT script,
deletes by id as one DELETE_LISTED, and claims and pops of the first visible messages
as one SELECT (`joined_calls`): one round trip and one script for all of them.

The connections (standalone, Sentinel or Cluster), reads retried through a failover
and writes confirmed by replicas are `redis_connection`'s; wake-ups across servers,
`redis_wakeups`'.

Without `replicas`, a write is acknowledged once the primary ran it (and, in
the default fsync mode, fsynced it to its AOF); replication is asynchronous, so
a primary that fails over loses the writes its replica had not yet received
(usually the last millisecond or so).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import Any

from burrow.backends import redis_scripts as lua
from burrow.backends.base import (
    Backend,
    DeleteTarget,
    Health,
    Subscription,
    SubscriptionKey,
    degraded,
    failing,
    healthy,
)
from burrow.backends.joined_calls import (
    JoinedById,
    JoinedTakes,
    id_of_message,
    id_of_target,
)
from burrow.backends.notify import Notifier
from burrow.backends.redis_connection import Connection
from burrow.backends.redis_index import Index, account_key
from burrow.backends.redis_url import RedisURL
from burrow.backends.redis_wakeups import Wakeups, channel_for
from burrow.errors import BackendUnavailable, ConfigError, MessageNotFound, NoMatch
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

_KEEP = -1  # "leave this attribute as it is" in script arguments
_SCRIPTS = (
    *("PUT", "SELECT", "ONE", "DELETE_LISTED", "COUNT", "QUEUES", "ACCOUNT", "INFO"),
    *("SUBSCRIPTION", "CONFIRM_INDEX", "INDEX_ADD"),
)


class RedisBackend(Backend):
    """Accounts, queues and messages in Redis, shared by any number of Burrow servers."""

    shared_between_processes = True

    def __init__(self, url: str, *, sweep_interval: float = 1.0) -> None:
        self.url = RedisURL.parse(url)
        self._redis = Connection(self.url, {name: getattr(lua, name) for name in _SCRIPTS})
        self._origin = uuid.uuid4().hex
        self._index = Index(self._redis, self._origin, sweep_interval)
        self._notifier = Notifier()
        self._wakeups = Wakeups(self._redis.connect_pubsub, self._notifier, self._origin)
        self._puts = JoinedById[NewMessage, bool](self._put_joined, id_of_message)
        self._deletes = JoinedById[DeleteTarget, Message](self._delete_joined, id_of_target)
        self._takes = JoinedTakes(self._take_joined)
        self._closed = False

    # Life cycle ------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._redis.open()
        except (BackendUnavailable, ConfigError):
            await self.close()
            raise
        self._wakeups.start()
        self._index.start_sweeper()
        # Wake-ups from other servers flow once the pub/sub connection is up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._wakeups.connected.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._redis.stop_retrying()
        self._notifier.close()
        await self._index.stop_sweeper()
        await self._puts.stop()
        await self._deletes.stop()
        await self._takes.stop()
        await self._wakeups.stop()
        await self._redis.close()

    async def health(self) -> Health:
        """Failing when Redis does not answer a PING; degraded while the pub/sub
        connection (wake-ups from other servers) is re-established."""
        problem = "redis backend is not open" if self._closed else await self._redis.unreachable()
        if problem is not None:
            return failing(problem)
        if not self._wakeups.connected.is_set():
            return degraded("the pub/sub connection is reconnecting")
        return healthy()

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        return self._wakeups.subscribe(account, queue)

    # Accounts and queues -------------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        names = [name async for name in self._index.live_accounts(filters)]
        if not names:
            raise NoMatch("accounts")
        return names

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)
        for name in names:
            await self._redis.write("ACCOUNT", [account_key(name)], ["delete"])
            await self._index.remove(name)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._queues(account, filters, "get")

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        names = await self._queues(account, filters, "delete")
        await self._index.remove(account)
        return names

    async def _queues(self, account: str, filters: Filters, mode: str) -> list[str]:
        args = [mode, filters.limit or 0, filters.marker or ""]
        keys = [account_key(account)]
        raw = await (self._redis.read if mode == "get" else self._redis.write)("QUEUES", keys, args)
        if not raw:
            raise NoMatch("queues")
        return [name.decode() for name in raw]

    # Messages in a queue ----------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._select(account, queue, "get", filters, Attributes())

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._takes.take(
            account,
            queue,
            filters,
            attributes,
            lambda: self._select(account, queue, "update", filters, attributes),
        )

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._takes.take(
            account,
            queue,
            filters,
            None,
            lambda: self._select(account, queue, "delete", filters, Attributes()),
        )

    async def _take_joined(
        self, account: str, queue: str, attributes: Attributes | None, limit: int
    ) -> list[Message]:
        """The claims (`attributes`) or pops of a joined batch, in one script."""
        mode = "delete" if attributes is None else "update"
        filters = Filters(limit=limit)
        return await self._select(account, queue, mode, filters, attributes or Attributes())

    async def _select(
        self, account: str, queue: str, mode: str, filters: Filters, attributes: Attributes
    ) -> list[Message]:
        unconfirmed = self._wakeups.unconfirmed(account, queue)
        args = [
            *self._queue_args(account, queue),
            mode,
            filters.limit or 0,
            filters.marker or "",
            int(filters.match_hidden),
            _keep(attributes.ttl),
            _keep(attributes.hide),
            _given(attributes.receipt),
        ]
        keys = [account_key(account)]
        raw = await (self._redis.read if mode == "get" else self._redis.write)("SELECT", keys, args)
        now, earliest_hidden = raw[0], raw[1]
        if len(raw) == 2:
            if unconfirmed:
                self._wakeups.found_nothing(account, queue)
            if earliest_hidden:
                # A waiter that looks now wakes when the next hidden message shows.
                self._notifier.visible_at(account, queue, _local_time(earliest_hidden, now))
            raise NoMatch()
        messages = _messages(raw)
        if mode == "update":
            self._announce(account, queue, attributes)
        return messages

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        if not messages:
            return []
        if quota or len({m.id for m in messages}) < len(messages):
            answers = await self._put(account, queue, messages, quota)
        else:  # (a quota is checked on each batch as a whole: those go alone)
            created = await self._puts.call(account, queue, messages)
            answers = [created[m.id] for m in messages]
        hides = [m.hide for m in messages if m.hide]
        now = time.time()
        self._notifier.written(account, queue, (now + h for h in hides))
        return answers

    async def _put(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        """One PUT script: whether each message was created."""
        args: list[Any] = [
            *self._queue_args(account, queue),
            quota.max_queue_messages,
            quota.max_account_queues,
            quota.max_account_bytes,
        ]
        for message in messages:
            args += [message.id, message.body, message.ttl, message.hide, message.meta]
        raw = await self._redis.write("PUT", [account_key(account)], args)
        if raw[0] == -1:
            quota.check(queue_messages=raw[2], account_queues=raw[3], account_bytes=raw[4])
            raise BackendUnavailable("quota refused by redis but not by Quota.check")
        if raw[1]:
            await self._index.add(account, raw[1])
        return [bool(flag) for flag in raw[2:]]

    async def _put_joined(
        self, account: str, queue: str, messages: list[NewMessage]
    ) -> dict[str, bool]:
        """The PUTs of a joined batch (distinct ids), in one script."""
        created = await self._put(account, queue, messages)
        return dict(zip((m.id for m in messages), created, strict=True))

    # One message --------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._one(account, queue, message_id, "get", Attributes())

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        return await self._one(account, queue, message_id, "update", attributes, receipt)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        deleted = await self._deletes.one(account, queue, (message_id, receipt))
        if deleted is None:
            raise MessageNotFound(message_id)
        return deleted

    async def _one(
        self,
        account: str,
        queue: str,
        message_id: str,
        mode: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        args = [
            *self._queue_args(account, queue),
            mode,
            message_id,
            _keep(attributes.ttl),
            _keep(attributes.hide),
            _given(receipt),
        ]
        keys = [account_key(account)]
        raw = await (self._redis.read if mode == "get" else self._redis.write)("ONE", keys, args)
        if len(raw) == 2:
            raise MessageNotFound(message_id)
        if mode == "update":
            self._announce(account, queue, attributes)
        return _messages(raw)[0]

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        if len({message_id for message_id, _ in targets}) < len(targets):
            return await self._delete_listed(account, queue, targets)  # (reported as listed)
        deleted = await self._deletes.call(account, queue, targets)
        return [deleted[message_id] for message_id, _ in targets if message_id in deleted]

    async def _delete_listed(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        """One DELETE_LISTED script: the messages it deleted, in the order listed."""
        args = self._queue_args(account, queue)
        for message_id, receipt in targets:
            args += [message_id, _given(receipt)]
        return _messages(await self._redis.write("DELETE_LISTED", [account_key(account)], args))

    async def _delete_joined(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> dict[str, Message]:
        """The deletes of a joined batch (distinct ids), in one script."""
        return {m.id: m for m in await self._delete_listed(account, queue, targets)}

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        keys = [account_key(account)]
        name = queue.encode()
        counts = await self._redis.read("COUNT", keys, [name.hex(), name])
        visible, in_flight, delayed, size, oldest_ms, newest_ms = counts
        return MessageCounts(visible, in_flight, delayed, size, oldest_ms / 1e3, newest_ms / 1e3)

    # Queue info ---------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        info: bytes | None = await self._redis.read("INFO", [account_key(account)], ["get", queue])
        return info

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        args = ["set", queue, info, _given(expected)]
        return bool(await self._redis.write("INFO", [account_key(account)], args))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        return bool(await self._redis.write("INFO", [account_key(account)], ["delete", queue]))

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        args = ["list", filters.limit or 0, filters.marker or ""]
        raw = await self._redis.read("INFO", [account_key(account)], args)
        if not raw:
            raise NoMatch("queues")
        return [name.decode() for name in raw]

    # Subscriptions ----------------------------------------------------------------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        args = ["get", queue.encode().hex(), name]
        document: bytes | None = await self._redis.read(
            "SUBSCRIPTION", [account_key(account)], args
        )
        return document

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        args = ["set", queue.encode().hex(), name, document, _given(expected)]
        if not await self._redis.write("SUBSCRIPTION", [account_key(account)], args):
            return False
        await self._index.add_subscription(account, queue, name)
        return True

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        args = ["delete", queue.encode().hex(), name]
        deleted = await self._redis.write("SUBSCRIPTION", [account_key(account)], args)
        await self._index.remove_subscription(account, queue, name)
        return bool(deleted)

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        args = ["list", queue.encode().hex(), filters.limit or 0, filters.marker or ""]
        raw = await self._redis.read("SUBSCRIPTION", [account_key(account)], args)
        if not raw:
            raise NoMatch("subscriptions")
        return [name.decode() for name in raw]

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        return await self._index.subscriptions(after, limit)

    # Internals ------------------------------------------------------------------------

    def _queue_args(self, account: str, queue: str) -> list[Any]:
        return [queue, queue.encode().hex(), self._origin, channel_for(account, queue)]

    def _announce(self, account: str, queue: str, attributes: Attributes) -> None:
        if attributes.ttl is None and attributes.hide is None:
            return
        hides = [time.time() + attributes.hide] if attributes.hide else []
        self._notifier.written(account, queue, hides)

    # Sweeper ----------------------------------------------------------------------------

    async def purge_expired(self) -> int:
        """Delete expired messages and unlist the accounts they leave empty."""
        return await self._index.purge_expired()


def _keep(value: int | None) -> int:
    return _KEEP if value is None else value


def _given(value: str | bytes | None) -> bytes:
    """A script argument that may be absent: b"" for None, else `=` and the value (so that
    an empty value is not taken for none)."""
    if value is None:
        return b""
    return b"=" + (value.encode() if isinstance(value, str) else value)


def _local_time(at_ms: int, now_ms: int) -> float:
    return time.time() + (at_ms - now_ms) / 1000


def _remaining(at_ms: int, now_ms: int) -> int:
    return math.ceil((at_ms - now_ms) / 1000) if at_ms > now_ms else 0


def _messages(raw: list[Any]) -> list[Message]:
    """The messages a script reports after its header (see redis_scripts.py)."""
    now, fields = raw[0], iter(raw[2:])
    messages = []
    for message_id, body, expires, hidden, put, receives in zip(*[fields] * 6, strict=True):
        sent, _, meta = put.partition(b":")  # b"" for a message stored before `m` existed
        count, first_received, receipt = receives.split(b":", 2) if receives else (0, 0, b"")
        messages.append(
            Message(
                message_id.decode(),
                body,
                _remaining(expires, now),
                _remaining(hidden, now),
                int(count),
                receipt.decode(),
                int(sent or 0) / 1000,
                int(first_received) / 1000,
                meta,
            )
        )
    return messages
