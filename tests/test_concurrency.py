"""Atomic claims and pops, long polls and expiry, over HTTP, on every backend's server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import BurrowServer

Q = "/v1.0/acct/q"


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BurrowServer]:
    workdir: Path = tmp_path_factory.mktemp(request.param)
    url = "memory://" if request.param == "memory" else f"sqlite:///{workdir}/burrow.db"
    started = BurrowServer(workdir, url).start()
    yield started
    started.kill()


@pytest.fixture
async def http(server: BurrowServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        yield client
        await client.delete("/v1.0")


async def fill(http: httpx.AsyncClient, count: int) -> list[str]:
    ids = [f"m{i:04}" for i in range(count)]
    response = await http.put(Q, json=[{"id": i, "body": i} for i in ids])
    assert response.status_code == 201
    return ids


async def test_concurrent_claimers_each_message_once(http: httpx.AsyncClient) -> None:
    ids = await fill(http, 200)

    async def claimer() -> list[str]:
        got: list[str] = []
        while True:
            response = await http.post(Q, params={"limit": 3, "hide": 60, "detail": "id"})
            if response.status_code == 404:
                return got
            got.extend(response.json())

    results = await asyncio.gather(*(claimer() for _ in range(16)))
    assert sorted(i for result in results for i in result) == ids


async def test_concurrent_pops_each_message_once(http: httpx.AsyncClient) -> None:
    ids = await fill(http, 200)

    async def popper() -> list[str]:
        got: list[str] = []
        while True:
            response = await http.delete(Q, params={"limit": 4, "detail": "all"})
            if response.status_code == 404:
                return got
            got.extend(m["id"] for m in response.json())

    results = await asyncio.gather(*(popper() for _ in range(16)))
    assert sorted(i for result in results for i in result) == ids
    assert (await http.get(Q, params={"match_hidden": "true"})).status_code == 404


async def started_waiting(task: asyncio.Task[httpx.Response]) -> None:
    """Give a long poll time to reach the server; it would answer the same if late."""
    await asyncio.sleep(0.2)
    assert not task.done()


async def test_long_poll_answers_quickly_after_a_put(http: httpx.AsyncClient) -> None:
    waiter = asyncio.create_task(http.get(Q, params={"wait": 20, "detail": "id"}))
    await started_waiting(waiter)
    await http.put(f"{Q}/new", content=b"x")
    put_done = time.monotonic()
    response = await waiter
    assert response.json() == ["new"]
    assert time.monotonic() - put_done < 0.05


async def test_long_poll_wakes_when_a_hidden_message_shows(http: httpx.AsyncClient) -> None:
    await http.put(f"{Q}/later", content=b"x", params={"hide": 1})
    visible_at = time.monotonic() + 1
    response = await http.post(Q, params={"wait": 10, "hide": 30, "detail": "id"})
    assert response.json() == ["later"]
    assert visible_at - 0.1 < time.monotonic() < visible_at + 0.1


async def test_long_poll_times_out_with_404(http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await http.delete(Q, params={"wait": 1, "detail": "all"})
    assert response.status_code == 404
    assert 1.0 <= time.monotonic() - started < 1.5


async def test_fan_out_readers_all_see_a_new_message(http: httpx.AsyncClient) -> None:
    readers = [
        asyncio.create_task(http.get(Q, params={"wait": 10, "detail": "id"})) for _ in range(3)
    ]
    for task in readers:
        await started_waiting(task)
    await http.put(f"{Q}/only", content=b"x")
    assert [(await r).json() for r in readers] == [["only"]] * 3


async def test_waiting_claimers_compete_and_one_wins(http: httpx.AsyncClient) -> None:
    claimers = [
        asyncio.create_task(http.post(Q, params={"wait": 2, "hide": 60, "detail": "id"}))
        for _ in range(3)
    ]
    for task in claimers:
        await started_waiting(task)
    await http.put(f"{Q}/only", content=b"x")
    responses = [await c for c in claimers]
    assert sorted(r.status_code for r in responses) == [200, 404, 404]
    assert [r.json() for r in responses if r.status_code == 200] == [["only"]]


async def test_fan_out_marker_follows_new_messages(http: httpx.AsyncClient) -> None:
    await http.put(f"{Q}/first", content=b"1")
    waiter = asyncio.create_task(http.get(Q, params={"marker": "first", "wait": 10}))
    await started_waiting(waiter)
    await http.put(f"{Q}/second", content=b"2")
    assert [m["id"] for m in (await waiter).json()] == ["second"]


async def test_many_idle_waiters_all_answered(http: httpx.AsyncClient) -> None:
    waiters = [
        asyncio.create_task(http.get(f"{Q}{i}", params={"wait": 20, "detail": "id"}))
        for i in range(50)
    ]
    await asyncio.sleep(0.3)
    await asyncio.gather(*(http.put(f"{Q}{i}/m", content=b"x") for i in range(50)))
    assert [(await w).json() for w in waiters] == [["m"]] * 50


async def test_ttl_and_hide_expire_to_the_second(http: httpx.AsyncClient) -> None:
    await http.put(f"{Q}/short", content=b"x", params={"ttl": 1})
    await http.put(f"{Q}/hidden", content=b"x", params={"hide": 1})
    listed = (await http.get(Q, params={"match_hidden": "true", "detail": "attributes"})).json()
    assert listed == [
        {"id": "short", "ttl": 1, "hide": 0},
        {"id": "hidden", "ttl": 600, "hide": 1},
    ]
    await asyncio.sleep(1.05)
    assert (await http.get(Q, params={"detail": "id"})).json() == ["hidden"]
    assert (await http.get(f"{Q}/short")).status_code == 404
