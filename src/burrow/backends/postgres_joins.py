"""PUTs to one queue that wait at the same time go to PostgreSQL as one statement.

Each queue has a lane: while one statement of PUTs to it is in flight, the PUTs that
come wait in order; when it returns, they go together, as one upsert of all their
messages (one round trip, one transaction, one WAL flush for all of them, where each
PUT alone would take its own). The statement numbers its rows in batch order, so the
messages keep the order the PUTs came in, as if each had gone alone.

A PUT that names an id already in the batch waits for the next one: one upsert cannot
touch a row twice, and the second PUT must see the first one's message. Each caller
gets its own messages' answers; if the statement fails, each caller of the batch gets
its error, as each would have alone. A caller that gives up while waiting (its request
cancelled) is left out of the batch: nothing of it is written.

Only PUTs without a quota join (see `PostgresBackend.put_messages`): one under a quota
counts what it leaves in a transaction of its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from burrow.backends.background import stop_tasks
from burrow.model import NewMessage

# Messages in one joined statement at most (a PUT larger than that goes alone): the
# statement's arrays, and the time its callers wait, stay bounded.
MAX_JOINED_MESSAGES = 1000

# (account, queue, messages with distinct ids) → whether each id was created.
Put = Callable[[str, str, list[NewMessage]], Awaitable[dict[str, bool]]]


@dataclass(slots=True)
class _Waiting:
    messages: list[NewMessage]
    answer: asyncio.Future[list[bool]]


class JoinedPuts:
    """The lanes of the queues being written to; see the module docstring."""

    def __init__(self, put: Put, max_messages: int = MAX_JOINED_MESSAGES) -> None:
        self._put = put
        self._max_messages = max_messages
        self._lanes: dict[tuple[str, str], deque[_Waiting]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def put(self, account: str, queue: str, messages: list[NewMessage]) -> list[bool]:
        """Whether each message was created; the ids must be distinct."""
        waiting = _Waiting(messages, asyncio.get_running_loop().create_future())
        key = (account, queue)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            drain = asyncio.create_task(self._drain(key, lane))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        lane.append(waiting)
        return await waiting.answer

    async def stop(self) -> None:
        """End the drains; PUTs still waiting are cancelled."""
        await stop_tasks(list(self._drains))

    async def _drain(self, key: tuple[str, str], lane: deque[_Waiting]) -> None:
        try:
            while lane:
                batch = self._next_batch(lane)
                if batch:
                    await self._run(key, batch)
        finally:
            del self._lanes[key]
            for waiting in lane:  # (only when the drain itself is cancelled)
                waiting.answer.cancel()

    async def _run(self, key: tuple[str, str], batch: list[_Waiting]) -> None:
        try:
            created = await self._put(*key, [m for w in batch for m in w.messages])
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
                waiting.answer.set_result([created[m.id] for m in waiting.messages])

    def _next_batch(self, lane: deque[_Waiting]) -> list[_Waiting]:
        """The PUTs at the head of the lane that fit one statement together."""
        batch: list[_Waiting] = []
        ids: set[str] = set()
        while lane:
            waiting = lane[0]
            if waiting.answer.done():  # its caller gave up
                lane.popleft()
                continue
            named = {m.id for m in waiting.messages}
            fits = len(ids) + len(named) <= self._max_messages and ids.isdisjoint(named)
            if batch and not fits:
                break
            lane.popleft()
            batch.append(waiting)
            ids |= named
        return batch
