"""Group commit for the `sqlite://` backend: operations on the loop, fsync off it.

Each write operation runs at once on the event loop thread, in the writer
connection's open transaction, inside its own SAVEPOINT (so one that fails,
say with `MessageNotFound`, rolls back alone). That takes microseconds: nothing
is synced yet. The COMMIT, which fsyncs the log, runs in a helper thread; every
operation that ran since the previous commit shares it (group commit). While a
commit is in flight the connection is busy, so new operations queue and run
right after it, then share the next commit. Callers are answered, and waiters
woken, only once their write is committed.

Running operations on the loop avoids a thread hand-off per call, which cost
more than the SQL itself; only one hand-off per commit remains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
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
    commits: int = 0  # write transactions committed (each one fsync)
    purged: int = 0


def unavailable(exc: BaseException) -> BurrowError:
    """The error a caller sees: Burrow errors as they are, anything else as a 503."""
    if isinstance(exc, BurrowError):
        return exc
    error = BackendUnavailable(f"sqlite: {exc}")
    error.__cause__ = exc
    return error


@dataclass(slots=True)
class Job:
    operation: Operation[Any]
    future: asyncio.Future[Any]


class GroupCommitter:
    """Owns the writer connection; runs write operations and commits them in groups."""

    def __init__(self, conn: sqlite3.Connection, deliver: Callable[[Done], None]) -> None:
        self._conn = conn
        self._deliver = deliver  # called on the loop once a batch is committed (or failed)
        self._loop = asyncio.get_running_loop()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "burrow-sqlite-commit")
        self._done: Done = []  # ran, not yet committed
        self._waiting: list[Job] = []  # arrived while a commit was in flight
        self._committing = False
        self._commit_scheduled = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = Stats()

    def submit(self, operation: Operation[Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        self._idle.clear()
        if self._committing:
            self._waiting.append(Job(operation, future))
        else:
            self._run(Job(operation, future))
            self._schedule_commit()
        return future

    def _run(self, job: Job) -> None:
        conn = self._conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            conn.execute("SAVEPOINT job")
        except sqlite3.Error as exc:
            self._done.append((job.future, unavailable(exc)))
            return
        try:
            outcome: Result = job.operation(conn)
        except Exception as exc:
            if not conn.in_transaction:
                # SQLite abandoned the whole transaction: the earlier jobs are lost too.
                self._fail_uncommitted(exc)
                self._done.append((job.future, unavailable(exc)))
                return
            conn.execute("ROLLBACK TO job")
            outcome = unavailable(exc)
        conn.execute("RELEASE job")
        self.stats.operations += 1
        self._done.append((job.future, outcome))

    def _schedule_commit(self) -> None:
        # call_soon: every request handled in this turn of the loop joins the commit.
        if not self._commit_scheduled:
            self._commit_scheduled = True
            self._loop.call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_scheduled = False
        batch, self._done = self._done, []
        if not self._conn.in_transaction:
            self._finish(batch, None)
            return
        self._committing = True
        commit = self._loop.run_in_executor(self._thread, self._conn.commit)
        commit.add_done_callback(lambda done: self._finish(batch, done.exception()))

    def _finish(self, batch: Done, error: BaseException | None) -> None:
        self._committing = False
        if error is not None:
            self._rollback()
            batch = [(future, unavailable(error)) for future, _ in batch]
        elif batch:
            self.stats.commits += 1
        self._deliver(batch)
        waiting, self._waiting = self._waiting, []
        for job in waiting:
            self._run(job)
        if self._done:
            self._schedule_commit()
        elif not self._committing:
            self._idle.set()

    def _fail_uncommitted(self, exc: Exception) -> None:
        self._done = [(future, unavailable(exc)) for future, _ in self._done]

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is broken; the next BEGIN will say so

    async def close(self) -> None:
        """Commit what has run, then stop the commit thread."""
        await self._idle.wait()
        self._thread.shutdown()

    def shut(self) -> None:
        """Fold the log into the database so the file stands alone, and close it."""
        try:
            self._rollback()
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
        except sqlite3.Error as exc:
            logger.warning("sqlite close failed: %s", exc)
