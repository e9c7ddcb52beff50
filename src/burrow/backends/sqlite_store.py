"""What the SQL operations of the `sqlite://` backend share: the shape of one
(`Operation`, returning an `Outcome`), a connection's set-up, and pieces of SQL.

Each operation function runs on a connection inside a transaction its caller
opened (see `sqlite_writer` and `SQLiteBackend._read`); none of them commits. They
take `now` themselves, when they run, so that deadlines are measured from the
moment the operation happens rather than from when it was queued.

The operations: on messages in `sqlite_messages`; on accounts and queues (listings,
counters, counts, the expiry purge) in `sqlite_queues`; queue info in `sqlite_infos`,
subscriptions in `sqlite_subscriptions`. The schema and its migrations: `sqlite_schema`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from burrow.backends.sqlite_schema import migrate
from burrow.errors import BackendUnavailable
from burrow.model import Filters

T = TypeVar("T")


@dataclass(slots=True)
class Outcome(Generic[T]):
    """What an operation returns, and which queue's waiters to wake once it is committed."""

    value: T
    changed: tuple[str, str] | None = None
    hidden_until: list[float] = field(default_factory=list)


Operation = Callable[[sqlite3.Connection], Outcome[T]]


class RunAlone(Exception):
    """Raised by `Joinable.run_joined`: these operations must run one by one."""


class Joinable(Protocol):
    """An operation that can run as one with the like ones (equal `join_key`; None: not
    this one) queued right after it: SQLite's cost is more per statement and savepoint
    than per row (32 single PUTs joined into one INSERT: 7 µs a message, 17-27 apart)."""

    @property
    def join_key(self) -> Hashable: ...

    def __call__(self, conn: sqlite3.Connection) -> Outcome[Any]: ...

    def run_joined(self, conn: sqlite3.Connection, operations: list[Any]) -> list[Outcome[Any]]:
        """Run `operations` (this one first, all alike) as one: an outcome each, as each
        would have had run alone in turn. Raises (`RunAlone`, or any error) to have them
        run one by one instead, after what it did is rolled back."""
        ...


# Set-up --------------------------------------------------------------------------


def configure(conn: sqlite3.Connection, *, writer: bool) -> None:
    """Pragmas for a connection; the writer also creates or migrates the schema."""
    conn.execute("PRAGMA busy_timeout = 10000")
    # 64 MiB of page cache (SQLite's default is 2 MiB): the indexes of a queue of
    # millions of messages stay in memory instead of being read back on every write.
    conn.execute("PRAGMA cache_size = -65536")
    if not writer:
        conn.execute("PRAGMA query_only = 1")
        return
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise BackendUnavailable(f"sqlite: cannot use WAL journal mode (got {mode!r})")
    # NORMAL: a commit appends to the log without waiting for the disk; the group
    # committer fsyncs the log itself before it acknowledges anything (sqlite_writer).
    conn.execute("PRAGMA synchronous = NORMAL")
    # Checkpoints run in the background (SQLiteBackend); this is only the backstop
    # should they fall behind, at ~40 MB of log.
    conn.execute("PRAGMA wal_autocheckpoint = 10000")
    migrate(conn)
    # Each write runs in a SAVEPOINT, and a multi-row INSERT in a statement transaction
    # too. Their journals of the pages they change go to a temporary file past 64 KiB,
    # a system call a page (batch PUTs of 10: 1.6 times the writes of the log alone; of
    # 100: 4.7 times). In memory they are bounded by the biggest write (a batch of
    # `max_batch_bytes`). Set after the migrations, whose index builds sort whole tables.
    conn.execute("PRAGMA temp_store = MEMORY")


# A message row that has not expired (bind `:now`).
LIVE_NOW = "(expires = 0 OR expires > :now)"


def sql_limit(filters: Filters) -> int:
    """A listing's LIMIT: -1 (none) when the filters give no limit."""
    return -1 if filters.limit is None else filters.limit
