"""Carrying calls to a client's servers: failover, placement, and waiting on all of them.

`Router` is written once, as coroutines, for both clients. The asyncio client
awaits them. The blocking client's servers answer without ever suspending
(their `send` blocks), so `blocking()` runs a routing coroutine to its end in a
single step, with no event loop. Long polling several servers at once is the
one step that needs real concurrency; each client brings its own `race`.

Only `BackendUnavailable` (unreachable, timed out, a 5xx) moves a call on to
another server: any other error is the server's answer, and is raised.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from burrow.client.servers import Servers, unavailable
from burrow.client.wire import Call
from burrow.errors import BackendUnavailable, NotFound
from burrow.model import Message
from burrow.placement import Located

T = TypeVar("T")


class Link(Located, Protocol):
    """One server as the router sees it."""

    async def send(self, call: Call[T]) -> T: ...


L = TypeVar("L", bound=Link)

Reader = Callable[[L, int], Call[T]]
"""The call to make on a server, given how many seconds it may wait there."""


@dataclass(frozen=True, slots=True)
class Raced:
    """How a race of long polls ended: which matched first (an index), which failed."""

    winner: int | None
    failures: dict[int, BackendUnavailable]


Race = Callable[[list[tuple[L, Call[bool]]], float], Awaitable[Raced]]
"""Send each call to its server at once; stop at the first True, or after the seconds."""


@dataclass(frozen=True, slots=True)
class Taken(Generic[L]):
    """Messages read, claimed or popped, and the server that answered with them.

    When nothing was found, `where` is one of the servers that answered empty.
    """

    where: L
    messages: list[Message]


class Router(Generic[L]):
    """Where each kind of call goes, and what happens when a server fails."""

    def __init__(self, servers: Servers[L], race: Race[L]) -> None:
        self.servers = servers
        self._race = race

    async def to(self, server: L, call: Call[T]) -> T:
        """`call` on `server` and no other (it holds what the call is about)."""
        with self.servers.watching(server):
            return await server.send(call)

    async def send(self, call: Call[T]) -> T:
        """`call` on one server: the next in turn, or the ones after it while they fail."""
        return await self._first(self.servers.rotation(), call)

    async def placed(self, key: str, call: Call[T]) -> T:
        """A write: on the first server in `key`'s placement that takes it."""
        return await self._first(self.servers.placement(key), call)

    async def find(self, key: str, call: Call[T]) -> T:
        """A call on one message: on the first server in `key`'s placement that has it."""
        return await self._first(self.servers.placement(key), call, search=True)

    async def _first(self, servers: list[L], call: Call[T], *, search: bool = False) -> T:
        """The first answer among `servers`; with `search`, "not found" moves on too.

        A search that some server failed cannot say the message is absent: it
        raises `BackendUnavailable` rather than the "not found".
        """
        failures: list[BackendUnavailable] = []
        missing: NotFound | None = None
        for server in servers:
            try:
                return await self.to(server, call)
            except BackendUnavailable as error:
                failures.append(error)
            except NotFound as error:
                if not search:
                    raise
                missing = error
        if failures or missing is None:
            raise unavailable(failures)
        raise missing

    async def each(self, ask: Callable[[L], Awaitable[T]], *, every: bool = False) -> list[T]:
        """What `ask(server)` (one call or several, see `to`) returns from each server, in
        their given order.

        By default the servers not skipped are asked and those that fail are
        left out (unless all do). With `every`, every server is asked and any
        failure is raised once all have been: for deletes, which must not pass
        a server over.
        """
        answers: list[T] = []
        failures: list[BackendUnavailable] = []
        for server in self.servers.all if every else self.servers.live():
            try:
                answers.append(await ask(server))
            except BackendUnavailable as error:
                failures.append(error)
        if failures and (every or not answers):
            raise unavailable(failures)
        return answers

    async def take(
        self, read: Reader[L, list[Message]], probe: Reader[L, bool], wait: int
    ) -> Taken[L]:
        """The first non-empty answer to `read` among the servers, waiting up to `wait` s.

        One server is just asked, with the wait. Several: one pass round them
        without waiting; if all are empty, `probe` long polls all of them at
        once (it matches, it does not take), and the first to match starts a new
        pass; until the wait is over. Only one server's answer is returned, so a
        `limit` in `read` holds.
        """
        if self.servers.single:
            (server,) = self.servers.all
            return Taken(server, await self.to(server, read(server, wait)))
        deadline = time.monotonic() + wait
        first: L | None = None
        while True:
            taken = await self._pass(read, first)
            remaining = deadline - time.monotonic()
            if taken.messages or remaining <= 0:
                return taken
            first = await self._wait_any(probe, remaining)
            if first is None:
                return taken

    async def _pass(self, read: Reader[L, list[Message]], first: L | None) -> Taken[L]:
        failures: list[BackendUnavailable] = []
        answered: L | None = None
        for server in self.servers.rotation(first):
            try:
                messages = await self.to(server, read(server, 0))
            except BackendUnavailable as error:
                failures.append(error)
                continue
            if messages:
                return Taken(server, messages)
            answered = server
        if answered is None:
            raise unavailable(failures)
        return Taken(answered, [])

    async def _wait_any(self, probe: Reader[L, bool], seconds: float) -> L | None:
        """The first server where `probe` matches within `seconds` (None if none does)."""
        servers = self.servers.live()
        raced = await self._race([(s, probe(s, math.ceil(seconds))) for s in servers], seconds)
        for index, error in raced.failures.items():
            self.servers.failed(servers[index], error)
        if len(raced.failures) == len(servers):
            raise unavailable(list(raced.failures.values()))
        if raced.winner is None:
            return None
        self.servers.answered(servers[raced.winner])
        return servers[raced.winner]


async def race(probes: Sequence[Awaitable[bool]], seconds: float) -> Raced:
    """Run `probes` at once until one answers True or `seconds` pass; cancel the rest.

    A probe's `BackendUnavailable` is noted and the others go on; any other
    error is raised.
    """
    tasks = [asyncio.ensure_future(probe) for probe in probes]
    pending = set(tasks)
    failures: dict[int, BackendUnavailable] = {}
    try:
        async with asyncio.timeout(seconds):
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                winner = _settle(tasks, done, failures)
                if winner is not None:
                    return Raced(winner, failures)
    except TimeoutError:
        pass
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return Raced(None, failures)


def _settle(
    tasks: Sequence[asyncio.Future[bool]],
    done: AbstractSet[asyncio.Future[bool]],
    failures: dict[int, BackendUnavailable],
) -> int | None:
    """Note the failures among `done`; the index of one that matched, if any."""
    matched: int | None = None
    for task in done:
        index, error = tasks.index(task), task.exception()
        if isinstance(error, BackendUnavailable):
            failures[index] = error
        elif error is not None:
            raise error
        elif task.result():
            matched = index
    return matched


def blocking(operation: Coroutine[Any, Any, T]) -> T:
    """Run a `Router` coroutine whose servers block: it never suspends, so one step ends it."""
    try:
        operation.send(None)
    except StopIteration as finished:
        return cast(T, finished.value)
    operation.close()
    raise RuntimeError("a blocking client operation tried to suspend")
