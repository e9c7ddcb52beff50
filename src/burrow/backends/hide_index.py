"""The hide deadlines of one in-process queue, earliest first: when its next message shows.

A binary heap kept in two flat arrays (deadlines as C doubles, and the ids), so an
entry costs 16 bytes and no object of its own: a server taking a million hides
allocates no million small objects that would stay scattered over its memory after
they are freed. Entries are only added; those a later hide or a delete outdated are
dropped when they come first, or all at once by a `rebuild` from the queue's messages.
Claims with one `hide` come in deadline order, so adding is then one comparison.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable


class HideIndex:
    """(deadline, message id) entries; `next_shown` skips those that no longer hold."""

    __slots__ = ("_at", "_ids")

    def __init__(self, entries: Iterable[tuple[float, str]] = ()) -> None:
        ordered = sorted(entries)  # a sorted array is a heap
        self._at = array("d", (at for at, _ in ordered))
        self._ids = [message_id for _, message_id in ordered]

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, at: float, message_id: str) -> None:
        """Add an entry (sift up: one step when deadlines come in order)."""
        ats, ids = self._at, self._ids
        ats.append(at)
        ids.append(message_id)
        i = len(ids) - 1
        while i:
            parent = (i - 1) >> 1
            if ats[parent] <= at:
                break
            ats[i], ids[i] = ats[parent], ids[parent]
            i = parent
        ats[i], ids[i] = at, message_id

    def next_shown(self, now: float, deadline_of: Callable[[str], float | None]) -> float | None:
        """The earliest deadline after `now` that `deadline_of(id)` (the message's current
        deadline, None when it is gone) still confirms; drops the entries before it."""
        ats, ids = self._at, self._ids
        while ids:
            at = ats[0]
            if at > now and deadline_of(ids[0]) == at:
                return at
            self._pop()
        return None

    def _pop(self) -> None:
        """Remove the first entry (the last one sifts down from the top)."""
        ats, ids = self._at, self._ids
        at, message_id = ats.pop(), ids.pop()
        size = len(ids)
        if not size:
            return
        i = 0
        while (child := 2 * i + 1) < size:
            if child + 1 < size and ats[child + 1] < ats[child]:
                child += 1
            if ats[child] >= at:
                break
            ats[i], ids[i] = ats[child], ids[child]
            i = child
        ats[i], ids[i] = at, message_id
