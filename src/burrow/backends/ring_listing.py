"""How the `ring` backend reads a queue across its members, and names across them.

A listing merges the members' own listings (`ring_merge`), page by page
(`ring_pages`), and remembers where each member stood after a page so that the next
page goes on from there. Claims, pops and updates of a queue take the first `limit`
of that merged order, a share from each member. Two copies of an id met in a listing
are read-repaired: the one earliest in the id's order is kept. Accounts and queues
merge every member's whole list of names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable

from burrow.backends.base import Backend
from burrow.backends.ring_members import MemberState, RingMembers, each, on
from burrow.backends.ring_merge import Cursors, merge
from burrow.backends.ring_pages import Page, Past, Start
from burrow.backends.ring_pages import merged as _merged
from burrow.backends.ring_pages import message_id as _message_id
from burrow.backends.ring_pages import places as _places
from burrow.backends.ring_placement import Member
from burrow.backends.ring_routing import find, for_id
from burrow.errors import BackendUnavailable, BurrowError, NoMatch
from burrow.model import Filters, Message

# Pages remembered, so that the page after one goes on where each member left off.
REMEMBERED_PAGES = 4096


async def merged_names(
    members: list[MemberState],
    listing: Callable[[Backend], Awaitable[list[str]]],
    filters: Filters,
    what: str,
) -> list[str]:
    """The members' names merged (see `ring_merge`), then marker and limit applied.

    Most names are on several members: where one falls among another member's
    names can only be told from whole listings, so each member gives all of its own.
    """
    merged = merge(await each(members, listing), key=lambda name: name)
    names = [step[0][1] for step in merged.steps]
    if filters.marker in names:
        names = names[names.index(filters.marker) + 1 :]
    if filters.limit is not None:
        names = names[: filters.limit]
    if not names:
        raise NoMatch(what)
    return names


class RingListings:
    """A ring's listings of messages, and the claims, pops and updates that take from
    them; with the pages it remembers and the read repairs under way."""

    def __init__(self, members: RingMembers) -> None:
        self._members = members
        self.repairs: set[asyncio.Future[None]] = set()  # read repairs under way
        # (account, queue, match_hidden, a page's last id) -> each member's place after it
        self._cursors: Cursors[tuple[str, str, bool, str], dict[Member, str | None]] = Cursors(
            REMEMBERED_PAGES
        )

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        starts, fresh = await self._starts(self._members.live_set(account), account, queue, filters)
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
            holder = await find(members, account, queue, marker)
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
            messages = await on(
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
            best = for_id(states, account, queue, message_id)[0]
            keep[message_id] = best
            for stale in (s for s in states if s is not best):
                self._background(stale.backend.delete_message(account, queue, message_id))
        return [(state, m) for state, m in found if keep[m.id] is state]

    def _background(self, work: Awaitable[object]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(BurrowError):
                await work

        task = asyncio.ensure_future(quietly())
        self.repairs.add(task)
        task.add_done_callback(self.repairs.discard)

    async def take(
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
        starts, _ = await self._starts(self._members.live_set(account), account, queue, filters)
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
                return await on(state, call, filters)
            except (NoMatch, BackendUnavailable):
                return []  # nothing there, or down: its messages wait for it

        answers = await asyncio.gather(*(one(state, f) for state, f in wanted))
        merged = merge(answers, _message_id, copies_wait=False)
        return [(wanted[i][0], m) for step in merged.steps for i, m in step]
