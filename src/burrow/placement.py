"""Rendezvous (highest random weight) hashing, shared by the ring backend and the client.

Each candidate gets a weight from a hash of (key, its URL); the heaviest wins, then
the next. Adding a candidate moves only the keys it now wins, about 1/N of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Located(Protocol):
    @property
    def url(self) -> str: ...


L = TypeVar("L", bound=Located)


def rendezvous(key: str, candidates: Sequence[L]) -> list[L]:
    """`candidates` ordered by their weight for `key`, heaviest first (ties by URL)."""
    return sorted(candidates, key=lambda c: (-weight(key, c.url), c.url))


def weight(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def message_key(account: str, queue: str, message_id: str) -> str:
    """What places a message; NUL cannot occur in names, so keys never collide."""
    return f"{account}\x00{queue}\x00{message_id}"
