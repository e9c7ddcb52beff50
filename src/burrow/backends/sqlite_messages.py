"""The SQL of the `sqlite://` backend on messages: put, get, update (a claim is an
update with a receipt), delete, and delete by ids. Each one keeps its queue's
counters (`sqlite_queues`) in step. Operations as in `sqlite_store`.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import orjson

from burrow.backends import sqlite_queues as queues
from burrow.backends.base import DeleteTarget
from burrow.backends.joined_calls import first_visible_limit, in_turn
from burrow.backends.sqlite_store import LIVE_NOW, Operation, Outcome, RunAlone, sql_limit
from burrow.errors import MessageNotFound, NoMatch
from burrow.model import (
    Attributes,
    Filters,
    Message,
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


# Messages in a queue -------------------------------------------------------------------
#
# Each operation is as few statements as possible (the writer is the bottleneck):
# queue key and marker are looked up in subqueries. Updates and deletes select
# first and then change rows by `seq`, which measured faster than RETURNING.

_QUEUE = "(SELECT seq FROM queues WHERE account = :account AND name = :queue)"
_MARKER = f"IFNULL((SELECT seq FROM messages WHERE queue = {_QUEUE} AND id = :marker), 0)"


def _matched(filters: Filters) -> str:
    """SELECT of the matched messages' columns, in order (bind with `_params`)."""
    after = _MARKER if filters.marker is not None else "0"
    visible = "" if filters.match_hidden else " AND hidden_until <= :now"
    return (
        f"SELECT {_COLUMNS} FROM messages INDEXED BY messages_in_order"
        f" WHERE queue = {_QUEUE} AND seq > {after} AND {LIVE_NOW}{visible}"
        " ORDER BY seq LIMIT :limit"
    )


def _params(account: str, queue: str, filters: Filters, now: float) -> dict[str, Any]:
    return {
        "account": account,
        "queue": queue,
        "marker": filters.marker,
        "now": now,
        "limit": sql_limit(filters),
    }


def get_messages(account: str, queue: str, filters: Filters) -> Operation[list[Message]]:
    def run(conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = _matched_rows(conn, account, queue, filters, now)
        return Outcome([_report(row, now) for row in _some(rows)])

    return run


@dataclass(frozen=True, slots=True)
class UpdateMessages:
    """The operation of an update of the matched messages (a claim, when it hides them).
    Claims of a queue's first visible messages queued together join into one
    (`Joinable`): one lookup of as many as they take in all, handed out in turn."""

    account: str
    queue: str
    attributes: Attributes
    filters: Filters

    @property
    def join_key(self) -> Hashable:
        # Each claim hides what it takes, so the next finds the messages after them.
        if not self.attributes.hide:
            return None
        return _takes_first_visible(self.account, self.queue, self.filters, self.attributes)

    def __call__(self, conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = _some(_matched_rows(conn, self.account, self.queue, self.filters, now))
        return self._outcome(_update(conn, rows, self.attributes, now), now)

    def run_joined(
        self, conn: sqlite3.Connection, operations: list[UpdateMessages]
    ) -> list[Outcome[list[Message]]]:
        now = time.time()
        limits = [op.filters.limit or 0 for op in operations]
        rows = _first_visible(conn, self.account, self.queue, limits, now)
        updated = _update(conn, rows, self.attributes, now)
        handed = in_turn(updated, limits)
        return [op._outcome(some, now) for op, some in zip(operations, handed, strict=True)]

    def _outcome(self, updated: list[Row], now: float) -> Outcome[list[Message]]:
        reports = [_report(row, now) for row in updated]
        return _announce(self.account, self.queue, updated, reports, now)


def update_messages(
    account: str, queue: str, attributes: Attributes, filters: Filters
) -> UpdateMessages:
    return UpdateMessages(account, queue, attributes, filters)


@dataclass(frozen=True, slots=True)
class DeleteMessages:
    """The operation of a delete of the matched messages (a pop); pops of a queue's
    first visible messages queued together join as claims do (`UpdateMessages`)."""

    account: str
    queue: str
    filters: Filters

    @property
    def join_key(self) -> Hashable:
        return _takes_first_visible(self.account, self.queue, self.filters, "pop")

    def __call__(self, conn: sqlite3.Connection) -> Outcome[list[Message]]:
        now = time.time()
        rows = _some(_matched_rows(conn, self.account, self.queue, self.filters, now))
        _delete(conn, rows)
        return Outcome([_report(row, now) for row in rows])

    def run_joined(
        self, conn: sqlite3.Connection, operations: list[DeleteMessages]
    ) -> list[Outcome[list[Message]]]:
        now = time.time()
        limits = [op.filters.limit or 0 for op in operations]
        rows = _first_visible(conn, self.account, self.queue, limits, now)
        _delete(conn, rows)
        return [Outcome([_report(row, now) for row in some]) for some in in_turn(rows, limits)]


def delete_messages(account: str, queue: str, filters: Filters) -> DeleteMessages:
    return DeleteMessages(account, queue, filters)


def _takes_first_visible(account: str, queue: str, filters: Filters, kind: Hashable) -> Hashable:
    """The join key of an operation on the queue's first visible messages (None: it
    names a marker, or hidden ones, or no limit or a big one): taken from the queue in
    turn."""
    limit = first_visible_limit(filters)
    if limit is None or limit > _JOINS_AT_MOST:
        return None
    return account, queue, kind


def _first_visible(
    conn: sqlite3.Connection, account: str, queue: str, limits: list[int], now: float
) -> list[Row]:
    """The queue's first visible messages, as many as `limits` ask for in all; `RunAlone`
    when the last would find none (it answers so alone)."""
    rows = _matched_rows(conn, account, queue, Filters(sum(limits)), now)
    if len(rows) <= sum(limits[:-1]):
        raise RunAlone
    return rows


def _matched_rows(
    conn: sqlite3.Connection, account: str, queue: str, filters: Filters, now: float
) -> list[Row]:
    rows: list[Row] = conn.execute(
        _matched(filters), _params(account, queue, filters, now)
    ).fetchall()
    return rows


@dataclass(frozen=True, slots=True)
class PutMessages:
    """The operation of a PUT; the PUTs to one queue under one quota queued together
    join into one (`Joinable`)."""

    account: str
    queue: str
    messages: list[NewMessage]
    quota: Quota

    @property
    def join_key(self) -> tuple[str, str, Quota] | None:
        # A batch of a whole INSERT's rows saves little by joining (None: it runs alone).
        if len(self.messages) >= _ROWS_PER_INSERT:
            return None
        return self.account, self.queue, self.quota

    def __call__(self, conn: sqlite3.Connection) -> Outcome[list[bool]]:
        now = time.time()
        return self._outcome(_put(conn, self, self.messages, now, joined=False), now)

    def run_joined(
        self, conn: sqlite3.Connection, operations: list[PutMessages]
    ) -> list[Outcome[list[bool]]]:
        now = time.time()
        created = _put(conn, self, [m for op in operations for m in op.messages], now, joined=True)
        handed = in_turn(created, [len(op.messages) for op in operations])
        return [op._outcome(some, now) for op, some in zip(operations, handed, strict=True)]

    def _outcome(self, created: list[bool], now: float) -> Outcome[list[bool]]:
        if not created:
            return Outcome([])
        hidden = [deadline(m.hide, now) for m in self.messages if m.hide]
        return Outcome(created, (self.account, self.queue), hidden)


def put_messages(account: str, queue: str, messages: list[NewMessage], quota: Quota) -> PutMessages:
    return PutMessages(account, queue, messages, quota)


def _put(
    conn: sqlite3.Connection,
    put: PutMessages,
    messages: list[NewMessage],
    now: float,
    *,
    joined: bool,
) -> list[bool]:
    """Store `messages` in `put`'s queue: whether each one is new (not a replacement).

    Joined PUTs under a quota run alone once an id is taken: only new messages make every
    PUT's counts at least those of the one before, so that checking the counts the last
    one leaves checks them all."""
    if not messages:
        return []
    key = queues.ensure_queue(conn, put.account, put.queue)
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
            if joined and put.quota:
                raise RunAlone from None
            # An id is taken: the statement made no row. Each goes alone, in order
            # (and one that breaks another constraint raises again).
            for index, row in enumerate(chunk, start):
                if not conn.execute(_INSERT_NEW, row).rowcount:
                    was_expired, old_size = _replace(conn, row, now)
                    created[index] = was_expired
                    added -= 1
                    added_bytes -= old_size
    queues.count(conn, key, added, added_bytes)
    if put.quota:
        # Checked on the counts the batch leaves; raising rolls the batch back.
        put.quota.check(*queues.usage(conn, put.account, put.queue))
    return created


# The messages an operation may name (a claim's or pop's limit, a delete's ids) and still
# join others (`Joinable`): what a joined savepoint journals stays bounded.
_JOINS_AT_MOST = 100
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

_ONE = f"SELECT {_COLUMNS} FROM messages WHERE queue = {_QUEUE} AND id = :id AND {LIVE_NOW}"
# Several by id at once (`:ids` a JSON list), each found through `messages_by_id`.
_LISTED = (
    f"SELECT {_COLUMNS} FROM messages WHERE queue = {_QUEUE}"
    f" AND id IN (SELECT value FROM json_each(:ids)) AND {LIVE_NOW}"
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


@dataclass(frozen=True, slots=True)
class DeleteListed:
    """The operation of a delete by ids (the ids distinct); those to one queue queued
    together join into one (`Joinable`): one lookup of all their ids, one DELETE."""

    account: str
    queue: str
    targets: list[DeleteTarget]

    @property
    def join_key(self) -> tuple[str, str] | None:
        return None if len(self.targets) > _JOINS_AT_MOST else (self.account, self.queue)

    def __call__(self, conn: sqlite3.Connection) -> Outcome[list[Message]]:
        return self.run_joined(conn, [self])[0]

    def run_joined(
        self, conn: sqlite3.Connection, operations: list[DeleteListed]
    ) -> list[Outcome[list[Message]]]:
        now = time.time()
        ids = orjson.dumps([message_id for op in operations for message_id, _ in op.targets])
        params = {"account": self.account, "queue": self.queue, "ids": ids.decode(), "now": now}
        # What each finds is what the ones before it left: a message goes to the first.
        left = {row[ID]: row for row in conn.execute(_LISTED, params)}
        taken: list[list[Row]] = []
        for op in operations:
            taken.append(
                [
                    left.pop(message_id)
                    for message_id, receipt in op.targets
                    if (row := left.get(message_id)) is not None
                    and (receipt is None or row[RECEIPT] == receipt)
                ]
            )
        deleted = list(chain.from_iterable(taken))
        if deleted:
            _delete(conn, deleted)
        return [Outcome([_report(row, now) for row in rows]) for rows in taken]


def delete_listed_messages(account: str, queue: str, targets: list[DeleteTarget]) -> DeleteListed:
    return DeleteListed(account, queue, targets)


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
    queues.removed(conn, rows[0][QUEUE], len(rows), sum(len(row[BODY]) for row in rows))


def _announce(account: str, queue: str, rows: list[Row], value: T, now: float) -> Outcome[T]:
    """Wake the queue's waiters, and again when a message hidden here shows."""
    hidden = [row[HIDDEN_UNTIL] for row in rows if row[HIDDEN_UNTIL] > now]
    return Outcome(value, (account, queue), hidden)


def _report(row: Row, now: float) -> Message:
    """A message row (see `_COLUMNS`) as the caller sees it."""
    return Message(
        row[ID],
        row[BODY],
        remaining(row[EXPIRES], now),
        remaining(row[HIDDEN_UNTIL], now),
        *row[RECEIVES:],
    )
