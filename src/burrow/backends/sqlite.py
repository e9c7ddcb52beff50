"""`sqlite:///path.db`: the embedded, durable default backend.

Every acknowledged write is committed and fsynced (WAL, `synchronous=FULL`), yet
throughput does not pay one fsync per call: all writes go through one writer
thread that commits whatever has queued up in a single transaction (group
commit, see `sqlite_writer`). Because each call runs whole inside that thread,
claims and pops are atomic. Reads go to a second thread with its own connection,
which WAL lets read while the writer commits; a read sent after a write was
acknowledged starts a fresh snapshot, so it sees that write.

Wake-ups for long polls are in-process (`Notifier`), fired on the event loop once
a write is committed; hide deadlines already in the file are re-armed on open.
The SQL itself lives in `sqlite_store`.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from burrow.backends import sqlite_store as store
from burrow.backends.base import Backend, Subscription
from burrow.backends.notify import Notifier
from burrow.backends.sqlite_writer import Done, Job, Stats, Worker
from burrow.errors import BackendUnavailable
from burrow.model import Attributes, Filters, Message, NewMessage

T = TypeVar("T")


class SQLiteBackend(Backend):
    """Accounts, queues and messages in one SQLite file.

    `purge_interval` is how often (seconds) expired messages are deleted from the
    file, at most `purge_chunk` rows per transaction. With `read_thread=False`
    reads queue behind writes in the writer thread instead of using their own.
    """

    def __init__(
        self,
        path: str,
        *,
        purge_interval: float = 1.0,
        purge_chunk: int = 1000,
        read_thread: bool = True,
    ) -> None:
        self.path = path
        self._purge_interval = purge_interval
        self._purge_chunk = purge_chunk
        self._read_thread = read_thread
        self._notifier = Notifier()
        self._writer: Worker | None = None
        self._reader: Worker | None = None
        self._closed = False

    @property
    def stats(self) -> Stats:
        """The writer's counters (commits, operations, purged rows)."""
        return self._writer.stats if self._writer is not None else Stats()

    async def open(self) -> None:
        if self._writer is not None or self._closed:
            raise BackendUnavailable("sqlite backend already opened")
        loop = asyncio.get_running_loop()
        self._writer = Worker(
            self.path,
            loop,
            self._deliver,
            writer=True,
            purge_interval=self._purge_interval,
            purge_chunk=self._purge_chunk,
        )
        try:
            await self._writer.start()
            if self._read_thread:
                self._reader = Worker(self.path, loop, self._deliver, writer=False)
                await self._reader.start()
            for account, queue, at in await self._read(store.hidden_deadlines):
                self._notifier.visible_at(account, queue, at)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notifier.close()
        # Readers first, so the writer's final checkpoint is not held back by them.
        for worker in (self._reader, self._writer):
            if worker is not None:
                await worker.stop()

    def subscribe(self, account: str, queue: str) -> Subscription:
        return self._notifier.subscribe(account, queue)

    # Accounts and queues -----------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self._read(store.get_accounts(filters))

    async def delete_accounts(self, filters: Filters) -> list[str]:
        return await self._write(store.delete_accounts(filters))

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._read(store.get_queues(account, filters))

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._write(store.delete_queues(account, filters))

    # Messages in a queue ----------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._read(store.get_messages(account, queue, filters))

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._write(store.update_messages(account, queue, attributes, filters))

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._write(store.delete_messages(account, queue, filters))

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage]
    ) -> list[bool]:
        return await self._write(store.put_messages(account, queue, messages))

    # One message ----------------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._read(store.get_message(account, queue, message_id))

    async def update_message(
        self, account: str, queue: str, message_id: str, attributes: Attributes
    ) -> Message:
        return await self._write(store.update_message(account, queue, message_id, attributes))

    async def delete_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._write(store.delete_message(account, queue, message_id))

    # Internals ---------------------------------------------------------------------------

    async def _read(self, operation: store.Operation[T]) -> T:
        return await self._call(self._reader or self._writer, operation, writes=False)

    async def _write(self, operation: store.Operation[T]) -> T:
        return await self._call(self._writer, operation, writes=True)

    async def _call(self, worker: Worker | None, operation: store.Operation[T], writes: bool) -> T:
        if worker is None or self._closed:
            raise BackendUnavailable("sqlite backend is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        worker.submit(Job(operation, future, writes))
        return await future

    def _deliver(self, done: Done) -> None:
        """On the loop: wake waiters of committed writes, then answer the callers."""
        for future, result in done:
            if isinstance(result, BaseException):
                if not future.done():
                    future.set_exception(result)
                continue
            if result.changed is not None:
                account, queue = result.changed
                self._notifier.changed(account, queue)
                for at in result.hidden_until:
                    self._notifier.visible_at(account, queue, at)
            if not future.done():
                future.set_result(result.value)

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"
