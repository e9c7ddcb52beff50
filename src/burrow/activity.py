"""What this server process has done to each queue since it started: messages put,
claimed, deleted and dead-lettered. Counted in process, on the request path (a dict
lookup and an add), for the queue stats and the metrics; each worker of
`serve --workers N` counts its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Queues counted at most; past it the longest-counted queue is forgotten (its totals
# start again from 0 should it come back), so that a flood of queue names cannot grow
# the process without bound.
MAX_QUEUES = 100_000


@dataclass(slots=True)
class Totals:
    """One queue's counts of messages since the process started."""

    put: int = 0  # created or replaced
    claimed: int = 0  # hidden by a claim or an SQS receive
    deleted: int = 0  # deleted one by one, popped or purged
    dead_lettered: int = 0  # moved to a dead-letter queue


NONE_YET = Totals()


class Activity:
    """Totals by (account, queue)."""

    def __init__(self, max_queues: int = MAX_QUEUES) -> None:
        self._queues: dict[tuple[str, str], Totals] = {}
        self._max_queues = max_queues

    def of(self, account: str, queue: str) -> Totals:
        """The queue's totals, to add to (made at its first count)."""
        key = (account, queue)
        totals = self._queues.get(key)
        if totals is None:
            if len(self._queues) >= self._max_queues:
                del self._queues[next(iter(self._queues))]
            totals = self._queues[key] = Totals()
        return totals

    def totals(self, account: str, queue: str) -> Totals:
        """The queue's totals so far (zeros if none): not to be added to."""
        return self._queues.get((account, queue), NONE_YET)

    def __iter__(self) -> Iterator[tuple[tuple[str, str], Totals]]:
        """Each counted queue's (account, queue) and totals."""
        return iter(self._queues.items())
