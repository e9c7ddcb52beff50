"""A histogram kept in plain lists: what the hot paths observe into, with no locks.

Prometheus' own histogram takes a lock per observation; this one is a `bisect` and two
additions, read at scrape time (`burrow.metrics`) and summed across workers. Only the
event loop's thread (or one helper thread of its own) observes into one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Seconds: a request or a backend call (tens of microseconds to a long poll's end).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """Counts of observations per bucket (`bounds` are upper bounds, ascending), and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def add(self, counts: Sequence[int], total: float) -> None:
        """Add another histogram's counts (same bounds), as `snapshot` gave them."""
        for i, count in enumerate(counts):
            self.counts[i] += count
        self.total += total

    def snapshot(self) -> tuple[list[int], float]:
        return list(self.counts), self.total

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus' buckets: (`le`, observations at most that), ending with `+Inf`."""
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip([*map(repr, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
