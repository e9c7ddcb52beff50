"""The schema of the `sqlite://` backend and the migrations that bring a database to it.

Schema (version 6):

    accounts(seq, name)                  one row per account holding messages
    queues(seq, account, name, messages, bytes)
                                         one row per queue holding messages, with
                                         their count and body bytes (for quotas)
    messages(seq, queue, id, expires, hidden_until, body,
             receives, receipt, sent, first_received, meta)
    queue_infos(seq, account, queue, info)
                                         one row per queue with info (see
                                         `sqlite_infos`), apart from the rest
    subscriptions(account, queue, name, document)
                                         one row per subscription (see
                                         `sqlite_subscriptions`), apart too

`seq` columns are rowids that only grow for new rows, so ordering by `seq` is
creation order; a replace updates the row in place and keeps its `seq`. A queue
row lives exactly as long as it has message rows (expired ones included, until
purged), and an account row as long as it has queues, which mirrors
`MemoryBackend`. Deadlines are absolute epoch seconds, 0 meaning never/visible.
A queue's `messages` and `bytes` count its message rows and their body bytes, so
a quota check reads counters instead of scanning messages. Every operation that
inserts or deletes message rows, or changes a body, adds its change to them in
one UPDATE per queue (`_count`, `_removed`). (Version 2 did this with row triggers, which
cost more than the insert itself in a batch.) Version 4 indexes hide deadlines by
queue, so a queue's next hidden message to show is one index seek (`next_shown`).
Version 5 adds what a receive leaves on a message (see `Attributes.receipt`), its sent
time and meta, and the queue infos; messages stored before it read as never received,
sent at 0.0 ("unknown"), with empty meta. Its hide index also holds `receives` and
`expires`, so that `count_messages` counts a queue's hidden messages in that index alone.
Version 6 adds the subscriptions, keyed and so ordered by (account, queue, name).
"""

from __future__ import annotations

import sqlite3

from burrow.errors import BackendUnavailable

SCHEMA_VERSION = 6

_SCHEMA_V1 = """
CREATE TABLE accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE queues (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (account, name)
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    id TEXT NOT NULL,
    expires REAL NOT NULL,
    hidden_until REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE UNIQUE INDEX messages_by_id ON messages (queue, id);
-- The claim/pop/list scan: a queue in order, visibility and expiry read from the
-- index so hidden or expired rows ahead of the first match cost no table lookup.
CREATE INDEX messages_in_order ON messages (queue, seq, hidden_until, expires);
CREATE INDEX messages_by_expiry ON messages (expires) WHERE expires > 0;
"""

_SCHEMA_V2 = """
ALTER TABLE queues ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE queues SET
    messages = (SELECT count(*) FROM messages WHERE queue = queues.seq),
    bytes = (SELECT total(length(body)) FROM messages WHERE queue = queues.seq);
CREATE TRIGGER count_insert AFTER INSERT ON messages BEGIN
    UPDATE queues SET messages = messages + 1, bytes = bytes + length(NEW.body)
    WHERE seq = NEW.queue;
END;
CREATE TRIGGER count_delete AFTER DELETE ON messages BEGIN
    UPDATE queues SET messages = messages - 1, bytes = bytes - length(OLD.body)
    WHERE seq = OLD.queue;
END;
CREATE TRIGGER count_replace AFTER UPDATE OF body ON messages BEGIN
    UPDATE queues SET bytes = bytes - length(OLD.body) + length(NEW.body)
    WHERE seq = NEW.queue;
END;
"""

_SCHEMA_V3 = """
DROP TRIGGER count_insert;
DROP TRIGGER count_delete;
DROP TRIGGER count_replace;
"""

_SCHEMA_V4 = """
CREATE INDEX messages_by_hide ON messages (queue, hidden_until) WHERE hidden_until > 0;
"""

# Added columns with constant defaults: SQLite adds them without rewriting a row.
_SCHEMA_V5 = """
ALTER TABLE messages ADD COLUMN receives INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN receipt TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN sent REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN first_received REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN meta BLOB NOT NULL DEFAULT x'';
DROP INDEX messages_by_hide;
CREATE INDEX messages_by_hide ON messages (queue, hidden_until, receives, expires)
    WHERE hidden_until > 0;
CREATE TABLE queue_infos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    queue TEXT NOT NULL,
    info BLOB NOT NULL,
    UNIQUE (account, queue)
);
CREATE INDEX queue_infos_in_order ON queue_infos (account, seq);
"""

_SCHEMA_V6 = """
CREATE TABLE subscriptions (
    account TEXT NOT NULL,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    document BLOB NOT NULL,
    PRIMARY KEY (account, queue, name)
) WITHOUT ROWID;
"""

# The script taking version i to i + 1.
MIGRATIONS = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to `SCHEMA_VERSION` (`PRAGMA user_version` records it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise BackendUnavailable(
                f"sqlite: database schema version {version} is newer than this Burrow "
                f"understands ({SCHEMA_VERSION})"
            )
        for script in MIGRATIONS[version:]:
            for statement in split_statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def split_statements(script: str) -> list[str]:
    """Split a script into statements (trigger bodies hold `;` of their own)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    return statements
