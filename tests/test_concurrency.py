"""Atomic claims and pops, long polls and expiry, over HTTP, on every backend's server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import BurrowServer
from tests.waiting import CLOCK_SLACK, LONG_POLL, eventually, still_waiting, within


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
def q(account: str) -> str:
    """A test's queue, in an account of its own: long polls that a failed test leaves
    behind on the shared server must not answer in the next one."""
    return f"/v1.0/{account}/q"


@pytest.fixture
async def http(server: BurrowServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        yield client
        await client.delete("/v1.0")


async def fill(http: httpx.AsyncClient, q: str, count: int) -> list[str]:
    ids = [f"m{i:04}" for i in range(count)]
    response = await http.put(q, json=[{"id": i, "body": i} for i in ids])
    assert response.status_code == 201
    return ids


async def test_concurrent_claimers_each_message_once(http: httpx.AsyncClient, q: str) -> None:
    ids = await fill(http, q, 200)

    async def claimer() -> list[str]:
        got: list[str] = []
        while True:
            response = await http.post(q, params={"limit": 3, "hide": 60, "detail": "id"})
            if response.status_code == 404:
                return got
            got.extend(response.json())

    results = await asyncio.gather(*(claimer() for _ in range(16)))
    assert sorted(i for result in results for i in result) == ids


async def test_concurrent_pops_each_message_once(http: httpx.AsyncClient, q: str) -> None:
    ids = await fill(http, q, 200)

    async def popper() -> list[str]:
        got: list[str] = []
        while True:
            response = await http.delete(q, params={"limit": 4, "detail": "all"})
            if response.status_code == 404:
                return got
            got.extend(m["id"] for m in response.json())

    results = await asyncio.gather(*(popper() for _ in range(16)))
    assert sorted(i for result in results for i in result) == ids
    assert (await http.get(q, params={"match_hidden": "true"})).status_code == 404


async def test_long_poll_answers_after_a_put(http: httpx.AsyncClient, q: str) -> None:
    waiter = asyncio.create_task(http.get(q, params={"wait": LONG_POLL, "detail": "id"}))
    await still_waiting(waiter)
    await http.put(f"{q}/new", content=b"x")
    response = await within(waiter, "the long poll's answer")
    assert response.json() == ["new"]


async def test_long_poll_wakes_when_a_hidden_message_shows(http: httpx.AsyncClient, q: str) -> None:
    started = time.time()
    await http.put(f"{q}/later", content=b"x", params={"hide": 1})
    claim = http.post(q, params={"wait": LONG_POLL, "hide": 30, "detail": "id"})
    response = await within(claim, "the claim of the message as it shows")
    assert response.json() == ["later"]
    assert time.time() >= started + 1 - CLOCK_SLACK, "claimed before its hide ran out"


async def test_long_poll_times_out_with_404(http: httpx.AsyncClient, q: str) -> None:
    started = time.monotonic()
    response = await within(http.delete(q, params={"wait": 1, "detail": "all"}), "the timeout")
    assert response.status_code == 404
    assert time.monotonic() - started >= 1.0


async def test_fan_out_readers_all_see_a_new_message(http: httpx.AsyncClient, q: str) -> None:
    readers = [
        asyncio.create_task(http.get(q, params={"wait": LONG_POLL, "detail": "id"}))
        for _ in range(3)
    ]
    await still_waiting(*readers)
    await http.put(f"{q}/only", content=b"x")
    answers = await within(asyncio.gather(*readers), "every reader's answer")
    assert [r.json() for r in answers] == [["only"]] * 3


async def test_waiting_claimers_compete_and_one_wins(http: httpx.AsyncClient, q: str) -> None:
    params: dict[str, str | int] = {"limit": 1, "wait": LONG_POLL, "hide": 60, "detail": "id"}
    claimers = [asyncio.create_task(http.post(q, params=params)) for _ in range(3)]
    await still_waiting(*claimers)
    await http.put(f"{q}/only", content=b"x")
    done, waiting = await within(
        asyncio.wait(claimers, return_when=asyncio.FIRST_COMPLETED), "a claimer's answer"
    )
    assert [t.result().json() for t in done] == [["only"]]
    # The others went back to waiting: one more message each ends them.
    await http.put(q, json=[{"id": "x", "body": "x"}, {"id": "y", "body": "y"}])
    others = await within(asyncio.gather(*waiting), "the other claimers' answers")
    assert sorted(r.json()[0] for r in others) == ["x", "y"]


async def test_fan_out_marker_follows_new_messages(http: httpx.AsyncClient, q: str) -> None:
    await http.put(f"{q}/first", content=b"1")
    waiter = asyncio.create_task(http.get(q, params={"marker": "first", "wait": LONG_POLL}))
    await still_waiting(waiter)
    await http.put(f"{q}/second", content=b"2")
    response = await within(waiter, "the follower's answer")
    assert [m["id"] for m in response.json()] == ["second"]


async def test_many_idle_waiters_all_answered(http: httpx.AsyncClient, q: str) -> None:
    waiters = [
        asyncio.create_task(http.get(f"{q}{i}", params={"wait": LONG_POLL, "detail": "id"}))
        for i in range(50)
    ]
    await still_waiting(*waiters)
    await asyncio.gather(*(http.put(f"{q}{i}/m", content=b"x") for i in range(50)))
    answers = await within(asyncio.gather(*waiters), "every waiter's answer")
    assert [r.json() for r in answers] == [["m"]] * 50


async def test_ttl_and_hide_expire_to_the_second(http: httpx.AsyncClient, q: str) -> None:
    started = time.time()
    await http.put(f"{q}/short", content=b"x", params={"ttl": 1})
    await http.put(f"{q}/hidden", content=b"x", params={"hide": 1})
    listed = (await http.get(q, params={"match_hidden": "true", "detail": "attributes"})).json()
    assert listed == [
        {"id": "short", "ttl": 1, "hide": 0},
        {"id": "hidden", "ttl": 600, "hide": 1},
    ]

    async def swapped() -> bool:
        visible: list[str] = (await http.get(q, params={"detail": "id"})).json()
        return visible == ["hidden"]

    seen = await eventually(swapped, "short to expire and hidden to show")
    assert seen >= started + 1 - CLOCK_SLACK, "changed before a second had passed"
    assert (await http.get(f"{q}/short")).status_code == 404
