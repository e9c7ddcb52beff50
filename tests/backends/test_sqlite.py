"""What only the SQLite backend promises: persistence, crash safety, group commit, purge."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

import burrow
from burrow.backends.sqlite import SQLiteBackend
from burrow.backends.sqlite_schema import MIGRATIONS, split_statements
from burrow.backends.sqlite_store import Outcome
from burrow.errors import BackendUnavailable, MessageNotFound, NoMatch, QuotaExceeded
from burrow.model import ALL_ITEMS, Attributes, Filters, Message, NewMessage, Quota
from tests.waiting import CLOCK_SLACK, LONG_POLL, eventually, within

A, Q = "acct", "queue"


def new(message_id: str, body: bytes = b"body", ttl: int = 600, hide: int = 0) -> NewMessage:
    return NewMessage(message_id, body, ttl, hide)


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only look at the file, beside the backend's own connections."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        yield conn


async def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "burrow.db"  # parents are created
    async with SQLiteBackend(str(path)) as backend:
        await backend.put_messages("b", "q", [new("x")])
        await backend.put_messages(
            "a", "q2", [new("c", ttl=100), new("h", b"\x00\xff", hide=50), new("f", ttl=0)]
        )
        await backend.put_messages("a", "q1", [new("z")])
        assert await backend.put_message("a", "q2", new("c", b"again", ttl=100)) is False
    assert path.exists()
    async with SQLiteBackend(str(path)) as backend:
        assert await backend.get_accounts(ALL_ITEMS) == ["b", "a"]
        assert await backend.get_queues("a", ALL_ITEMS) == ["q2", "q1"]
        c, h, f = await backend.get_messages("a", "q2", Filters(match_hidden=True))
        assert (c.id, c.body, h.id, h.body, f.id) == ("c", b"again", "h", b"\x00\xff", "f")
        assert 98 <= c.ttl <= 100 and c.hide == 0
        assert 48 <= h.hide <= 50 and 598 <= h.ttl <= 600
        assert f.ttl == 0
        assert ids(await backend.get_messages("a", "q2", ALL_ITEMS)) == ["c", "f"]
        # New messages still go after the old ones.
        await backend.put_message("a", "q2", new("d"))
        assert ids(await backend.get_messages("a", "q2", ALL_ITEMS)) == ["c", "f", "d"]


async def test_hide_deadlines_wake_waiters_after_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "burrow.db")
    started = time.time()
    async with SQLiteBackend(path) as backend:
        await backend.put_messages(A, Q, [new("m", hide=1)])
    async with SQLiteBackend(path) as backend:
        with backend.subscribe(A, Q) as subscription:
            # The re-armed timer wakes it, not the end of its wait.
            assert await within(subscription.wait(LONG_POLL), "the wake-up") is True
            woke = time.time()
        assert woke >= started + 1 - CLOCK_SLACK
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m"]


async def test_group_commit_takes_fewer_commits_than_writes(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        before = backend.stats.commits
        created = await asyncio.gather(
            *(backend.put_message(A, Q, new(f"m{i}")) for i in range(200))
        )
        commits = backend.stats.commits - before
        assert all(created)
        assert 1 <= commits <= 10
        assert len(await backend.get_messages(A, Q, ALL_ITEMS)) == 200


async def test_a_failing_operation_does_not_spoil_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"

    def half_done_then_broken(conn: sqlite3.Connection) -> Outcome[None]:
        conn.execute("INSERT INTO accounts (name) VALUES ('ghost')")
        raise sqlite3.OperationalError("disk on fire")

    async with SQLiteBackend(str(path)) as backend:
        await backend.put_messages(A, Q, [new("old")])
        before = backend.stats.commits
        # Calls started in the same turn of the event loop share one commit.
        results = await asyncio.gather(
            backend.put_message(A, Q, new("m1")),
            backend.delete_message(A, Q, "missing"),
            backend._write(half_done_then_broken),
            backend.update_messages(A, "nothing-here", Attributes(hide=5), ALL_ITEMS),
            backend.delete_message(A, Q, "old"),
            backend.put_message(A, Q, new("m2")),
            return_exceptions=True,
        )
        assert backend.stats.commits - before == 1
        assert results[0] is True and results[5] is True
        assert isinstance(results[1], MessageNotFound)
        assert isinstance(results[2], BackendUnavailable)
        assert isinstance(results[2].__cause__, sqlite3.OperationalError)
        assert isinstance(results[3], NoMatch)
        assert isinstance(results[4], Message) and results[4].id == "old"
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m1", "m2"]
    with raw(path) as conn:
        assert conn.execute("SELECT name FROM accounts").fetchall() == [(A,)]


async def test_puts_queued_together_are_one_insert_and_answer_as_each_alone(
    tmp_path: Path,
) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        inserts: list[str] = []
        backend._writer._conn.set_trace_callback(  # type: ignore[union-attr]
            lambda sql: inserts.append(sql) if sql.startswith("INSERT INTO messages") else None
        )
        results = await asyncio.gather(
            backend.put_message(A, Q, new("m1")),
            backend.put_message(A, Q, new("m2", hide=30)),
            backend.put_message(A, Q, new("m1", b"again")),  # the id of a PUT before it
            backend.put_messages(A, Q, [new("m3"), new("m4")]),
            backend.put_message(A, "other", new("o1")),
            backend.put_message(A, Q, new("m5")),
            *(backend.put_message(A, "many", new(f"n{i}")) for i in range(32)),
        )
        assert results[:6] == [True, True, False, [True, True], True, True]
        listed = await backend.get_messages(A, Q, Filters(match_hidden=True))
        assert [(m.id, m.body) for m in listed] == [
            ("m1", b"again"),
            ("m2", b"body"),
            ("m3", b"body"),
            ("m4", b"body"),
            ("m5", b"body"),
        ]
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m1", "m3", "m4", "m5"]
        assert ids(await backend.get_messages(A, "many", ALL_ITEMS)) == [f"n{i}" for i in range(32)]
        counts = await backend.count_messages(A, Q)
        assert (counts.visible, counts.delayed) == (4, 1)
        # Of many rows: the first four PUTs to Q in one (which then goes a row at a time, as
        # it gives m1 twice), and the 32 to "many" in one.
        assert len([sql for sql in inserts if "), (" in sql]) == 2


async def test_deletes_by_ids_queued_together_answer_as_each_alone(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        await backend.put_messages(A, Q, [new(name) for name in "abcdef"])
        await backend.put_messages(A, "other", [new("a")])
        await backend.update_messages(A, Q, Attributes(receipt="r1"), Filters(marker="c", limit=1))
        lookups: list[str] = []
        backend._writer._conn.set_trace_callback(  # type: ignore[union-attr]
            lambda sql: lookups.append(sql) if "json_each" in sql else None
        )
        results = await asyncio.gather(
            backend.delete_listed_messages(A, Q, [("a", None), ("b", None)]),
            backend.delete_listed_messages(A, Q, [("b", None), ("c", None), ("gone", None)]),
            backend.delete_listed_messages(A, Q, [("d", "not-its-receipt")]),
            backend.delete_listed_messages(A, Q, [("d", "r1"), ("e", None)]),
            backend.delete_listed_messages(A, "other", [("a", None)]),
        )
        assert [ids(deleted) for deleted in results] == [["a", "b"], ["c"], [], ["d", "e"], ["a"]]
        assert len(lookups) == 2  # Q's four deletes in one, and "other"'s
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["f"]
        assert (await backend.count_messages(A, Q)).visible == 1
        assert await backend.get_queues(A, ALL_ITEMS) == [Q]  # "other" went with its last


async def test_claims_and_pops_queued_together_take_the_messages_in_turn(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        await backend.put_messages(A, Q, [new(name) for name in "abcdefg"])
        lookups: list[str] = []
        backend._writer._conn.set_trace_callback(  # type: ignore[union-attr]
            lambda sql: lookups.append(sql) if "INDEXED BY messages_in_order" in sql else None
        )
        hide = Attributes(hide=60)
        claimed = await asyncio.gather(
            backend.update_messages(A, Q, hide, Filters(limit=2)),
            backend.update_messages(A, Q, hide, Filters(limit=1)),
            backend.update_messages(A, Q, hide, Filters(limit=2)),
            backend.update_messages(A, Q, Attributes(hide=30), Filters(limit=1)),
        )
        assert [ids(messages) for messages in claimed] == [["a", "b"], ["c"], ["d", "e"], ["f"]]
        assert all(m.hide == 60 for m in claimed[0] + claimed[1] + claimed[2])
        assert len(lookups) == 2  # the three alike in one; the other alone
        counts = await backend.count_messages(A, Q)
        assert (counts.visible, counts.in_flight + counts.delayed) == (1, 6)

        # Fewer left than the claims ask for: each gets what it would have alone.
        last = await asyncio.gather(
            backend.update_messages(A, Q, hide, Filters(limit=5)),
            backend.update_messages(A, Q, hide, Filters(limit=5)),
            return_exceptions=True,
        )
        assert ids(last[0]) == ["g"] and isinstance(last[1], NoMatch)  # type: ignore[arg-type]

        # Pops the same way.
        await backend.put_messages(A, Q, [new(name) for name in "hijk"])
        lookups.clear()
        popped = await asyncio.gather(
            backend.delete_messages(A, Q, Filters(limit=1)),
            backend.delete_messages(A, Q, Filters(limit=2)),
            backend.delete_messages(A, Q, Filters(limit=2)),
        )
        assert [ids(messages) for messages in popped] == [["h"], ["i", "j"], ["k"]]
        assert len(lookups) == 1
        assert (await backend.count_messages(A, Q)).visible == 0


async def test_puts_queued_together_keep_the_quota_as_each_alone(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        await backend.put_messages(A, Q, [new("m0")])
        three = Quota(max_queue_messages=3)
        results = await asyncio.gather(
            *(backend.put_message(A, Q, new(f"m{i}"), three) for i in range(1, 5)),
            return_exceptions=True,
        )
        assert results[:2] == [True, True]
        assert all(isinstance(result, QuotaExceeded) for result in results[2:])
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m0", "m1", "m2"]

        # A replacement can shrink what the account holds: each PUT's counts are its own.
        bytes_100 = Quota(max_account_bytes=100)
        too_big, replaced = await asyncio.gather(
            backend.put_message(A, Q, new("m1", b"x" * 200), bytes_100),
            backend.put_message(A, Q, new("m1", b"small"), bytes_100),
            return_exceptions=True,
        )
        assert isinstance(too_big, QuotaExceeded) and replaced is False
        (m1,) = await backend.get_messages(A, Q, Filters(marker="m0", limit=1))
        assert m1.body == b"small"


async def test_purge_removes_expired_rows_and_empty_queues(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    backend = SQLiteBackend(str(path), purge_interval=0.05, purge_chunk=10)
    async with backend:
        await backend.put_messages(A, Q, [new(f"s{i}", ttl=1) for i in range(25)] + [new("keep")])
        await backend.put_messages(A, "short-lived", [new("m", ttl=1)])
        await backend.put_messages("gone", Q, [new("m", ttl=1, hide=30)])

        async def purged() -> bool:
            return backend.stats.purged >= 27

        await eventually(purged, "the purge of 27 expired messages")
        assert backend.stats.purged == 27
        with raw(path) as conn:
            assert conn.execute("SELECT id FROM messages").fetchall() == [("keep",)]
            assert conn.execute("SELECT account, name FROM queues").fetchall() == [(A, Q)]
            assert conn.execute("SELECT name FROM accounts").fetchall() == [(A,)]
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["keep"]


async def test_closed_backend_refuses_calls(tmp_path: Path) -> None:
    backend = SQLiteBackend(str(tmp_path / "burrow.db"))
    with pytest.raises(BackendUnavailable):
        await backend.get_accounts(ALL_ITEMS)  # not open yet
    async with backend:
        await backend.put_message(A, Q, new("m"))
    await backend.close()
    with pytest.raises(BackendUnavailable):
        await backend.put_message(A, Q, new("m"))
    with pytest.raises(BackendUnavailable):
        await backend.get_message(A, Q, "m")
    with pytest.raises(BackendUnavailable):
        await backend.open()


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_close_checkpoints_the_log(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    async with SQLiteBackend(str(path)) as backend:
        await backend.put_messages(A, Q, [new(f"m{i}", b"x" * 1000) for i in range(100)])
        assert wal_size(path) > 0
    assert wal_size(path) == 0


async def test_unusable_files_raise_backend_unavailable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    for path in (not_a_dir / "burrow.db", garbage):
        backend = SQLiteBackend(str(path))
        with pytest.raises(BackendUnavailable):
            await backend.open()
        await backend.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    async with SQLiteBackend(str(path)):
        pass
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
    backend = SQLiteBackend(str(path))
    with pytest.raises(BackendUnavailable, match="newer"):
        await backend.open()
    await backend.close()


async def test_a_version_1_database_gets_its_quota_counters(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    with closing(sqlite3.connect(path)) as conn:
        for statement in split_statements(MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("INSERT INTO accounts (name) VALUES ('acct')")
        conn.execute("INSERT INTO queues (account, name) VALUES ('acct', 'queue')")
        conn.executemany(
            "INSERT INTO messages (queue, id, expires, hidden_until, body) VALUES (1, ?, 0, 0, ?)",
            [("m1", b"12345"), ("m2", b"123")],
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    async with SQLiteBackend(str(path)) as backend:
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m1", "m2"]
        with pytest.raises(QuotaExceeded, match="max_account_bytes"):
            await backend.put_message(A, Q, new("m3", b"123"), Quota(max_account_bytes=10))
        with pytest.raises(QuotaExceeded, match="max_queue_messages"):
            await backend.put_message(A, Q, new("m3"), Quota(max_queue_messages=2))
        await backend.put_message(A, Q, new("m3", b"12"), Quota(3, 1, 10))
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("SELECT messages, bytes FROM queues").fetchall() == [(3, 10)]


async def test_quota_counters_follow_every_kind_of_write(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    backend = SQLiteBackend(str(path), purge_interval=3600)  # purged by hand below
    async with backend:
        fresh = [
            new("a", b"12345"),
            new("b", b"1", ttl=1),
            new("c", b"123"),
            new("d", b"12", ttl=1),
        ]
        await backend.put_messages(A, Q, fresh)
        assert await backend.put_message(A, Q, new("a", b"1234567")) is False  # live: replaced
        await backend.update_messages(A, Q, Attributes(hide=30), Filters(limit=1))
        await backend.delete_message(A, Q, "c")
        await backend.put_messages(A, "other", [new("x", b"12"), new("y", b"12")])
        await backend.delete_messages(A, "other", Filters(limit=1))
        await asyncio.sleep(1.05)  # b and d expire
        assert await backend.put_message(A, Q, new("b", b"1234")) is True  # expired: new again
        assert await backend._write(backend._purge_chunk_op) == 1  # d
    with raw(path) as conn:
        counters = conn.execute("SELECT name, messages, bytes FROM queues ORDER BY name")
        recount = conn.execute(
            "SELECT q.name, count(m.seq), total(length(m.body)) FROM queues AS q"
            " JOIN messages AS m ON m.queue = q.seq GROUP BY q.seq ORDER BY q.name"
        )
        assert counters.fetchall() == recount.fetchall() == [("other", 1, 2), (Q, 2, 11)]


# Durability: acknowledged writes survive kill -9 -----------------------------------------

PRODUCER = """
import asyncio, sys
from burrow.backends.sqlite import SQLiteBackend
from burrow.model import NewMessage

async def main(path):
    async with SQLiteBackend(path) as backend:
        async def produce(worker):
            for i in range(100_000):
                message_id = f"{worker}-{i}"
                await backend.put_message("a", "q", NewMessage(message_id, b"x", 0, 0))
                sys.stdout.write(message_id + "\\n")
                sys.stdout.flush()
        await asyncio.gather(*(produce(worker) for worker in range(8)))

asyncio.run(main(sys.argv[1]))
"""


def run_until_killed(script: str, path: Path, acknowledged_at_least: int) -> list[str]:
    """Run `script` on the database in a child, SIGKILL it once it has printed enough lines
    (one per acknowledged write); the lines it printed whole."""
    env = dict(os.environ)
    src = str(Path(burrow.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    watchdog = threading.Timer(60, child.kill)  # never hang the suite
    watchdog.start()
    try:
        acknowledged: list[str] = []
        while len(acknowledged) < acknowledged_at_least:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged.append(line.decode())
        child.send_signal(signal.SIGKILL)
        child.wait()
        acknowledged.extend(child.stdout.read().decode().splitlines(keepends=True))
    finally:
        watchdog.cancel()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # A line cut short by the kill was never fully printed: not an acknowledgement.
    return [line[:-1] for line in acknowledged if line.endswith("\n")]


async def test_acknowledged_puts_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "burrow.db"
    acknowledged = await asyncio.to_thread(run_until_killed, PRODUCER, path, 500)
    assert len(acknowledged) >= 500
    with raw(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with SQLiteBackend(str(path)) as backend:
        stored = set(ids(await backend.get_messages("a", "q", ALL_ITEMS)))
    assert set(acknowledged) <= stored


async def test_a_failed_fsync_fails_its_writes_and_refuses_later_ones(tmp_path: Path) -> None:
    async with SQLiteBackend(str(tmp_path / "burrow.db")) as backend:
        await backend.put_message(A, Q, new("synced"))
        # Inject the failure: the log can no longer be synced (the path is gone).
        assert backend._writer is not None
        backend._writer._wal_fd = None
        backend._writer._wal_path = str(tmp_path / "no-such-dir" / "burrow.db-wal")
        with pytest.raises(BackendUnavailable):
            await backend.put_message(A, Q, new("not synced"))
        with pytest.raises(BackendUnavailable):
            await backend.delete_message(A, Q, "synced")
        assert ids(await backend.get_messages(A, Q, ALL_ITEMS))[0] == "synced"
