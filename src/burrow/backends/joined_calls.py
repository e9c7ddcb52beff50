"""Calls on one queue that wait at the same time go to PostgreSQL as one statement.

A `JoinedCalls` runs one kind of call (PUTs, or deletes by id) whose statement takes
a batch of messages by id. Each queue has a lane: while one statement on it is in
flight, the calls that come wait in order; when it returns, they go together, as one
statement on all their messages (one round trip, one transaction, one WAL flush for
all of them, where each call alone would take its own). The statement handles its
rows in batch order, so the messages keep the order the calls came in, as if each had
gone alone.

A call that names an id already in the batch waits for the next one: one statement
cannot change a row twice, and the second call must see what the first one did. Each
caller gets the answers for its own ids; if the statement fails, each caller of the
batch gets its error, as each would have alone. A caller that gives up while waiting
(its request cancelled) is left out of the batch: nothing of it is done.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from burrow.backends.background import stop_tasks
from burrow.backends.base import DeleteTarget
from burrow.model import NewMessage

# Messages in one joined statement at most (a call with more goes alone): the
# statement's arrays, and the time its callers wait, stay bounded.
MAX_JOINED_MESSAGES = 1000

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass(slots=True)
class _Waiting(Generic[Item, Answer]):
    items: list[Item]
    ids: set[str]
    answer: asyncio.Future[dict[str, Answer]]


class JoinedCalls(Generic[Item, Answer]):
    """The lanes of the queues called on; see the module docstring.

    `run(account, queue, items)` does the items (distinct ids) in one statement and
    gives the answer for each id it found; `id_of` names an item's message.
    """

    def __init__(
        self,
        run: Callable[[str, str, list[Item]], Awaitable[dict[str, Answer]]],
        id_of: Callable[[Item], str],
        max_messages: int = MAX_JOINED_MESSAGES,
    ) -> None:
        self._run = run
        self._id_of = id_of
        self._max_messages = max_messages
        self._lanes: dict[tuple[str, str], deque[_Waiting[Item, Answer]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def call(self, account: str, queue: str, items: list[Item]) -> dict[str, Answer]:
        """The answers for the items' ids that `run` found."""
        ids = {self._id_of(item) for item in items}
        waiting = _Waiting(items, ids, asyncio.get_running_loop().create_future())
        key = (account, queue)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            drain = asyncio.create_task(self._drain(key, lane))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        lane.append(waiting)
        return await waiting.answer

    async def one(self, account: str, queue: str, item: Item) -> Answer | None:
        """The answer for one item, None if `run` did not find its id."""
        return (await self.call(account, queue, [item])).get(self._id_of(item))

    async def stop(self) -> None:
        """End the drains; calls still waiting are cancelled."""
        await stop_tasks(list(self._drains))

    async def _drain(self, key: tuple[str, str], lane: deque[_Waiting[Item, Answer]]) -> None:
        try:
            while lane:
                batch = self._next_batch(lane)
                if batch:
                    await self._run_batch(key, batch)
        finally:
            del self._lanes[key]
            for waiting in lane:  # (only when the drain itself is cancelled)
                waiting.answer.cancel()

    async def _run_batch(self, key: tuple[str, str], batch: list[_Waiting[Item, Answer]]) -> None:
        try:
            found = await self._run(*key, [item for w in batch for item in w.items])
        except Exception as exc:
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        for waiting in batch:
            if not waiting.answer.done():
                waiting.answer.set_result({i: found[i] for i in waiting.ids if i in found})

    def _next_batch(self, lane: deque[_Waiting[Item, Answer]]) -> list[_Waiting[Item, Answer]]:
        """The calls at the head of the lane that fit one statement together."""
        batch: list[_Waiting[Item, Answer]] = []
        ids: set[str] = set()
        while lane:
            waiting = lane[0]
            if waiting.answer.done():  # its caller gave up
                lane.popleft()
                continue
            fits = len(ids) + len(waiting.ids) <= self._max_messages
            if batch and not (fits and ids.isdisjoint(waiting.ids)):
                break
            lane.popleft()
            batch.append(waiting)
            ids |= waiting.ids
        return batch


def id_of_message(message: NewMessage) -> str:
    """The id a PUT's message names (`JoinedCalls.id_of` of PUTs)."""
    return message.id


def id_of_target(target: DeleteTarget) -> str:
    """The id a delete names (`JoinedCalls.id_of` of deletes by id)."""
    return target[0]
