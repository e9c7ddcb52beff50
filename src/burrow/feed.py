"""A queue's messages as a stream (SSE, WebSocket): read in order after a marker, into a
bounded buffer that its writer empties.

A stream sees every message of its queue once, in queue order, hidden or not: it is a
reader of its own, like a fan-out reader with a marker, not a worker (a hide is a work
queue's). Its reader long-polls the backend only while the buffer has room, so a
client that reads slowly holds at most `stream_buffer` messages on the server (and
the socket's own buffer): it then pauses the backend reads, not the server.

A v1.0 listing after a marker it no longer finds (the message expired or was deleted)
starts from the queue's start. So the feed keeps when the last message it read was put
and which messages put at that same time it read; a page whose first message is older
than that makes it check (one `get_message`) whether its marker still exists, and if
not it skips every message it has passed already rather than read them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from burrow.audit import escaped
from burrow.errors import BurrowError, NoMatch, NotFound
from burrow.model import Filters, Message
from burrow.service import Service

logger = logging.getLogger(__name__)

POLL_SECONDS = 20  # each long poll of the backend (a shutdown answers it at once)


class Ended(Exception):
    """The feed has nothing more to give: the server is shutting down."""


@dataclass(slots=True)
class Cursor:
    """Where a feed is: the last message read (`marker`), when it was put (0.0: not
    known), and the ids read among those put at that same time."""

    marker: str | None
    sent: float = 0.0
    same_time: set[str] = field(default_factory=set)

    def passed(self, message: Message) -> bool:
        """Whether `message` was put before the marker's message (or is read already)."""
        return message.sent < self.sent or (
            message.sent == self.sent and message.id in self.same_time
        )

    def advance(self, message: Message) -> None:
        if message.sent != self.sent:
            self.sent = message.sent
            self.same_time = set()
        self.same_time.add(message.id)
        self.marker = message.id


_END = None  # what the reader puts in the buffer when it stops


async def open_feed(
    service: Service,
    account: str,
    queue: str,
    marker: str | None,
    subscription: str | None = None,
    acks: bool = False,
) -> Feed:
    """A feed of the queue after `marker` (None or empty: from its start, or with a
    `subscription` from its cursor), ids checked. With `acks`, each message written
    to the client moves the subscription's cursor (`Feed.written`)."""
    service.check_id("queue", queue)
    if marker:
        service.check_id("marker", marker)
    cursor = Cursor(marker or None)
    if subscription is not None:
        found = await service.subscriptions.get(account, queue, subscription)  # (404)
        if not marker and found.cursor is not None:
            cursor = Cursor(found.cursor, found.cursor_sent, {found.cursor})
    buffer = service.limits_for(account).stream_buffer
    return Feed(service, account, queue, cursor, buffer, subscription if acks else None)


class Feed:
    """One stream's reader (`run`, a task of its own) and buffer (`next`)."""

    def __init__(
        self,
        service: Service,
        account: str,
        queue: str,
        cursor: Cursor,
        buffer: int,
        acking: str | None = None,
    ) -> None:
        self.service = service
        self.account = account
        self.queue = queue
        self.cursor = cursor
        self.acking = acking  # the subscription whose cursor follows the writes
        self._buffer: asyncio.Queue[Message | BurrowError | None] = asyncio.Queue(buffer)
        self._skipping = False  # the marker was lost: passed messages come again

    async def run(self) -> None:
        """Read the queue into the buffer until the server shuts down; a backend error
        ends the feed too, and `next` raises it."""
        try:
            await self._start()
            buffer = self._buffer
            while not self.service.draining:
                room = max(1, buffer.maxsize - buffer.qsize())  # one over, at most
                for message in await self._page(room):
                    await buffer.put(message)
        except BurrowError as error:
            await self._buffer.put(error)
        except Exception:
            logger.exception("a stream of %s/%s failed", escaped(self.account), escaped(self.queue))
            await self._buffer.put(BurrowError("internal error"))
        else:
            await self._buffer.put(_END)

    async def serve(self, *workers: Coroutine[Any, Any, None]) -> None:
        """Read (`run`) while `workers` (a writer, a reader of the client) run; once the
        first of them ends, the rest and the reads are stopped."""
        tasks = [asyncio.create_task(self.run())]
        tasks += [asyncio.create_task(worker) for worker in workers]
        try:
            await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def written(self, message: Message) -> None:
        """`message` has been written to the client: the subscription's cursor moves
        past it, if this feed moves one."""
        if self.acking is not None:
            await self.service.subscriptions.ack(self.account, self.queue, self.acking, message.id)

    async def next(self) -> Message:
        """The next message; raises `Ended`, or the error that ended the reads."""
        item = await self._buffer.get()
        if isinstance(item, Message):
            return item
        self._buffer.put_nowait(item)  # any later call ends too
        if item is None:
            raise Ended
        raise item

    async def _start(self) -> None:
        """Learn when the starting marker's message was put (if it is still there)."""
        marker = self.cursor.marker
        if marker is not None and not self.cursor.sent:
            try:
                found = await self.service.get_message(self.account, self.queue, marker)
            except NotFound:
                return  # a listing after it starts at the queue's start, as v1.0's does
            self.cursor.advance(found)

    async def _page(self, limit: int) -> list[Message]:
        """The next messages after the cursor (at most `limit`), the cursor moved past
        them; empty when a long poll found none."""
        cursor = self.cursor
        while True:
            try:
                page = await self.service.get_messages(
                    self.account,
                    self.queue,
                    Filters(limit, cursor.marker, match_hidden=True),
                    POLL_SECONDS,
                )
            except NoMatch:
                return []
            if self._skipping or (cursor.passed(page[0]) and not await self._marker_exists()):
                self._skipping = True
                fresh = [message for message in page if not cursor.passed(message)]
                if not fresh:
                    cursor.marker = page[-1].id  # past what was read before, no wait
                    continue
                self._skipping = False
                page = fresh
            for message in page:
                cursor.advance(message)
            return page

    async def _marker_exists(self) -> bool:
        assert self.cursor.marker is not None  # (a cursor with a put time has a marker)
        try:
            await self.service.get_message(self.account, self.queue, self.cursor.marker)
        except NotFound:
            return False
        return True
