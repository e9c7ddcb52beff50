"""Which of a client's servers to try, in what order, and which to skip for a while.

A message's id places it: its servers are ranked by rendezvous (highest random
weight) hashing of (account, queue, id) with each server's URL, and a write goes
to the first of that ranking that can take it. Adding a server moves only the
ids it now ranks first for, about 1/N of them. Reads have no id to place: they
go round the servers in turn, so that none is starved.

A server that fails (unreachable, timed out, 5xx) is skipped for a backoff that
starts at a second and doubles, up to 30 s, while it keeps failing; the first
call after the backoff tries it again, and an answer clears it. When every
server is in backoff, they are all tried anyway: skipping them all would only
fail without asking.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from burrow.breaker import Breaker
from burrow.errors import BackendUnavailable, BurrowError
from burrow.placement import Located, rendezvous

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0


E = TypeVar("E", bound=Located)


class Servers(Generic[E]):
    """A client's servers (each with a `url`), their health and the order to try them in.

    Shared by the threads using one client without a lock: two failures racing
    can at worst set a backoff one step off.
    """

    def __init__(self, servers: Sequence[E], clock: Callable[[], float] = time.monotonic) -> None:
        if not servers:
            raise ValueError("a client needs at least one server URL")
        urls = [server.url for server in servers]
        if len(set(urls)) != len(urls):
            raise ValueError(f"a server URL is given twice: {', '.join(urls)}")
        self.all = tuple(servers)
        self._health = {server.url: Breaker(FIRST_BACKOFF, MAX_BACKOFF) for server in servers}
        self._clock = clock
        self._turns = itertools.count()

    @property
    def single(self) -> bool:
        return len(self.all) == 1

    def healthy(self, server: E) -> bool:
        return self._health[server.url].usable(self._clock())

    def placement(self, key: str) -> list[E]:
        """Every server in `key`'s rendezvous order, the skipped ones last."""
        ranked = rendezvous(key, self.all)
        return sorted(ranked, key=lambda s: not self.healthy(s))

    def rotation(self, first: E | None = None) -> list[E]:
        """The servers not skipped (all if every one is), from the next in turn or `first`."""
        start = self.all.index(first) if first is not None else next(self._turns) % len(self.all)
        return self.live(self.all[start:] + self.all[:start])

    def live(self, servers: Sequence[E] | None = None) -> list[E]:
        """`servers` (default: all, in the given order) not skipped; all of them if none is."""
        servers = self.all if servers is None else servers
        return [s for s in servers if self.healthy(s)] or list(servers)

    @contextlib.contextmanager
    def watching(self, server: E) -> Iterator[None]:
        """Around one exchange with `server`: unavailability skips it, any answer clears it."""
        try:
            yield
        except BackendUnavailable as error:
            self.failed(server, error)
            raise
        except BurrowError:
            self.answered(server)
            raise
        self.answered(server)

    def failed(self, server: E, error: BurrowError) -> None:
        health = self._health[server.url]
        if not health.failed(self._clock()) or self.single:
            return  # skipped already, or alone (then the error raised says it all)
        logger.warning(
            "%s: skipped for %g s: %s",
            server.url,
            health.backoff,
            error.message,
            extra={"action": "server-down"},
        )

    def answered(self, server: E) -> None:
        if self._health[server.url].answered() and not self.single:
            logger.info("%s: answering again", server.url, extra={"action": "server-up"})


def unavailable(errors: Sequence[BackendUnavailable]) -> BackendUnavailable:
    """The error for a call no server could answer (the one error if one server was tried).

    Its `retry_after` is the shortest any server asked for: one of them may answer then.
    """
    if len(errors) == 1:
        return errors[0]
    waits = [e.retry_after for e in errors if e.retry_after is not None]
    message = "no server answered: " + "; ".join(e.message for e in errors)
    return BackendUnavailable(message, min(waits, default=None))
