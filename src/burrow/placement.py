"""Rendezvous (highest random weight) hashing, shared by the ring backend and the client.

Each candidate gets a weight from a hash of (key, its URL); the heaviest wins, then
the next. Adding a candidate moves only the keys it now wins, about 1/N of them.
`each_in_its_order` walks many keys down their orders at once (a delete of many ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from burrow.errors import BackendUnavailable


class Located(Protocol):
    @property
    def url(self) -> str: ...


L = TypeVar("L", bound=Located)
P = TypeVar("P")


def rendezvous(key: str, candidates: Sequence[L]) -> list[L]:
    """`candidates` ordered by their weight for `key`, heaviest first (ties by URL)."""
    return sorted(candidates, key=lambda c: (-weight(key, c.url), c.url))


def weight(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def message_key(account: str, queue: str, message_id: str) -> str:
    """What places a message; NUL cannot occur in names, so keys never collide."""
    return f"{account}\x00{queue}\x00{message_id}"


async def each_in_its_order(
    ids: list[str],
    order_of: Callable[[str], list[P]],
    act: Callable[[P, list[str]], Awaitable[Iterable[str]]],
) -> tuple[set[str], list[BackendUnavailable]]:
    """`act(place, ids)` for the ids' first places, then for those it did not do (nor
    could: `BackendUnavailable`) at their next place, and so on; every id's order is
    as long. The ids done, and the failures met on the way."""
    done: set[str] = set()
    failures: list[BackendUnavailable] = []
    orders = {i: order_of(i) for i in ids}
    for turn in range(len(orders[ids[0]]) if ids else 0):
        groups: dict[int, tuple[P, list[str]]] = {}  # by identity: places need no hash
        for i in ids:
            if i not in done:
                place = orders[i][turn]
                groups.setdefault(id(place), (place, []))[1].append(i)
        for place, group in groups.values():
            try:
                done.update(await act(place, group))
            except BackendUnavailable as error:
                failures.append(error)
    return done, failures
