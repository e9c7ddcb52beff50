"""`ring:///path/ring.toml`: a proxy placing each account on a set of members per zone.

Placement (see `ring_placement`): an account has `replicas` members in each zone;
a request uses the set of the caller's zone (`X-Burrow-Zone`, else the proxy's)
and another zone's only while its own has no live member. Within the set, a
message lives on the first live member of its id's order.

Reading across a set: the set's members are read one after the other, in the
set's order, each in its own FIFO order (so a queue spread over members is
FIFO per member, and exactly FIFO when `replicas` is 1). A marker is looked up
on the members in its id's order; the listing goes on after it there, then
through the members that follow. Claims and pops take what they can from each
member in turn with the limit that is left, so they never return more than
`limit` and never take messages they then drop: each message is still claimed
or popped exactly once. A long poll waits on every live member at once.

Health: a member whose call fails with `BackendUnavailable` is skipped, for a
backoff that doubles from 0.5 s to 30 s; a background probe brings it back when
it answers again. Reads skip a dead member (its messages wait for it to return);
writes go to the next member of the id's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from burrow.backends.background import stop_tasks
from burrow.backends.base import Backend, Subscription
from burrow.backends.ring_placement import Member, RingConfig
from burrow.breaker import Breaker
from burrow.errors import BackendUnavailable, BurrowError, MessageNotFound, NoMatch
from burrow.locality import caller_zone
from burrow.model import ALL_ITEMS, NO_QUOTA, Attributes, Filters, Message, NewMessage, Quota
from burrow.placement import message_key, rendezvous

T = TypeVar("T")
P = ParamSpec("P")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
PROBE_INTERVAL = 0.25


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


class RingBackend(Backend):
    shared_between_processes = True

    def __init__(self, config: RingConfig, open_member: Callable[[str], Backend]) -> None:
        self.config = config
        self._states = {m: MemberState(m, open_member(m.url)) for m in config.members}
        self._prober: asyncio.Task[None] | None = None
        self._subscriptions: set[_RingSubscription] = set()
        self._repairs: set[asyncio.Future[None]] = set()  # read repairs under way

    async def open(self) -> None:
        for state in self._states.values():
            await state.backend.open()
        self._prober = asyncio.create_task(self._probe_forever())

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.interrupt()
        await stop_tasks([*self._repairs, self._prober])
        for state in self._states.values():
            await state.backend.close()

    async def health(self) -> dict[str, Any]:
        members = [
            {
                "url": s.member.url,
                "zone": s.member.zone,
                "state": s.state,
                "failures": s.breaker.failures,
            }
            for s in self._states.values()
        ]
        healthy = all(m["state"] == "up" for m in members)
        return {
            "status": "ok" if healthy else "degraded",
            "zone": self.config.zone,
            "members": members,
        }

    # Placement ------------------------------------------------------------------------

    def live_set(self, account: str) -> list[MemberState]:
        """The account's live members in the first zone that has any, in set order."""
        preferred = caller_zone.get()
        zones = self.config.zones
        if preferred in zones:
            zones = [preferred, *(z for z in zones if z != preferred)]
        now = time.monotonic()
        for zone in zones:
            live = [
                self._states[m]
                for m in self.config.account_set(account, zone)
                if self._states[m].usable(now)
            ]
            if live:
                return live
        raise BackendUnavailable(f"no live ring member for account {account!r}")

    def _live(self) -> list[MemberState]:
        now = time.monotonic()
        return [s for s in self._states.values() if s.usable(now)]

    @staticmethod
    def _for_id(
        states: list[MemberState], account: str, queue: str, message_id: str
    ) -> list[MemberState]:
        by_member = {s.member: s for s in states}
        order = rendezvous(message_key(account, queue, message_id), list(by_member))
        return [by_member[m] for m in order]

    async def _on(
        self,
        state: MemberState,
        call: Callable[Concatenate[Backend, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`call(member's backend, *args)`, keeping the member's circuit breaker up to date."""
        try:
            result = await call(state.backend, *args, **kwargs)
        except BackendUnavailable:
            state.breaker.failed(time.monotonic())
            raise
        state.breaker.answered()
        return result

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            now = time.monotonic()
            due = [s for s in self._states.values() if s.breaker.failures and s.usable(now)]
            await asyncio.gather(*(self._probe(s) for s in due))

    async def _probe(self, state: MemberState) -> None:
        with contextlib.suppress(BackendUnavailable, NoMatch):
            await self._on(state, lambda b: b.get_accounts(Filters(limit=1)))

    # Accounts and queues --------------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self._names(
            self._live(), lambda b: b.get_accounts(ALL_ITEMS), filters, "accounts"
        )

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)

        async def drop(backend: Backend, name: str) -> list[str]:
            return await backend.delete_queues(name, ALL_ITEMS)

        for name in names:
            await self._each(self._live(), drop, name)
        return names

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        members = self.live_set(account)
        return await self._names(
            members, lambda b: b.get_queues(account, ALL_ITEMS), filters, "queues"
        )

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        names = await self.get_queues(account, filters)

        async def drop(backend: Backend, name: str) -> list[Message]:
            return await backend.delete_messages(account, name, Filters(match_hidden=True))

        for name in names:
            await self._each(self.live_set(account), drop, name)
        return names

    async def _names(
        self,
        members: list[MemberState],
        listing: Callable[[Backend], Awaitable[list[str]]],
        filters: Filters,
        what: str,
    ) -> list[str]:
        """The members' names merged (first seen first), then marker and limit applied."""
        merged: dict[str, None] = {}
        for names in await self._each(members, listing):
            merged.update(dict.fromkeys(names))
        names = list(merged)
        if filters.marker in merged:
            names = names[names.index(filters.marker) + 1 :]
        if filters.limit is not None:
            names = names[: filters.limit]
        if not names:
            raise NoMatch(what)
        return names

    async def _each(
        self,
        members: list[MemberState],
        call: Callable[Concatenate[Backend, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> list[T]:
        """`call` on every member at once; those that match nothing or are down left out."""

        async def one(state: MemberState) -> T | None:
            try:
                return await self._on(state, call, *args, **kwargs)
            except (NoMatch, BackendUnavailable):
                return None

        return [r for r in await asyncio.gather(*(one(s) for s in members)) if r is not None]

    # Messages in a queue --------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        found = await self._through(
            account, queue, filters, lambda b, f: b.get_messages(account, queue, f)
        )
        return self._repaired(account, queue, found)

    def _repaired(
        self, account: str, queue: str, found: list[tuple[MemberState, Message]]
    ) -> list[Message]:
        """Listed messages with one copy per id: the one earliest in the id's order.

        Two copies of an id exist when it was written to a fallback member while its
        first choice was down, then written again once that was back. The other
        copies are stale: they are dropped from the answer and deleted (read repair).
        """
        holders: dict[str, list[MemberState]] = {}
        for state, message in found:
            holders.setdefault(message.id, []).append(state)
        keep: dict[str, MemberState] = {}
        for message_id, states in holders.items():
            best = self._for_id(states, account, queue, message_id)[0]
            keep[message_id] = best
            for stale in (s for s in states if s is not best):
                self._background(stale.backend.delete_message(account, queue, message_id))
        return [m for state, m in found if keep[m.id] is state]

    def _background(self, work: Awaitable[object]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(BurrowError):
                await work

        task = asyncio.ensure_future(quietly())
        self._repairs.add(task)
        task.add_done_callback(self._repairs.discard)

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        found = await self._through(
            account, queue, filters, lambda b, f: b.update_messages(account, queue, attributes, f)
        )
        return [message for _, message in found]

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        found = await self._through(
            account, queue, filters, lambda b, f: b.delete_messages(account, queue, f)
        )
        return [message for _, message in found]

    async def _through(
        self,
        account: str,
        queue: str,
        filters: Filters,
        call: Callable[[Backend, Filters], Awaitable[list[Message]]],
    ) -> list[tuple[MemberState, Message]]:
        """Apply `call` member after member, in the listing order, until `limit` is reached.

        Returns what each member answered, with the member."""
        members = self.live_set(account)
        start, marker = 0, None
        if filters.marker is not None:
            holder = await self._find(members, account, queue, filters.marker)
            if holder is not None:
                start, marker = members.index(holder), filters.marker
        found: list[tuple[MemberState, Message]] = []
        for state in members[start:]:
            left = None if filters.limit is None else filters.limit - len(found)
            if left == 0:
                break
            own = Filters(left, marker if state is members[start] else None, filters.match_hidden)
            try:
                found += [(state, m) for m in await self._on(state, call, own)]
            except (NoMatch, BackendUnavailable):
                pass  # nothing there, or down: its messages wait for it
        if not found:
            raise NoMatch()
        return found

    async def _find(
        self, members: list[MemberState], account: str, queue: str, message_id: str
    ) -> MemberState | None:
        """The member holding a message, asked in the id's order."""
        for state in self._for_id(members, account, queue, message_id):
            try:
                await self._on(state, lambda b: b.get_message(account, queue, message_id))
            except (MessageNotFound, BackendUnavailable):
                continue
            return state
        return None

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        """Each message to the first live member of its id's order (quotas apply per member).

        A batch is sent as one write per member, each atomic; a member that fails
        gets its share re-placed on the next member of each id's order.
        """
        created: dict[str, bool] = {}
        pending = messages

        async def put(backend: Backend, group: list[NewMessage]) -> list[bool]:
            return await backend.put_messages(account, queue, group, quota)

        while pending:
            groups: dict[MemberState, list[NewMessage]] = {}
            members = self.live_set(account)
            for message in pending:
                target = self._for_id(members, account, queue, message.id)[0]
                groups.setdefault(target, []).append(message)
            pending = []
            for state, group in groups.items():
                try:
                    flags = await self._on(state, put, group)
                except BackendUnavailable:
                    pending += group  # the member is marked down now: the next round skips it
                    continue
                created.update(zip((m.id for m in group), flags, strict=True))
        return [created[m.id] for m in messages]

    # One message ----------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._by_id(
            account, queue, message_id, lambda b: b.get_message(account, queue, message_id)
        )

    async def update_message(
        self, account: str, queue: str, message_id: str, attributes: Attributes
    ) -> Message:
        return await self._by_id(
            account,
            queue,
            message_id,
            lambda b: b.update_message(account, queue, message_id, attributes),
        )

    async def delete_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._by_id(
            account, queue, message_id, lambda b: b.delete_message(account, queue, message_id)
        )

    async def _by_id(
        self,
        account: str,
        queue: str,
        message_id: str,
        call: Callable[[Backend], Awaitable[Message]],
    ) -> Message:
        members = self._for_id(self.live_set(account), account, queue, message_id)
        for state in members:
            try:
                return await self._on(state, call)
            except (MessageNotFound, BackendUnavailable):
                continue
        raise MessageNotFound(message_id)

    # Waiting --------------------------------------------------------------------------

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        try:
            members = self.live_set(account)
        except BackendUnavailable:
            members = []
        subscription = _RingSubscription(
            self, [(s, s.backend.subscribe(account, queue, filters)) for s in members]
        )
        self._subscriptions.add(subscription)
        return subscription


class _RingSubscription(Subscription):
    """Wakes when any live member's subscription does."""

    def __init__(
        self, ring: RingBackend, subscriptions: list[tuple[MemberState, Subscription]]
    ) -> None:
        self._ring = ring
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
        self._ring._subscriptions.discard(self)
        for _, sub in self._subscriptions:
            sub.close()
