"""How the `ring` backend makes one listing of its members' listings.

Each member lists in its own creation order. The merge keeps every member's order
and, between members, puts the smaller id (or name) first: the next item is the
smallest of the members' next items. Names (accounts, queues) are on several
members: a name waits until it comes next on all the members that hold it, and is
listed once; when every next name is held further on somewhere (the members
disagree on the order), the smallest next name comes first. Message ids are on one
member each, but for stale copies (see `ring_listing`): a copy of an id does not hold
the others back; the id comes where its first copy does, and the copies met later
join it there, so that read repair can keep the right one.

With ids that grow with time, such as the time-ordered ids the server makes, every
member's listing is in id order and the merge is creation order across members.

A page is merged from each member's next `limit` items; a member that may hold more
than it gave stops the merge once all it gave is used. `Cursors` remembers where
each member stood after a page, so that the next page, after that page's last id,
starts each member where it left off.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class Merged(Generic[T]):
    steps: list[list[tuple[int, T]]]
    """One per id, in the merged order: its copies, as (index of the list, item)."""
    consumed: list[int]
    """For each list, how many of its items are at or before the last step."""


def merge(
    lists: Sequence[Sequence[T]],
    key: Callable[[T], str],
    limit: int | None = None,
    complete: Sequence[bool] | None = None,
    *,
    copies_wait: bool = True,
) -> Merged[T]:
    """`lists` merged (see the module); at most `limit` steps, and none past the end
    of a list that is not `complete` (its next item, unknown, might come first).

    `copies_wait`: an item on several lists waits until it is next on all of them
    (names); otherwise its first copy sets its place (stale copies of messages).
    """
    keys = [[key(item) for item in items] for items in lists]
    open_ended = [not c for c in complete] if complete is not None else [False] * len(lists)
    holders = Counter(k for row in keys for k in row) if copies_wait else None
    heads = [0] * len(lists)
    nexts: dict[str, list[int]] = {}  # each item next on some list: those lists
    ready: list[str] = []  # a heap of the next items that no list holds further on
    steps: list[list[tuple[int, T]]] = []
    step_of: dict[str, list[tuple[int, T]]] = {}  # the items listed already
    ended = False  # a list that may hold more has given all it gave

    def settle(i: int) -> None:
        """Move list i past what is listed already (joining its step); note its next item."""
        nonlocal ended
        row, head = keys[i], heads[i]
        while head < len(row) and row[head] in step_of:
            step_of[row[head]].append((i, lists[i][head]))
            head += 1
        heads[i] = head
        if head == len(row):
            ended = ended or open_ended[i]
            return
        on = nexts.setdefault(row[head], [])
        on.append(i)
        if len(on) == (1 if holders is None else holders[row[head]]):
            heapq.heappush(ready, row[head])

    for i in range(len(lists)):
        settle(i)
    while nexts and not ended and (limit is None or len(steps) < limit):
        # When no next item is ready, the lists disagree: the smallest breaks the tie.
        chosen = heapq.heappop(ready) if ready else min(nexts)
        moved = nexts.pop(chosen)
        step_of[chosen] = [(i, lists[i][heads[i]]) for i in moved]
        steps.append(step_of[chosen])
        for i in moved:
            heads[i] += 1
            settle(i)
    return Merged(steps, heads)


class Cursors(Generic[K, V]):
    """The most recent `size` entries put, by key; the oldest are forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: K, entry: V) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
