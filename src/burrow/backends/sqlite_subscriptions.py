"""Subscriptions in the `sqlite://` backend: the SQL of `Backend.get_subscription` and
its kin.

One row per subscription in `subscriptions(account, queue, name, document)` (schema
version 6, see `sqlite_schema`), its primary key the listing order (SQLite compares TEXT
as UTF-8 bytes, which is code point order). Writes run in the group committer's
transaction, so an acknowledged one is on disk; the compare and the set are one
statement.
"""

from __future__ import annotations

import sqlite3

from burrow.backends.base import SubscriptionKey
from burrow.backends.sqlite_store import Operation, Outcome
from burrow.errors import NoMatch
from burrow.model import Filters


def get_subscription(account: str, queue: str, name: str) -> Operation[bytes | None]:
    def run(conn: sqlite3.Connection) -> Outcome[bytes | None]:
        row = conn.execute(
            "SELECT document FROM subscriptions WHERE account = ? AND queue = ? AND name = ?",
            (account, queue, name),
        ).fetchone()
        return Outcome(None if row is None else bytes(row[0]))

    return run


def set_subscription(
    account: str, queue: str, name: str, document: bytes, expected: bytes | None
) -> Operation[bool]:
    def run(conn: sqlite3.Connection) -> Outcome[bool]:
        if expected is None:
            cursor = conn.execute(
                "INSERT INTO subscriptions (account, queue, name, document) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account, queue, name, document),
            )
        else:
            cursor = conn.execute(
                "UPDATE subscriptions SET document = ?"
                " WHERE account = ? AND queue = ? AND name = ? AND document = ?",
                (document, account, queue, name, expected),
            )
        return Outcome(cursor.rowcount == 1)

    return run


def delete_subscription(account: str, queue: str, name: str) -> Operation[bool]:
    def run(conn: sqlite3.Connection) -> Outcome[bool]:
        cursor = conn.execute(
            "DELETE FROM subscriptions WHERE account = ? AND queue = ? AND name = ?",
            (account, queue, name),
        )
        return Outcome(cursor.rowcount == 1)

    return run


def list_subscriptions(account: str, queue: str, filters: Filters) -> Operation[list[str]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[str]]:
        rows = conn.execute(
            "SELECT name FROM subscriptions WHERE account = ? AND queue = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (account, queue, filters.marker or "", -1 if filters.limit is None else filters.limit),
        ).fetchall()
        if not rows:
            raise NoMatch("subscriptions")
        return Outcome([name for (name,) in rows])

    return run


def list_all_subscriptions(
    after: SubscriptionKey | None, limit: int
) -> Operation[list[SubscriptionKey]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[SubscriptionKey]]:
        rows = conn.execute(
            "SELECT account, queue, name FROM subscriptions"
            " WHERE (account, queue, name) > (?, ?, ?)"
            " ORDER BY account, queue, name LIMIT ?",
            (*(after or ("", "", "")), limit),
        ).fetchall()
        return Outcome([(account, queue, name) for account, queue, name in rows])

    return run
