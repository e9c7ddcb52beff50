"""The SQL of the `sqlite://` backend: one function per operation.

Each operation function runs on a connection inside a transaction its caller
opened (see `sqlite_writer` and `SQLiteBackend._read`); none of them commits. They
take `now` themselves, when they run, so that deadlines are measured from the
moment the operation happens rather than from when it was queued.

The schema and its migrations: `sqlite_schema`.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Generic, TypeVar

import orjson

from burrow.backends.base import DeleteTarget
from burrow.backends.sqlite_schema import migrate
from burrow.errors import BackendUnavailable, MessageNotFound, NoMatch
from burrow.model import (
    Attributes,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
    deadline,
    remaining,
)

T = TypeVar("T")

# A message row as the queries below select it: the columns after `hidden_until` are
# the `Message` fields after `hide`, in their order (see `_report`).
_COLUMNS = (
    "seq, queue, id, body, expires, hidden_until, receives, receipt, sent, first_received, meta"
)
Row = tuple[Any, ...]
SEQ, QUEUE, ID, BODY, EXPIRES, HIDDEN_UNTIL, RECEIVES, RECEIPT, SENT, FIRST_RECEIVED = range(10)


@dataclass(slots=True)
class Outcome(Generic[T]):
    """What an operation returns, and which queue's waiters to wake once it is committed."""

    value: T
    changed: tuple[str, str] | None = None
    hidden_until: list[float] = field(default_factory=list)


Operation = Callable[[sqlite3.Connection], Outcome[T]]


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


def next_shown(account: str, queue: str) -> Operation[float | None]:
    """When the queue's next hidden message shows (None: none is hidden), for wake-ups."""

    def run(conn: sqlite3.Connection) -> Outcome[float | None]:
        row = conn.execute(
            "SELECT hidden_until FROM messages INDEXED BY messages_by_hide"
            " WHERE queue = (SELECT seq FROM queues WHERE account = ? AND name = ?)"
            " AND hidden_until > 0 AND hidden_until > ? ORDER BY hidden_until LIMIT 1",
            (account, queue, time.time()),
        ).fetchone()
        return Outcome(None if row is None else float(row[0]))

    return run


def purge_expired(conn: sqlite3.Connection, chunk: int) -> int:
    """Delete up to `chunk` expired messages and the queues and accounts they empty."""
    purged = conn.execute(
        "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
        " WHERE expires > 0 AND expires <= ? LIMIT ?) RETURNING queue, length(body)",
        (time.time(), chunk),
    ).fetchall()
    per_queue: dict[int, list[int]] = {}
    for key, size in purged:
        per_queue.setdefault(key, []).append(size)
    for key, sizes in per_queue.items():
        _removed(conn, key, len(sizes), sum(sizes))
    return len(purged)


# Accounts and queues ---------------------------------------------------------------


def get_accounts(filters: Filters) -> Operation[list[str]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[str]]:
        return Outcome(_account_names(conn, filters, time.time()))

    return run


def matched_accounts(filters: Filters) -> Operation[tuple[list[str], list[int], int]]:
    """What a delete of accounts takes: their names, the keys of their queues, and the
    last message seq now (see `delete_chunk`)."""

    def run(conn: sqlite3.Connection) -> Outcome[tuple[list[str], list[int], int]]:
        names = _account_names(conn, filters, time.time())
        keys = [
            key
            for name in names
            for (key,) in conn.execute("SELECT seq FROM queues WHERE account = ?", (name,))
        ]
        return Outcome((names, keys, _last_seq(conn)))

    return run


def get_queues(account: str, filters: Filters) -> Operation[list[str]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[str]]:
        return Outcome([name for _, name in _queue_names(conn, account, filters, time.time())])

    return run


def matched_queues(account: str, filters: Filters) -> Operation[tuple[list[tuple[int, str]], int]]:
    """What a delete of queues takes: their (key, name), and the last message seq now."""

    def run(conn: sqlite3.Connection) -> Outcome[tuple[list[tuple[int, str]], int]]:
        return Outcome((_queue_names(conn, account, filters, time.time()), _last_seq(conn)))

    return run


def delete_chunk(key: int, up_to: int, chunk: int) -> Operation[int]:
    """Delete up to `chunk` of a queue's messages (hidden ones too), oldest first, among
    those up to seq `up_to`: a delete of a queue takes it a chunk per write, so that
    other writes go in between, and ends however fast others add to it. The last chunk
    drops the queue, and its account if that was its last. Returns how many it deleted.
    """

    def run(conn: sqlite3.Connection) -> Outcome[int]:
        sizes = conn.execute(
            "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
            " WHERE queue = ? AND seq <= ? ORDER BY seq LIMIT ?) RETURNING length(body)",
            (key, up_to, chunk),
        ).fetchall()
        if sizes:
            _removed(conn, key, len(sizes), sum(size for (size,) in sizes))
        return Outcome(len(sizes))

    return run


def _last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT IFNULL(MAX(seq), 0) FROM messages").fetchone()[0])


def _account_names(conn: sqlite3.Connection, filters: Filters, now: float) -> list[str]:
    after = _seq_of(conn, "SELECT seq FROM accounts WHERE name = ?", filters.marker)
    rows = conn.execute(
        "SELECT name FROM accounts AS a WHERE seq > ? AND EXISTS (SELECT 1 FROM queues AS q"
        " JOIN messages AS m ON m.queue = q.seq WHERE q.account = a.name"
        " AND (m.expires = 0 OR m.expires > ?)) ORDER BY seq LIMIT ?",
        (after, now, _limit(filters)),
    ).fetchall()
    if not rows:
        raise NoMatch("accounts")
    return [name for (name,) in rows]


def _queue_names(
    conn: sqlite3.Connection, account: str, filters: Filters, now: float
) -> list[tuple[int, str]]:
    sql = "SELECT seq FROM queues WHERE account = ? AND name = ?"
    after = _seq_of(conn, sql, account, filters.marker)
    rows = conn.execute(
        "SELECT seq, name FROM queues AS q WHERE account = ? AND seq > ? AND EXISTS"
        " (SELECT 1 FROM messages WHERE queue = q.seq AND (expires = 0 OR expires > ?))"
        " ORDER BY seq LIMIT ?",
        (account, after, now, _limit(filters)),
    ).fetchall()
    if not rows:
        raise NoMatch("queues")
    return [(key, name) for key, name in rows]


# Messages in a queue -------------------------------------------------------------------
#
# Each operation is as few statements as possible (the writer is the bottleneck):
# queue key and marker are looked up in subqueries. Updates and deletes select
# first and then change rows by `seq`, which measured faster than RETURNING.

_QUEUE = "(SELECT seq FROM queues WHERE account = :account AND name = :queue)"
_MARKER = f"IFNULL((SELECT seq FROM messages WHERE queue = {_QUEUE} AND id = :marker), 0)"
_LIVE_NOW = "(expires = 0 OR expires > :now)"


def _matched(filters: Filters) -> str:
    """SELECT of the matched messages' columns, in order (bind with `_params`)."""
    after = _MARKER if filters.marker is not None else "0"
    visible = "" if filters.match_hidden else " AND hidden_until <= :now"
    return (
        f"SELECT {_COLUMNS} FROM messages INDEXED BY messages_in_order"
        f" WHERE queue = {_QUEUE} AND seq > {after} AND {_LIVE_NOW}{visible}"
        " ORDER BY seq LIMIT :limit"
    )


def _params(account: str, queue: str, filters: Filters, now: float) -> dict[str, Any]:
    return {
        "account": account,
        "queue": queue,
        "marker": filters.marker,
        "now": now,
        "limit": _limit(filters),
    }


def get_messages(account: str, queue: str, filters: Filters) -> Operation[list[Message]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = conn.execute(_matched(filters), _params(account, queue, filters, now)).fetchall()
        return Outcome([_report(row, now) for row in _some(rows)])

    return run


def update_messages(
    account: str, queue: str, attributes: Attributes, filters: Filters
) -> Operation[list[Message]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = conn.execute(_matched(filters), _params(account, queue, filters, now)).fetchall()
        updated = _update(conn, _some(rows), attributes, now)
        return _announce(account, queue, updated, [_report(row, now) for row in updated], now)

    return run


def delete_messages(account: str, queue: str, filters: Filters) -> Operation[list[Message]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = conn.execute(_matched(filters), _params(account, queue, filters, now)).fetchall()
        _delete(conn, _some(rows))
        return Outcome([_report(row, now) for row in rows])

    return run


def put_messages(
    account: str, queue: str, messages: list[NewMessage], quota: Quota
) -> Operation[list[bool]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[bool]]:
        if not messages:
            return Outcome([])
        now = time.time()
        key = _ensure_queue(conn, account, queue)
        rows = [
            (key, m.id, deadline(m.ttl, now), deadline(m.hide, now), m.body, now, m.meta)
            for m in messages
        ]
        created = [True] * len(rows)
        added, added_bytes = len(rows), sum(len(m.body) for m in messages)
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            try:
                # The common case, new ids: the whole chunk in one statement.
                conn.execute(_insert_rows(len(chunk)), list(chain.from_iterable(chunk)))
            except sqlite3.IntegrityError:
                # An id is taken: the statement made no row. Each goes alone, in order
                # (and one that breaks another constraint raises again).
                for index, row in enumerate(chunk, start):
                    if not conn.execute(_INSERT_NEW, row).rowcount:
                        was_expired, old_size = _replace(conn, row, now)
                        created[index] = was_expired
                        added -= 1
                        added_bytes -= old_size
        _count(conn, key, added, added_bytes)
        if quota:
            # Checked on the counts the batch leaves; raising rolls the batch back.
            quota.check(*_usage(conn, account, queue))
        hidden = [deadline(m.hide, now) for m in messages if m.hide]
        return Outcome(created, (account, queue), hidden)

    return run


# A new row's receives, receipt and first receive are the columns' defaults (none yet).
_INSERT_INTO = "INSERT INTO messages (queue, id, expires, hidden_until, body, sent, meta) VALUES "
_ROW = "(?, ?, ?, ?, ?, ?, ?)"
_INSERT = _INSERT_INTO + _ROW
_INSERT_NEW = f"{_INSERT} ON CONFLICT DO NOTHING"
# One statement of many rows costs SQLite far less than as many of one row (1.5 us a
# row less, with 10); chunks keep the statements few, one per size up to this, for the
# connection's statement cache.
_ROWS_PER_INSERT = 32


@functools.cache
def _insert_rows(count: int) -> str:
    return _INSERT_INTO + ", ".join([_ROW] * count)


NewRow = tuple[int, str, float, float, bytes, float, bytes]


def _replace(conn: sqlite3.Connection, row: NewRow, now: float) -> tuple[bool, int]:
    """Replace the stored message of a row's id: (whether it had expired, its body size).

    A live message is updated in place, its receives forgotten; an expired one is gone,
    and its successor goes last. Either way the queue holds as many rows as before.
    """
    key, message_id, expires, hidden_until, body, sent, meta = row
    seq, old_size, expired = conn.execute(
        "SELECT seq, length(body), expires > 0 AND expires <= ? FROM messages"
        " WHERE queue = ? AND id = ?",
        (now, key, message_id),
    ).fetchone()
    if expired:
        conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
        conn.execute(_INSERT, row)
    else:
        conn.execute(
            "UPDATE messages SET body = ?, expires = ?, hidden_until = ?, sent = ?, meta = ?,"
            " receives = 0, receipt = '', first_received = 0 WHERE seq = ?",
            (body, expires, hidden_until, sent, meta, seq),
        )
    return bool(expired), int(old_size)


# One message ---------------------------------------------------------------------------

_ONE = f"SELECT {_COLUMNS} FROM messages WHERE queue = {_QUEUE} AND id = :id AND {_LIVE_NOW}"
# Several by id at once (`:ids` a JSON list), each found through `messages_by_id`.
_LISTED = (
    f"SELECT {_COLUMNS} FROM messages WHERE queue = {_QUEUE}"
    f" AND id IN (SELECT value FROM json_each(:ids)) AND {_LIVE_NOW}"
)


def get_message(account: str, queue: str, message_id: str) -> Operation[Message]:
    def run(conn: sqlite3.Connection) -> Outcome[Message]:
        now = time.time()
        return Outcome(_report(_one(conn, account, queue, message_id, now), now))

    return run


def update_message(
    account: str, queue: str, message_id: str, attributes: Attributes, receipt: str | None
) -> Operation[Message]:
    def run(conn: sqlite3.Connection) -> Outcome[Message]:
        now = time.time()
        row = _one(conn, account, queue, message_id, now, receipt)
        updated = _update(conn, [row], attributes, now)
        return _announce(account, queue, updated, _report(updated[0], now), now)

    return run


def delete_message(
    account: str, queue: str, message_id: str, receipt: str | None
) -> Operation[Message]:
    def run(conn: sqlite3.Connection) -> Outcome[Message]:
        now = time.time()
        row = _one(conn, account, queue, message_id, now, receipt)
        _delete(conn, [row])
        return Outcome(_report(row, now))

    return run


def delete_listed_messages(
    account: str, queue: str, targets: list[DeleteTarget]
) -> Operation[list[Message]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        ids = orjson.dumps([message_id for message_id, _ in targets]).decode()
        params = {"account": account, "queue": queue, "ids": ids, "now": now}
        found = {row[ID]: row for row in conn.execute(_LISTED, params)}
        rows = [
            row
            for message_id, receipt in targets
            if (row := found.get(message_id)) is not None
            and (receipt is None or row[RECEIPT] == receipt)
        ]
        if rows:
            _delete(conn, rows)
        return Outcome([_report(row, now) for row in rows])

    return run


# A queue's expired rows not purged yet, found through the expiry index: as many as
# the purge has left behind in every queue, a few at most unless a crowd of messages
# has just expired.
_EXPIRED_IN_QUEUE = (
    "SELECT count(*) FROM messages INDEXED BY messages_by_expiry"
    " WHERE expires > 0 AND expires <= :now AND queue = :key"
)
# Its live hidden messages, in the hide index alone (it holds receives and expires).
_HIDDEN_IN_QUEUE = (
    "SELECT count(*), count(*) FILTER (WHERE receives > 0) FROM messages"
    " INDEXED BY messages_by_hide WHERE queue = :key AND hidden_until > 0"
    f" AND hidden_until > :now AND {_LIVE_NOW}"
)


# When the live messages at each end of a queue were put: the first and the last live
# row in the order index (expired rows the purge has left at an end are stepped over).
_END_OF_QUEUE = (
    "SELECT sent FROM messages INDEXED BY messages_in_order"
    f" WHERE queue = :key AND {_LIVE_NOW} ORDER BY seq {{}} LIMIT 1"
)
_OLDEST, _NEWEST = _END_OF_QUEUE.format("ASC"), _END_OF_QUEUE.format("DESC")


def count_messages(account: str, queue: str) -> Operation[MessageCounts]:
    """The queue's counts by state, without reading its visible messages: those are its
    row counter less the expired and the hidden rows; its bytes are its counter's, and
    its ends' put times one row each."""

    def run(conn: sqlite3.Connection) -> Outcome[MessageCounts]:
        now = time.time()
        found = conn.execute(
            "SELECT seq, messages, bytes FROM queues WHERE account = ? AND name = ?",
            (account, queue),
        ).fetchone()
        if found is None:
            return Outcome(MessageCounts())
        key, rows, size = found
        params = {"key": key, "now": now}
        (expired,) = conn.execute(_EXPIRED_IN_QUEUE, params).fetchone()
        hidden, in_flight = conn.execute(_HIDDEN_IN_QUEUE, params).fetchone()
        oldest = conn.execute(_OLDEST, params).fetchone()
        newest = conn.execute(_NEWEST, params).fetchone()
        return Outcome(
            MessageCounts(
                rows - expired - hidden,
                in_flight,
                hidden - in_flight,
                size,
                oldest[0] if oldest else 0.0,
                newest[0] if newest else 0.0,
            )
        )

    return run


# Internals -----------------------------------------------------------------------------


def _one(
    conn: sqlite3.Connection,
    account: str,
    queue: str,
    message_id: str,
    now: float,
    receipt: str | None = None,
) -> Row:
    """A live message by id; with a receipt, only if its latest receive is that one."""
    params = {"account": account, "queue": queue, "id": message_id, "now": now}
    row: Row | None = conn.execute(_ONE, params).fetchone()
    if row is None or (receipt is not None and row[RECEIPT] != receipt):
        raise MessageNotFound(message_id)
    return row


def _some(rows: list[Row]) -> list[Row]:
    if not rows:
        raise NoMatch()
    return rows


def _update(
    conn: sqlite3.Connection, rows: list[Row], attributes: Attributes, now: float
) -> list[Row]:
    """Set the given attributes on rows (a receive with a receipt); returns the rows as
    they now are."""
    ttl, hide, receipt = attributes.ttl, attributes.hide, attributes.receipt
    if ttl is None and hide is None and receipt is None:
        return rows
    expires = None if ttl is None else deadline(ttl, now)
    hidden_until = None if hide is None else deadline(hide, now)
    updated: list[Row] = []
    for row in rows:
        new = list(row)
        if expires is not None:
            new[EXPIRES] = expires
        if hidden_until is not None:
            new[HIDDEN_UNTIL] = hidden_until
        if receipt is not None:
            new[RECEIVES] += 1
            new[RECEIPT] = receipt
            new[FIRST_RECEIVED] = new[FIRST_RECEIVED] or now
        updated.append(tuple(new))
    conn.executemany(
        "UPDATE messages SET expires = ?, hidden_until = ?, receives = ?, receipt = ?,"
        " first_received = ? WHERE seq = ?",
        [
            (
                row[EXPIRES],
                row[HIDDEN_UNTIL],
                row[RECEIVES],
                row[RECEIPT],
                row[FIRST_RECEIVED],
                row[SEQ],
            )
            for row in updated
        ],
    )
    return updated


def _delete(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Delete rows of one queue, and the queue (and account) if they were its last."""
    conn.executemany("DELETE FROM messages WHERE seq = ?", [(row[SEQ],) for row in rows])
    _removed(conn, rows[0][QUEUE], len(rows), sum(len(row[BODY]) for row in rows))


def _count(conn: sqlite3.Connection, key: int, messages: int, size: int) -> None:
    """Add to a queue's counters of message rows and body bytes."""
    if messages or size:
        conn.execute(
            "UPDATE queues SET messages = messages + ?, bytes = bytes + ? WHERE seq = ?",
            (messages, size, key),
        )


def _announce(account: str, queue: str, rows: list[Row], value: T, now: float) -> Outcome[T]:
    """Wake the queue's waiters, and again when a message hidden here shows."""
    hidden = [row[HIDDEN_UNTIL] for row in rows if row[HIDDEN_UNTIL] > now]
    return Outcome(value, (account, queue), hidden)


def _usage(conn: sqlite3.Connection, account: str, queue: str) -> tuple[int, int, int]:
    """(messages in the queue, queues in the account, body bytes in the account)."""
    row = conn.execute(
        "SELECT (SELECT messages FROM queues WHERE account = :account AND name = :queue),"
        " count(*), total(bytes) FROM queues WHERE account = :account",
        {"account": account, "queue": queue},
    ).fetchone()
    return int(row[0] or 0), int(row[1]), int(row[2])


def _queue_key(conn: sqlite3.Connection, account: str, queue: str) -> int | None:
    row = conn.execute(
        "SELECT seq FROM queues WHERE account = ? AND name = ?", (account, queue)
    ).fetchone()
    return None if row is None else int(row[0])


def _ensure_queue(conn: sqlite3.Connection, account: str, queue: str) -> int:
    key = _queue_key(conn, account, queue)
    if key is not None:
        return key
    conn.execute("INSERT OR IGNORE INTO accounts (name) VALUES (?)", (account,))
    cursor = conn.execute("INSERT INTO queues (account, name) VALUES (?, ?)", (account, queue))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _removed(conn: sqlite3.Connection, key: int, messages: int, size: int) -> None:
    """Count message rows deleted from a queue; remove the queue if it has none left, and
    its account if that was its last queue."""
    left = conn.execute(
        "UPDATE queues SET messages = messages - ?, bytes = bytes - ? WHERE seq = ?"
        " RETURNING messages, account",
        (messages, size, key),
    ).fetchone()
    if left is not None and left[0] == 0:
        conn.execute("DELETE FROM queues WHERE seq = ?", (key,))
        _drop_account_if_empty(conn, left[1])


def _drop_account_if_empty(conn: sqlite3.Connection, account: str) -> None:
    if not conn.execute("SELECT 1 FROM queues WHERE account = ? LIMIT 1", (account,)).fetchone():
        conn.execute("DELETE FROM accounts WHERE name = ?", (account,))


def _seq_of(conn: sqlite3.Connection, sql: str, *params: object) -> int:
    """Position of a marker; 0 (from the start) when it is None or unknown."""
    if params[-1] is None:
        return 0
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None else int(row[0])


def _limit(filters: Filters) -> int:
    return -1 if filters.limit is None else filters.limit


def _report(row: Row, now: float) -> Message:
    """A message row (see `_COLUMNS`) as the caller sees it."""
    return Message(
        row[ID],
        row[BODY],
        remaining(row[EXPIRES], now),
        remaining(row[HIDDEN_UNTIL], now),
        *row[RECEIVES:],
    )
