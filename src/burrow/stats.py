"""Queue stats: what a queue holds (`MessageCounts`, from the backend) with what this
process has done to it (`activity.Totals`), as `detail=stats` answers them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from burrow.activity import Totals
from burrow.model import MessageCounts


@dataclass(slots=True)
class QueueStats:
    """One queue's stats. `hidden` is every hidden message, `delayed` the hidden ones
    never received (put with a hide, or hidden by a v1.0 claim, which is no receive).
    Ages are seconds since the messages at the queue's two ends (in creation order)
    were put, None when it holds none (or holds only messages stored before put times
    were kept). The totals are this process's, since it started."""

    messages: int
    visible: int
    hidden: int
    delayed: int
    bytes: int
    oldest_age: float | None
    newest_age: float | None
    put_total: int
    claimed_total: int
    deleted_total: int

    @classmethod
    def of(cls, counts: MessageCounts, totals: Totals, now: float) -> QueueStats:
        hidden = counts.in_flight + counts.delayed
        return cls(
            counts.visible + hidden,
            counts.visible,
            hidden,
            counts.delayed,
            counts.bytes,
            _age(counts.oldest, now),
            _age(counts.newest, now),
            totals.put,
            totals.claimed,
            totals.deleted,
        )

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def account_summary(stats: Iterable[QueueStats]) -> dict[str, Any]:
    """An account's stats: how many queues hold messages, each count summed, the ages of
    its oldest and its newest message."""
    summary: dict[str, Any] = {"queues": 0, **dict.fromkeys(SUMMED, 0)}
    oldest: list[float] = []
    newest: list[float] = []
    for one in stats:
        summary["queues"] += 1
        for name in SUMMED:
            summary[name] += getattr(one, name)
        if one.oldest_age is not None:
            oldest.append(one.oldest_age)
        if one.newest_age is not None:
            newest.append(one.newest_age)
    summary["oldest_age"] = max(oldest, default=None)
    summary["newest_age"] = min(newest, default=None)
    return summary


SUMMED = (
    "messages",
    "visible",
    "hidden",
    "delayed",
    "bytes",
    "put_total",
    "claimed_total",
    "deleted_total",
)


def _age(put: float, now: float) -> float | None:
    return round(max(0.0, now - put), 3) if put else None
