"""The statements of the `postgresql://` backend (schema in `postgres_schema`), and the
messages their rows hold.

Time is always the PostgreSQL server's: `statement_timestamp()` is one instant
per statement, so a deadline set and the time remaining reported by the same
statement agree exactly, and every Burrow server measures from the same clock.
Rows come back with the seconds left until `expires` and `hidden_until`
(NULL for "never" / "visible"); Burrow's own clock is never compared with them.

Claims and pops lock what they take with `FOR UPDATE SKIP LOCKED` inside a
MATERIALIZED CTE, and change rows `WHERE seq = ANY(ARRAY(SELECT seq FROM
picked))`: the CTE runs exactly once, so at most `limit` rows are taken. (With
`seq IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` the planner may run the
subquery more than once, as a join, and take more than n rows.) A row that a
concurrent claim changed before we could lock it is re-checked against the
WHERE clause on its new version and dropped if no longer visible, so two claims
never obtain the same message. A receive (`Attributes.receipt`) is such a claim whose
UPDATE also counts the receive and stores its receipt: the receipt a receiver gets is
the one its statement wrote.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import asyncpg

from burrow.model import Filters, Message

Row: TypeAlias = asyncpg.Record

CHANNEL = "burrow"

NOW = "statement_timestamp()"
LIVE = f"(expires IS NULL OR expires > {NOW})"
_SECONDS_LEFT = "EXTRACT(EPOCH FROM {} - " + NOW + ")::float8"
_EPOCH = "EXTRACT(EPOCH FROM {})::float8"
# A message row as the caller sees it: seq, id, body, ttl and hide left, what its
# receives left (receives, receipt, first_received: NULL if never), sent, meta.
COLUMNS = (
    f"seq, id, body, {_SECONDS_LEFT.format('expires')} AS ttl_left,"
    f" {_SECONDS_LEFT.format('hidden_until')} AS hide_left, receives, receipt,"
    f" {_EPOCH.format('sent')} AS sent, {_EPOCH.format('first_received')} AS first_received,"
    " meta"
)


def deadline(seconds: str) -> str:
    """SQL for an absolute deadline `seconds` from now; 0 means NULL (never / visible)."""
    return f"CASE WHEN {seconds} = 0 THEN NULL ELSE {NOW} + {seconds} * interval '1 second' END"


def keep_or_deadline(column: str, seconds: str) -> str:
    """A deadline, or the column unchanged where the parameter is NULL."""
    return f"CASE WHEN {seconds}::int IS NULL THEN {column} ELSE {deadline(seconds)} END"


# Accounts and queues ---------------------------------------------------------------
# $1 marker, $2 limit (NULL = all)

ACCOUNTS = f"""
SELECT name FROM burrow.accounts AS a
WHERE seq > coalesce((SELECT seq FROM burrow.accounts WHERE name = $1), 0)
  AND EXISTS (SELECT 1 FROM burrow.queues AS q JOIN burrow.messages AS m ON m.queue = q.seq
              WHERE q.account = a.name AND (m.expires IS NULL OR m.expires > {NOW}))
ORDER BY seq LIMIT $2
"""

# $1 account, $2 marker, $3 limit
QUEUES = f"""
SELECT seq, name FROM burrow.queues AS q
WHERE account = $1
  AND seq > coalesce((SELECT seq FROM burrow.queues WHERE account = $1 AND name = $2), 0)
  AND EXISTS (SELECT 1 FROM burrow.messages AS m WHERE m.queue = q.seq AND {LIVE})
ORDER BY seq LIMIT $3
"""

# A delete of queues takes each one's messages a chunk per statement, in order, from
# after the last seq the chunk before took ($2, 0 at first) up to the last seq the
# queue had when the delete began ($3), so that it ends however fast others add, and no
# chunk steps over the index entries its predecessors left; then drops the queue if it
# is empty (`DROP_QUEUE`). Returns the last seq it took (NULL: none left). $1 queue
# key(s), $4 chunk.
QUEUE_NAMES = "SELECT seq, name FROM burrow.queues WHERE seq = ANY($1) ORDER BY seq"
LAST_SEQ = "SELECT max(seq) FROM burrow.messages WHERE queue = $1"
DELETE_CHUNK = """
WITH doomed AS MATERIALIZED (
    SELECT seq FROM burrow.messages WHERE queue = $1 AND seq > $2 AND seq <= $3
    ORDER BY seq LIMIT $4
), gone AS (
    DELETE FROM burrow.messages WHERE queue = $1 AND seq = ANY(ARRAY(SELECT seq FROM doomed))
)
SELECT max(seq) FROM doomed
"""
ACCOUNT_QUEUES = "SELECT seq FROM burrow.queues WHERE account = $1"

# Dropping an emptied queue or account: lock it, then look again with a fresh snapshot
# (a writer that held it meanwhile has committed by then). $1 queue key / account.
LOCK_QUEUE = "SELECT account FROM burrow.queues WHERE seq = $1 FOR UPDATE"
DROP_QUEUE = """
DELETE FROM burrow.queues WHERE seq = $1
  AND NOT EXISTS (SELECT 1 FROM burrow.messages WHERE queue = $1)
RETURNING account
"""
LOCK_ACCOUNT = "SELECT 1 FROM burrow.accounts WHERE name = $1 FOR UPDATE"
DROP_ACCOUNT = """
DELETE FROM burrow.accounts WHERE name = $1
  AND NOT EXISTS (SELECT 1 FROM burrow.queues WHERE account = $1)
"""
QUEUE_IS_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM burrow.messages WHERE queue = $1)"
EMPTY_QUEUES = """
SELECT seq FROM burrow.queues AS q
WHERE NOT EXISTS (SELECT 1 FROM burrow.messages AS m WHERE m.queue = q.seq)
"""

# Messages in a queue -------------------------------------------------------------------
# $1 account, $2 queue, $3 marker, $4 limit; updates add $5 ttl, $6 hide, and a receive
# $7 receipt.

_QUEUE = "(SELECT seq FROM burrow.queues WHERE account = $1 AND name = $2)"


def picked(filters: Filters, lock: bool) -> str:
    """CTEs ending in `picked(seq)`: the matched messages of the queue, in order."""
    locking = " FOR UPDATE SKIP LOCKED" if lock else ""
    start = (
        f"q AS (SELECT {_QUEUE} AS seq),"
        " after AS (SELECT coalesce((SELECT m.seq FROM burrow.messages AS m, q"
        " WHERE m.queue = q.seq AND m.id = $3), 0) AS seq)"
    )
    scan = (
        "SELECT seq FROM burrow.messages WHERE queue = (SELECT seq FROM q)"
        f" AND seq > (SELECT seq FROM after) AND {LIVE}"
    )
    if filters.match_hidden:
        return f"{start}, picked AS MATERIALIZED ({scan} ORDER BY seq LIMIT $4{locking})"
    # Visible = never hidden (the partial index) or hidden until a moment now past
    # (few: the purge task resets those to NULL); hidden ones are never visited.
    return (
        f"{start},"
        f" shown AS MATERIALIZED ({scan} AND hidden_until IS NULL"
        f" ORDER BY seq LIMIT $4{locking}),"
        f" lapsed AS MATERIALIZED ({scan} AND hidden_until <= {NOW}"
        f" ORDER BY seq LIMIT $4{locking}),"
        " picked AS MATERIALIZED (SELECT seq FROM shown UNION ALL SELECT seq FROM lapsed"
        " ORDER BY seq LIMIT $4)"
    )


_MATCHED = "queue = (SELECT seq FROM q) AND seq = ANY(ARRAY(SELECT seq FROM picked))"


def select_messages(filters: Filters) -> str:
    return (
        f"WITH {picked(filters, lock=False)}"
        f" SELECT {COLUMNS} FROM burrow.messages WHERE {_MATCHED} ORDER BY seq"
    )


# A receive changes the rows it locks in the claim's own statement.
_RECEIVE = (
    f", receives = receives + 1, receipt = $7, first_received = coalesce(first_received, {NOW})"
)


def update_messages(filters: Filters, receive: bool) -> str:
    return (
        f"WITH {picked(filters, lock=True)},"
        f" changed AS (UPDATE burrow.messages SET"
        f" expires = {keep_or_deadline('expires', '$5')},"
        f" hidden_until = {keep_or_deadline('hidden_until', '$6')}"
        f"{_RECEIVE if receive else ''}"
        f" WHERE {_MATCHED} RETURNING {COLUMNS})"
        " SELECT * FROM changed ORDER BY seq"
    )


def delete_messages(filters: Filters) -> str:
    return (
        f"WITH {picked(filters, lock=True)}"
        f" DELETE FROM burrow.messages WHERE {_MATCHED} RETURNING {COLUMNS}, queue"
    )


# Counts by state and bytes (`MessageCounts`): one pass over the queue's live rows; the
# put times of its ends, one row each from the primary key's (queue, seq) order.
_END = (
    f"coalesce((SELECT {_EPOCH.format('sent')} FROM burrow.messages"
    f" WHERE queue = {_QUEUE} AND {LIVE} ORDER BY seq {{}} LIMIT 1), 0)"
)
COUNTS = f"""
SELECT count(*) FILTER (WHERE hidden_until IS NULL OR hidden_until <= {NOW}),
       count(*) FILTER (WHERE hidden_until > {NOW} AND receives > 0),
       count(*) FILTER (WHERE hidden_until > {NOW} AND receives = 0),
       coalesce(sum(octet_length(body)), 0)::bigint,
       {_END.format("ASC")}, {_END.format("DESC")}
FROM burrow.messages WHERE queue = {_QUEUE} AND {LIVE}
"""

# Puts ------------------------------------------------------------------------------
# $1 account, $2 queue, $3 ids, $4 bodies, $5 ttls, $6 hides, $7 metas.
# One statement when the queue exists; it returns no rows when it does not (the caller
# creates it and runs this again). FOR KEY SHARE keeps the queue row from being dropped
# as empty while the new messages are not yet committed. A replace keeps the row and its
# seq, unless the message it replaces has expired: then it takes the seq drawn for the
# insert, in batch order, as if created anew. A replace starts receives, sent time and
# meta anew. The statement's snapshot tells created
# (inserted, or replacing an expired message) from replaced.

PUT = f"""
WITH q AS (SELECT seq FROM burrow.queues WHERE account = $1 AND name = $2 FOR KEY SHARE),
batch AS (
    SELECT * FROM unnest($3::text[], $4::bytea[], $5::int[], $6::int[], $7::bytea[])
        WITH ORDINALITY AS b(id, body, ttl, hide, meta, n)
),
stale AS (
    SELECT m.id FROM burrow.messages AS m, q
    WHERE m.queue = q.seq AND m.id = ANY($3::text[]) AND m.expires <= {NOW}
),
changed AS (
    INSERT INTO burrow.messages AS m (queue, id, body, expires, hidden_until, sent, meta)
    SELECT q.seq, b.id, b.body, {deadline("b.ttl")}, {deadline("b.hide")}, {NOW}, b.meta
    FROM q, batch AS b ORDER BY b.n
    ON CONFLICT (queue, id) DO UPDATE SET
        body = EXCLUDED.body, expires = EXCLUDED.expires, hidden_until = EXCLUDED.hidden_until,
        sent = EXCLUDED.sent, meta = EXCLUDED.meta,
        receives = 0, receipt = NULL, first_received = NULL,
        seq = CASE WHEN m.expires IS NULL OR m.expires > {NOW} THEN m.seq ELSE EXCLUDED.seq END
    RETURNING m.id, m.xmax = 0 AS inserted
)
SELECT changed.id, changed.inserted OR changed.id IN (SELECT id FROM stale) AS created
FROM changed
"""

# Make sure account and queue rows exist (run in the put's transaction). $1, $2 as PUT.
CREATE_ACCOUNT = "INSERT INTO burrow.accounts (name) VALUES ($1) ON CONFLICT DO NOTHING"
CREATE_QUEUE = """
WITH a AS (SELECT name FROM burrow.accounts WHERE name = $1 FOR KEY SHARE)
INSERT INTO burrow.queues (account, name) SELECT name, $2 FROM a ON CONFLICT DO NOTHING
"""

# Quotas: writers with a quota on one account take turns, then count what they leave.
QUOTA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('burrow quota ' || $1, 0))"
# $1 account, $2 queue, $3 $4 $5: whether each count is needed.
USAGE = f"""
SELECT
    CASE WHEN $3 THEN (SELECT count(*) FROM burrow.messages WHERE queue = {_QUEUE}) END,
    CASE WHEN $4 THEN (SELECT count(*) FROM burrow.queues AS q WHERE q.account = $1
        AND EXISTS (SELECT 1 FROM burrow.messages AS m WHERE m.queue = q.seq)) END,
    CASE WHEN $5 THEN (SELECT sum(octet_length(m.body)) FROM burrow.queues AS q
        JOIN burrow.messages AS m ON m.queue = q.seq WHERE q.account = $1) END
"""

# One message -------------------------------------------------------------------------
# $1 account, $2 queue, $3 id; update adds $4 ttl, $5 hide, then the receipt the
# message's latest receive must have (NULL: any message).

_ONE = f"queue = {_QUEUE} AND id = $3 AND {LIVE}"
GET_ONE = f"SELECT {COLUMNS} FROM burrow.messages WHERE {_ONE}"


def _received_with(receipt: str) -> str:
    return f"({receipt}::text IS NULL OR receipt = {receipt})"


UPDATE_ONE = f"""
UPDATE burrow.messages SET
    expires = {keep_or_deadline("expires", "$4")},
    hidden_until = {keep_or_deadline("hidden_until", "$5")}
WHERE {_ONE} AND {_received_with("$6")} RETURNING {COLUMNS}
"""
# Deletes by id, of one message or many (joined, see `joined_calls`): $1 account,
# $2 queue, $3 ids, $4 the receipt each must have (NULL: any), in step.
DELETE_LISTED = f"""
DELETE FROM burrow.messages USING unnest($3::text[], $4::text[]) AS wanted(wid, wreceipt)
WHERE queue = {_QUEUE} AND id = wid AND {LIVE} AND {_received_with("wreceipt")}
RETURNING {COLUMNS}, queue
"""

# Queue info ------------------------------------------------------------------------
# $1 account, $2 queue; a write adds $3 info, a compare-and-set $4 the expected one.
# The row lock of the UPDATE and the unique key of the INSERT make each one atomic:
# of concurrent writers expecting the same document, one changes it and the others
# then find it different. `seq` gives a queue's place, kept while its info exists.

GET_INFO = "SELECT info FROM burrow.queue_infos WHERE account = $1 AND name = $2"
ADD_INFO = """
INSERT INTO burrow.queue_infos (account, name, info) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING true
"""
CHANGE_INFO = """
UPDATE burrow.queue_infos SET info = $3 WHERE account = $1 AND name = $2 AND info = $4
RETURNING true
"""
DELETE_INFO = "DELETE FROM burrow.queue_infos WHERE account = $1 AND name = $2 RETURNING true"
# $1 account, $2 marker, $3 limit
INFOS = """
SELECT name FROM burrow.queue_infos
WHERE account = $1
  AND seq > coalesce((SELECT seq FROM burrow.queue_infos WHERE account = $1 AND name = $2), 0)
ORDER BY seq LIMIT $3
"""

# Subscriptions ----------------------------------------------------------------------
# $1 account, $2 queue, $3 name; a write adds $4 the document, a compare-and-set $5 the
# expected one (atomic as the queue info's writes are).

_SUBSCRIPTION = "account = $1 AND queue = $2 AND name = $3"
GET_SUBSCRIPTION = f"SELECT document FROM burrow.subscriptions WHERE {_SUBSCRIPTION}"
ADD_SUBSCRIPTION = """
INSERT INTO burrow.subscriptions (account, queue, name, document) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING RETURNING true
"""
CHANGE_SUBSCRIPTION = f"""
UPDATE burrow.subscriptions SET document = $4 WHERE {_SUBSCRIPTION} AND document = $5
RETURNING true
"""
DELETE_SUBSCRIPTION = f"DELETE FROM burrow.subscriptions WHERE {_SUBSCRIPTION} RETURNING true"
# $1 account, $2 queue, $3 marker ('' = none), $4 limit (NULL = all)
SUBSCRIPTIONS = """
SELECT name FROM burrow.subscriptions WHERE account = $1 AND queue = $2 AND name > $3
ORDER BY name LIMIT $4
"""
# $1, $2, $3 the key to start after ('', '', '' = none), $4 limit
ALL_SUBSCRIPTIONS = """
SELECT account, queue, name FROM burrow.subscriptions WHERE (account, queue, name) > ($1, $2, $3)
ORDER BY account, queue, name LIMIT $4
"""

# Housekeeping (every server runs it; SKIP LOCKED keeps them out of each other's way) ---

PURGE = f"""
WITH doomed AS MATERIALIZED (
    SELECT queue, seq FROM burrow.messages WHERE expires <= {NOW}
    LIMIT $1 FOR UPDATE SKIP LOCKED
)
DELETE FROM burrow.messages AS m USING doomed AS d
WHERE m.queue = d.queue AND m.seq = d.seq RETURNING m.queue
"""
# Wake-ups for other servers, sent after the writes they announce committed, several at
# once. (NOTIFY inside a write's transaction takes a database-wide lock while it commits,
# so notifying writers would commit one at a time.) A lost notice only delays a remote
# waiter, so its commit need not wait for the disk: `set_config(..., true)` turns that
# off for the statement's own transaction, one round trip in all.
NOTIFY_MANY = f"""
SELECT pg_notify('{CHANNEL}', p)
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS quick, unnest($1::text[]) AS p
"""

STALE_STATISTICS = """
SELECT n_mod_since_analyze > 1000 + n_live_tup / 10 FROM pg_stat_user_tables
WHERE schemaname = 'burrow' AND relname = 'messages'
"""
# Hides that lapsed go back to NULL, into the partial index claims scan. Returns how
# many rows each queue had unhidden: a claim meanwhile skipped those rows (locked), so
# the queue's waiters must look again.
UNHIDE = f"""
WITH lapsed AS MATERIALIZED (
    SELECT queue, seq FROM burrow.messages WHERE hidden_until <= {NOW}
    LIMIT $1 FOR UPDATE SKIP LOCKED
), unhidden AS (
    UPDATE burrow.messages AS m SET hidden_until = NULL FROM lapsed AS l
    WHERE m.queue = l.queue AND m.seq = l.seq AND m.hidden_until <= {NOW}
    RETURNING m.queue
)
SELECT q.account, q.name, count(*) AS rows FROM unhidden AS u
JOIN burrow.queues AS q ON q.seq = u.queue GROUP BY q.account, q.name
"""
# Seconds until the queue's next hidden message shows (NULL: none is hidden), for
# wake-ups; one seek of `messages_hidden_by_queue`. $1 account, $2 queue.
NEXT_SHOWN = f"""
SELECT EXTRACT(EPOCH FROM min(hidden_until) - {NOW})::float8 FROM burrow.messages
WHERE queue = {_QUEUE} AND hidden_until > {NOW}
"""


# Rows as messages ---------------------------------------------------------------------


def message_of(row: Row) -> Message:
    """The message a row of `COLUMNS` holds."""
    return Message(
        row["id"],
        row["body"],
        _left(row["ttl_left"]),
        _left(row["hide_left"]),
        row["receives"],
        row["receipt"] or "",
        row["sent"],
        row["first_received"] or 0.0,
        row["meta"],
    )


def messages_of(rows: list[Row]) -> list[Message]:
    return [message_of(row) for row in rows]


def _left(seconds: float | None) -> int:
    return math.ceil(seconds) if seconds is not None and seconds > 0 else 0
