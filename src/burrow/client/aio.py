"""The asyncio client: `AsyncClient` (with the Backend operations) and `AsyncQueue`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, Unpack

import httpx

from burrow.client import calls
from burrow.client.calls import Body
from burrow.client.endpoint import ClientBase, Endpoint, QueueHandle
from burrow.client.loops import WorkOptions, WorkRun, WorkStats
from burrow.client.routing import Raced, race
from burrow.client.wire import Call, reaching
from burrow.model import Draft, Message

P = ParamSpec("P")
T = TypeVar("T")


def _operation(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """An `AsyncClient` method taking `build`'s arguments and sending its call."""

    async def operation(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    operation.__name__ = build.__name__
    operation.__qualname__ = f"AsyncClient.{build.__name__}"
    operation.__doc__ = build.__doc__
    return operation


class AsyncEndpoint(Endpoint[httpx.AsyncClient]):
    """One server of an `AsyncClient`."""

    def _connect(self, options: dict[str, Any]) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def send(self, call: Call[T]) -> T:
        """Carry out `call` on this server."""
        with reaching(self.url):
            response = await self._http.request(**call.request.arguments(self.timeout))
        return call.result(response)

    async def aclose(self) -> None:
        await self._http.aclose()


class AsyncClient(ClientBase[AsyncEndpoint]):
    """The asyncio client: `async with AsyncClient(url, "account") as client:`.

    `url` may be a list of servers (see docs/client-servers.md). Besides the
    friendly calls (`accounts()`, `queues()`, `queue(name)`, …), it offers the
    operations of `burrow.backends.base.Backend` with the arguments and
    documentation of `burrow.client.calls`, so that the `http` backend is a
    thin adapter: nothing found raises `NoMatch` or `MessageNotFound`, every
    failure is a `burrow.errors.BurrowError` (an unreachable server is
    `BackendUnavailable`), `wait` long polls, and `detail` trims what comes
    back (`Detail.NONE` returns `[]`). Each of those goes to one server.
    """

    def _open(self, url: str) -> AsyncEndpoint:
        return AsyncEndpoint(url, self.headers, self.timeout, self._connections, self._tls)

    async def _race(self, probes: list[tuple[AsyncEndpoint, Call[bool]]], seconds: float) -> Raced:
        return await race([server.send(call) for server, call in probes], seconds)

    async def send(self, call: Call[T]) -> T:
        """Carry out one call (see `burrow.client.calls`) on one server."""
        return await self._router.send(call)

    async def signed_url(self, path: str, methods: list[str], seconds: int = 3600) -> str:
        """A URL that lets anyone call `methods` below `path` for `seconds`, with no
        token, within this client's token's rights; signed by, and pointing at, the
        (first) server."""
        server = self.servers.all[0]
        return server.url + await server.send(self._signing(path, methods, seconds))

    async def accounts(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of the accounts holding messages ([] if none; all without a `limit`)."""
        return await self._operations.accounts(limit, marker)

    async def queues(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of this account's queues holding messages ([] if none; all without a `limit`)."""
        return await self._operations.queues(limit, marker)

    async def delete(self) -> list[str]:
        """Delete every message of this account, hidden ones too; returns the queues emptied."""
        return await self._operations.delete()

    def queue(self, name: str) -> AsyncQueue:
        """A handle on one queue of this account (no I/O)."""
        return AsyncQueue(self, name)

    async def aclose(self) -> None:
        for server in self.servers.all:
            await server.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # The Backend operations
    get_accounts = _operation(calls.get_accounts)
    delete_accounts = _operation(calls.delete_accounts)
    get_queues = _operation(calls.get_queues)
    delete_queues = _operation(calls.delete_queues)
    get_messages = _operation(calls.get_messages)
    update_messages = _operation(calls.update_messages)
    delete_messages = _operation(calls.delete_messages)
    put_messages = _operation(calls.put_messages)
    get_message = _operation(calls.get_message)
    update_message = _operation(calls.update_message)
    delete_message = _operation(calls.delete_message)
    delete_listed_messages = _operation(calls.delete_listed_messages)
    count_messages = _operation(calls.count_messages)
    get_queue_info = _operation(calls.get_queue_info)
    set_queue_info = _operation(calls.set_queue_info)
    delete_queue_info = _operation(calls.delete_queue_info)
    list_queue_infos = _operation(calls.list_queue_infos)
    get_subscription = _operation(calls.get_subscription)
    set_subscription = _operation(calls.set_subscription)
    delete_subscription = _operation(calls.delete_subscription)
    list_subscriptions = _operation(calls.list_subscriptions)
    list_all_subscriptions = _operation(calls.list_all_subscriptions)


class AsyncQueue(QueueHandle[AsyncClient]):
    """One queue; see `burrow.client.Queue` for the blocking twin."""

    async def put(
        self, body: Body, id: str | None = None, *, ttl: int | None = None, hide: int | None = None
    ) -> str:
        """Create (or replace, by `id`) a message; without `id` one is made for it."""
        return await self._operations.put(body, id, ttl, hide)

    async def put_many(self, items: Iterable[Body | Draft]) -> list[str]:
        """Insert a batch atomically; returns the ids in order."""
        return await self._operations.put_many(items)

    async def get(
        self,
        limit: int | None = None,
        marker: str | None = None,
        match_hidden: bool = False,
        wait: int = 0,
    ) -> list[Message]:
        """Read messages without changing them ([] if none within `wait` seconds); all of
        them without a `limit` (see `Queue.get`)."""
        return await self._operations.get(limit, marker, match_hidden, wait)

    async def get_one(self, id: str) -> Message:
        """One message by id, hidden or not; raises `MessageNotFound`."""
        return await self._operations.get_one(id)

    async def claim(self, limit: int = 1, hide: int = 60, wait: int = 0) -> list[Message]:
        """Take up to `limit` visible messages, hiding them from others for `hide` seconds."""
        return (await self._operations.claim(limit, hide, wait)).messages

    async def subscribe(
        self, name: str, start: str = "newest", webhook: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create (or change) a subscription (see `Queue.subscribe`)."""
        return await self._operations.subscribe(name, start, webhook)

    async def read(self, name: str, limit: int | None = None, wait: int = 0) -> list[Message]:
        """The messages after the subscription's cursor ([] if none within `wait` s)."""
        return await self._operations.read(name, limit, wait)

    async def ack(self, name: str, id: str) -> None:
        """Move the subscription's cursor to `id`."""
        await self._operations.ack(name, id)

    async def pop(self, limit: int = 1, wait: int = 0) -> list[Message]:
        """Delete and return up to `limit` visible messages."""
        return await self._operations.pop(limit, wait)

    async def update(self, id: str, *, ttl: int | None = None, hide: int | None = None) -> Message:
        """Change one message's attributes (e.g. extend or release a claim)."""
        return await self._operations.update(id, ttl, hide)

    async def delete(self, id: str) -> None:
        """Delete one message; raises `MessageNotFound`."""
        await self._operations.delete(id)

    async def delete_many(self, ids: Iterable[str]) -> list[str]:
        """Delete messages by id; returns those deleted (see `Queue.delete_many`)."""
        return await self._operations.delete_many(ids)

    async def delete_all(self) -> list[str]:
        """Delete every message, hidden ones too; returns their ids."""
        return await self._operations.delete_all()

    async def work(
        self, func: Callable[[Message], Awaitable[object]], **options: Unpack[WorkOptions]
    ) -> WorkStats:
        """Claim messages and `await func(message)` on each; delete it when that succeeds.

        The options and the ways the loop ends are `Queue.work`'s (`stop` can be an
        `asyncio.Event`); cancelling the task ends it at once.
        """
        run = WorkRun(self.account, self.name, **options)
        while count := run.next_claim():
            taken = await self._operations.claim(count, run.hide, run.wait)
            for message in run.claimed(taken.messages):
                with run.attempt(message):
                    await func(message)
                    await self._operations.delete_taken(taken, message)
        return run.stats

    async def follow(
        self, *, wait: int = 20, marker: str | None = None, match_hidden: bool = False
    ) -> AsyncIterator[Message]:
        """Every message from `marker` on, then each new one as it comes (fan-out).

        With `wait=0` it ends when it has caught up; otherwise it never ends.
        """
        follow = self._operations.follow(wait, marker, match_hidden)
        while not follow.done:
            for message in await follow.next():
                yield message
