"""What only the PostgreSQL backend promises: many servers on one database, crash safety.

The tests drive real `burrow serve` processes with `--backend postgresql://…`
(the purge test uses the backend in-process); the destructive ones get a
PostgreSQL server of their own to kill -9 and restart.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from burrow.backends.postgres import PostgresBackend
from burrow.backends.postgres_schema import SCHEMA_VERSION
from burrow.model import ALL_ITEMS, NewMessage
from tests.conftest import ServerFactory
from tests.engines.postgres import PostgresCluster, run_sync
from tests.servers import BurrowServer
from tests.waiting import (
    CLOCK_SLACK,
    LONG_POLL,
    PATIENCE,
    in_background,
    result_within,
    wait_until,
)

A = "acct"
TRANSIENT = (httpx.TransportError,)
PROGRESS = 20.0  # seconds for the writers to get their next puts through, or listeners back


def healthy(server: BurrowServer) -> bool:
    """The server reaches PostgreSQL and its listening connection is up."""
    try:
        response = httpx.get(f"{server.url}/health", timeout=2)
    except TRANSIENT:
        return False
    return response.status_code == 200 and response.json() == {"status": "ok"}


def put_batch(server: BurrowServer, queue: str, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        batch = [{"id": i, "body": i} for i in ids[start : start + 500]]
        assert httpx.put(f"{server.url}/v1.0/{A}/{queue}", json=batch).status_code == 201


def stored_ids(server: BurrowServer, queue: str) -> list[str]:
    """Every message id in the queue, hidden ones included, in order."""
    found: list[str] = []
    params: dict[str, str | int] = {"limit": 1000, "match_hidden": "true", "detail": "id"}
    for _ in range(1000):
        response = httpx.get(f"{server.url}/v1.0/{A}/{queue}", params=params, timeout=10)
        if response.status_code == 404:
            return found
        page: list[str] = response.json()
        found += page
        params["marker"] = page[-1]
    raise AssertionError("listing did not end")


def long_poll_is_woken(waiter: BurrowServer, writer: BurrowServer, queue: str) -> None:
    """A PUT on `writer` answers a long poll waiting on `waiter`."""
    params: dict[str, str | int] = {"wait": LONG_POLL, "detail": "id"}
    poll = in_background(
        lambda: httpx.get(
            f"{waiter.url}/v1.0/{A}/{queue}", params=params, timeout=LONG_POLL + PATIENCE
        )
    )
    # Let the poll reach its wait; if it has not yet, it finds the message: right either way.
    time.sleep(0.3)
    assert not poll.done(), "the poll did not wait: the message was there before"
    assert httpx.put(f"{writer.url}/v1.0/{A}/{queue}/m", content=b"x").status_code == 201
    response = result_within(poll, "the long poll's answer")
    assert response.status_code == 200 and response.json() == ["m"]


@pytest.fixture
def pair(start_server: ServerFactory, postgres_backend_url: str) -> list[BurrowServer]:
    """Two Burrow servers on one (empty) database."""
    return [start_server(postgres_backend_url) for _ in range(2)]


def test_long_poll_is_woken_by_a_put_on_another_server(pair: list[BurrowServer]) -> None:
    one, two = pair
    long_poll_is_woken(one, two, "q")


def test_claim_reappears_for_waiters_on_every_server(pair: list[BurrowServer]) -> None:
    one, two = pair
    assert httpx.put(f"{one.url}/v1.0/{A}/q/m", content=b"x").status_code == 201
    claimed = time.time()
    claim = httpx.post(f"{one.url}/v1.0/{A}/q", params={"limit": 1, "hide": 1, "detail": "id"})
    assert claim.json() == ["m"]
    # A claimer waiting on the other server gets it when the hide lapses, not at its timeout.
    again = httpx.post(
        f"{two.url}/v1.0/{A}/q",
        params={"limit": 1, "hide": 60, "wait": LONG_POLL, "detail": "id"},
        timeout=1 + PATIENCE,
    )
    assert again.json() == ["m"]
    assert time.time() >= claimed + 1 - CLOCK_SLACK, "claimed again before the hide lapsed"


def claim_all(servers: list[BurrowServer], claimers: int, limit: int, queue: str) -> list[str]:
    """Claim until the queue is empty; checks that no answer holds more than `limit`."""

    def claimer(n: int) -> list[str]:
        got: list[str] = []
        with httpx.Client(base_url=servers[n % len(servers)].url, timeout=10) as http:
            for _ in range(2000):
                params: dict[str, str | int] = {"limit": limit, "hide": 60, "detail": "id"}
                response = http.post(f"/v1.0/{A}/{queue}", params=params)
                if response.status_code == 404:
                    return got
                batch: list[str] = response.json()
                assert 1 <= len(batch) <= limit
                got += batch
        raise AssertionError("claimer did not finish")

    with ThreadPoolExecutor(claimers) as pool:
        return [i for got in pool.map(claimer, range(claimers)) for i in got]


def test_concurrent_claimers_on_two_servers_take_each_message_once(
    pair: list[BurrowServer],
) -> None:
    ids = [f"m{i:04}" for i in range(1000)]
    put_batch(pair[0], "q", ids)
    claimed = claim_all(pair, claimers=16, limit=3, queue="q")
    assert sorted(claimed) == ids


def test_claims_and_pops_never_return_more_than_limit(pair: list[BurrowServer]) -> None:
    ids = [f"m{i:04}" for i in range(600)]
    put_batch(pair[1], "q", ids)
    claimed = claim_all(pair, claimers=8, limit=7, queue="q")
    assert sorted(claimed) == ids
    # Release every claim, then pop concurrently.
    release: dict[str, str | int] = {"hide": 0, "match_hidden": "true", "limit": len(ids)}
    released = httpx.post(f"{pair[0].url}/v1.0/{A}/q", params=release)
    assert released.status_code == 204

    def popper(n: int) -> list[str]:
        got: list[str] = []
        with httpx.Client(base_url=pair[n % 2].url, timeout=10) as http:
            for _ in range(2000):
                params: dict[str, str | int] = {"limit": 5, "detail": "id"}
                response = http.delete(f"/v1.0/{A}/q", params=params)
                if response.status_code == 404:
                    return got
                batch: list[str] = response.json()
                assert 1 <= len(batch) <= 5
                got += batch
        raise AssertionError("popper did not finish")

    with ThreadPoolExecutor(8) as pool:
        popped = [i for got in pool.map(popper, range(8)) for i in got]
    assert sorted(popped) == ids
    assert httpx.get(f"{pair[0].url}/v1.0/{A}").status_code == 404  # the queue is gone


class Writer:
    """Threads PUTting new messages to a server; remembers each one acknowledged (201)."""

    def __init__(self, server: BurrowServer, queue: str, threads: int = 4, retry: bool = False):
        self.server = server
        self.queue = queue
        self.retry = retry
        self.acked: list[str] = []
        self.refused = 0  # 503s and connection errors
        self.unexpected: list[int] = []  # any other answer
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> Writer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, n: int) -> None:
        with httpx.Client(timeout=10) as http:
            for i in range(100_000):
                if self._stop.is_set():
                    return
                message_id = f"w{n}-{i:06}"
                ok = {201}
                while not self._stop.is_set():
                    try:
                        url = f"{self.server.url}/v1.0/{A}/{self.queue}/{message_id}"
                        status = http.put(url, content=message_id.encode()).status_code
                    except TRANSIENT:
                        status = 0
                    if status in ok:
                        with self._lock:
                            self.acked.append(message_id)
                        break
                    with self._lock:
                        if status not in (0, 503):
                            self.unexpected.append(status)
                            return
                        self.refused += 1
                    # A failed attempt may have been stored all the same (the answer
                    # was lost): the retry then replaces it.
                    ok = {201, 204}
                    if not self.retry:
                        return
                    time.sleep(0.02)


@pytest.fixture
def own_postgres(postgres_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    postgres_cluster.execute("CREATE DATABASE burrow")
    yield postgres_cluster


def test_acknowledged_puts_survive_kill_9_of_burrow_and_postgres(
    start_server: ServerFactory, own_postgres: PostgresCluster
) -> None:
    url = own_postgres.url("burrow")
    server = start_server(url)
    with Writer(server, "q", threads=6) as writer:
        wait_until(lambda: writer.count() >= 300, "puts to be acknowledged", PROGRESS)
        own_postgres.kill()
        server.kill()
    assert writer.unexpected == []
    acked = set(writer.acked)
    own_postgres.start()
    stored = stored_ids(start_server(url), "q")
    assert len(acked) >= 300
    assert acked <= set(stored)


def test_burrow_rides_out_a_postgres_restart(
    start_server: ServerFactory, own_postgres: PostgresCluster
) -> None:
    url = own_postgres.url("burrow")
    one, two = start_server(url), start_server(url)
    with Writer(one, "q", threads=4, retry=True) as writer:
        wait_until(lambda: writer.count() >= 100, "puts before the restart", PROGRESS)
        own_postgres.kill()
        # During the outage a request fails with 503; it never hangs.
        assert httpx.get(f"{two.url}/v1.0/{A}/q", timeout=PATIENCE).status_code == 503
        own_postgres.start()
        before = writer.count()
        wait_until(lambda: writer.count() >= before + 100, "puts after the restart", PROGRESS)
    assert writer.unexpected == []
    assert writer.refused > 0, "the writers never saw the outage"
    stored = set(stored_ids(two, "q"))
    assert set(writer.acked) <= stored
    # The listening connections are back: a long poll is woken from the other server.
    wait_until(lambda: healthy(one) and healthy(two), "listeners to reconnect", PROGRESS)
    long_poll_is_woken(one, two, "after")
    long_poll_is_woken(two, one, "after2")


@pytest.fixture
def new_database(postgres_server: PostgresCluster) -> Iterator[str]:
    """A database with no schema yet (dropped after the servers on it are stopped)."""
    postgres_server.execute("CREATE DATABASE fresh")
    yield postgres_server.url("fresh")
    postgres_server.execute("DROP DATABASE fresh WITH (FORCE)")


def test_servers_starting_together_on_a_new_database_migrate_once(
    new_database: str, start_server: ServerFactory
) -> None:
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda _: start_server(new_database), range(3)))
    assert httpx.put(f"{servers[0].url}/v1.0/{A}/q/m", content=b"x").status_code == 201
    for server in servers:
        assert httpx.get(f"{server.url}/v1.0/{A}/q/m").status_code == 200
    assert run_sync(_versions(new_database)) == list(range(1, SCHEMA_VERSION + 1))


async def _versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch("SELECT version FROM burrow.schema_version")]
    finally:
        await conn.close()


async def test_purge_deletes_expired_rows_and_the_queues_they_empty(
    postgres_backend_url: str,
) -> None:
    async with PostgresBackend(postgres_backend_url, purge_interval=3600) as backend:
        await backend.put_messages(A, "q", [NewMessage("short", b"x", 1, 0)])
        await backend.put_messages(A, "q2", [NewMessage("long", b"x", 60, 0)])
        await asyncio.sleep(1.05)
        assert await backend.purge_expired() == 1
        assert await backend.get_queues(A, ALL_ITEMS) == ["q2"]
    conn = await asyncpg.connect(postgres_backend_url)
    try:
        left = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM burrow.messages),"
            " (SELECT array_agg(name) FROM burrow.queues)"
        )
    finally:
        await conn.close()
    assert tuple(left) == (1, ["q2"])  # the expired row and its queue are gone from disk
