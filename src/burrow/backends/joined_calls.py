"""Calls on one queue that wait at the same time go to the engine as one statement.

For the backends on a shared engine (PostgreSQL, Redis), where each call costs a round
trip, a transaction or script, and a log flush of its own. A `Lanes` runs one kind of
call: each queue (with whatever else the calls must share) has a lane. A call with
nothing in flight on its lane goes at once, alone, from its caller's task. While one
statement of a lane is in flight, the calls that come wait in order; when it returns,
those at the head of the lane that fit together go as one, from a task of the lane's.
Each caller gets the answer it would have got alone; if the statement fails, each
caller of the batch gets its error, as each would have alone. A caller that gives up
while waiting (its request cancelled) is left out of the batch: nothing of it is done;
one that gives up while its statement is in flight is as any cancelled call.

Two kinds are built on it:
- `JoinedById`: PUTs, or deletes by id. The statement takes all the calls' messages, in
  the order the calls came, and each caller gets the answers for its own ids. A call
  that names an id already in the batch waits for the next one: one statement cannot
  change a row twice, and the second call must see what the first one did.
- `JoinedTakes`: claims (with the same ttl and hide, which hide what they take) or pops
  of a queue's first visible messages. The statement takes as many as all the calls ask
  for, and hands them out in turn; a caller left with none runs alone after it
  (`JoinedTakes.take`), as it would have once the others had taken theirs, so that it
  finds what there is then and a waiter learns when the next hidden message shows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from burrow.backends.background import stop_tasks
from burrow.backends.base import DeleteTarget
from burrow.model import Attributes, Filters, Message, NewMessage

# Messages in one joined statement at most (a call with more goes alone): the
# statement's arrays, and the time its callers wait, stay bounded.
MAX_JOINED_MESSAGES = 1000

Key = TypeVar("Key", bound=Hashable)
Call = TypeVar("Call")
Answer = TypeVar("Answer")
Item = TypeVar("Item")


@dataclass(slots=True)
class _Waiting(Generic[Call, Answer]):
    call: Call
    size: int  # messages it names or asks for
    answer: asyncio.Future[Answer]


class Lanes(Generic[Key, Call, Answer]):
    """The lanes of one kind of call; see the module docstring.

    `run(key, calls)` does the calls of lane `key` as one statement and answers each,
    in order; `ids_of(call)`, if given, names the ids a call changes: a call that names
    one already in the batch waits for the next.
    """

    def __init__(
        self,
        run: Callable[[Key, list[Call]], Awaitable[list[Answer]]],
        ids_of: Callable[[Call], set[str]] | None = None,
        max_messages: int = MAX_JOINED_MESSAGES,
    ) -> None:
        self._run = run
        self._ids_of = ids_of
        self._max_messages = max_messages
        self._lanes: dict[Key, deque[_Waiting[Call, Answer]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def call(self, key: Key, call: Call, size: int) -> Answer:
        """The call's answer, once its batch on lane `key` has run."""
        lane = self._lanes.get(key)
        if lane is None:  # nothing in flight: it goes at once, from the caller's own task
            lane = self._lanes[key] = deque()
            try:
                (answer,) = await self._run(key, [call])
                return answer
            finally:
                self._hand_on(key, lane)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        lane.append(_Waiting(call, size, future))
        return await future

    def _hand_on(self, key: Key, lane: deque[_Waiting[Call, Answer]]) -> None:
        """After a statement: the calls that came meanwhile go on in a drain of their own."""
        if not lane:
            del self._lanes[key]
            return
        drain = asyncio.create_task(self._drain(key, lane))
        self._drains.add(drain)
        drain.add_done_callback(self._drains.discard)

    async def stop(self) -> None:
        """End the drains; calls still waiting are cancelled."""
        await stop_tasks(list(self._drains))

    async def _drain(self, key: Key, lane: deque[_Waiting[Call, Answer]]) -> None:
        try:
            while lane:
                batch = self._next_batch(lane)
                if batch:
                    await self._run_batch(key, batch)
        finally:
            del self._lanes[key]
            for waiting in lane:  # (only when the drain itself is cancelled)
                waiting.answer.cancel()

    async def _run_batch(self, key: Key, batch: list[_Waiting[Call, Answer]]) -> None:
        try:
            answers = await self._run(key, [waiting.call for waiting in batch])
        except Exception as exc:
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(answer)

    def _next_batch(self, lane: deque[_Waiting[Call, Answer]]) -> list[_Waiting[Call, Answer]]:
        """The calls at the head of the lane that fit one statement together."""
        batch: list[_Waiting[Call, Answer]] = []
        named: set[str] = set()
        size = 0
        while lane:
            waiting = lane[0]
            if waiting.answer.done():  # its caller gave up
                lane.popleft()
                continue
            ids = self._ids_of(waiting.call) if self._ids_of is not None else set()
            if batch and (size + waiting.size > self._max_messages or not named.isdisjoint(ids)):
                break
            lane.popleft()
            batch.append(waiting)
            named |= ids
            size += waiting.size
        return batch


# Calls by id -------------------------------------------------------------------------

ById = Callable[[str, str, list[Item]], Awaitable[dict[str, Answer]]]


@dataclass(slots=True)
class _Named(Generic[Item]):
    items: list[Item]
    ids: set[str]


class JoinedById(Generic[Item, Answer]):
    """PUTs or deletes by id; see the module docstring.

    `run(account, queue, items)` does the items (distinct ids) in one statement and
    gives the answer for each id it found; `id_of` names an item's message.
    """

    def __init__(self, run: ById[Item, Answer], id_of: Callable[[Item], str]) -> None:
        self._run_by_id = run
        self._id_of = id_of
        self._lanes = Lanes[tuple[str, str], _Named[Item], dict[str, Answer]](self._run, _ids_named)

    async def call(self, account: str, queue: str, items: list[Item]) -> dict[str, Answer]:
        """The answers for the items' ids that `run` found (the ids must be distinct)."""
        named = _Named(items, {self._id_of(item) for item in items})
        return await self._lanes.call((account, queue), named, len(items))

    async def one(self, account: str, queue: str, item: Item) -> Answer | None:
        """The answer for one item, None if `run` did not find its id."""
        return (await self.call(account, queue, [item])).get(self._id_of(item))

    async def stop(self) -> None:
        await self._lanes.stop()

    async def _run(
        self, key: tuple[str, str], calls: list[_Named[Item]]
    ) -> list[dict[str, Answer]]:
        account, queue = key
        found = await self._run_by_id(account, queue, [item for c in calls for item in c.items])
        return [{i: found[i] for i in call.ids if i in found} for call in calls]


def _ids_named(call: _Named[Item]) -> set[str]:
    return call.ids


def id_of_message(message: NewMessage) -> str:
    """The id a PUT's message names (`JoinedById.id_of` of PUTs)."""
    return message.id


def id_of_target(target: DeleteTarget) -> str:
    """The id a delete names (`JoinedById.id_of` of deletes by id)."""
    return target[0]


# Takes of the first visible messages --------------------------------------------------

# (account, queue, attributes of a claim, or None for a pop, limit) → what it took;
# raises NoMatch when it found nothing.
Take = Callable[[str, str, Attributes | None, int], Awaitable[list[Message]]]
_TakeKey = tuple[str, str, Attributes | None]


def _joinable_take(filters: Filters, attributes: Attributes | None = None) -> int | None:
    """The limit of a claim (`attributes`) or pop that can join others, else None: one
    that takes the first visible messages, as many as a limit, and takes them away (a
    claim hides them, so the next finds the ones after; an update that leaves them
    visible does not), but is no receive (each receive has its own receipt)."""
    if attributes is not None and (not attributes.hide or attributes.receipt is not None):
        return None
    return first_visible_limit(filters)


def first_visible_limit(filters: Filters) -> int | None:
    """The limit of a take of a queue's first visible messages, None for one that takes
    others (after a marker, or hidden ones too) or has no limit. Only these join, here and
    in SQLite's group commit: the messages are then handed out `in_turn`."""
    if filters.marker is not None or filters.match_hidden:
        return None
    return filters.limit or None


def in_turn(items: list[Item], limits: list[int]) -> Iterator[list[Item]]:
    """`items` handed out in order, `limits` at most to each."""
    start = 0
    for limit in limits:
        yield items[start : start + limit]
        start += limit


class JoinedTakes:
    """Claims or pops of a queue's first visible messages; see the module docstring."""

    def __init__(self, take: Take) -> None:
        self._take = take
        self._lanes = Lanes[_TakeKey, int, list[Message]](self._run)

    async def take(
        self,
        account: str,
        queue: str,
        filters: Filters,
        attributes: Attributes | None,
        alone: Callable[[], Awaitable[list[Message]]],
    ) -> list[Message]:
        """A claim (`attributes`) or pop: joined with others if it can be (else, or when
        the joined statement left nothing for it, it runs `alone`)."""
        limit = _joinable_take(filters, attributes)
        if limit is not None:
            taken = await self._lanes.call((account, queue, attributes), limit, limit)
            if taken:
                return taken
        return await alone()

    async def stop(self) -> None:
        await self._lanes.stop()

    async def _run(self, key: _TakeKey, limits: list[int]) -> list[list[Message]]:
        account, queue, attributes = key
        taken = await self._take(account, queue, attributes, sum(limits))
        return list(in_turn(taken, limits))
