"""Hides keep no wake-up behind: at most one pending deadline per waited-on queue.

A claim or update with `hide` once left a timer in the notifier until its deadline
(up to 14 days), after its message, queue or account was gone: a server taking
hides grew without bound. These tests count what the notifier holds (the memory
backend's `/health` says) and check that long polls still wake when a hidden message
shows. How much memory a million hides leave is measured by `bench/hide_timers.py`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from burrow.backends.hide_index import HideIndex
from burrow.backends.notify import Notifier
from tests.conftest import ServerFactory
from tests.waiting import CLOCK_SLACK, LONG_POLL, eventually, still_waiting, within

QUEUES, HIDES_PER_QUEUE = 200, 100
NOTHING_HELD = {"waited_queues": 0, "timers": 0}


@pytest.fixture
async def http(start_server: ServerFactory) -> AsyncIterator[httpx.AsyncClient]:
    server = start_server("memory://")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def wakeups(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/health")
    assert response.status_code == 200
    held: dict[str, int] = response.json()["wakeups"]
    return held


def batch(first: int, count: int) -> list[dict[str, object]]:
    """`count` messages, each hidden for a different time: no two share a deadline."""
    return [{"id": f"m{n}", "body": "x", "hide": 3600 + n} for n in range(first, first + count)]


async def test_hides_in_queues_nobody_waits_on_leave_nothing(http: httpx.AsyncClient) -> None:
    for q in range(QUEUES):  # 20,000 hides: puts, then claims that hide them anew
        response = await http.put(f"/v1.0/a/q{q}", json=batch(q * HIDES_PER_QUEUE, 50))
        assert response.status_code == 201
        claim: dict[str, str | int] = {"match_hidden": "true", "limit": 50, "hide": 7200 + q}
        assert (await http.post(f"/v1.0/a/q{q}", params=claim)).status_code == 204
    assert await wakeups(http) == NOTHING_HELD
    assert (await http.delete("/v1.0/a")).status_code == 204
    assert await wakeups(http) == NOTHING_HELD


async def test_a_waited_on_queue_holds_one_deadline(http: httpx.AsyncClient) -> None:
    await http.put("/v1.0/a/other", json=batch(0, 1000))
    started = time.time()
    await http.put("/v1.0/a/q/soon", content=b"x", params={"hide": 1})
    waiter = asyncio.create_task(http.get("/v1.0/a/q", params={"wait": LONG_POLL}))
    await still_waiting(waiter)
    await http.put("/v1.0/a/q", json=batch(0, 1000))  # hidden longer: nothing earlier
    assert await wakeups(http) == {"waited_queues": 1, "timers": 1}
    response = await within(waiter, "the long poll's answer as the hide lapses")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()] == ["soon"]
    assert time.time() >= started + 1 - CLOCK_SLACK
    assert await wakeups(http) == NOTHING_HELD


async def test_a_hide_written_while_waiting_lowers_the_deadline(http: httpx.AsyncClient) -> None:
    await http.put("/v1.0/a/q/late", content=b"x", params={"hide": 3600})
    waiter = asyncio.create_task(http.get("/v1.0/a/q", params={"wait": LONG_POLL}))
    await still_waiting(waiter)
    started = time.time()
    await http.put("/v1.0/a/q/soon", content=b"x", params={"hide": 1})
    response = await within(waiter, "the long poll's answer as the new hide lapses")
    assert [m["id"] for m in response.json()] == ["soon"]
    assert time.time() >= started + 1 - CLOCK_SLACK


async def test_the_deadline_goes_with_the_last_waiter(http: httpx.AsyncClient) -> None:
    await http.put("/v1.0/a/q/m", content=b"x", params={"hide": 3600})
    waiters = [
        asyncio.create_task(http.get("/v1.0/a/q", params={"wait": LONG_POLL})) for _ in range(3)
    ]
    await still_waiting(*waiters)
    assert await wakeups(http) == {"waited_queues": 1, "timers": 1}
    assert (await http.delete("/v1.0/a")).status_code == 204
    await http.put("/v1.0/a/q/new", content=b"x")  # answers all three
    for waiter in waiters:
        assert (await within(waiter, "a long poll's answer")).status_code == 200

    async def released() -> bool:
        return await wakeups(http) == NOTHING_HELD

    await eventually(released, "the queue's entry to go with its waiters")


async def test_the_notifier_drops_deadlines_of_queues_nobody_waits_on() -> None:
    notifier = Notifier()
    now = time.time()
    for n in range(20_000):
        notifier.written("a", f"q{n % QUEUES}", [now + 3600 + n])
        notifier.visible_at("a", f"q{n % QUEUES}", now + 3600 + n)
    assert notifier.stats() == NOTHING_HELD
    with notifier.subscribe("a", "q0"):
        for n in range(1000):
            notifier.written("a", "q0", [now + 3600 - n])
        assert notifier.stats() == {"waited_queues": 1, "timers": 1}
    assert notifier.stats() == NOTHING_HELD
    notifier.close()


def test_the_hide_index_finds_the_next_deadline_that_still_holds() -> None:
    rng = random.Random(13)
    index, deadlines, now = HideIndex(), dict[str, float](), 0.0
    for _ in range(20_000):
        roll = rng.random()
        if roll < 0.6:  # a hide: claims of one length, and some of others
            message_id = f"m{rng.randrange(50)}"
            at = now + (30.0 if roll < 0.4 else rng.uniform(0, 60))
            deadlines[message_id] = at
            index.add(at, message_id)
        elif roll < 0.7:
            deadlines.pop(f"m{rng.randrange(50)}", None)
        elif roll < 0.8:
            now += rng.uniform(0, 5)
        else:
            expected = min((at for at in deadlines.values() if at > now), default=None)
            assert index.next_shown(now, deadlines.get) == expected
