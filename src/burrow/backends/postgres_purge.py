"""Clearing up after the `postgresql://` backend: emptied queues and accounts dropped,
and the purge task every server runs (expired messages, lapsed hides, stale statistics).

A queue or account is dropped in a transaction of its own after the write that emptied
it, which keeps the locks a writer waits for in one order (no deadlocks). The purge's
reset of lapsed hides wakes those queues' waiters, here and on the other servers: a
claim it overlapped skipped the rows it held.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from burrow.backends import postgres_sql as sql
from burrow.backends.background import stop_tasks
from burrow.backends.notify import Notifier
from burrow.backends.postgres_pool import Pool
from burrow.backends.postgres_wakeups import Wakeups
from burrow.errors import BackendUnavailable

logger = logging.getLogger(__name__)

PURGE_CHUNK = 1000


async def drop_queue_if_empty(conn: asyncpg.Connection, key: int) -> None:
    """After a delete committed: drop the queue, and its account, if left empty."""
    if not await conn.fetchval(sql.QUEUE_IS_EMPTY, key):
        return
    async with conn.transaction():
        if await conn.fetchrow(sql.LOCK_QUEUE, key) is None:
            return
        account: str | None = await conn.fetchval(sql.DROP_QUEUE, key)
    if account is not None:
        await drop_account_if_empty(conn, account)


async def drop_account_if_empty(conn: asyncpg.Connection, account: str) -> None:
    async with conn.transaction():
        await conn.execute(sql.LOCK_ACCOUNT, account)
        await conn.execute(sql.DROP_ACCOUNT, account)


class Purger:
    """One backend's purge task, every `interval` seconds; see the module docstring."""

    def __init__(self, pool: Pool, notifier: Notifier, wakeups: Wakeups, interval: float) -> None:
        self._pool = pool
        self._notifier = notifier
        self._wakeups = wakeups
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._purge_forever())

    async def stop(self) -> None:
        await stop_tasks([self._task])

    async def purge_expired(self) -> int:
        """Delete expired messages (and the queues and accounts they empty); unhide lapsed ones."""
        purged = 0
        async with self._pool.connection() as conn:
            while True:
                keys = [row[0] for row in await conn.fetch(sql.PURGE, PURGE_CHUNK)]
                purged += len(keys)
                for key in set(keys):
                    await drop_queue_if_empty(conn, key)
                if len(keys) < PURGE_CHUNK:
                    break
            while await self._unhide(conn) == PURGE_CHUNK:
                pass
        return purged

    async def _unhide(self, conn: asyncpg.Connection) -> int:
        """Reset a chunk of lapsed hides; wakes the waiters of the queues touched (a claim
        running meanwhile skipped those rows). Returns how many rows were reset."""
        unhidden = await conn.fetch(sql.UNHIDE, PURGE_CHUNK)
        for account, queue, _ in unhidden:
            self._notifier.changed(account, queue)
            self._wakeups.publish(account, queue, [])
        return sum(row["rows"] for row in unhidden)

    async def refresh_statistics(self) -> None:
        """ANALYZE the messages table once a tenth of it changed since the last time.

        A queue filled faster than autovacuum looks (once a minute by default) leaves
        the planner believing the table nearly empty; it then plans a claim as a scan
        of the whole queue (measured: 70 ms instead of 0.7 ms at 200,000 messages).
        """
        async with self._pool.connection() as conn:
            if await conn.fetchval(sql.STALE_STATISTICS):
                await conn.execute("ANALYZE burrow.messages")

    async def drop_empty_queues(self) -> None:
        """Drop queues left without messages by a server that stopped mid-way."""
        async with self._pool.connection() as conn:
            for (key,) in await conn.fetch(sql.EMPTY_QUEUES):
                await drop_queue_if_empty(conn, key)

    async def _purge_forever(self) -> None:
        first = True
        while True:
            await asyncio.sleep(self._interval)
            try:
                if first:
                    await self.drop_empty_queues()
                    first = False
                await self.purge_expired()
                await self.refresh_statistics()
            except BackendUnavailable as exc:
                logger.warning("postgresql purge failed: %s", exc.message)
