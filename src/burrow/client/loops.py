"""Bookkeeping of the client's long-running helpers, shared by the sync and async queues.

`WorkRun` drives `Queue.work`: how many messages to claim next, when to stop,
and what to do when a handler fails. `Cursor` drives `Queue.follow`, a fan-out
reader that walks a queue with `marker` and long polls, and the listings that
read everything page after page (`paging`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypedDict, TypeVar

from burrow.model import Message

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Stop(Protocol):
    """Anything with `is_set()`: a `threading.Event` or an `asyncio.Event`."""

    def is_set(self) -> bool: ...


@dataclass(slots=True)
class WorkStats:
    """What a `work` loop did."""

    done: int = 0
    """Messages handled without error and then deleted."""
    failed: int = 0
    """Messages whose handler (or delete) raised: left to reappear when the claim expires."""

    @property
    def handled(self) -> int:
        return self.done + self.failed


class WorkOptions(TypedDict, total=False):
    """The keyword options of `Queue.work` / `AsyncQueue.work`."""

    hide: int
    wait: int
    limit: int
    stop: Stop | None
    max_messages: int | None


class WorkRun:
    """One `work` loop: claims, stop conditions and the handling of failures."""

    def __init__(
        self,
        account: str,
        queue: str,
        *,
        hide: int = 60,
        wait: int = 20,
        limit: int = 1,
        stop: Stop | None = None,
        max_messages: int | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if max_messages is not None and max_messages < 0:
            raise ValueError("max_messages must not be negative")
        self.stats = WorkStats()
        self._log_extra = {"tenant": account, "queue": queue, "action": "work"}
        self.hide = hide
        self.wait = wait
        self._limit = limit
        self._stop = stop
        self._max = max_messages
        self._drained = False

    def next_claim(self) -> int:
        """How many messages to claim next; 0 once the run is over."""
        if self._drained or (self._stop is not None and self._stop.is_set()):
            return 0
        if self._max is None:
            return self._limit
        return min(self._limit, self._max - self.stats.handled)

    def claimed(self, messages: list[Message]) -> list[Message]:
        """Note a claim's result; without long polling, an empty claim ends the run."""
        if not messages and self.wait == 0:
            self._drained = True
        return messages

    @contextlib.contextmanager
    def attempt(self, message: Message) -> Iterator[None]:
        """Around handling and deleting one message: a failure is logged, not raised.

        The message stays claimed (hidden) and comes back when its hide runs out,
        which is how a queue retries. Only `Exception`s are caught, so Ctrl-C and
        task cancellation still end the loop.
        """
        try:
            yield
        except Exception:
            self.stats.failed += 1
            logger.exception(
                "message %r failed; it will reappear", message.id, extra=self._log_extra
            )
        else:
            self.stats.done += 1


def message_id(message: Message) -> str:
    return message.id


class Cursor(Generic[T]):
    """Where a reader walking a listing with `marker` stands: the last id seen (`key`
    of an item), and the ids seen lately (the last `memory` of them; None: all).

    When the marker's item is gone (a message popped or expired, a queue emptied)
    the server starts again from the beginning; ids seen are then skipped rather
    than delivered twice.
    """

    def __init__(
        self,
        key: Callable[[T], str],
        marker: str | None,
        wait: int,
        memory: int | None = 10_000,
    ) -> None:
        self.marker = marker
        self.done = False
        self._key = key
        self._wait = wait
        self._memory = memory
        self._seen: dict[str, None] = {} if marker is None else {marker: None}

    def advance(self, items: Sequence[T]) -> list[T]:
        """The new items of one read; without long polling, an empty read ends it."""
        if not items:
            self.done = self._wait == 0
            return []
        self.marker = self._key(items[-1])
        fresh = [item for item in items if self._key(item) not in self._seen]
        self._seen.update(dict.fromkeys(map(self._key, fresh)))
        if self._memory is not None:
            excess = len(self._seen) - self._memory
            for old in list(itertools.islice(self._seen, max(0, excess))):
                del self._seen[old]
        return fresh
