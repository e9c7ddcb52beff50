"""`sqlite:///path.db`: the embedded, durable default backend.

Every acknowledged write is on disk (the WAL log is fsynced before the answer),
yet throughput does not pay one fsync per call: writes share fsyncs (group
commit, see `sqlite_writer`). Each call runs whole on the event loop, so claims
and pops are atomic. Reads run on the loop too, on a second, read-only
connection that WAL lets read while the log is being synced; a read issued after
a write was acknowledged sees it.

The log is folded back into the database by a background checkpoint every
second, in a thread of its own, so the loop does not wait for it.

Wake-ups for long polls are in-process (`Notifier`), fired on the event loop once
a write is on disk; the notifier reads a waited-on queue's next hide deadline from
the file (an index) when it needs it, so hides kept in the file wake waiters after
a restart too. Other processes on the same file (`--workers`) hear of each write
over a datagram (`sqlite_peers`), and take turns at writing (`sqlite_lock`).
The SQL itself lives in `sqlite_messages` and `sqlite_queues` (queue info in
`sqlite_infos`, subscriptions in `sqlite_subscriptions`; what they share in `sqlite_store`).

The files are made private and checked before SQLite opens them, and watched while
it has them open (`sqlite_files`): once deleted or replaced, or while writes fail,
writes are answered 503 and `health()` says why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import TypeVar

from burrow.backends import sqlite_files, sqlite_messages, sqlite_queues
from burrow.backends import sqlite_infos as infos
from burrow.backends import sqlite_store as store
from burrow.backends import sqlite_subscriptions as subscriptions
from burrow.backends.background import stop_tasks
from burrow.backends.base import (
    Backend,
    DeleteTarget,
    Health,
    KnownFault,
    Subscription,
    SubscriptionKey,
    failing,
    healthy,
)
from burrow.backends.notify import Notifier
from burrow.backends.sqlite_peers import PeerWakeups
from burrow.backends.sqlite_writer import Done, GroupCommitter, Stats, unavailable
from burrow.errors import BackendUnavailable, ConfigError
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

T = TypeVar("T")
logger = logging.getLogger(__name__)
CHECKPOINT_INTERVAL = 1.0
FILE_CHECK_INTERVAL = 1.0
# Seconds until waiters look again when the next hide deadline could not be read.
LOOKUP_RETRY = 1.0


def check_location(path: str) -> None:
    """Refuse, before anything opens, a database SQLite could not keep there (what `open`
    would find too late, as a BackendUnavailable)."""
    if path == ":memory:" or path.startswith("file::memory:"):
        raise ConfigError(
            "backend sqlite:///:memory: is not supported: an in-memory SQLite database lives "
            "in one connection, and Burrow uses two; use memory:// for a store that does "
            "not persist"
        )
    database = Path(path).absolute()
    if database.is_dir():
        raise ConfigError(f"backend sqlite: {database} is a directory, not a database file")
    # The data directory is made on open, and holds the log next to the database: the
    # nearest directory that exists must let us write there.
    directory = next(d for d in database.parents if d.exists())
    if not directory.is_dir():
        raise ConfigError(f"backend sqlite: {directory} is a file, not a data directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"backend sqlite: the data directory {directory} is not writable")
    problem = sqlite_files.unusable(database)
    if problem is not None:
        raise ConfigError(f"backend sqlite: {problem}")


class SQLiteBackend(Backend):
    """Accounts, queues and messages in one SQLite file, which several processes may share.

    `purge_interval` is how often (seconds) expired messages are deleted from the
    file, at most `purge_chunk` rows per transaction; a delete of queues or accounts
    takes as many per write. (A chunk of 250 rows holds the loop for a few ms; 1000,
    four times as long, for hardly a quicker delete.)
    """

    shared_between_processes = True
    embedded = True

    def __init__(self, path: str, *, purge_interval: float = 1.0, purge_chunk: int = 250) -> None:
        self.path = path
        self._database = Path(path).absolute()
        self._purge_interval = purge_interval
        self._purge_chunk = purge_chunk
        self._notifier = Notifier(self._next_shown)
        self._peers = PeerWakeups(self._database, self._heard, self._notifier.lost_track)
        self._writer: GroupCommitter | None = None
        self._reader: sqlite3.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def stats(self) -> Stats:
        """The writer's counters (commits, operations, purged rows)."""
        return self._writer.stats if self._writer is not None else Stats()

    def prepare(self) -> None:
        """Create or migrate the file before the workers open it (they would race to)."""
        try:
            sqlite_files.prepare(self._database)
            _connect(self.path, writer=True).close()
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc

    async def open(self) -> None:
        if self._writer is not None or self._closed:
            raise BackendUnavailable("sqlite backend already opened")
        try:
            problem = sqlite_files.unusable(self._database)  # checked at start-up, and here
            if problem is not None:
                raise BackendUnavailable(f"sqlite: {problem}")
            sqlite_files.prepare(self._database)
            writer = _connect(self.path, writer=True)
            self._writer = GroupCommitter(writer, self._database, self._deliver)
            self._reader = _connect(self.path, writer=False)
            self._peers.open()
        except BaseException as exc:
            await self.close()
            raise unavailable(exc) from exc
        self._tasks = [
            asyncio.create_task(self._purge_forever()),
            asyncio.create_task(self._checkpoint_forever()),
            asyncio.create_task(self._watch_files_forever()),
        ]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notifier.close()
        self._peers.close()
        await stop_tasks(self._tasks)
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            await self._writer.close()

    async def health(self) -> Health:
        """Failing while writes are not acknowledged (refused until a restart, or failing
        in SQLite), with the reason; reads may still work."""
        if self._writer is None or self._closed:
            return failing("sqlite: the backend is not open")
        self._check_files()
        problem = self._writer.problem
        return healthy() if problem is None else failing(f"sqlite: {problem}")

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        return self._notifier.subscribe(account, queue)

    def wakeups(self) -> dict[str, int]:
        """What this backend holds for long polls (see `Notifier.stats`)."""
        return self._notifier.stats()

    # Accounts and queues -----------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self._read(sqlite_queues.get_accounts(filters))

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names, keys, up_to = await self._read(sqlite_queues.matched_accounts(filters))
        await self._delete_queues(keys, up_to)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._read(sqlite_queues.get_queues(account, filters))

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        matched, up_to = await self._read(sqlite_queues.matched_queues(account, filters))
        await self._delete_queues([key for key, _ in matched], up_to)
        return [name for _, name in matched]

    async def _delete_queues(self, keys: list[int], up_to: int) -> None:
        """Delete the queues' messages up to seq `up_to`, a chunk per write: each chunk
        is committed with the writes of other requests around it, instead of holding
        the loop for the whole delete (a crash leaves what was not reached yet)."""
        for key in keys:
            chunk = sqlite_queues.delete_chunk(key, up_to, self._purge_chunk)
            while await self._write(chunk) == self._purge_chunk:
                pass

    # Messages in a queue ----------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._read(sqlite_messages.get_messages(account, queue, filters))

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._write(
            sqlite_messages.update_messages(account, queue, attributes, filters)
        )

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._write(sqlite_messages.delete_messages(account, queue, filters))

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        return await self._write(sqlite_messages.put_messages(account, queue, messages, quota))

    # One message ----------------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._read(sqlite_messages.get_message(account, queue, message_id))

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        update = sqlite_messages.update_message(account, queue, message_id, attributes, receipt)
        return await self._write(update)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        return await self._write(
            sqlite_messages.delete_message(account, queue, message_id, receipt)
        )

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        return await self._write(sqlite_messages.delete_listed_messages(account, queue, targets))

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        return await self._read(sqlite_queues.count_messages(account, queue))

    # Queue info ------------------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        return await self._read(infos.get_queue_info(account, queue))

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        return await self._write(infos.set_queue_info(account, queue, info, expected))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        return await self._write(infos.delete_queue_info(account, queue))

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        return await self._read(infos.list_queue_infos(account, filters))

    # Subscriptions ---------------------------------------------------------------------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        return await self._read(subscriptions.get_subscription(account, queue, name))

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        change = subscriptions.set_subscription(account, queue, name, document, expected)
        return await self._write(change)

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        return await self._write(subscriptions.delete_subscription(account, queue, name))

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        return await self._read(subscriptions.list_subscriptions(account, queue, filters))

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        return await self._read(subscriptions.list_all_subscriptions(after, limit))

    # Internals ---------------------------------------------------------------------------

    async def _read(self, operation: store.Operation[T]) -> T:
        if self._reader is None or self._closed:
            raise BackendUnavailable("sqlite backend is not open")
        try:
            with self._reader:  # one read transaction: a consistent snapshot
                self._reader.execute("BEGIN")
                return operation(self._reader).value
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc

    async def _write(self, operation: store.Operation[T]) -> T:
        if self._writer is None or self._closed:
            raise BackendUnavailable("sqlite backend is not open")
        result: T = await self._writer.submit(operation)
        return result

    def _next_shown(self, account: str, queue: str) -> float | None:
        """The notifier's lookup: a read that does not await, on the reading connection."""
        if self._reader is None or self._closed:
            return None
        try:
            with self._reader:
                return sqlite_queues.next_shown(account, queue)(self._reader).value
        except sqlite3.Error as exc:
            logger.warning("sqlite: cannot read when hidden messages show: %s", exc)
            return time.time() + LOOKUP_RETRY  # the waiters look again then

    def _deliver(self, done: Done) -> None:
        """Once committed: wake waiters of the writes, here and in the peers, then answer
        the callers."""
        changed: dict[tuple[str, str], float] = {}  # queue → when what was hidden shows
        for future, result in done:
            if isinstance(result, BaseException):
                if not future.done():
                    future.set_exception(result)
                continue
            if result.changed is not None:
                self._notifier.written(*result.changed, result.hidden_until)
                shows = min(result.hidden_until, default=math.inf)
                changed[result.changed] = min(changed.get(result.changed, math.inf), shows)
            if not future.done():
                future.set_result(result.value)
        self._peers.written(changed)

    def _heard(self, account: str, queue: str, shows: float) -> None:
        """A peer's write to the queue is on disk."""
        self._notifier.written(account, queue, (shows,))

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self._purge_interval)
            try:
                while await self._write(self._purge_chunk_op) >= self._purge_chunk:
                    pass  # a full chunk: there may be more, go on after other writes
            except KnownFault:
                pass  # logged once already, and told by health()
            except BackendUnavailable as exc:
                logger.warning("sqlite purge failed: %s", exc.message)

    async def _checkpoint_forever(self) -> None:
        """Copy the log into the database every second, off the loop, without blocking writers.

        After a failure the connection is made anew: SQLite opens a file it cannot write
        read-only, and would keep it so after the file is writable again.
        """
        conn: sqlite3.Connection | None = None
        thread = concurrent.futures.ThreadPoolExecutor(1, "burrow-sqlite-checkpoint")
        loop = asyncio.get_running_loop()
        failed = False  # logged when checkpoints start failing and when they work again
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_INTERVAL)
                if conn is None:
                    conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                try:
                    await loop.run_in_executor(thread, _checkpoint, conn)
                except sqlite3.Error as exc:
                    conn.close()
                    conn = None
                    if not failed:
                        logger.warning("sqlite checkpoint failed: %s", exc)
                    failed = True
                else:
                    if failed:
                        logger.info("sqlite checkpoints work again")
                    failed = False
        finally:
            thread.shutdown()
            if conn is not None:
                conn.close()

    async def _watch_files_forever(self) -> None:
        """Every second: refuse writes once the files are deleted or replaced; while
        writes fail, or the files look unwritable, write a page to see how it goes."""
        assert self._writer is not None
        writer = self._writer
        while True:
            await asyncio.sleep(FILE_CHECK_INTERVAL)
            self._check_files()
            if writer.problem is not None or not writer.files.writable():
                await writer.probe()

    def _check_files(self) -> None:
        assert self._writer is not None
        changed = self._writer.files.changed()
        if changed is not None:
            self._writer.refuse(changed)

    def _purge_chunk_op(self, conn: sqlite3.Connection) -> store.Outcome[int]:
        purged = sqlite_queues.purge_expired(conn, self._purge_chunk)
        self.stats.purged += purged
        return store.Outcome(purged)

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _connect(path: str, *, writer: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    try:
        store.configure(conn, writer=writer)
    except BaseException:
        conn.close()
        raise
    return conn
