"""`ring:///path/ring.toml`: a proxy placing each account on a set of members per zone.

Placement (see `ring_placement`): an account has `replicas` members in each zone;
a request uses the set of the caller's zone (`X-Burrow-Zone`, else the proxy's)
and another zone's only while its own has no live member. Within the set, a
message lives on the first live member of its id's order.

Reading across a set (`ring_pages`, `ring_merge`): listings merge the members' own orders,
which is creation order across members when ids grow with time, as the ids the
server makes do. A page asks every member at once for at most `limit` messages
after its own place. After a marker, the member holding it goes on after it; each
other member goes on where the page that ended at that marker left it (remembered
by this proxy) or, for a marker this proxy did not hand out, from its first
message with a greater id. Claims and pops look at the members' next matches
first, then ask each member to take its share of the first `limit`, so they never
return more than `limit` and never take messages they then drop: each message is
still claimed or popped exactly once. Accounts and queues merge every member's
whole list of names. A long poll waits on every live member at once.

Receives are claims (each member stores the receipt in its own atomic claim), and a
call on one receive goes where a call by id does. Counts add up the set's members.
A queue's info lives on the account's first live member (in set order): every info of
an account on one member, so that their order is that member's and a compare-and-set
is one atomic step there. While it is down the next one takes new infos; a read asks
the members in set order and takes the first info found, a write goes where that read
found it, a delete reaches every member, and a listing merges them all. Subscriptions
are kept the same way, each where its first document was stored; listings by name merge
the members' sorted names, and the store-wide one asks every live member.

Health: a member whose call fails with `BackendUnavailable` is skipped, for a
backoff that doubles from 0.5 s to 30 s; a background probe brings it back when
it answers again. Reads skip a dead member (its messages wait for it to return);
writes go to the next member of the id's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from burrow.backends.background import stop_tasks
from burrow.backends.base import (
    Backend,
    Health,
    Subscription,
    SubscriptionKey,
    degraded,
    failing,
    healthy,
)
from burrow.backends.ring_members import MemberState, RingSubscription, member_health
from burrow.backends.ring_merge import Cursors, merge
from burrow.backends.ring_pages import Page, Past, Start
from burrow.backends.ring_pages import merged as _merged
from burrow.backends.ring_pages import message_id as _message_id
from burrow.backends.ring_pages import places as _places
from burrow.backends.ring_placement import Member, RingConfig
from burrow.errors import BackendUnavailable, BurrowError, MessageNotFound, NoMatch
from burrow.locality import caller_zone
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)
from burrow.placement import message_key, rendezvous

T = TypeVar("T")
P = ParamSpec("P")

PROBE_INTERVAL = 0.25
# Pages remembered, so that the page after one goes on where each member left off.
REMEMBERED_PAGES = 4096


class RingBackend(Backend):
    shared_between_processes = True

    def __init__(self, config: RingConfig, open_member: Callable[[str], Backend]) -> None:
        self.config = config
        self._states = {m: MemberState(m, open_member(m.url)) for m in config.members}
        self._prober: asyncio.Task[None] | None = None
        self._subscriptions: set[RingSubscription] = set()
        self._repairs: set[asyncio.Future[None]] = set()  # read repairs under way
        # (account, queue, match_hidden, a page's last id) -> each member's place after it
        self._cursors: Cursors[tuple[str, str, bool, str], dict[Member, str | None]] = Cursors(
            REMEMBERED_PAGES
        )

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

    async def health(self) -> Health:
        """Each member's circuit breaker and own health. Degraded (200) while it can still
        serve, with some members down or failing: the others take their accounts. Failing
        (503) when no member can serve."""
        states = list(self._states.values())
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
        """The members' names merged (see `ring_merge`), then marker and limit applied.

        Most names are on several members: where one falls among another member's
        names can only be told from whole listings, so each member gives all of its own.
        """
        merged = merge(await self._each(members, listing), key=lambda name: name)
        names = [step[0][1] for step in merged.steps]
        if filters.marker in names:
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
        starts, fresh = await self._starts(self.live_set(account), account, queue, filters)
        pages = await self._pages(starts, account, queue, filters.limit, filters.match_hidden)
        merged = _merged(pages, filters.limit)
        if len(pages) > 1:
            scope = (account, queue, filters.match_hidden)
            if fresh and filters.marker is not None:  # the next long-poll round needs it again
                self._cursors.put((*scope, filters.marker), _places(pages))
            if merged.steps:
                last = merged.steps[-1][0][1].id
                self._cursors.put((*scope, last), _places(pages, merged.consumed))
        found = [
            (pages[i].state, message)
            for step in merged.steps
            for i, message in step
            if message.id != filters.marker  # a (stale) copy of the marker is not after it
        ]
        if not found:
            raise NoMatch()
        return [message for _, message in self._repaired(account, queue, found)]

    async def _starts(
        self, members: list[MemberState], account: str, queue: str, filters: Filters
    ) -> tuple[dict[MemberState, Start], bool]:
        """Where each member's part of a listing after `filters.marker` starts, and
        whether that was worked out just now (rather than remembered)."""
        marker = filters.marker
        if marker is None or len(members) == 1:
            return {state: marker for state in members}, False
        known = self._cursors.get((account, queue, filters.match_hidden, marker))
        fresh = known is None
        if known is None:
            holder = await self._find(members, account, queue, marker)
            if holder is None:
                return {state: None for state in members}, False  # unknown: from the start
            known = {holder.member: marker}
        starts: dict[MemberState, Start] = {
            state: known[state.member] if state.member in known else Past(marker)
            for state in members
        }
        return starts, fresh

    async def _pages(
        self,
        starts: dict[MemberState, Start],
        account: str,
        queue: str,
        limit: int | None,
        match_hidden: bool,
    ) -> list[Page]:
        """Each member's next `limit` messages from its start, all asked at once."""
        return list(
            await asyncio.gather(
                *(
                    self._page(state, start, account, queue, limit, match_hidden)
                    for state, start in starts.items()
                )
            )
        )

    async def _page(
        self,
        state: MemberState,
        start: Start,
        account: str,
        queue: str,
        limit: int | None,
        match_hidden: bool,
    ) -> Page:
        if isinstance(start, Past):
            return await self._page_past(state, start.marker, account, queue, limit, match_hidden)
        try:
            messages = await self._on(
                state, lambda b: b.get_messages(account, queue, Filters(limit, start, match_hidden))
            )
        except NoMatch:
            messages = []
        except BackendUnavailable:
            return Page(state, start, [], complete=True, answered=False)
        return Page(state, start, messages, complete=limit is None or len(messages) < limit)

    async def _page_past(
        self,
        state: MemberState,
        marker: str,
        account: str,
        queue: str,
        limit: int | None,
        match_hidden: bool,
    ) -> Page:
        """The member's messages from the first whose id sorts after `marker`, read from
        its oldest on (a marker that another member holds, and no page remembered)."""
        start: str | None = None
        while True:
            page = await self._page(state, start, account, queue, limit, match_hidden)
            later = next((i for i, m in enumerate(page.messages) if m.id > marker), None)
            if later is None:
                if page.complete:
                    end = page.messages[-1].id if page.messages else start
                    return Page(state, end, [], complete=True, answered=page.answered)
                start = page.messages[-1].id
                continue
            if later:
                start = page.messages[later - 1].id
                if not page.complete:  # what follows `start` fills a whole page
                    return await self._page(state, start, account, queue, limit, match_hidden)
            return Page(state, start, page.messages[later:], complete=page.complete)

    def _repaired(
        self, account: str, queue: str, found: list[tuple[MemberState, Message]]
    ) -> list[tuple[MemberState, Message]]:
        """Listed messages with one copy per id: the one earliest in the id's order.

        Two copies of an id exist when it was written to a fallback member while its
        first choice was down, then written again once that was back. The other
        copies are stale: they are dropped from the answer and deleted (read repair).
        """
        holders: dict[str, list[MemberState]] = {}
        for state, message in found:
            holders.setdefault(message.id, []).append(state)
        if len(holders) == len(found):
            return found  # one copy of each: the usual case
        keep: dict[str, MemberState] = {}
        for message_id, states in holders.items():
            best = self._for_id(states, account, queue, message_id)[0]
            keep[message_id] = best
            for stale in (s for s in states if s is not best):
                self._background(stale.backend.delete_message(account, queue, message_id))
        return [(state, m) for state, m in found if keep[m.id] is state]

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
        return await self._take(
            account,
            queue,
            filters,
            lambda b, f: b.update_messages(account, queue, attributes, f),
            gone_after=False,
        )

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._take(
            account,
            queue,
            filters,
            lambda b, f: b.delete_messages(account, queue, f),
            gone_after=True,
        )

    async def _take(
        self,
        account: str,
        queue: str,
        filters: Filters,
        call: Callable[[Backend, Filters], Awaitable[list[Message]]],
        gone_after: bool,
    ) -> list[Message]:
        """Apply `call` (a claim, a pop, an update) to the first `limit` matches.

        Each round looks at the members' next matches, merges them, and asks each
        member to apply `call` to as many as are its own among the first ones still
        wanted; so no member takes a message that is then dropped. A member that
        applies it to fewer (a concurrent call took some) has no more matches; the
        next round looks again at the others. `gone_after`: what `call` applies to no
        longer matches (a pop), so a member goes on where it was; otherwise after
        the last message it took.
        """
        starts, _ = await self._starts(self.live_set(account), account, queue, filters)
        placed = {s: start for s, start in starts.items() if not isinstance(start, Past)}
        if len(placed) == len(starts) and (len(starts) == 1 or filters.limit is None):
            # Nothing to choose: one member, or every match of every member is wanted.
            wanted = [
                (state, Filters(filters.limit, start, filters.match_hidden))
                for state, start in placed.items()
            ]
            taken = await self._apply(call, wanted)
        else:
            taken = await self._take_in_rounds(account, queue, filters, call, gone_after, starts)
        if not taken:
            raise NoMatch()
        return [message for _, message in self._repaired(account, queue, taken)]

    async def _take_in_rounds(
        self,
        account: str,
        queue: str,
        filters: Filters,
        call: Callable[[Backend, Filters], Awaitable[list[Message]]],
        gone_after: bool,
        starts: dict[MemberState, Start],
    ) -> list[tuple[MemberState, Message]]:
        taken: list[tuple[MemberState, Message]] = []
        taken_ids: set[str] = set()
        while starts:
            left = None if filters.limit is None else filters.limit - len(taken_ids)
            if left == 0:
                break
            pages = await self._pages(starts, account, queue, left, filters.match_hidden)
            places = {page.state: page.start for page in pages if page.answered}
            merged = _merged(pages, left)
            found = [(pages[i].state, m) for step in merged.steps for i, m in step]
            shares = Counter(state for state, _ in self._repaired(account, queue, found))
            if not shares:
                break
            got = await self._apply(
                call,
                [
                    (state, Filters(count, places[state], filters.match_hidden))
                    for state, count in shares.items()
                ],
            )
            for state, count in shares.items():
                mine = [m for s, m in got if s is state]
                if len(mine) < count:
                    del places[state]  # no more matches there now
                elif not gone_after:
                    places[state] = mine[-1].id
            taken += got
            taken_ids.update(m.id for _, m in got)
            starts = {state: place for state, place in places.items()}
            if left is None:
                break
        return taken

    async def _apply(
        self,
        call: Callable[[Backend, Filters], Awaitable[list[Message]]],
        wanted: list[tuple[MemberState, Filters]],
    ) -> list[tuple[MemberState, Message]]:
        """`call` on each member with its filters, at once; the answers merged."""

        async def one(state: MemberState, filters: Filters) -> list[Message]:
            try:
                return await self._on(state, call, filters)
            except (NoMatch, BackendUnavailable):
                return []  # nothing there, or down: its messages wait for it

        answers = await asyncio.gather(*(one(state, f) for state, f in wanted))
        merged = merge(answers, _message_id, copies_wait=False)
        return [(wanted[i][0], m) for step in merged.steps for i, m in step]

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
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        return await self._by_id(
            account,
            queue,
            message_id,
            lambda b: b.update_message(account, queue, message_id, attributes, receipt),
        )

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        return await self._by_id(
            account,
            queue,
            message_id,
            lambda b: b.delete_message(account, queue, message_id, receipt),
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

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        """The sum of the live members' counts (a member that is down is not counted)."""
        counts = await self._each(
            self.live_set(account), lambda b: b.count_messages(account, queue)
        )
        oldest = [c.oldest for c in counts if c.oldest]
        return MessageCounts(
            sum(c.visible for c in counts),
            sum(c.in_flight for c in counts),
            sum(c.delayed for c in counts),
            sum(c.bytes for c in counts),
            min(oldest, default=0.0),
            max((c.newest for c in counts), default=0.0),
        )

    # Queue info (see the module: on the account's first live member) ---------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        _, info = await self._holder(account, lambda b: b.get_queue_info(account, queue))
        return info

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        holder, _ = await self._holder(account, lambda b: b.get_queue_info(account, queue))
        return await self._on(holder, lambda b: b.set_queue_info(account, queue, info, expected))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        """Deleted on every live member, so that no copy written elsewhere while the
        first member was down comes back."""
        deleted = await self._each(
            self.live_set(account), lambda b: b.delete_queue_info(account, queue)
        )
        return any(deleted)

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        members = self.live_set(account)
        return await self._names(
            members, lambda b: b.list_queue_infos(account, ALL_ITEMS), filters, "queues"
        )

    async def _holder(
        self, account: str, get: Callable[[Backend], Awaitable[bytes | None]]
    ) -> tuple[MemberState, bytes | None]:
        """The first live member (in set order) holding a document of the account (a
        queue's info, a subscription), and that document; with none, the first live
        member and None. `BackendUnavailable` when a member that could hold it did not
        answer: its document is not known to be absent."""
        members = self.live_set(account)
        unanswered: BackendUnavailable | None = None
        for state in members:
            try:
                info = await self._on(state, get)
            except BackendUnavailable as error:
                unanswered = error
                continue
            if info is not None:
                return state, info
        if unanswered is not None:
            raise unanswered
        return members[0], None

    # Subscriptions (as queue info: on the account's first live member) -----------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        _, document = await self._holder(
            account, lambda b: b.get_subscription(account, queue, name)
        )
        return document

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        holder, _ = await self._holder(account, lambda b: b.get_subscription(account, queue, name))
        return await self._on(
            holder, lambda b: b.set_subscription(account, queue, name, document, expected)
        )

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        """Deleted on every live member, as a queue's info is."""
        deleted = await self._each(
            self.live_set(account), lambda b: b.delete_subscription(account, queue, name)
        )
        return any(deleted)

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        """Each member's first `limit` after the marker, merged: those hold the first
        `limit` of all."""
        listings = await self._each(
            self.live_set(account), lambda b: b.list_subscriptions(account, queue, filters)
        )
        names = sorted(set().union(*listings))[: filters.limit]
        if not names:
            raise NoMatch("subscriptions")
        return names

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        pages = await self._each(self._live(), lambda b: b.list_all_subscriptions(after, limit))
        return sorted(set().union(*pages))[:limit]

    # Waiting --------------------------------------------------------------------------

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        try:
            members = self.live_set(account)
        except BackendUnavailable:
            members = []
        subscription = RingSubscription(
            self._subscriptions,
            [(s, s.backend.subscribe(account, queue, filters)) for s in members],
        )
        self._subscriptions.add(subscription)
        return subscription
