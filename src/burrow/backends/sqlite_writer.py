"""Worker threads of the `sqlite://` backend: a writer with group commit, and a reader.

Each worker owns one connection and serves a queue of jobs fed from the event
loop. It takes everything queued (up to `max_batch` jobs) and runs the batch in
one transaction; the writer gives every job its own SAVEPOINT, so a job that
fails (say with `MessageNotFound`) rolls back alone, and commits the batch once:
one fsync for many operations (group commit). Only after the commit does it hand
the results back to the loop, in a single `call_soon_threadsafe`, so a caller is
told of success only once its write is on disk.

The writer also purges expired messages between batches, in bounded chunks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burrow.backends.sqlite_store import Operation, Outcome, configure, purge_expired
from burrow.errors import BackendUnavailable, BurrowError

logger = logging.getLogger(__name__)

Result = Outcome[Any] | BaseException
Done = list[tuple["asyncio.Future[Any]", Result]]


@dataclass(slots=True)
class Job:
    """One backend call waiting for a worker; `writes` says whether it may change data."""

    operation: Operation[Any]
    future: asyncio.Future[Any]
    writes: bool


@dataclass(slots=True)
class Stats:
    """Counters of one worker, for tests and metrics."""

    operations: int = 0
    batches: int = 0
    commits: int = 0  # write transactions committed (each one fsync)
    purged: int = 0


class _Aborted(Exception):
    """SQLite rolled back the whole transaction: no job of the batch may succeed."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def unavailable(exc: BaseException) -> BurrowError:
    """The error a caller sees: Burrow errors as they are, anything else as a 503."""
    if isinstance(exc, BurrowError):
        return exc
    error = BackendUnavailable(f"sqlite: {exc}")
    error.__cause__ = exc
    return error


class Worker:
    """A thread owning one connection, running jobs in batches."""

    def __init__(
        self,
        path: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[Done], None],
        *,
        writer: bool,
        purge_interval: float = 1.0,
        purge_chunk: int = 1000,
        max_batch: int = 1000,
    ) -> None:
        self._path = path
        self._loop = loop
        self._deliver = deliver
        self._writer = writer
        self._purge_interval = purge_interval
        self._purge_chunk = purge_chunk
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, name=f"burrow-sqlite-{'writer' if writer else 'reader'}", daemon=True
        )
        self.stats = Stats()

    async def start(self) -> None:
        """Start the thread; returns once the database is open (and migrated)."""
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    async def stop(self) -> None:
        """Finish every job submitted so far, then close the connection."""
        if self._thread.is_alive():
            self._jobs.put(None)
        if self._thread.ident is not None:
            await asyncio.wrap_future(self._stopped)

    # The thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._ready.set_exception(unavailable(exc))
            self._stopped.set_result(None)
            return
        self._ready.set_result(None)
        try:
            self._serve(conn)
        except BaseException:
            logger.exception("sqlite worker crashed", extra={"action": "sqlite-worker"})
        finally:
            self._shut(conn)
            self._fail_pending()
            self._stopped.set_result(None)

    def _connect(self) -> sqlite3.Connection:
        if self._writer:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, cached_statements=256)
        try:
            configure(conn, writer=self._writer)
        except BaseException:
            conn.close()
            raise
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        next_purge = time.monotonic() + self._purge_interval
        while True:
            timeout = max(0.0, next_purge - time.monotonic()) if self._writer else None
            batch, stopping = self._take(timeout)
            if batch:
                results = self._run_batch(conn, batch)
                self._hand_back(batch, results)
            if stopping:
                return
            if self._writer and time.monotonic() >= next_purge:
                more = self._purge(conn)
                next_purge = time.monotonic() + (0.0 if more else self._purge_interval)

    def _take(self, timeout: float | None) -> tuple[list[Job], bool]:
        """Whatever is queued (waiting up to `timeout` for the first job), and whether to stop."""
        batch: list[Job] = []
        stopping = False
        try:
            job = self._jobs.get(timeout=timeout)
            while True:
                if job is None:
                    stopping = True
                else:
                    batch.append(job)
                    if len(batch) >= self._max_batch:
                        break
                job = self._jobs.get_nowait()
        except queue.Empty:
            pass
        return batch, stopping

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> list[Result]:
        writes = any(job.writes for job in batch)
        try:
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            results = [self._run_job(conn, job) for job in batch]
            conn.execute("COMMIT")
        except (sqlite3.Error, _Aborted) as exc:
            error = unavailable(exc.cause if isinstance(exc, _Aborted) else exc)
            self._rollback(conn)
            return [error] * len(batch)
        self.stats.batches += 1
        self.stats.operations += len(batch)
        if writes:
            self.stats.commits += 1
        return results

    def _run_job(self, conn: sqlite3.Connection, job: Job) -> Result:
        if job.writes:
            conn.execute("SAVEPOINT job")
        try:
            outcome = job.operation(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise _Aborted(exc) from exc
            if job.writes:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            return unavailable(exc)
        if job.writes:
            conn.execute("RELEASE job")
        return outcome

    def _purge(self, conn: sqlite3.Connection) -> bool:
        """Purge one chunk of expired messages; True if there may be more."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            purged = purge_expired(conn, self._purge_chunk)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            logger.warning("sqlite purge failed: %s", exc, extra={"action": "purge"})
            return False
        if purged:
            self.stats.commits += 1
            self.stats.purged += purged
        return purged >= self._purge_chunk

    def _hand_back(self, batch: list[Job], results: list[Result]) -> None:
        done: Done = [(job.future, result) for job, result in zip(batch, results, strict=True)]
        try:
            self._loop.call_soon_threadsafe(self._deliver, done)
        except RuntimeError:
            pass  # the event loop is closed: nobody is left to tell

    def _fail_pending(self) -> None:
        """Answer jobs that can no longer run (only if the thread died unexpectedly)."""
        batch, _ = self._take(0)
        if batch:
            error = BackendUnavailable("sqlite: the database worker stopped")
            self._hand_back(batch, [error] * len(batch))

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is broken; the next BEGIN will say so

    def _shut(self, conn: sqlite3.Connection) -> None:
        try:
            self._rollback(conn)
            if self._writer:
                # Fold the log into the database so the file stands alone when closed.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        except sqlite3.Error as exc:
            logger.warning("sqlite close failed: %s", exc, extra={"action": "close"})
