"""The blocking client: `Client` and `Queue` (same operations as the asyncio ones)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TypeVar, Unpack

import httpx

from burrow.client.calls import Body
from burrow.client.endpoint import Endpoint, QueueHandle
from burrow.client.loops import Cursor, WorkOptions, WorkRun, WorkStats
from burrow.client.wire import Call, reaching
from burrow.model import Draft, Message

T = TypeVar("T")


class Client(Endpoint[httpx.Client]):
    """The blocking client: `with Client(url, "account") as client:`.

    Errors are `burrow.errors.BurrowError`s; an unreachable server is
    `BackendUnavailable`.
    """

    def _connect(self, options: dict[str, Any]) -> httpx.Client:
        return httpx.Client(**options)

    def send(self, call: Call[T]) -> T:
        """Carry out one call (see `burrow.client.calls`)."""
        with reaching(self.url):
            response = self._http.request(**call.request.arguments(self.timeout))
        return call.result(response)

    def accounts(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of the accounts holding messages ([] if none)."""
        return self.send(self._calls.accounts(limit, marker))

    def queues(self, limit: int | None = None, marker: str | None = None) -> list[str]:
        """Names of this account's queues holding messages ([] if none)."""
        return self.send(self._calls.queues(limit, marker))

    def delete(self) -> list[str]:
        """Delete every message of this account, hidden ones too; returns the queues emptied."""
        return self.send(self._calls.delete())

    def queue(self, name: str) -> Queue:
        """A handle on one queue of this account (no I/O)."""
        return Queue(self, name)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Queue(QueueHandle[Client]):
    """One queue of one account. Listings answer `[]` where nothing matched."""

    def put(
        self, body: Body, id: str | None = None, *, ttl: int | None = None, hide: int | None = None
    ) -> str:
        """Create (or replace, by `id`) a message; the server picks the id if none is given.

        Text bodies are sent as UTF-8; `ttl` and `hide` default to the server's.
        """
        return self._client.send(self._calls.put(body, id, ttl, hide))

    def put_many(self, items: Iterable[Body | Draft]) -> list[str]:
        """Insert a batch atomically (bodies, or `Draft`s with ids and attributes)."""
        return self._client.send(self._calls.put_many(items))

    def get(
        self,
        limit: int | None = None,
        marker: str | None = None,
        match_hidden: bool = False,
        wait: int = 0,
    ) -> list[Message]:
        """Read messages without changing them, oldest first; long polls up to `wait` s."""
        return self._client.send(self._calls.get(limit, marker, match_hidden, wait))

    def get_one(self, id: str) -> Message:
        """One message by id, hidden or not; raises `MessageNotFound`."""
        return self._client.send(self._calls.get_one(id))

    def claim(self, limit: int = 1, hide: int = 60, wait: int = 0) -> list[Message]:
        """Take up to `limit` visible messages and hide them for `hide` seconds.

        Concurrent claimers never get the same message. Delete it when done; if
        not, it becomes visible again when `hide` runs out.
        """
        return self._client.send(self._calls.claim(limit, hide, wait))

    def pop(self, limit: int = 1, wait: int = 0) -> list[Message]:
        """Delete and return up to `limit` visible messages."""
        return self._client.send(self._calls.pop(limit, wait))

    def update(self, id: str, *, ttl: int | None = None, hide: int | None = None) -> Message:
        """Change one message's attributes (e.g. extend or release a claim); returns it."""
        return self._client.send(self._calls.update(id, ttl, hide))

    def delete(self, id: str) -> None:
        """Delete one message, hidden or not; raises `MessageNotFound`."""
        self._client.send(self._calls.delete(id))

    def delete_all(self) -> list[str]:
        """Delete every message of the queue, hidden ones too; returns their ids."""
        return self._client.send(self._calls.delete_all())

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
            for message in run.claimed(self.claim(count, run.hide, run.wait)):
                with run.attempt(message):
                    func(message)
                    self.delete(message.id)
        return run.stats

    def follow(
        self, *, wait: int = 20, marker: str | None = None, match_hidden: bool = False
    ) -> Iterator[Message]:
        """Every message after `marker` (all if None), then each new one as it comes.

        A fan-out read: messages are not claimed or changed. With `wait=0` it ends
        once it has caught up; otherwise it never ends.
        """
        cursor = Cursor(marker, wait)
        while not cursor.done:
            found = self.get(marker=cursor.marker, match_hidden=match_hidden, wait=wait)
            yield from cursor.advance(found)
