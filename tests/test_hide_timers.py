"""Hides keep no wake-up behind: at most one pending deadline per waited-on queue.

A claim or update with `hide` once left a timer in the notifier until its deadline
(up to 14 days), after its message, queue or account was gone: a server taking
hides grew without bound. These tests count what the in-process backends' notifier
holds (`wakeups()`) through the service's long polls, and check that a long poll
still wakes when a hidden message shows. How much memory a million hides leave in a
real server is measured by `bench/hide_timers.py`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burrow.backends.hide_index import HideIndex
from burrow.backends.memory import MemoryBackend
from burrow.backends.notify import Notifier
from burrow.backends.sqlite import SQLiteBackend
from burrow.config import Limits
from burrow.model import ALL_ITEMS, Attributes, Draft, Filters, Message
from burrow.service import Service
from tests.waiting import CLOCK_SLACK, LONG_POLL, eventually, still_waiting, within

QUEUES, PER_QUEUE = 200, 50
NOTHING_HELD = {"waited_queues": 0, "timers": 0}
ONE_HELD = {"waited_queues": 1, "timers": 1}

Backend = MemoryBackend | SQLiteBackend


@pytest.fixture(params=["memory", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = MemoryBackend() if request.param == "memory" else SQLiteBackend(f"{tmp_path}/b.db")
    async with opened:
        yield opened


@pytest.fixture
def service(backend: Backend) -> Service:
    return Service(backend, Limits())


def batch(first: int, count: int) -> list[Draft]:
    """`count` messages, each hidden for a different time: no two share a deadline."""
    return [Draft(b"x", f"m{n}", hide=3600 + n) for n in range(first, first + count)]


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


def long_poll(service: Service) -> asyncio.Task[list[Message]]:
    return asyncio.create_task(service.get_messages("a", "q", ALL_ITEMS, LONG_POLL))


async def test_hides_in_queues_nobody_waits_on_leave_nothing(
    backend: Backend, service: Service
) -> None:
    every = Filters(limit=PER_QUEUE, match_hidden=True)
    for q in range(QUEUES):  # 20,000 hides: puts, then claims that hide them anew
        await service.put_messages("a", f"q{q}", batch(q * PER_QUEUE, PER_QUEUE))
        await service.update_messages("a", f"q{q}", Attributes(hide=7200 + q), every)
    assert backend.wakeups() == NOTHING_HELD
    await service.delete_accounts(ALL_ITEMS)
    assert backend.wakeups() == NOTHING_HELD


async def test_a_waited_on_queue_holds_one_deadline(backend: Backend, service: Service) -> None:
    await service.put_messages("a", "other", batch(0, 1000))
    started = time.time()
    await service.put_message("a", "q", Draft(b"x", "soon", hide=1))
    waiter = long_poll(service)
    await still_waiting(waiter)
    await service.put_messages("a", "q", batch(0, 1000))  # hidden longer: nothing earlier
    assert backend.wakeups() == ONE_HELD
    assert ids(await within(waiter, "the long poll's answer as the hide lapses")) == ["soon"]
    assert time.time() >= started + 1 - CLOCK_SLACK
    assert backend.wakeups() == NOTHING_HELD


async def test_a_hide_written_while_waiting_lowers_the_deadline(service: Service) -> None:
    await service.put_message("a", "q", Draft(b"x", "late", hide=3600))
    waiter = long_poll(service)
    await still_waiting(waiter)
    started = time.time()
    await service.put_message("a", "q", Draft(b"x", "soon", hide=1))
    assert ids(await within(waiter, "the long poll's answer as the new hide lapses")) == ["soon"]
    assert time.time() >= started + 1 - CLOCK_SLACK


async def test_the_deadline_goes_with_the_last_waiter(backend: Backend, service: Service) -> None:
    await service.put_message("a", "q", Draft(b"x", "m", hide=3600))
    waiters = [long_poll(service) for _ in range(3)]
    await still_waiting(*waiters)
    assert backend.wakeups() == ONE_HELD
    await service.delete_accounts(ALL_ITEMS)
    await service.put_message("a", "q", Draft(b"x", "new"))  # answers all three
    for waiter in waiters:
        assert ids(await within(waiter, "a long poll's answer")) == ["new"]

    async def released() -> bool:
        return backend.wakeups() == NOTHING_HELD

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
        assert notifier.stats() == ONE_HELD
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
