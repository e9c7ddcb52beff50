"""Waiting for what a test expects, on a machine that may be busy.

A loaded 2-core CI machine can stall any step for a good part of a second. So a
test does not sleep a fixed time and then look, nor assert how fast something
happened: it waits for the event itself, for up to `PATIENCE` seconds. How fast
Burrow answers is measured in bench/ (`bench/wakeups.py`, `bench/waiters.py`).

A long poll in a test waits `LONG_POLL` seconds, far longer than `PATIENCE`. A
poll that is never woken then fails the test, and so does one that answers only
when its wait runs out (its last look finds the message all the same).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 10.0
LONG_POLL = 60
# Deadlines are wall-clock times taken by the backend; stored ones may be rounded this much.
CLOCK_SLACK = 0.01
_LOOK_EVERY = 0.02


def missing(what: str, seconds: float) -> AssertionError:
    return AssertionError(f"{what}: not after {seconds:g} s")


def wait_until(
    condition: Callable[[], bool],
    what: str,
    seconds: float = PATIENCE,
    ignoring: tuple[type[Exception], ...] = (),
) -> float:
    """Look until `condition()` is true (errors in `ignoring` count as false).

    Returns the wall-clock time at which the successful look ended.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return time.time()
        except ignoring:
            pass
        if time.monotonic() > deadline:
            raise missing(what, seconds)
        time.sleep(_LOOK_EVERY)


async def eventually(
    condition: Callable[[], Awaitable[bool]], what: str, seconds: float = PATIENCE
) -> float:
    """`wait_until` for a coroutine condition: the wall-clock time the true look ended."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise missing(what, seconds)
        await asyncio.sleep(_LOOK_EVERY)
    return time.time()


async def within(awaitable: Awaitable[T], what: str, seconds: float = PATIENCE) -> T:
    """The result of `awaitable`, which must come within `seconds` (it is cancelled if not)."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise missing(what, seconds) from None


async def still_waiting(*tasks: asyncio.Task[T], pause: float = 0.2) -> None:
    """Give long polls a moment to reach their wait; none may end while nothing is written.

    The pause makes "the write comes while they wait" the likely case. A test using it
    must hold either way: a poll that only starts after the write finds the message.
    """
    done, _ = await asyncio.wait(tasks, timeout=pause)
    assert not done, "a long poll ended before anything was written"


def in_background(call: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run a blocking call (a long poll) on a daemon thread, which a failed test leaves behind."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def result_within(future: concurrent.futures.Future[T], what: str, seconds: float = PATIENCE) -> T:
    """The result of `future`, which must come within `seconds`."""
    try:
        return future.result(seconds)
    except concurrent.futures.TimeoutError:
        raise missing(what, seconds) from None
