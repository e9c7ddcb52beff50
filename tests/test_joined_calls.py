"""PUTs, and deletes by id, to one queue that wait at the same time go to PostgreSQL as
one statement and to Redis as one script (`joined_calls`); each caller gets the answer
it would have got alone, in the order the calls came.

The backends run in-process on the test suite's throwaway engines; what the engine ran
is read from the engine itself: write transactions begun (PostgreSQL's transaction id
counter) or scripts run (Redis's command statistics).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from burrow.backends.base import Backend
from burrow.backends.postgres import PostgresBackend
from burrow.backends.redis import RedisBackend
from burrow.errors import MessageNotFound, NoMatch
from burrow.model import ALL_ITEMS, Attributes, Filters, Message, NewMessage
from tests.engines.redis import Deployment

A, Q = "acct", "q"


@dataclass
class Engine:
    backend: Callable[[], Backend]
    writes: Callable[[], Awaitable[int]]  # a count the engine keeps of what it wrote


@pytest.fixture(params=["postgres", "redis"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_backend_url")

        async def transactions() -> int:
            conn = await asyncpg.connect(url)
            try:
                next_id: int = await conn.fetchval(
                    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
                )
            finally:
                await conn.close()
            return next_id

        return Engine(lambda: PostgresBackend(url, purge_interval=3600), transactions)
    url = request.getfixturevalue("redis_backend_url")
    redis: Deployment = request.getfixturevalue("redis_standalone")

    async def scripts() -> int:
        stats = redis.servers[0].info("commandstats").get("cmdstat_evalsha", {})
        assert isinstance(stats, dict)
        return int(stats.get("calls", 0))

    return Engine(lambda: RedisBackend(url, sweep_interval=3600), scripts)


async def test_puts_waiting_together_are_one_write_and_answer_as_each_alone(
    engine: Engine,
) -> None:
    ids = [f"m{n:02}" for n in range(20)]
    async with engine.backend() as backend:
        before = await engine.writes()
        # Into a queue that does not exist yet; the last PUT names an id again.
        answers = await asyncio.gather(
            *(backend.put_messages(A, Q, [NewMessage(i, i.encode(), 60, 0)]) for i in ids),
            backend.put_messages(A, Q, [NewMessage("m03", b"again", 60, 0)]),
        )
        writes = await engine.writes() - before
        stored = await backend.get_messages(A, Q, ALL_ITEMS)
    assert answers == [[True]] * 20 + [[False]]
    assert [(m.id, m.body) for m in stored] == [
        (i, b"again" if i == "m03" else i.encode()) for i in ids
    ]  # in the order the PUTs came, the repeat after the first
    # The first PUT at once, the other 19 together while it ran, then the repeat, and what
    # a new account and queue take once. One
    # PUT at a time took 28 transactions on PostgreSQL and 118 scripts on Redis (where
    # each writer into the new account then indexed it).
    assert writes < 10, writes


async def test_deletes_waiting_together_answer_as_each_alone(engine: Engine) -> None:
    ids = [f"m{n:02}" for n in range(10)]
    async with engine.backend() as backend:
        await backend.put_messages(A, Q, [NewMessage(i, b"x", 60, 0) for i in ids])
        await backend.update_messages(
            A, Q, Attributes(hide=60, receipt="its-receipt"), Filters(limit=1)
        )
        deletes: list[Awaitable[Message | list[Message]]] = [
            *(backend.delete_message(A, Q, i) for i in ids[1:6]),
            backend.delete_message(A, Q, ids[0], receipt="not-its-receipt"),
            backend.delete_message(A, Q, ids[1]),  # again: gone by then
            backend.delete_listed_messages(A, Q, [(i, None) for i in ids[6:]]),
            backend.delete_message(A, Q, ids[0], receipt="its-receipt"),
        ]
        answers = await asyncio.gather(*deletes, return_exceptions=True)
        with pytest.raises(NoMatch):  # the last delete emptied the queue
            await backend.get_queues(A, ALL_ITEMS)

    def deleted(answer: Message | list[Message] | BaseException) -> list[str]:
        assert not isinstance(answer, BaseException), answer
        return [m.id for m in answer] if isinstance(answer, list) else [answer.id]

    assert [deleted(answer) for answer in answers[:5]] == [[i] for i in ids[1:6]]
    assert isinstance(answers[5], MessageNotFound)
    assert isinstance(answers[6], MessageNotFound)
    assert deleted(answers[7]) == ids[6:]
    assert deleted(answers[8]) == [ids[0]]


async def test_a_put_given_up_while_waiting_is_not_written(engine: Engine) -> None:
    async with engine.backend() as backend:
        kept = asyncio.create_task(backend.put_messages(A, Q, [NewMessage("kept", b"x", 60, 0)]))
        dropped = asyncio.create_task(
            backend.put_messages(A, Q, [NewMessage("dropped", b"x", 60, 0)])
        )
        await asyncio.sleep(0)  # both wait in the queue's lane
        dropped.cancel()
        assert await kept == [True]
        with pytest.raises(asyncio.CancelledError):
            await dropped
        assert [m.id for m in await backend.get_messages(A, Q, ALL_ITEMS)] == ["kept"]


async def test_claims_and_pops_waiting_together_take_the_messages_in_turn(
    engine: Engine,
) -> None:
    ids = [f"m{n:02}" for n in range(10)]
    claim = Attributes(hide=60)
    async with engine.backend() as backend:
        await backend.put_messages(A, Q, [NewMessage(i, b"x", 60, 0) for i in ids])
        await backend.put_messages(A, "p", [NewMessage(i, b"x", 60, 0) for i in ids[:5]])
        await asyncio.sleep(0.2)  # (the PUTs' wake-up notices go out)
        before = await engine.writes()
        claims = await asyncio.gather(
            *(backend.update_messages(A, Q, claim, Filters(limit=n)) for n in (3, 3, 3, 5, 2)),
            return_exceptions=True,
        )
        writes = await engine.writes() - before
        pops = await asyncio.gather(
            *(backend.delete_messages(A, "p", Filters(limit=2)) for _ in range(4)),
            return_exceptions=True,
        )
        assert await backend.get_queues(A, ALL_ITEMS) == [Q]  # the pops emptied "p"

    def taken(answer: list[Message] | BaseException) -> list[str]:
        assert not isinstance(answer, BaseException), answer
        return [m.id for m in answer]

    assert [taken(answer) for answer in claims[:4]] == [ids[:3], ids[3:6], ids[6:9], ids[9:]]
    assert isinstance(claims[4], NoMatch)  # nothing left for it: it looked alone
    assert [taken(answer) for answer in pops[:3]] == [ids[:2], ids[2:4], ids[4:5]]
    assert isinstance(pops[3], NoMatch)
    # The first claim at once, the next three together while it ran, then the last one
    # alone (and on PostgreSQL a wake-up notice after each claim that took some). Each
    # claim alone took 6 scripts on Redis.
    assert writes <= 4, writes


async def test_updates_that_leave_messages_visible_each_find_the_first_ones(
    redis_backend_url: str,
) -> None:
    """On Redis, where scripts run one at a time. (On PostgreSQL concurrent updates skip
    the rows the others hold locked, joined or not.)"""
    ids = [f"m{n:02}" for n in range(6)]
    async with RedisBackend(redis_backend_url, sweep_interval=3600) as backend:
        await backend.put_messages(A, Q, [NewMessage(i, b"x", 60, 0) for i in ids])
        # A new ttl, or hide 0, leaves them visible: alone, each finds the same first two.
        updates = await asyncio.gather(
            *(
                backend.update_messages(A, Q, attributes, Filters(limit=2))
                for attributes in (Attributes(ttl=120), Attributes(ttl=120), Attributes(hide=0))
                for _ in range(2)
            )
        )
    assert [[m.id for m in update] for update in updates] == [ids[:2]] * 6
