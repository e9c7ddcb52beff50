"""Group commit for the `sqlite://` backend: SQL on the event loop, fsync off it.

Each write operation runs at once on the event loop thread, in the writer
connection's open transaction, inside its own SAVEPOINT (so one that fails, say
with `MessageNotFound`, rolls back alone). The transaction is committed on the
loop too: with `synchronous=NORMAL` a WAL commit only appends to the log, it
does not wait for the disk.

Durability is then this module's job: a helper thread fsyncs the log file, and
only when that fsync returns are the operations it covers acknowledged (their
futures resolved, waiters woken). While one fsync is in flight the loop keeps
running new operations in the open transaction; when the fsync returns, they
are committed together and the next fsync covers them (group commit, as
databases do it). One commit per fsync, rather than one per turn of the loop,
matters: a commit writes every page it dirtied to the log, and small commits
would write the same hot index pages again and again. The loop never waits for
the disk, and no operation is acknowledged before it is on disk.

If an fsync fails, nothing after the last good one can be trusted to be on disk:
those operations get `BackendUnavailable`, and so does every later write.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from burrow.backends.sqlite_store import Operation, Outcome
from burrow.errors import BackendUnavailable, BurrowError

logger = logging.getLogger(__name__)

Result = Outcome[Any] | BaseException
Done = list[tuple["asyncio.Future[Any]", Result]]


@dataclass(slots=True)
class Stats:
    """Counters of the writer, for tests and metrics."""

    operations: int = 0
    commits: int = 0  # SQLite transactions committed
    syncs: int = 0  # fsyncs of the log, each acknowledging one or more commits
    purged: int = 0


def unavailable(exc: BaseException) -> BurrowError:
    """The error a caller sees: Burrow errors as they are, anything else as a 503."""
    if isinstance(exc, BurrowError):
        return exc
    error = BackendUnavailable(f"sqlite: {exc}")
    error.__cause__ = exc
    return error


class GroupCommitter:
    """Owns the writer connection; runs writes, commits them, fsyncs them in groups."""

    def __init__(
        self, conn: sqlite3.Connection, wal_path: str, deliver: Callable[[Done], None]
    ) -> None:
        self._conn = conn
        self._wal_path = wal_path
        self._wal_fd: int | None = None
        self._deliver = deliver  # called on the loop once a group is on disk (or failed)
        self._loop = asyncio.get_running_loop()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "burrow-sqlite-fsync")
        self._uncommitted: Done = []  # ran in the open transaction
        self._syncing = False
        self._commit_scheduled = False
        self._broken: BaseException | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = Stats()

    def submit(self, operation: Operation[Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._broken is not None:
            future.set_exception(unavailable(self._broken))
            return future
        self._idle.clear()
        self._run(operation, future)
        if not self._syncing:  # (while an fsync is in flight, its end commits this)
            self._schedule_commit()
        return future

    def _schedule_commit(self) -> None:
        # call_soon: every request handled in this turn of the loop joins the commit.
        if not self._commit_scheduled:
            self._commit_scheduled = True
            self._loop.call_soon(self._commit_and_sync)

    def _run(self, operation: Operation[Any], future: asyncio.Future[Any]) -> None:
        conn = self._conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            conn.execute("SAVEPOINT job")
        except sqlite3.Error as exc:
            self._uncommitted.append((future, unavailable(exc)))
            return
        try:
            outcome: Result = operation(conn)
        except Exception as exc:
            if not conn.in_transaction:
                # SQLite abandoned the whole transaction: the earlier jobs are lost too.
                self._uncommitted = [(f, unavailable(exc)) for f, _ in self._uncommitted]
                self._uncommitted.append((future, unavailable(exc)))
                return
            conn.execute("ROLLBACK TO job")
            outcome = unavailable(exc)
        conn.execute("RELEASE job")
        self.stats.operations += 1
        self._uncommitted.append((future, outcome))

    def _commit_and_sync(self) -> None:
        """Commit what ran since the last commit, fsync the log, then acknowledge it."""
        self._commit_scheduled = False
        group, self._uncommitted = self._uncommitted, []
        if not group:
            self._idle.set()
            return
        if self._conn.in_transaction:
            try:
                self._conn.commit()
                self.stats.commits += 1
            except sqlite3.Error as exc:
                self._rollback()
                group = [(future, unavailable(exc)) for future, _ in group]
        if self._broken is not None:
            # After a failed fsync a later one may "succeed" without the lost pages.
            self._deliver([(future, unavailable(self._broken)) for future, _ in group])
            self._idle.set()
            return
        self._syncing = True
        synced = self._loop.run_in_executor(self._thread, self._fsync_log)
        synced.add_done_callback(lambda done: self._synced(group, done.exception()))

    def _fsync_log(self) -> None:
        if self._wal_fd is None:
            self._wal_fd = os.open(self._wal_path, os.O_RDWR)
        # fdatasync, as SQLite itself uses: the data and the file's size, without
        # waiting for its timestamps to be journaled.
        os.fdatasync(self._wal_fd)

    def _synced(self, group: Done, error: BaseException | None) -> None:
        self._syncing = False
        if error is not None:
            logger.error("sqlite: fsync of %s failed, refusing writes: %s", self._wal_path, error)
            self._broken = error
            group = [(future, unavailable(error)) for future, _ in group]
        else:
            self.stats.syncs += 1
        self._deliver(group)
        self._schedule_commit()  # after the requests already read: they join the group

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is broken; the next BEGIN will say so

    async def close(self) -> None:
        """Wait until every write so far is on disk (or failed), then close the file."""
        await self._idle.wait()
        self._thread.shutdown()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
        try:
            self._rollback()
            # Fold the log into the database so the file stands alone when closed.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
        except sqlite3.Error as exc:
            logger.warning("sqlite close failed: %s", exc)
