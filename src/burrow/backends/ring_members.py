"""A ring's members: each one's backend and circuit breaker, which of them are live,
calls on them that keep their breakers up to date, the probe that brings a failed one
back, their health as the ring reports it, and a long poll that waits on every live
member at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

from burrow.backends.base import (
    Backend,
    Health,
    Subscription,
    degraded,
    failing,
    healthy,
)
from burrow.backends.ring_placement import Member, RingConfig
from burrow.breaker import Breaker
from burrow.errors import BackendUnavailable, BurrowError, NoMatch
from burrow.locality import caller_zone
from burrow.model import Filters

T = TypeVar("T")
P = ParamSpec("P")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
PROBE_INTERVAL = 0.25
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


async def on(
    state: MemberState,
    call: Callable[Concatenate[Backend, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`call(member's backend, *args)`, keeping the member's circuit breaker up to date
    (an error but `BackendUnavailable` is an answer too: the member is up, and found
    nothing, say, as a probe of an empty member does)."""
    try:
        result = await call(state.backend, *args, **kwargs)
    except BackendUnavailable:
        state.breaker.failed(time.monotonic())
        raise
    except BurrowError:
        state.breaker.answered()
        raise
    state.breaker.answered()
    return result


async def each(
    members: list[MemberState],
    call: Callable[Concatenate[Backend, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> list[T]:
    """`call` on every member at once; those that match nothing or are down left out."""

    async def one(state: MemberState) -> T | None:
        try:
            return await on(state, call, *args, **kwargs)
        except (NoMatch, BackendUnavailable):
            return None

    return [r for r in await asyncio.gather(*(one(s) for s in members)) if r is not None]


class RingMembers:
    """Every member of a ring, by its place in the config."""

    def __init__(self, config: RingConfig, open_member: Callable[[str], Backend]) -> None:
        self.config = config
        self.states = {m: MemberState(m, open_member(m.url)) for m in config.members}

    async def open(self) -> None:
        for state in self.states.values():
            await state.backend.open()

    async def close(self) -> None:
        for state in self.states.values():
            await state.backend.close()

    def live_set(self, account: str) -> list[MemberState]:
        """The account's live members in the first zone that has any, in set order."""
        preferred = caller_zone.get()
        zones = self.config.zones
        if preferred in zones:
            zones = [preferred, *(z for z in zones if z != preferred)]
        now = time.monotonic()
        for zone in zones:
            live = [
                self.states[m]
                for m in self.config.account_set(account, zone)
                if self.states[m].usable(now)
            ]
            if live:
                return live
        raise BackendUnavailable(f"no live ring member for account {account!r}")

    def live(self) -> list[MemberState]:
        now = time.monotonic()
        return [s for s in self.states.values() if s.usable(now)]

    async def probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            now = time.monotonic()
            due = [s for s in self.states.values() if s.breaker.failures and s.usable(now)]
            await asyncio.gather(*(self._probe(s) for s in due))

    async def _probe(self, state: MemberState) -> None:
        with contextlib.suppress(BackendUnavailable, NoMatch):
            await on(state, lambda b: b.get_accounts(Filters(limit=1)))

    async def health(self) -> Health:
        """Each member's circuit breaker and own health. Degraded (200) while it can still
        serve, with some members down or failing: the others take their accounts. Failing
        (503) when no member can serve."""
        states = list(self.states.values())
        reports = await asyncio.gather(*(member_health(s.backend) for s in states))
        members = [
            {
                "url": s.member.url,
                "zone": s.member.zone,
                "state": s.state,
                "failures": s.breaker.failures,
                "status": report["status"],
                **({"reason": report["reason"]} if "reason" in report else {}),
            }
            for s, report in zip(states, reports, strict=True)
        ]
        parts = {"zone": self.config.zone, "members": members}
        unable = [m["url"] for m in members if m["state"] == "down" or m["status"] == "failing"]
        if len(unable) == len(members):
            return failing("no member can serve", **parts)
        if unable:
            return degraded(
                f"{len(unable)} of {len(members)} members cannot serve: {', '.join(unable)}",
                **parts,
            )
        lesser = [m["url"] for m in members if m["state"] != "up" or m["status"] != "ok"]
        if lesser:
            return degraded(f"members degraded or recovering: {', '.join(lesser)}", **parts)
        return healthy(**parts)


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
