"""In-process wake-ups for long polls: per-queue events plus a timer for hide expiry.

Waiters sleep on an `asyncio.Event`; nothing polls. Writers call `written()`
with the deadlines of the messages they hid, so waiters also wake when those
become visible again. Deadlines are bucketed so that many claims of the same
queue in the same instant share one timer entry.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Iterable

from burrow.backends.base import Subscription

QueueKey = tuple[str, str]

# Hide deadlines are rounded up to this many seconds; well inside the 50 ms promise.
_BUCKET = 0.01


class _EventSubscription(Subscription):
    __slots__ = ("_event", "_interrupted", "_key", "_notifier")

    def __init__(self, notifier: Notifier, key: QueueKey) -> None:
        self._notifier = notifier
        self._key = key
        self._event = asyncio.Event()
        self._interrupted = False

    def wake(self) -> None:
        self._event.set()

    def interrupt(self) -> None:
        self._interrupted = True
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        if self._interrupted:
            return False
        if seconds > 0 and not self._event.is_set():
            try:
                async with asyncio.timeout(seconds):
                    await self._event.wait()
            except TimeoutError:
                pass
        self._event.clear()
        return not self._interrupted

    def close(self) -> None:
        self._notifier.unsubscribe(self._key, self)


class Notifier:
    """Wakes the subscribers of a queue when it changes or a hidden message reappears."""

    def __init__(self) -> None:
        self._subscribers: dict[QueueKey, set[_EventSubscription]] = {}
        self._timers: list[tuple[float, QueueKey]] = []
        self._scheduled: set[tuple[float, QueueKey]] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = math.inf
        self._closing = False

    def subscribe(self, account: str, queue: str) -> Subscription:
        key = (account, queue)
        subscription = _EventSubscription(self, key)
        if self._closing:
            subscription.interrupt()
        self._subscribers.setdefault(key, set()).add(subscription)
        return subscription

    def unsubscribe(self, key: QueueKey, subscription: _EventSubscription) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[key]

    def changed(self, account: str, queue: str) -> None:
        for subscription in self._subscribers.get((account, queue), ()):
            subscription.wake()

    def written(self, account: str, queue: str, hidden_until: Iterable[float]) -> None:
        """A write to the queue: wake its waiters now, and again as each hidden one shows."""
        self.changed(account, queue)
        for at in hidden_until:
            self.visible_at(account, queue, at)

    def visible_at(self, account: str, queue: str, at: float) -> None:
        """Wake the queue's waiters at epoch time `at` (when a hidden message shows)."""
        entry = (math.ceil(at / _BUCKET) * _BUCKET, (account, queue))
        if entry in self._scheduled:
            return
        self._scheduled.add(entry)
        heapq.heappush(self._timers, entry)
        if entry[0] < self._handle_at:
            self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if not self._timers:
            self._handle, self._handle_at = None, math.inf
            return
        self._handle_at = self._timers[0][0]
        delay = max(0.0, self._handle_at - time.time())
        self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        now = time.time()
        while self._timers and self._timers[0][0] <= now:
            entry = heapq.heappop(self._timers)
            self._scheduled.discard(entry)
            self.changed(*entry[1])
        self._arm()

    def close(self) -> None:
        """Wake every waiter for good: the backend is going away."""
        self._closing = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.interrupt()
