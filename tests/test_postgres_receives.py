"""The PostgreSQL backend's receives, receipts and queue info, beyond the contract suite:
schema 3 over a database that schema 2 made, durability across kill -9 of PostgreSQL,
wake-ups on other servers when a receive's hide lapses, compare-and-set under
concurrent writers on two servers.

The backends run in-process (receipts are not part of the v1.0 API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from burrow.backends.base import Subscription
from burrow.backends.postgres import PostgresBackend
from burrow.backends.postgres_schema import SCHEMA_VERSION, migrate
from burrow.errors import MessageNotFound, NoMatch
from burrow.model import Attributes, Filters, Message, NewMessage
from tests.backends.test_contract import by_state
from tests.engines.postgres import PostgresCluster
from tests.waiting import CLOCK_SLACK, LONG_POLL, within

A, Q = "acct", "q"


def receive(hide: int, receipt: str) -> Attributes:
    return Attributes(hide=hide, receipt=receipt)


def new(message_id: str) -> NewMessage:
    return NewMessage(message_id, message_id.encode(), 600, 0)


@pytest.fixture
def empty_database(postgres_server: PostgresCluster) -> Iterator[str]:
    """A database with no schema yet."""
    postgres_server.execute("CREATE DATABASE receives_fresh")
    yield postgres_server.url("receives_fresh")
    postgres_server.execute("DROP DATABASE receives_fresh WITH (FORCE)")


@pytest.fixture
async def connection(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_database)
    yield conn
    await conn.close()


# Two messages as schema 2 stored them: one visible, one hidden by a claim (v1.0 claims
# count no receive, so the hidden one reads as delayed).
_SCHEMA_2_ROWS = """
INSERT INTO burrow.accounts (name) VALUES ('acct');
INSERT INTO burrow.queues (account, name) VALUES ('acct', 'q');
INSERT INTO burrow.messages (queue, id, body, expires, hidden_until)
SELECT seq, 'visible', 'body 1'::bytea, NULL, NULL FROM burrow.queues
UNION ALL
SELECT seq, 'claimed', 'body 2'::bytea, now() + interval '600 s', now() + interval '60 s'
FROM burrow.queues;
"""


async def test_schema_3_takes_over_the_messages_of_schema_2(
    empty_database: str, connection: asyncpg.Connection
) -> None:
    await migrate(connection, 2)
    await connection.execute(_SCHEMA_2_ROWS)
    async with PostgresBackend(empty_database, purge_interval=3600) as backend:
        old = await backend.get_message(A, Q, "visible")
        assert (old.body, old.ttl, old.hide, old.meta) == (b"body 1", 0, 0, b"")
        assert (old.receives, old.receipt, old.sent, old.first_received) == (0, "", 0.0, 0.0)
        assert by_state(await backend.count_messages(A, Q)) == (1, 0, 1)
        (received,) = await backend.update_messages(A, Q, receive(30, "r"), Filters(limit=1))
        assert (received.id, received.receives, received.receipt) == ("visible", 1, "r")
        before = time.time()
        await backend.put_message(A, Q, NewMessage("claimed", b"new", 600, 0, b"meta"))
        replaced = await backend.get_message(A, Q, "claimed")
        assert before - CLOCK_SLACK <= replaced.sent <= time.time() + CLOCK_SLACK
        assert (replaced.body, replaced.meta) == (b"new", b"meta")
        assert await backend.set_queue_info(A, Q, b"info", expected=None)
        await backend.delete_message(A, Q, "visible", receipt="r")
    versions = await connection.fetch("SELECT version FROM burrow.schema_version ORDER BY 1")
    assert [row[0] for row in versions] == list(range(1, SCHEMA_VERSION + 1))


async def test_receives_deletes_by_receipt_and_infos_survive_kill_9_of_postgres(
    postgres_cluster: PostgresCluster,
) -> None:
    postgres_cluster.execute("CREATE DATABASE burrow")
    url = postgres_cluster.url("burrow")
    async with PostgresBackend(url, purge_interval=3600) as backend:
        await backend.put_messages(A, Q, [new(f"m{i:02}") for i in range(20)])
        taken = await backend.update_messages(A, Q, receive(600, "r1"), Filters(limit=5))
        for message in taken[:2]:
            await backend.delete_message(A, Q, message.id, receipt="r1")
        await backend.set_queue_info(A, Q, b"first", expected=None)
        await backend.set_queue_info(A, Q, b"second", expected=b"first")
        await backend.set_queue_info(A, "gone", b"info", expected=None)
        await backend.delete_queue_info(A, "gone")
        # At once, before anything else could flush: only what commits flushed survives.
        postgres_cluster.kill()
    postgres_cluster.start()
    async with PostgresBackend(url, purge_interval=3600) as backend:
        assert by_state(await backend.count_messages(A, Q)) == (15, 3, 0)
        for message in taken[:2]:
            with pytest.raises(MessageNotFound):
                await backend.get_message(A, Q, message.id)
        for message in taken[2:]:
            stored = await backend.get_message(A, Q, message.id)
            assert (stored.receives, stored.receipt) == (1, "r1")
        assert await backend.get_queue_info(A, Q) == b"second"
        assert await backend.list_queue_infos(A, Filters()) == [Q]


async def receive_when_shown(
    backend: PostgresBackend, subscription: Subscription, receipt: str
) -> Message:
    """Receive one message, waiting on `subscription` while there is none."""
    while True:
        try:
            (message,) = await backend.update_messages(A, Q, receive(60, receipt), Filters(limit=1))
            return message
        except NoMatch:
            assert await subscription.wait(LONG_POLL), "the backend closed"


async def test_a_receive_wakes_waiters_on_another_server_when_its_hide_lapses(
    postgres_backend_url: str,
) -> None:
    async with (
        PostgresBackend(postgres_backend_url) as one,
        PostgresBackend(postgres_backend_url) as two,
    ):
        await one.put_message(A, Q, new("m"))
        with two.subscribe(A, Q) as subscription:
            # A look while nothing is hidden: the hide deadline can come only from the
            # receive's notification.
            assert [m.id for m in await two.get_messages(A, Q, Filters())] == ["m"]
            (first,) = await one.update_messages(A, Q, receive(1, "r1"), Filters(limit=1))
            received = time.time()
            again = await within(
                receive_when_shown(two, subscription, "r2"), "a receive once the hide lapsed"
            )
    assert time.time() >= received + 1 - CLOCK_SLACK, "received again before the hide lapsed"
    assert (again.receives, again.receipt) == (2, "r2")
    assert again.first_received == pytest.approx(first.first_received, abs=0.01)


async def test_concurrent_compare_and_set_on_two_servers_loses_no_change(
    postgres_backend_url: str,
) -> None:
    async with (
        PostgresBackend(postgres_backend_url) as one,
        PostgresBackend(postgres_backend_url) as two,
    ):
        await one.set_queue_info(A, Q, b"0", expected=None)

        async def increment(backend: PostgresBackend) -> None:
            while True:
                seen = await backend.get_queue_info(A, Q)
                assert seen is not None
                if await backend.set_queue_info(A, Q, b"%d" % (int(seen) + 1), seen):
                    return

        await asyncio.gather(*(increment(backend) for backend in [one, two] * 10))
        assert await two.get_queue_info(A, Q) == b"20"


async def test_resetting_lapsed_hides_wakes_the_queues_waiters_on_every_server(
    postgres_backend_url: str,
) -> None:
    # The purge task's reset locks the rows it changes, and a claim running meanwhile
    # skips them: the queue's waiters must look again once it is done.
    async with (
        PostgresBackend(postgres_backend_url, purge_interval=3600) as one,
        PostgresBackend(postgres_backend_url, purge_interval=3600) as two,
    ):
        await one.put_message(A, Q, NewMessage("m", b"m", 600, 60))
        with one.subscribe(A, Q) as here, two.subscribe(A, Q) as there:
            # Known to both as hidden for a minute; then lapsed behind their backs.
            with pytest.raises(NoMatch):
                await two.update_messages(A, Q, receive(60, "r"), Filters(limit=1))
            conn = await asyncpg.connect(postgres_backend_url)
            try:
                await conn.execute("UPDATE burrow.messages SET hidden_until = now()")
            finally:
                await conn.close()
            assert await here.wait(0) and await there.wait(0)  # (clear the put's wake-up)
            await one.purge_expired()
            await within(here.wait(LONG_POLL), "the wake-up on the purging server")
            await within(there.wait(LONG_POLL), "the wake-up on the other server")
        (message,) = await two.update_messages(A, Q, receive(60, "r"), Filters(limit=1))
    assert message.id == "m"
