"""Group commit for the `sqlite://` backend: SQL on the event loop, fsync off it.

Write operations wait in a list until the end of the turn of the event loop (or,
while an fsync is in flight, until it returns); then all of them run on the loop
thread in one transaction, each inside its own SAVEPOINT (so one that fails, say
with `MessageNotFound`, rolls back alone; alike ones next to each other share one,
`Joinable`), and the transaction is committed there too: with `synchronous=NORMAL`
a WAL commit only appends to the log, it does not wait for the disk.

Durability is then this module's job: a helper thread fsyncs the log file, and
only when that fsync returns are the operations it covers acknowledged (their
futures resolved, waiters woken). While one fsync is in flight the loop keeps
serving, and new operations gather; when the fsync returns, they run and are
committed together and the next fsync covers them (group commit, as databases do
it). One commit per fsync, rather than one per turn of the loop, matters: a commit
writes every page it dirtied to the log, and small commits would write the same hot
index pages again and again. The loop never waits for the disk, and no operation is
acknowledged before it is on disk.

Processes that share the file (`--workers`) take turns at writing with a `WriteLock`,
held from BEGIN to COMMIT only, not while the log is synced; a process that finds it
taken waits for it in a thread while its loop goes on serving.

If an fsync fails, nothing after the last good one can be trusted to be on disk:
those operations get `BackendUnavailable`, and so does every later write until a
restart. So do they once the database or its log is deleted or replaced (each fsync
is followed by a look at the files, see `sqlite_files`): what was written went to
files nobody will open again. A write that fails in SQLite (a read-only or full
disk, an I/O error) fails alone, but the committer remembers it until a write gets
to disk again, so that `/health` can say so; `probe` tries a write of its own. Each
of these is logged once, when it starts (and when it ends), not once per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from burrow.backends.base import KnownFault
from burrow.backends.sqlite_files import WatchedFiles
from burrow.backends.sqlite_lock import WriteLock
from burrow.backends.sqlite_store import Joinable, Operation, Outcome
from burrow.errors import BackendUnavailable, BurrowError
from burrow.histogram import LATENCY_BUCKETS, Histogram

logger = logging.getLogger(__name__)

Result = Outcome[Any] | BaseException
Done = list[tuple["asyncio.Future[Any]", Result]]
Pending = list[tuple[Operation[Any], "asyncio.Future[Any]"]]
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Operations joined into one at most (`Joinable`): a savepoint's journal of the pages it
# changed is held in memory, so one is kept to about what a big batch PUT changes.
MAX_JOINED = 256


@dataclass(slots=True)
class Stats:
    """Counters of the writer, for tests and metrics."""

    operations: int = 0
    commits: int = 0  # SQLite transactions committed
    syncs: int = 0  # fsyncs of the log, each acknowledging one or more commits
    purged: int = 0
    batches: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))  # ops per fsync
    fsync_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))


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
        self, conn: sqlite3.Connection, database: Path, deliver: Callable[[Done], None]
    ) -> None:
        self._conn = conn
        self._wal_path = f"{database}-wal"
        self._wal_fd: int | None = None
        try:
            self.files = WatchedFiles(database)
        except BaseException:
            conn.close()
            raise
        self._deliver = deliver  # called on the loop once a group is on disk (or failed)
        self._loop = asyncio.get_running_loop()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "burrow-sqlite-fsync")
        self._lock_thread = concurrent.futures.ThreadPoolExecutor(1, "burrow-sqlite-lock")
        try:
            self._lock = WriteLock(Path(f"{database}-lock"))
        except BaseException:
            conn.close()
            raise
        self._pending: Pending = []  # submitted, not run yet
        self._uncommitted: Done = []  # ran in the open transaction
        self._busy = False  # a group is waiting for the lock, being written or synced
        self._flush_scheduled = False
        self._refused: str | None = None  # why every write is refused until a restart
        self._failure: str | None = None  # why the last write failed, until one succeeds
        self._changes = 0  # the connection's count of changed rows before this transaction
        self._probed = False  # the open transaction holds a probe
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = Stats()

    def submit(self, operation: Operation[Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._refused is not None:
            future.set_exception(self._refusal())
            return future
        self._idle.clear()
        self._pending.append((operation, future))
        if not self._busy:  # (else the group in flight flushes this once it is on disk)
            self._schedule_flush()
        return future

    def _schedule_flush(self) -> None:
        # call_soon: every request handled in this turn of the loop joins the group.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Take the turn to write (at once, or from a thread), then write the group."""
        self._flush_scheduled = False
        if not self._pending:
            self._idle.set()
            return
        self._busy = True
        if self._lock.try_acquire():
            self._write_group()
            return
        locked = self._loop.run_in_executor(self._lock_thread, self._lock.acquire)
        locked.add_done_callback(self._locked)

    def _locked(self, done: asyncio.Future[None]) -> None:
        error = done.exception()
        if error is None:
            self._write_group()
            return
        failure = unavailable(error)
        group, self._pending = self._pending, []
        self._deliver([(future, failure) for _, future in group])
        self._busy = False
        self._schedule_flush()

    def _write_group(self) -> None:
        """Run the pending operations in one transaction and commit it, holding the lock."""
        try:
            group, self._pending = self._pending, []
            for run in _alike_runs(group):
                if len(run) == 1 or not self._run_joined(run):
                    for operation, future in run:
                        self._run(operation, future)
            self._commit_and_sync()
        finally:
            self._lock.release()

    def _run(self, operation: Operation[Any], future: asyncio.Future[Any]) -> None:
        conn = self._conn
        try:
            self._savepoint()
        except sqlite3.Error as exc:
            self._uncommitted.append((future, self._write_failed(exc)))
            return
        try:
            outcome: Result = operation(conn)
        except Exception as exc:
            error = self._failed(exc)
            if not conn.in_transaction:
                self._uncommitted.append((future, error))
                return
            conn.execute("ROLLBACK TO job")
            outcome = error
        else:
            self._probed |= operation is _rewrite_schema_version
        conn.execute("RELEASE job")
        self.stats.operations += 1
        self._uncommitted.append((future, outcome))

    def _run_joined(self, run: Pending) -> bool:
        """Run alike operations as one (`Joinable`); False when they must run one by one
        (nothing of them is left done then)."""
        try:
            self._savepoint()
        except sqlite3.Error:
            return False  # (each, run alone, meets the error and answers with it)
        first: Joinable = run[0][0]  # type: ignore[assignment]  # (`_alike_runs`)
        try:
            outcomes = first.run_joined(self._conn, [operation for operation, _ in run])
        except Exception as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK TO job")
                self._conn.execute("RELEASE job")
            else:
                self._failed(exc)
            return False
        self._conn.execute("RELEASE job")
        self.stats.operations += len(run)
        self._uncommitted.extend(
            (future, outcome) for (_, future), outcome in zip(run, outcomes, strict=True)
        )
        return True

    def _savepoint(self) -> None:
        """Open a savepoint for the next operation, in the group's transaction."""
        conn = self._conn
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
            self._changes = conn.total_changes
        conn.execute("SAVEPOINT job")

    def _failed(self, exc: Exception) -> BurrowError:
        """The error of an operation that raised `exc`. When SQLite abandoned the whole
        transaction with it, the earlier operations of the group are lost too: they get
        the error as well."""
        error = self._write_failed(exc) if isinstance(exc, sqlite3.Error) else unavailable(exc)
        if not self._conn.in_transaction:
            self._uncommitted = [(future, error) for future, _ in self._uncommitted]
        return error

    def _commit_and_sync(self) -> None:
        """Commit what ran since the last commit, fsync the log, then acknowledge it."""
        group, self._uncommitted = self._uncommitted, []
        # Whether this commit changed the file: only such a one shows that writes work.
        wrote = self._probed or self._conn.total_changes != self._changes
        self._probed = False
        if self._conn.in_transaction:
            try:
                self._conn.commit()
                self.stats.commits += 1
            except sqlite3.Error as exc:
                self._rollback()
                error = self._write_failed(exc)
                group = [(future, error) for future, _ in group]
                wrote = False
        if self._refused is not None:
            # After a failed fsync a later one may "succeed" without the lost pages.
            self._deliver([(future, self._refusal()) for future, _ in group])
            self._busy = False
            self._schedule_flush()
            return
        self.stats.batches.observe(len(group))
        synced = self._loop.run_in_executor(self._thread, self._fsync_log)
        synced.add_done_callback(lambda done: self._synced(group, wrote, done))

    def _fsync_log(self) -> str | None:
        """Put the log on disk; then, what makes that worthless (None: nothing)."""
        if self._wal_fd is None:
            self._wal_fd = os.open(self._wal_path, os.O_RDWR)
        # fdatasync, as SQLite itself uses: the data and the file's size, without
        # waiting for its timestamps to be journaled.
        started = perf_counter()
        os.fdatasync(self._wal_fd)
        self.stats.fsync_seconds.observe(perf_counter() - started)  # (this thread only)
        # The log opened here is SQLite's: were it another, the look would tell.
        return self.files.changed()

    def _synced(self, group: Done, wrote: bool, done: asyncio.Future[str | None]) -> None:
        self._busy = False
        error = done.exception()
        problem = f"fsync of {self._wal_path} failed ({error})" if error else done.result()
        if problem is not None:
            self.refuse(problem)
            group = [(future, self._refusal()) for future, _ in group]
        else:
            self.stats.syncs += 1
            if wrote and self._failure is not None:
                logger.info("sqlite: writes reach the disk again")
                self._failure = None
        self._deliver(group)
        self._schedule_flush()  # after the requests already read: they join the group

    @property
    def problem(self) -> str | None:
        """Why writes are not acknowledged now (None: they are)."""
        if self._refused is not None:
            return f"{self._refused}; writes are refused until a restart"
        return self._failure

    def refuse(self, reason: str) -> None:
        """Refuse every write from now on, until a restart; logged once."""
        if self._refused is None:
            logger.error("sqlite: %s; writes are refused until a restart", reason)
            self._refused = reason

    def _refusal(self) -> KnownFault:
        return KnownFault(f"sqlite: {self.problem}")

    def _write_failed(self, exc: sqlite3.Error) -> KnownFault:
        """A write SQLite could not make: remembered (and logged once) until one succeeds."""
        failure = f"writes fail ({exc})"
        if failure != self._failure:
            logger.error("sqlite: %s", failure)
            self._failure = failure
        error = KnownFault(f"sqlite: {failure}")
        error.__cause__ = exc
        return error

    async def probe(self) -> None:
        """Write one page, to learn whether writes work (again): see `problem`."""
        if self._refused is not None:
            return  # for good
        with contextlib.suppress(BackendUnavailable):
            await self.submit(_rewrite_schema_version)

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
        self._lock_thread.shutdown()
        self._lock.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
        try:
            self._rollback()
            # Fold the log into the database so the file stands alone when closed; not
            # waiting for processes that still use the file (the last to close folds it).
            self._conn.execute("PRAGMA busy_timeout = 0")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self._conn.close()
        except sqlite3.Error as exc:
            logger.warning("sqlite close failed: %s", exc)


def _alike_runs(group: Pending) -> Iterator[Pending]:
    """The group in runs, in order: of `Joinable` operations alike, else of one."""
    run: Pending = []
    run_key: Hashable = None
    for item in group:
        join_key = getattr(item[0], "join_key", None)  # (None: not `Joinable`)
        key = None if join_key is None else (type(item[0]), join_key)
        if run and (key is None or key != run_key or len(run) == MAX_JOINED):
            yield run
            run = []
        run.append(item)
        run_key = key
    if run:
        yield run


def _rewrite_schema_version(conn: sqlite3.Connection) -> Outcome[None]:
    """A write that changes nothing, yet puts a page in the log: the probe."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")
    return Outcome(None)
