"""A message as the memory backend keeps it: a plain tuple of strings, bytes and numbers.

A tuple, not an object, for the cyclic garbage collector's sake. CPython stops tracking
a tuple that holds only such values the first time it survives a collection, so stored
messages cost the collector nothing after that; instances of a class stay tracked for
good, and every pass over the older generations walked each of them with every request
waiting (170-190 ms per pass with a million messages stored). A change (a hide, a
receipt) stores a new tuple in the old one's place. The last field is the message's
number in its queue's order (see `memory.Queue`), which only the queue reads.
"""

from __future__ import annotations

from typing import Final

from burrow.model import Attributes, Message, NewMessage, deadline, remaining

# id, body, expires, hidden_until, sent, meta, receives, receipt, first_received, number
# (deadlines are absolute, epoch seconds; 0 is "never" / "visible").
Stored = tuple[str, bytes, float, float, float, bytes, int, str, float, int]
ID: Final = 0
BODY: Final = 1
EXPIRES: Final = 2
HIDDEN_UNTIL: Final = 3
SENT: Final = 4
RECEIVES: Final = 6
RECEIPT: Final = 7
NUMBER: Final = 9


def stored(new: NewMessage, now: float, number: int) -> Stored:
    """A new message as stored, received by nobody yet."""
    hidden = deadline(new.hide, now)
    return (new.id, new.body, deadline(new.ttl, now), hidden, now, new.meta, 0, "", 0.0, number)


def renumbered(message: Stored, number: int) -> Stored:
    return (*message[:NUMBER], number)


def applied(message: Stored, attributes: Attributes, now: float) -> Stored:
    """The message with `attributes` applied (a receipt counts as one more receive)."""
    mid, body, expires, hidden, sent, meta, receives, receipt, first, number = message
    if attributes.ttl is not None:
        expires = deadline(attributes.ttl, now)
    if attributes.hide is not None:
        hidden = deadline(attributes.hide, now)
    if attributes.receipt is not None:
        receives += 1
        receipt = attributes.receipt
        first = first or now
    return (mid, body, expires, hidden, sent, meta, receives, receipt, first, number)


def visible(message: Stored, now: float) -> bool:
    return message[HIDDEN_UNTIL] <= now


def expired(message: Stored, now: float) -> bool:
    return 0 < message[EXPIRES] <= now


def report(message: Stored, now: float) -> Message:
    mid, body, expires, hidden, sent, meta, receives, receipt, first, _ = message
    return Message(
        mid,
        body,
        remaining(expires, now),
        remaining(hidden, now),
        receives,
        receipt,
        sent,
        first,
        meta,
    )
