"""The SQL of the `sqlite://` backend on accounts and queues: their listings, the
chunked delete of queues, the expiry purge, each queue's counters of message rows
and body bytes (kept by every message write, see `sqlite_messages`), its counts by
state, and when its next hidden message shows. Operations as in `sqlite_store`.
"""

from __future__ import annotations

import sqlite3
import time

from burrow.backends.sqlite_store import LIVE_NOW, Operation, Outcome, sql_limit
from burrow.errors import NoMatch
from burrow.model import Filters, MessageCounts

# Wake-ups and the expiry purge ----------------------------------------------------


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
        removed(conn, key, len(sizes), sum(sizes))
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
            removed(conn, key, len(sizes), sum(size for (size,) in sizes))
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
        (after, now, sql_limit(filters)),
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
        (account, after, now, sql_limit(filters)),
    ).fetchall()
    if not rows:
        raise NoMatch("queues")
    return [(key, name) for key, name in rows]


def _seq_of(conn: sqlite3.Connection, sql: str, *params: object) -> int:
    """Position of a marker; 0 (from the start) when it is None or unknown."""
    if params[-1] is None:
        return 0
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None else int(row[0])


# Counts by state -------------------------------------------------------------------

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
    f" AND hidden_until > :now AND {LIVE_NOW}"
)


# When the live messages at each end of a queue were put: the first and the last live
# row in the order index (expired rows the purge has left at an end are stepped over).
_END_OF_QUEUE = (
    "SELECT sent FROM messages INDEXED BY messages_in_order"
    f" WHERE queue = :key AND {LIVE_NOW} ORDER BY seq {{}} LIMIT 1"
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


# Counters --------------------------------------------------------------------------


def count(conn: sqlite3.Connection, key: int, messages: int, size: int) -> None:
    """Add to a queue's counters of message rows and body bytes."""
    if messages or size:
        conn.execute(
            "UPDATE queues SET messages = messages + ?, bytes = bytes + ? WHERE seq = ?",
            (messages, size, key),
        )


def usage(conn: sqlite3.Connection, account: str, queue: str) -> tuple[int, int, int]:
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


def ensure_queue(conn: sqlite3.Connection, account: str, queue: str) -> int:
    key = _queue_key(conn, account, queue)
    if key is not None:
        return key
    conn.execute("INSERT OR IGNORE INTO accounts (name) VALUES (?)", (account,))
    cursor = conn.execute("INSERT INTO queues (account, name) VALUES (?, ?)", (account, queue))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def removed(conn: sqlite3.Connection, key: int, messages: int, size: int) -> None:
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
