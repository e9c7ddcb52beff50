"""A ring's members: each one's backend and circuit breaker, its health as the ring
asks for it, and a long poll that waits on every live member at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from burrow.backends.base import Backend, Health, Subscription, failing
from burrow.backends.ring_placement import Member
from burrow.breaker import Breaker

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# Seconds a member may take to say how it is, when the ring is asked for its health.
MEMBER_HEALTH_TIMEOUT = 2.0


@dataclass(slots=True, eq=False)  # compared and hashed by identity
class MemberState:
    """One member's backend and its circuit breaker (on the monotonic clock)."""

    member: Member
    backend: Backend
    breaker: Breaker = field(default_factory=lambda: Breaker(FIRST_BACKOFF, MAX_BACKOFF))

    def usable(self, now: float) -> bool:
        return self.breaker.usable(now)

    @property
    def state(self) -> str:
        if not self.breaker.failures:
            return "up"
        return "probing" if self.usable(time.monotonic()) else "down"


async def member_health(backend: Backend) -> Health:
    try:
        return await asyncio.wait_for(backend.health(), MEMBER_HEALTH_TIMEOUT)
    except TimeoutError:
        return failing(f"no health report within {MEMBER_HEALTH_TIMEOUT:g} s")


class RingSubscription(Subscription):
    """Wakes when any live member's subscription does."""

    def __init__(
        self,
        waiting: set[RingSubscription],
        subscriptions: list[tuple[MemberState, Subscription]],
    ) -> None:
        self._waiting = waiting  # the ring's open subscriptions, which this one leaves
        self._subscriptions = subscriptions
        self._interrupted = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        if self._interrupted.is_set():
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        tasks = {
            asyncio.ensure_future(sub.wait(seconds)): state for state, sub in self._subscriptions
        }
        stop = asyncio.ensure_future(self._interrupted.wait())
        try:
            while tasks:
                done, _ = await asyncio.wait(
                    [*tasks, stop],
                    timeout=max(0.0, deadline - loop.time()),
                    return_when="FIRST_COMPLETED",
                )
                if not done or stop in done:
                    break
                now = time.monotonic()
                # A dead member's wait ends early (it cannot be reached): keep waiting
                # on the others rather than waking the caller for nothing.
                if any(tasks[t].usable(now) for t in done):
                    break
                for task in done:
                    del tasks[task]
            else:
                await asyncio.wait([stop], timeout=max(0.0, deadline - loop.time()))
        finally:
            for task in [*tasks, stop]:
                task.cancel()
            await asyncio.gather(*tasks, stop, return_exceptions=True)
        return not self._interrupted.is_set()

    def interrupt(self) -> None:
        self._interrupted.set()
        for _, sub in self._subscriptions:
            sub.interrupt()

    def close(self) -> None:
        self._waiting.discard(self)
        for _, sub in self._subscriptions:
            sub.close()
