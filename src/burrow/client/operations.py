"""The client's operations over its servers, shared by the blocking and asyncio clients.

`calls` says what each operation sends; this module says which servers it goes
to (see docs/client-servers.md), and where an operation reads or deletes
everything, how it pages on each server (see `paging`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Generic

from burrow.client.calls import AccountCalls, Body, QueueCalls, as_draft
from burrow.client.loops import Cursor, message_id
from burrow.client.paging import every_page, until_empty
from burrow.client.routing import L, Router, Taken
from burrow.client.servers import unavailable
from burrow.client.wire import Call
from burrow.ids import new_id
from burrow.model import Draft, Message
from burrow.placement import each_in_its_order, message_key

DELETE_CHUNK = 100
"""Ids per delete request: well within a server's batch limit (1,000 by default)."""

NamesPage = Callable[[int | None, str | None], Call[list[str]]]
"""A listing of names, given its `limit` and `marker`."""


def merged(answers: list[list[str]], limit: int | None = None) -> list[str]:
    """Names from several servers: in server order, each once, at most `limit`."""
    return list(dict.fromkeys(itertools.chain.from_iterable(answers)))[:limit]


async def deleted_everywhere(router: Router[L], call: Call[list[str]]) -> list[str]:
    """What `call` (a delete of everything) deletes on every server, repeated on each
    until it deletes nothing there (a server deletes a page per call)."""

    async def emptied(server: L) -> list[str]:
        return await until_empty(lambda: router.to(server, call))

    return merged(await router.each(emptied, every=True))


class AccountOperations(Generic[L]):
    """Behind `Client` / `AsyncClient`: listings merge all servers, deletes reach each."""

    def __init__(self, router: Router[L], calls: AccountCalls) -> None:
        self._router = router
        self._calls = calls

    async def accounts(self, limit: int | None, marker: str | None) -> list[str]:
        return await self._names(self._calls.accounts, limit, marker)

    async def queues(self, limit: int | None, marker: str | None) -> list[str]:
        return await self._names(self._calls.queues, limit, marker)

    async def _names(self, page: NamesPage, limit: int | None, marker: str | None) -> list[str]:
        """A page of `limit` names from each server, or with no limit all of their names."""

        async def listed(server: L) -> list[str]:
            if limit is not None:
                return await self._router.to(server, page(limit, marker))
            return await every_page(
                lambda after: self._router.to(server, page(None, after)), str, marker
            )

        return merged(await self._router.each(listed), limit)

    async def delete(self) -> list[str]:
        return await deleted_everywhere(self._router, self._calls.delete())


class QueueOperations(Generic[L]):
    """Behind `Queue` / `AsyncQueue`: writes placed by id, reads from any server."""

    def __init__(self, router: Router[L], calls: QueueCalls) -> None:
        self._router = router
        self._calls = calls
        # Several servers: the client makes the ids, to place each message, and
        # so that a write retried after a lost answer replaces, not duplicates.
        self._own_ids = not router.servers.single

    def _key(self, message_id: str | None) -> str:
        return message_key(self._calls.account, self._calls.name, message_id or "")

    async def put(self, body: Body, id: str | None, ttl: int | None, hide: int | None) -> str:
        if id is None and self._own_ids:
            id = new_id()
        return await self._router.placed(self._key(id), self._calls.put(body, id, ttl, hide))

    async def put_many(self, items: Iterable[Body | Draft]) -> list[str]:
        drafts = [as_draft(item) for item in items]
        if self._own_ids:
            drafts = [d if d.id else dataclasses.replace(d, id=new_id()) for d in drafts]
        first = drafts[0].id if drafts else None
        return await self._router.placed(self._key(first), self._calls.put_many(drafts))

    async def get(
        self, limit: int | None, marker: str | None, match_hidden: bool, wait: int
    ) -> list[Message]:
        """With a limit, the first server's messages; with none, every server's, each
        server's in order, once one of them has a message (within `wait`)."""
        taken = await self._router.take(
            lambda _, seconds: self._calls.get(limit, marker, match_hidden, seconds),
            lambda _, seconds: self._calls.probe(marker, match_hidden, seconds),
            wait,
        )
        if limit is not None or not taken.messages:
            return taken.messages

        async def listed(server: L) -> list[Message]:
            first = taken.messages if server is taken.where else None
            return await every_page(
                lambda after: self._router.to(
                    server, self._calls.get(None, after, match_hidden, 0)
                ),
                message_id,
                marker,
                first,
            )

        return list(itertools.chain.from_iterable(await self._router.each(listed)))

    async def claim(self, limit: int, hide: int, wait: int) -> Taken[L]:
        return await self._router.take(
            lambda _, seconds: self._calls.claim(limit, hide, seconds), self._visible, wait
        )

    async def pop(self, limit: int, wait: int) -> list[Message]:
        taken = await self._router.take(
            lambda _, seconds: self._calls.pop(limit, seconds), self._visible, wait
        )
        return taken.messages

    def _visible(self, _: L, seconds: int) -> Call[bool]:
        return self._calls.probe(None, False, seconds)

    async def get_one(self, message_id: str) -> Message:
        return await self._router.find(self._key(message_id), self._calls.get_one(message_id))

    async def update(self, message_id: str, ttl: int | None, hide: int | None) -> Message:
        call = self._calls.update(message_id, ttl, hide)
        return await self._router.find(self._key(message_id), call)

    async def delete(self, message_id: str) -> None:
        await self._router.find(self._key(message_id), self._calls.delete(message_id))

    async def delete_many(self, message_ids: Iterable[str]) -> list[str]:
        """Each message on the first server in its placement that holds it: the ids a
        server did not delete go on to their next server. The ids deleted, in order.

        If a server failed and some ids were found nowhere, raises `BackendUnavailable`
        (the others are deleted; deleting them again deletes nothing).
        """
        wanted = list(dict.fromkeys(message_ids))

        async def delete(server: L, ids: list[str]) -> list[str]:
            gone: list[str] = []
            for start in range(0, len(ids), DELETE_CHUNK):
                call = self._calls.delete_many(ids[start : start + DELETE_CHUNK])
                chunk: list[str] = await self._router.to(server, call)
                gone += chunk
            return gone

        placement = self._router.servers.placement
        deleted, failures = await each_in_its_order(
            wanted, lambda i: placement(self._key(i)), delete
        )
        if failures and len(deleted) < len(wanted):
            raise unavailable(failures)
        return [i for i in wanted if i in deleted]

    async def delete_taken(self, taken: Taken[L], message: Message) -> None:
        """Delete a claimed message on the server it was claimed from."""
        await self._router.to(taken.where, self._calls.delete(message.id))

    async def delete_all(self) -> list[str]:
        return await deleted_everywhere(self._router, self._calls.delete_all())

    def follow(self, wait: int, marker: str | None, match_hidden: bool) -> Follow[L]:
        return Follow(self._router, self._calls, wait, marker, match_hidden)

    async def subscribe(
        self, name: str, start: str, webhook: dict[str, Any] | None
    ) -> dict[str, Any]:
        return await self._router.send(self._calls.subscribe(name, start, webhook))

    async def read(self, name: str, limit: int | None, wait: int) -> list[Message]:
        return await self._router.send(self._calls.read(name, limit, wait))

    async def ack(self, name: str, message_id: str) -> None:
        await self._router.send(self._calls.ack(name, message_id))


class Follow(Generic[L]):
    """A fan-out reader over every server, with a cursor (its own marker) on each."""

    def __init__(
        self,
        router: Router[L],
        calls: QueueCalls,
        wait: int,
        marker: str | None,
        match_hidden: bool,
    ) -> None:
        self._router = router
        self._calls = calls
        self._wait = wait
        self._match_hidden = match_hidden
        self._cursors = {
            server.url: Cursor(message_id, marker, wait) for server in router.servers.all
        }
        self.done = False
        """Set once a read without long polling found nothing new anywhere."""

    async def next(self) -> list[Message]:
        """The new messages of one server (or [] after a wait with none)."""
        taken = await self._router.take(self._read, self._probe, self._wait)
        cursor = self._cursors[taken.where.url]
        fresh = cursor.advance(taken.messages)
        self.done = cursor.done
        return fresh

    def _read(self, server: L, seconds: int) -> Call[list[Message]]:
        marker = self._cursors[server.url].marker
        return self._calls.get(None, marker, self._match_hidden, seconds)

    def _probe(self, server: L, seconds: int) -> Call[bool]:
        return self._calls.probe(self._cursors[server.url].marker, self._match_hidden, seconds)
