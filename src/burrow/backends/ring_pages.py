"""A ring listing's pages: each member's part of one, where it starts, and where the
members stand after the merged page (see `ring_merge`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from burrow.backends.ring_members import MemberState
from burrow.backends.ring_merge import Merged, merge
from burrow.backends.ring_placement import Member
from burrow.model import Message


@dataclass(frozen=True, slots=True)
class Past:
    """A member's place after a marker that another member holds: its first message
    with a greater id (exact when ids grow with time)."""

    marker: str


Start: TypeAlias = str | Past | None
"""Where a member's part of a listing starts: after its own message, at its oldest, or `Past`."""


@dataclass(slots=True)
class Page:
    """A member's next messages in a listing, and the marker they follow there."""

    state: MemberState
    start: str | None
    messages: list[Message]
    complete: bool  # the member has no more after these
    answered: bool = True  # False when it is down (and `start` is no more than a guess)


def message_id(message: Message) -> str:
    return message.id


def merged(pages: list[Page], limit: int | None) -> Merged[Message]:
    messages = [p.messages for p in pages]
    complete = [p.complete for p in pages]
    return merge(messages, message_id, limit, complete, copies_wait=False)


def places(pages: list[Page], consumed: list[int] | None = None) -> dict[Member, str | None]:
    """Each member's place after the first `consumed` messages of its page (none: its start)."""
    counts = consumed or [0] * len(pages)
    return {
        page.state.member: page.messages[n - 1].id if n else page.start
        for page, n in zip(pages, counts, strict=True)
        if page.answered
    }
