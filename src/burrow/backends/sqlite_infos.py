"""Queue info in the `sqlite://` backend: the SQL of `Backend.get_queue_info` and its kin.

One row per queue that has info, in `queue_infos(seq, account, queue, info)` (schema
version 5, see `sqlite_schema`), apart from the queues and messages tables: nothing a
v1.0 call does reads or deletes it. `seq` only grows, so ordering by it is the order of
each queue's first info; a change updates the row in place and keeps it. Writes run in
the group committer's transaction as every message write does, so an acknowledged one
is on disk; the compare and the set are one statement.
"""

from __future__ import annotations

import sqlite3

from burrow.backends.sqlite_store import Operation, Outcome
from burrow.errors import NoMatch
from burrow.model import Filters


def get_queue_info(account: str, queue: str) -> Operation[bytes | None]:
    def run(conn: sqlite3.Connection) -> Outcome[bytes | None]:
        row = conn.execute(
            "SELECT info FROM queue_infos WHERE account = ? AND queue = ?", (account, queue)
        ).fetchone()
        return Outcome(None if row is None else bytes(row[0]))

    return run


def set_queue_info(
    account: str, queue: str, info: bytes, expected: bytes | None
) -> Operation[bool]:
    def run(conn: sqlite3.Connection) -> Outcome[bool]:
        if expected is None:
            cursor = conn.execute(
                "INSERT INTO queue_infos (account, queue, info) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account, queue, info),
            )
        else:
            cursor = conn.execute(
                "UPDATE queue_infos SET info = ? WHERE account = ? AND queue = ? AND info = ?",
                (info, account, queue, expected),
            )
        return Outcome(cursor.rowcount == 1)

    return run


def delete_queue_info(account: str, queue: str) -> Operation[bool]:
    def run(conn: sqlite3.Connection) -> Outcome[bool]:
        cursor = conn.execute(
            "DELETE FROM queue_infos WHERE account = ? AND queue = ?", (account, queue)
        )
        return Outcome(cursor.rowcount == 1)

    return run


def list_queue_infos(account: str, filters: Filters) -> Operation[list[str]]:
    """Names after the marker's (from the start if it has no info), in order."""

    def run(conn: sqlite3.Connection) -> Outcome[list[str]]:
        rows = conn.execute(
            "SELECT queue FROM queue_infos WHERE account = :account AND seq > IFNULL("
            "(SELECT seq FROM queue_infos WHERE account = :account AND queue = :marker), 0)"
            " ORDER BY seq LIMIT :limit",
            {
                "account": account,
                "marker": filters.marker,
                "limit": -1 if filters.limit is None else filters.limit,
            },
        ).fetchall()
        if not rows:
            raise NoMatch("queues")
        return Outcome([name for (name,) in rows])

    return run
