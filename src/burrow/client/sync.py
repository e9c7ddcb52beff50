"""The blocking client: `Client` and `Queue` (same operations as the asyncio ones)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TypeVar, Unpack

import httpx

from burrow.client.aio import AsyncEndpoint
from burrow.client.calls import Body
from burrow.client.endpoint import ClientBase, Endpoint, QueueHandle
from burrow.client.events import RECONNECT_DELAY, EventParser, StreamRequest
from burrow.client.loops import WorkOptions, WorkRun, WorkStats
from burrow.client.routing import Raced, blocking, race
from burrow.client.wire import Call, error_for, reaching
from burrow.errors import BackendUnavailable
from burrow.model import Draft, Message

T = TypeVar("T")


class BlockingEndpoint(Endpoint[httpx.Client]):
    """One server of a `Client`."""

    def _connect(self, options: dict[str, Any]) -> httpx.Client:
        return httpx.Client(**options)

    async def send(self, call: Call[T]) -> T:
        """Carry out `call`, blocking: it never suspends (see `routing.blocking`)."""
        with reaching(self.url):
            response = self._http.request(**call.request.arguments(self.timeout))
        return call.result(response)

    def events(self, request: StreamRequest) -> Iterator[Message]:
        """The messages of an SSE stream as they come, for good: a dropped connection
        (or a server whose reads failed) is reconnected to after the last one read."""
        while True:
            try:
                with reaching(self.url), self._http.stream("GET", **request.arguments()) as got:
                    if got.status_code != 200:
                        got.read()
                        raise error_for(got)
                    parser = EventParser()
                    for line in got.iter_lines():
                        message = request.read(parser, line)
                        if message is not None:
                            yield message
            except BackendUnavailable:
                pass
            time.sleep(RECONNECT_DELAY)

    def close(self) -> None:
        self._http.close()


class Client(ClientBase[BlockingEndpoint]):
    """The blocking client: `with Client(url, "account") as client:`.

    `url` may be a list of servers (see docs/client-servers.md). Errors are
    `burrow.errors.BurrowError`s; no server reachable is `BackendUnavailable`.
    """

    def _open(self, url: str) -> BlockingEndpoint:
        return BlockingEndpoint(url, self.headers, self.timeout, self._connections, self._tls)

    async def _race(
        self, probes: list[tuple[BlockingEndpoint, Call[bool]]], seconds: float
    ) -> Raced:
        # Waiting on several servers at once takes an event loop: a short-lived one,
        # with connections of its own, since a blocking request cannot be cancelled.
        return asyncio.run(self._race_async([(s.url, call) for s, call in probes], seconds))

    async def _race_async(self, probes: list[tuple[str, Call[bool]]], seconds: float) -> Raced:
        twins = [AsyncEndpoint(url, self.headers, self.timeout, 1, self._tls) for url, _ in probes]
        try:
            return await race([t.send(c) for t, (_, c) in zip(twins, probes, strict=True)], seconds)
        finally:
            for twin in twins:
                await twin.aclose()

    def send(self, call: Call[T]) -> T:
        """Carry out one call (see `burrow.client.calls`) on one server."""
        return blocking(self._router.send(call))

    def signed_url(self, path: str, methods: list[str], seconds: int = 3600) -> str:
        """A URL that lets anyone call `methods` below `path` (e.g. `/v1.0/acct/queue`)
        for `seconds`, with no token, within this client's token's rights; signed by,
        and pointing at, the (first) server."""
        server = self.servers.all[0]
        return server.url + blocking(server.send(self._signing(path, methods, seconds)))

    def accounts(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of the accounts holding messages ([] if none): all of them, page after
        page, without a `limit`."""
        return blocking(self._operations.accounts(limit, marker))

    def queues(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of this account's queues holding messages ([] if none): all of them
        without a `limit`."""
        return blocking(self._operations.queues(limit, marker))

    def delete(self) -> list[str]:
        """Delete every message of this account, hidden ones too; returns the queues emptied."""
        return blocking(self._operations.delete())

    def queue(self, name: str) -> Queue:
        """A handle on one queue of this account (no I/O)."""
        return Queue(self, name)

    def close(self) -> None:
        for server in self.servers.all:
            server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Queue(QueueHandle[Client]):
    """One queue of one account. Listings answer `[]` where nothing matched.

    With several servers, where each call goes is in docs/client-servers.md.
    """

    def put(
        self, body: Body, id: str | None = None, *, ttl: int | None = None, hide: int | None = None
    ) -> str:
        """Create (or replace, by `id`) a message; returns its id.

        Without `id`, the server makes one (with several servers, the client does,
        to place the message). Text bodies are sent as UTF-8; `ttl` and `hide`
        default to the server's.
        """
        return blocking(self._operations.put(body, id, ttl, hide))

    def put_many(self, items: Iterable[Body | Draft]) -> list[str]:
        """Insert a batch atomically (bodies, or `Draft`s with ids and attributes).

        With several servers the whole batch goes where its first id is placed.
        """
        return blocking(self._operations.put_many(items))

    def get(
        self,
        limit: int | None = None,
        marker: str | None = None,
        match_hidden: bool = False,
        wait: int = 0,
    ) -> list[Message]:
        """Read messages without changing them, oldest first; long polls up to `wait` s.

        Without a `limit`, every matching message, page after page. With several
        servers: with a `limit`, those of the first server that has any; without,
        those of every server, server after server, once one has any.
        """
        return blocking(self._operations.get(limit, marker, match_hidden, wait))

    def get_one(self, id: str) -> Message:
        """One message by id, hidden or not; raises `MessageNotFound`."""
        return blocking(self._operations.get_one(id))

    def claim(self, limit: int = 1, hide: int = 60, wait: int = 0) -> list[Message]:
        """Take up to `limit` visible messages and hide them for `hide` seconds.

        Concurrent claimers never get the same message. Delete it when done; if
        not, it becomes visible again when `hide` runs out. With several servers,
        the messages come from one of them.
        """
        return blocking(self._operations.claim(limit, hide, wait)).messages

    def pop(self, limit: int = 1, wait: int = 0) -> list[Message]:
        """Delete and return up to `limit` visible messages."""
        return blocking(self._operations.pop(limit, wait))

    def update(self, id: str, *, ttl: int | None = None, hide: int | None = None) -> Message:
        """Change one message's attributes (e.g. extend or release a claim); returns it."""
        return blocking(self._operations.update(id, ttl, hide))

    def delete(self, id: str) -> None:
        """Delete one message, hidden or not; raises `MessageNotFound`."""
        blocking(self._operations.delete(id))

    def delete_many(self, ids: Iterable[str]) -> list[str]:
        """Delete messages by id, hidden or not, a hundred per request; returns the ids
        deleted, in the order given (those not there are left out, not an error)."""
        return blocking(self._operations.delete_many(ids))

    def delete_all(self) -> list[str]:
        """Delete every message of the queue, hidden ones too; returns their ids."""
        return blocking(self._operations.delete_all())

    def subscribe(
        self, name: str, start: str = "newest", webhook: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create (or change) the subscription `name` of this queue: a durable cursor
        the server keeps, starting after the queue's last message ("newest") or at its
        first ("oldest"); `webhook` is `{"url": …}` and optionally `secret`,
        `max_attempts`, `dead_letter_queue`. Returns the subscription as the server
        answers it (the webhook's secret only when the server made it). With several
        servers, subscriptions live on the first."""
        return blocking(self._operations.subscribe(name, start, webhook))

    def read(self, name: str, limit: int | None = None, wait: int = 0) -> list[Message]:
        """The messages after the subscription's cursor, hidden ones too ([] if none
        within `wait` seconds); the cursor stays until `ack`."""
        return blocking(self._operations.read(name, limit, wait))

    def ack(self, name: str, id: str) -> None:
        """Move the subscription's cursor to `id` (handled, with all before it)."""
        blocking(self._operations.ack(name, id))

    def work(self, func: Callable[[Message], object], **options: Unpack[WorkOptions]) -> WorkStats:
        """Claim messages and call `func(message)` on each; delete it when that returns.

        Options: `hide` (claim for this many seconds, default 60), `wait` (long poll
        each claim up to this many seconds, default 20), `limit` (messages per
        claim, default 1), `stop` (e.g. a `threading.Event`), `max_messages`.

        A failing `func` is logged and its message left claimed, to reappear when
        `hide` runs out. The loop ends when `stop` is set (checked between claims,
        so within `wait` seconds), after `max_messages`, or, with `wait=0`, when
        the queue has nothing visible. A failing claim (server unreachable, bad
        option) raises. Returns what was done.
        """
        run = WorkRun(self.account, self.name, **options)
        while count := run.next_claim():
            taken = blocking(self._operations.claim(count, run.hide, run.wait))
            for message in run.claimed(taken.messages):
                with run.attempt(message):
                    func(message)
                    blocking(self._operations.delete_taken(taken, message))
        return run.stats

    def stream(
        self, *, marker: str | None = None, subscription: str | None = None
    ) -> Iterator[Message]:
        """Every message after `marker` (or the `subscription`'s cursor; else from the
        queue's start), then each new one as it is put, pushed by the (first) server
        over SSE; never ends. A dropped connection is reconnected to after the last
        message read, so none is missed. With a writer's token and a `subscription`,
        the server moves its cursor as it sends (docs/push.md#streams).
        """
        request = StreamRequest(self.account, self.name, marker, subscription)
        yield from self._client.servers.all[0].events(request)

    def follow(
        self, *, wait: int = 20, marker: str | None = None, match_hidden: bool = False
    ) -> Iterator[Message]:
        """Every message after `marker` (all if None), then each new one as it comes.

        A fan-out read: messages are not claimed or changed. With `wait=0` it ends
        once it has caught up; otherwise it never ends. With several servers it
        keeps a marker on each (`marker` starts all of them).
        """
        follow = self._operations.follow(wait, marker, match_hidden)
        while not follow.done:
            yield from blocking(follow.next())
