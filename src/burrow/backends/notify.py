"""In-process wake-ups for long polls: per-queue events, and one timer per waited-on queue.

Waiters sleep on an `asyncio.Event`; nothing polls. A write to a queue wakes its
waiters (`written`, `changed`), and so does a hidden message becoming visible: a
queue someone waits on has one pending deadline, the earliest moment a message
hidden in it may show, armed as one timer. A queue nobody waits on has nothing
here: a deadline heard for it is dropped, and a queue's entry goes with its last
waiter. So the notifier holds at most one timer per waited-on queue, however many
messages are hidden, and a hide costs nothing once its message, queue or account
is deleted.

Where the pending deadline comes from depends on what the backend can do:
- `lookup` (memory, SQLite: a read of an index, without awaiting) is asked when a
  queue gets its first waiter and each time its timer fires;
- Redis reports the earliest hidden deadline its look at the queue found (`visible_at`);
- PostgreSQL asks before a look while `unknown` says the deadline is not known, and
  answers with `learned`.
Writers that hide a message in a waited-on queue lower its deadline (`written`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from burrow.backends.base import Subscription

QueueKey = tuple[str, str]
# When the next hidden message of (account, queue) shows (epoch seconds), None for none.
Lookup = Callable[[str, str], float | None]


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


class _Waited:
    """A queue someone waits on: its subscriptions and its one pending deadline."""

    __slots__ = ("at", "key", "known", "round", "subscriptions", "timer")

    def __init__(self, key: QueueKey) -> None:
        self.key = key
        self.subscriptions: set[_EventSubscription] = set()
        self.at = math.inf  # the earliest showing heard of since the timer last fired
        self.known = False  # whether `at` accounts for every message hidden now
        self.round = 0  # times the timer fired: a lookup begun in an earlier round is stale
        self.timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A lookup of a queue's next showing in progress (see `Notifier.unknown`)."""

    waited: _Waited
    round: int


class Notifier:
    """Wakes the subscribers of a queue when it changes or a hidden message reappears."""

    def __init__(self, lookup: Lookup | None = None) -> None:
        self._waited: dict[QueueKey, _Waited] = {}
        self._lookup = lookup
        self._closing = False

    def subscribe(self, account: str, queue: str) -> Subscription:
        key = (account, queue)
        subscription = _EventSubscription(self, key)
        if self._closing:
            subscription.interrupt()
            return subscription
        waited = self._waited.get(key)
        if waited is None:
            waited = self._waited[key] = _Waited(key)
            self._look_up(waited)
        waited.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, key: QueueKey, subscription: _EventSubscription) -> None:
        waited = self._waited.get(key)
        if waited is None:
            return
        waited.subscriptions.discard(subscription)
        if not waited.subscriptions:
            del self._waited[key]
            if waited.timer is not None:
                waited.timer.cancel()

    def changed(self, account: str, queue: str) -> None:
        waited = self._waited.get((account, queue))
        if waited is not None:
            _wake(waited)

    def written(self, account: str, queue: str, hidden_until: Iterable[float]) -> None:
        """A write to the queue: wake its waiters now, and again when what it hid shows."""
        waited = self._waited.get((account, queue))
        if waited is not None:
            _wake(waited)
            self._lower(waited, min(hidden_until, default=math.inf))

    def visible_at(self, account: str, queue: str, at: float) -> None:
        """A message of the queue is hidden until epoch time `at`: wake its waiters then."""
        waited = self._waited.get((account, queue))
        if waited is not None:
            self._lower(waited, at)

    def unknown(self, account: str, queue: str) -> Ticket | None:
        """For a waited-on queue whose next showing is not known: a ticket for `learned`.

        Look it up before looking at the queue: a message that shows in between is then
        seen by the look, and one hidden after the lookup began is heard of by `written`.
        """
        waited = self._waited.get((account, queue))
        if waited is None or waited.known:
            return None
        return Ticket(waited, waited.round)

    def learned(self, ticket: Ticket, at: float | None) -> None:
        """The lookup of `ticket` found the next showing at `at` (None: nothing is hidden)."""
        waited = ticket.waited
        if waited.round != ticket.round or self._waited.get(waited.key) is not waited:
            return  # the timer fired (or the waiters left) meanwhile: look again
        waited.known = True
        if at is not None:
            self._lower(waited, at)

    def lost_track(self) -> None:
        """Writes may have gone unheard (a lost connection): forget every pending deadline
        and wake every waiter to look again."""
        for waited in list(self._waited.values()):
            self._restart(waited)

    def stats(self) -> dict[str, int]:
        """What the notifier holds: queues waited on, and their armed timers."""
        timers = sum(waited.timer is not None for waited in self._waited.values())
        return {"waited_queues": len(self._waited), "timers": timers}

    def close(self) -> None:
        """Wake every waiter for good: the backend is going away."""
        self._closing = True
        for waited in self._waited.values():
            if waited.timer is not None:
                waited.timer.cancel()
                waited.timer = None
            for subscription in waited.subscriptions:
                subscription.interrupt()

    def _look_up(self, waited: _Waited) -> None:
        if self._lookup is not None:
            waited.known = True
            at = self._lookup(*waited.key)
            if at is not None:
                self._lower(waited, at)

    def _lower(self, waited: _Waited, at: float) -> None:
        if at >= waited.at or self._closing:
            return
        waited.at = at
        if waited.timer is not None:
            waited.timer.cancel()
        delay = max(0.0, at - time.time())
        waited.timer = asyncio.get_running_loop().call_later(delay, self._restart, waited)

    def _restart(self, waited: _Waited) -> None:
        """The pending deadline passed (or is lost): a new round, then wake the waiters."""
        if waited.timer is not None:
            waited.timer.cancel()
            waited.timer = None
        waited.at = math.inf
        waited.known = False
        waited.round += 1
        self._look_up(waited)
        _wake(waited)


def _wake(waited: _Waited) -> None:
    for subscription in waited.subscriptions:
        subscription.wake()
