"""The data model: messages, their attributes, filters and detail levels (no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Detail(StrEnum):
    """How much of each matched item a response carries."""

    NONE = "none"
    ID = "id"
    ATTRIBUTES = "attributes"
    BODY = "body"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Filters:
    """Which items of a listing an operation applies to.

    `marker` means strictly after that id in creation order; an unknown marker
    means from the start. `match_hidden` only matters for messages.
    """

    limit: int | None = None
    marker: str | None = None
    match_hidden: bool = False


ALL_ITEMS = Filters()


@dataclass(frozen=True, slots=True)
class Attributes:
    """Message attributes in seconds from now; `None` means "leave as is".

    ttl 0 means the message never expires; hide 0 means it is visible.
    """

    ttl: int | None = None
    hide: int | None = None


@dataclass(slots=True)
class Draft:
    """A message as a client submits it: id and attributes may be left out."""

    body: bytes
    id: str | None = None
    ttl: int | None = None
    hide: int | None = None


@dataclass(slots=True)
class NewMessage:
    """A message to create or replace, with all attributes resolved."""

    id: str
    body: bytes
    ttl: int
    hide: int


@dataclass(slots=True)
class Message:
    """A stored message as the backend reports it, attributes in seconds remaining."""

    id: str
    body: bytes
    ttl: int
    hide: int


@dataclass(slots=True)
class StoredMessage:
    """A message as in-process backends keep it: absolute deadlines (epoch seconds)."""

    id: str
    body: bytes
    expires: float
    hidden_until: float

    @classmethod
    def create(cls, new: NewMessage, now: float) -> StoredMessage:
        return cls(new.id, new.body, deadline(new.ttl, now), deadline(new.hide, now))

    def apply(self, attributes: Attributes, now: float) -> None:
        if attributes.ttl is not None:
            self.expires = deadline(attributes.ttl, now)
        if attributes.hide is not None:
            self.hidden_until = deadline(attributes.hide, now)

    def visible(self, now: float) -> bool:
        return self.hidden_until <= now

    def expired(self, now: float) -> bool:
        return 0 < self.expires <= now

    def report(self, now: float) -> Message:
        return Message(
            self.id, self.body, remaining(self.expires, now), remaining(self.hidden_until, now)
        )


def deadline(seconds: int, now: float) -> float:
    """Absolute deadline for a relative attribute; 0 stays 0 ("never" / "visible")."""
    return now + seconds if seconds else 0.0


def remaining(at: float, now: float) -> int:
    """Whole seconds left until `at`, rounded up so a live deadline never reads 0."""
    return math.ceil(at - now) if at > now else 0
