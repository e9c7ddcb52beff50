"""What SQLite promises of receives, counts and queue info (schema 5) beyond the contract:
a database of schema 4 is migrated, acknowledged receives, conditional deletes and info
writes survive kill -9 as puts do, and counts read indexes rather than a queue's rows."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from burrow.backends import sqlite_queues, sqlite_schema
from burrow.backends.sqlite import SQLiteBackend
from burrow.errors import MessageNotFound
from burrow.model import ALL_ITEMS, Attributes, Filters, NewMessage
from tests.backends.test_contract import by_state
from tests.backends.test_sqlite import A, Q, ids, new, raw, run_until_killed
from tests.waiting import CLOCK_SLACK

# Made by the backend of schema 4 (commit 910a943): in queue "acct"/"queue", "visible"
# (no ttl), "claimed" (no ttl, then hidden for a century by a claim) and "delayed" (ttl
# and hide of a century, body 00 ff); in "acct"/"other", "x" (body "12").
SCHEMA_4_DATABASE = Path(__file__).parent / "fixtures" / "sqlite_schema_4.db"


def receive(hide: int, receipt: str) -> Attributes:
    return Attributes(hide=hide, receipt=receipt)


@pytest.fixture
def schema_4_copy(tmp_path: Path) -> Path:
    path = tmp_path / "burrow.db"
    shutil.copyfile(SCHEMA_4_DATABASE, path)
    os.chmod(path, 0o600)
    return path


async def test_a_version_4_database_is_migrated(schema_4_copy: Path) -> None:
    async with SQLiteBackend(str(schema_4_copy)) as backend:
        everything = await backend.get_messages(A, Q, Filters(match_hidden=True))
        assert ids(everything) == ["visible", "claimed", "delayed"]
        assert everything[2].body == b"\x00\xff" and everything[2].hide > 0
        # Stored before receives were counted: none, sent at an unknown time, no meta.
        for message in everything:
            fields = (message.receives, message.receipt, message.first_received)
            assert fields == (0, "", 0.0) and (message.sent, message.meta) == (0.0, b"")
        assert by_state(await backend.count_messages(A, Q)) == (1, 0, 2)
        (received,) = await backend.update_messages(A, Q, receive(60, "r"), ALL_ITEMS)
        assert (received.id, received.receives, received.receipt) == ("visible", 1, "r")
        assert by_state(await backend.count_messages(A, Q)) == (0, 1, 2)
        with pytest.raises(MessageNotFound):
            await backend.delete_message(A, Q, "visible", receipt="stale")
        await backend.delete_message(A, Q, "visible", receipt="r")
        before = time.time()
        await backend.put_message(A, "other", NewMessage("y", b"1", 0, 0, b"meta"))
        added = await backend.get_message(A, "other", "y")
        assert added.sent >= before and added.meta == b"meta"
        assert await backend.set_queue_info(A, "other", b"info", expected=None) is True
        assert await backend.list_queue_infos(A, ALL_ITEMS) == ["other"]
    with raw(schema_4_copy) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_schema.SCHEMA_VERSION,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        counters = conn.execute("SELECT name, messages, bytes FROM queues ORDER BY seq")
        assert counters.fetchall() == [(Q, 2, 8), ("other", 2, 3)]


async def test_counts_leave_out_expired_rows_not_purged_yet(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db"), purge_interval=3600) as backend:
        # Of each kind, one that lives on and one that expires: visible, delayed, received.
        kinds = [new("v"), new("v-gone", ttl=1), new("d", hide=60), new("d-gone", ttl=1, hide=60)]
        await backend.put_messages(A, Q, [*kinds, new("r"), new("r-gone", ttl=1)])
        await backend.update_messages(A, Q, receive(60, "x"), Filters(limit=2, marker="d-gone"))
        assert by_state(await backend.count_messages(A, Q)) == (2, 2, 2)
        await asyncio.sleep(1 + CLOCK_SLACK)  # the ttl=1 messages expire, none is purged
        assert by_state(await backend.count_messages(A, Q)) == (1, 1, 1)
    assert backend.stats.purged == 0


async def test_counts_read_indexes_not_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    async with SQLiteBackend(str(path)) as backend:
        await backend.put_message(A, Q, new("m"))
    with raw(path) as conn:
        params = {"key": 1, "now": time.time()}
        plans = [
            " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql in (sqlite_queues._EXPIRED_IN_QUEUE, sqlite_queues._HIDDEN_IN_QUEUE)
        ]
    assert plans == [
        "SEARCH messages USING INDEX messages_by_expiry (expires>? AND expires<?)",
        "SEARCH messages USING COVERING INDEX messages_by_hide (queue=? AND hidden_until>?)",
    ]


async def test_receives_and_meta_survive_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "burrow.db")
    async with SQLiteBackend(path) as backend:
        before = time.time()
        await backend.put_message(A, Q, NewMessage("m", b"b", 0, 0, b"\x00meta"))
        after = time.time()
        (received,) = await backend.update_messages(A, Q, receive(600, "r1"), ALL_ITEMS)
    async with SQLiteBackend(path) as backend:
        stored = await backend.get_message(A, Q, "m")
    assert (stored.receives, stored.receipt, stored.meta) == (1, "r1", b"\x00meta")
    assert stored.first_received == received.first_received
    assert before <= stored.sent <= after  # the very clock reading, not whole seconds


# Durability: what a receiver and an info writer had acknowledged survives kill -9 ---------

RECEIVER = """
import asyncio, sys
from burrow.backends.sqlite import SQLiteBackend
from burrow.model import Attributes, Filters, NewMessage

def acknowledged(line):
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

async def main(path):
    async with SQLiteBackend(path) as backend:
        messages = [NewMessage(f"m{i:05}", b"x", 0, 0) for i in range(20_000)]
        await backend.put_messages("a", "q", messages)

        async def receive(worker):
            for i in range(20_000):
                receipt = f"r{worker}-{i}"
                (message,) = await backend.update_messages(
                    "a", "q", Attributes(hide=3600, receipt=receipt), Filters(limit=1)
                )
                acknowledged(f"received {message.id} {receipt}")
                if i % 2:
                    await backend.delete_message("a", "q", message.id, receipt=receipt)
                    acknowledged(f"deleted {message.id} {receipt}")

        async def describe():
            for i in range(100_000):
                await backend.set_queue_info("a", f"q{i}", b"info", None)
                acknowledged(f"info q{i} -")

        await asyncio.gather(*(receive(worker) for worker in range(4)), describe())

asyncio.run(main(sys.argv[1]))
"""


async def test_acknowledged_receives_deletes_and_infos_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    lines = await asyncio.to_thread(run_until_killed, RECEIVER, path, 600)
    acknowledged: dict[str, dict[str, str]] = {"received": {}, "deleted": {}, "info": {}}
    for line in lines:
        what, name, receipt = line.split()
        acknowledged[what][name] = receipt
    assert all(len(names) >= 50 for names in acknowledged.values()), lines[-5:]
    with raw(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with SQLiteBackend(str(path)) as backend:
        for message_id, receipt in acknowledged["received"].items():
            if message_id in acknowledged["deleted"]:
                with pytest.raises(MessageNotFound):
                    await backend.get_message("a", "q", message_id)
                continue
            try:
                stored = await backend.get_message("a", "q", message_id)
            except MessageNotFound:
                continue  # its delete was under way: done, not yet acknowledged
            assert (stored.receives, stored.receipt) == (1, receipt)
            assert stored.hide > 3000
        for queue in acknowledged["info"]:
            assert await backend.get_queue_info("a", queue) == b"info"


def test_the_schema_4_database_is_the_one_described() -> None:
    """The fixture as the tests above take it: made by schema 4, never migrated."""
    with closing(
        sqlite3.connect(f"file:{SCHEMA_4_DATABASE}?mode=ro&immutable=1", uri=True)
    ) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)
        rows = conn.execute("SELECT id, body FROM messages ORDER BY seq").fetchall()
    assert rows == [
        ("visible", b"body 1"),
        ("claimed", b"body 2"),
        ("delayed", b"\x00\xff"),
        ("x", b"12"),
    ]
