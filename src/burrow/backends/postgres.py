"""`postgresql://user:password@host:port/database`: many Burrow servers on one PostgreSQL.

Also `postgres://`. Query parameters the driver understands (`sslmode`, …) pass
through; Burrow's own are `pool_size` (connections per server, default 10) and
`command_timeout` (seconds, default 10). See docs/postgres.md.

Every operation is one statement in most cases, atomic by itself: claims and
pops lock their rows with SKIP LOCKED (see `postgres_sql`), puts upsert a whole
batch. Writes with a quota run in a transaction that first takes an advisory
lock on the account, then counts what the write leaves. Emptied queues and
accounts are dropped after the write (`postgres_purge`, which also runs the purge
task). Calls on one queue that wait at the same time go as one statement
(`joined_calls`): PUTs without a quota, deletes by id, and claims and pops of the
first visible messages. Queue info has a table of its own (`queue_infos`), which no
message operation touches; so have the subscriptions (`subscriptions`).

The backend composes the rest: `postgres_pool` (the URL's options, the connections,
whether PostgreSQL takes writes), `postgres_wakeups` (long polls woken here directly
and on the other servers by LISTEN/NOTIFY) and `postgres_purge`. Connection failures
and timeouts become `BackendUnavailable` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from burrow.backends import postgres_sql as sql
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
from burrow.backends.joined_calls import JoinedById, JoinedTakes, id_of_message, id_of_target
from burrow.backends.notify import Notifier
from burrow.backends.postgres_pool import CONNECT_TIMEOUT, Pool
from burrow.backends.postgres_purge import (
    PURGE_CHUNK,
    Purger,
    drop_account_if_empty,
    drop_queue_if_empty,
)
from burrow.backends.postgres_wakeups import Wakeups
from burrow.errors import BackendUnavailable, InvalidRequest, MessageNotFound, NoMatch
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

# Attempts at a put whose queue is dropped (emptied by others) between create and write.
_PUT_ATTEMPTS = 5


class PostgresBackend(Backend):
    """Accounts, queues and messages in PostgreSQL, shared by any number of Burrow servers."""

    shared_between_processes = True

    def __init__(self, url: str, *, purge_interval: float = 1.0) -> None:
        self.url = url
        self._pool = Pool(url)
        self._notifier = Notifier()
        self._wakeups = Wakeups(self._pool, self._notifier)
        self._purger = Purger(self._pool, self._notifier, self._wakeups, purge_interval)
        self._puts = JoinedById[NewMessage, bool](self._put_joined, id_of_message)
        self._deletes = JoinedById[DeleteTarget, Message](self._delete_joined, id_of_target)
        self._takes = JoinedTakes(self._take_joined)
        self._closed = False

    # Life cycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool.opened or self._closed:
            raise BackendUnavailable("postgresql backend already opened")
        try:
            await self._pool.open()
        except BaseException:
            await self.close()
            raise
        self._wakeups.start()
        self._purger.start()
        # Wake-ups from other servers flow once the listening connection is up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._wakeups.listening.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.refuse()
        self._notifier.close()
        await self._purger.stop()
        await self._puts.stop()
        await self._deletes.stop()
        await self._takes.stop()
        await self._wakeups.stop()
        await self._pool.close()

    async def health(self) -> Health:
        """Failing when PostgreSQL does not answer or takes no writes (a standby, or
        read-only transactions by default); degraded while the listening connection is
        re-established."""
        try:
            read_only = await self._pool.read_only()
        except BackendUnavailable as error:
            return failing(error.message)
        if read_only:
            return failing("postgresql takes no writes: a standby, or read-only transactions")
        if not self._wakeups.listening.is_set():
            return degraded("the LISTEN connection is reconnecting", listener="reconnecting")
        return healthy()

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        return self._notifier.subscribe(account, queue)

    # Accounts and queues ---------------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self._names("accounts", sql.ACCOUNTS, filters.marker, filters.limit)

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)
        async with self._pool.connection() as conn:
            for name in names:
                keys = [row[0] for row in await conn.fetch(sql.ACCOUNT_QUEUES, name)]
                await self._delete_queues(conn, keys)
                await drop_account_if_empty(conn, name)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._names("queues", sql.QUEUES, account, filters.marker, filters.limit)

    async def _names(self, what: str, query: str, *args: Any) -> list[str]:
        """The `name` column of a listing's rows; `NoMatch` when there are none."""
        async with self._pool.connection() as conn:
            rows = await conn.fetch(query, *args)
        if not rows:
            raise NoMatch(what)
        return [row["name"] for row in rows]

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        async with self._pool.connection() as conn:
            matched = await conn.fetch(sql.QUEUES, account, filters.marker, filters.limit)
            deleted = await self._delete_queues(conn, [row[0] for row in matched])
            await drop_account_if_empty(conn, account)
        if not deleted:
            raise NoMatch("queues")
        return deleted

    async def _delete_queues(self, conn: asyncpg.Connection, keys: list[int]) -> list[str]:
        """Delete the queues' messages a chunk per statement (each a short transaction,
        however big the queue), then drop the queues left empty; returns the names of
        those that still existed. A failure leaves what was not reached yet."""
        found = await conn.fetch(sql.QUEUE_NAMES, keys)
        for key, _ in found:
            after, last = 0, await conn.fetchval(sql.LAST_SEQ, key)
            while after is not None and last is not None:
                after = await conn.fetchval(sql.DELETE_CHUNK, key, after, last, PURGE_CHUNK)
            await drop_queue_if_empty(conn, key)
        return [name for _, name in found]

    # Messages in a queue ----------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        async with self._pool.connection() as conn:
            await self._wakeups.look_ahead(conn, account, queue)
            rows = await conn.fetch(
                sql.select_messages(filters), account, queue, filters.marker, filters.limit
            )
        return sql.messages_of(_some(rows))

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        if attributes.ttl is None and attributes.hide is None and attributes.receipt is None:
            return await self.get_messages(account, queue, filters)
        return await self._takes.take(
            account,
            queue,
            filters,
            attributes,
            lambda: self._update(account, queue, attributes, filters),
        )

    async def _update(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        receive = attributes.receipt is not None
        args = [account, queue, filters.marker, filters.limit, attributes.ttl, attributes.hide]
        if receive:
            args.append(attributes.receipt)
        async with self._pool.connection() as conn:
            await self._wakeups.look_ahead(conn, account, queue)
            rows = await conn.fetch(sql.update_messages(filters, receive), *args)
        self._announce(account, queue, _some(rows))
        self._wakeups.publish(account, queue, [attributes.hide or 0])
        return sql.messages_of(rows)

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._takes.take(
            account, queue, filters, None, lambda: self._delete(account, queue, filters)
        )

    async def _delete(self, account: str, queue: str, filters: Filters) -> list[Message]:
        async with self._pool.connection() as conn:
            await self._wakeups.look_ahead(conn, account, queue)
            rows = await conn.fetch(
                sql.delete_messages(filters), account, queue, filters.marker, filters.limit
            )
            await drop_queue_if_empty(conn, _some(rows)[0]["queue"])
        return sql.messages_of(rows)

    async def _take_joined(
        self, account: str, queue: str, attributes: Attributes | None, limit: int
    ) -> list[Message]:
        """The claims (`attributes`) or pops of a joined batch, in one statement."""
        if attributes is None:
            return await self._delete(account, queue, Filters(limit=limit))
        return await self._update(account, queue, attributes, Filters(limit=limit))

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        if not messages:
            return []
        ids = [m.id for m in messages]
        if len(set(ids)) != len(ids):
            raise InvalidRequest("a batch must not repeat a message id")
        if quota:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(sql.QUOTA_LOCK, account)
                rows = await self._upsert(conn, account, queue, messages)
                await self._check(conn, account, queue, quota)
            created = {row["id"]: row["created"] for row in rows}
        else:
            created = await self._puts.call(account, queue, messages)
        answers = [created[i] for i in ids]
        now = time.time()
        self._notifier.written(account, queue, (now + m.hide for m in messages if m.hide))
        self._wakeups.publish(account, queue, [m.hide for m in messages])
        return answers

    async def _put_joined(
        self, account: str, queue: str, messages: list[NewMessage]
    ) -> dict[str, bool]:
        """The PUTs of a joined batch, in one statement (unless the queue is new)."""
        async with self._pool.connection() as conn:
            rows = await self._upsert(conn, account, queue, messages)
        return {row["id"]: row["created"] for row in rows}

    async def _upsert(
        self, conn: asyncpg.Connection, account: str, queue: str, messages: list[NewMessage]
    ) -> list[sql.Row]:
        """Put the messages (distinct ids): one statement where the queue exists, else
        a transaction that creates it first."""
        args = (
            account,
            queue,
            [m.id for m in messages],
            [m.body for m in messages],
            [m.ttl for m in messages],
            [m.hide for m in messages],
            [m.meta for m in messages],
        )
        rows: list[sql.Row] = await conn.fetch(sql.PUT, *args)
        if rows:
            return rows
        async with conn.transaction():  # (a savepoint, in a quota's transaction)
            return await self._create(conn, args)

    async def _create(self, conn: asyncpg.Connection, args: tuple[Any, ...]) -> list[sql.Row]:
        """Create the account and queue rows, then put (in the caller's transaction)."""
        for _ in range(_PUT_ATTEMPTS):
            await conn.execute(sql.CREATE_ACCOUNT, args[0])
            await conn.execute(sql.CREATE_QUEUE, args[0], args[1])
            rows: list[sql.Row] = await conn.fetch(sql.PUT, *args)
            if rows:
                return rows
        raise BackendUnavailable("postgresql: queue dropped and re-created too often; try again")

    async def _check(
        self, conn: asyncpg.Connection, account: str, queue: str, quota: Quota
    ) -> None:
        counts = await conn.fetchrow(
            sql.USAGE,
            account,
            queue,
            bool(quota.max_queue_messages),
            bool(quota.max_account_queues),
            bool(quota.max_account_bytes),
        )
        assert counts is not None
        quota.check(*(int(count or 0) for count in counts))  # raising rolls the write back

    # One message --------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        async with self._pool.connection() as conn:
            row = await conn.fetchrow(sql.GET_ONE, account, queue, message_id)
        return sql.message_of(_found(row, message_id))

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        if attributes.ttl is None and attributes.hide is None:
            message = await self.get_message(account, queue, message_id)
            if receipt is not None and message.receipt != receipt:
                raise MessageNotFound(message_id)
            return message
        async with self._pool.connection() as conn:
            row = await conn.fetchrow(
                sql.UPDATE_ONE,
                account,
                queue,
                message_id,
                attributes.ttl,
                attributes.hide,
                receipt,
            )
        self._announce(account, queue, [_found(row, message_id)])
        self._wakeups.publish(account, queue, [attributes.hide or 0])
        return sql.message_of(row)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        deleted = await self._deletes.one(account, queue, (message_id, receipt))
        if deleted is None:
            raise MessageNotFound(message_id)
        return deleted

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        deleted = await self._deletes.call(account, queue, targets)
        return [deleted[i] for i, _ in targets if i in deleted]

    async def _delete_joined(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> dict[str, Message]:
        """The deletes of a joined batch, in one statement."""
        ids = [message_id for message_id, _ in targets]
        receipts = [receipt for _, receipt in targets]
        async with self._pool.connection() as conn:
            rows = await conn.fetch(sql.DELETE_LISTED, account, queue, ids, receipts)
            if rows:
                await drop_queue_if_empty(conn, rows[0]["queue"])
        return {row["id"]: sql.message_of(row) for row in rows}

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        async with self._pool.connection() as conn:
            counts = await conn.fetchrow(sql.COUNTS, account, queue)
        assert counts is not None  # an aggregate always has its row
        return MessageCounts(*counts)

    # Queue info ----------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        async with self._pool.connection() as conn:
            info: bytes | None = await conn.fetchval(sql.GET_INFO, account, queue)
        return info

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        async with self._pool.connection() as conn:
            if expected is None:
                stored = await conn.fetchval(sql.ADD_INFO, account, queue, info)
            else:
                stored = await conn.fetchval(sql.CHANGE_INFO, account, queue, info, expected)
        return stored is not None

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        async with self._pool.connection() as conn:
            return await conn.fetchval(sql.DELETE_INFO, account, queue) is not None

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        return await self._names("queues", sql.INFOS, account, filters.marker, filters.limit)

    # Subscriptions -------------------------------------------------------------------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        async with self._pool.connection() as conn:
            document: bytes | None = await conn.fetchval(sql.GET_SUBSCRIPTION, account, queue, name)
        return document

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        key = (account, queue, name)
        async with self._pool.connection() as conn:
            if expected is None:
                stored = await conn.fetchval(sql.ADD_SUBSCRIPTION, *key, document)
            else:
                stored = await conn.fetchval(sql.CHANGE_SUBSCRIPTION, *key, document, expected)
        return stored is not None

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        async with self._pool.connection() as conn:
            return await conn.fetchval(sql.DELETE_SUBSCRIPTION, account, queue, name) is not None

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        args = (account, queue, filters.marker or "", filters.limit)
        return await self._names("subscriptions", sql.SUBSCRIPTIONS, *args)

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        async with self._pool.connection() as conn:
            rows = await conn.fetch(sql.ALL_SUBSCRIPTIONS, *(after or ("", "", "")), limit)
        return [(account, queue, name) for account, queue, name in rows]

    # Internals -------------------------------------------------------------------------

    def _announce(self, account: str, queue: str, rows: list[sql.Row]) -> None:
        now = time.time()
        hides = (now + row["hide_left"] for row in rows if (row["hide_left"] or 0) > 0)
        self._notifier.written(account, queue, hides)

    # Housekeeping ---------------------------------------------------------------------

    async def purge_expired(self) -> int:
        """Delete expired messages (and the queues and accounts they empty); unhide lapsed ones."""
        return await self._purger.purge_expired()

    def __repr__(self) -> str:
        return f"PostgresBackend({urlsplit(self.url).hostname!r})"


def _some(rows: list[sql.Row]) -> list[sql.Row]:
    if not rows:
        raise NoMatch()
    return rows


def _found(row: sql.Row | None, message_id: str) -> sql.Row:
    if row is None:
        raise MessageNotFound(message_id)
    return row
