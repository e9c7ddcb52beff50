"""The data model: messages, their attributes, filters and detail levels (no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from burrow.errors import QuotaExceeded


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

    With a `receipt`, an update of several messages is a receive (an SQS ReceiveMessage):
    each message it matches counts one more receive, takes that receipt as its latest
    receive's, and its first receive's time if it had none, in the same atomic step as
    the hide. A later call with the receipt (`Backend.update_message`,
    `Backend.delete_message`) then acts on that receive only.
    """

    ttl: int | None = None
    hide: int | None = None
    receipt: str | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """What one account may hold at most; 0 means no cap.

    Counted over stored messages, hidden ones included (and expired ones until
    they are purged); a replaced message counts with its new body.
    """

    max_queue_messages: int = 0  # messages in one queue
    max_account_queues: int = 0  # queues holding messages in the account
    max_account_bytes: int = 0  # total size of the account's message bodies

    def __bool__(self) -> bool:
        return bool(self.max_queue_messages or self.max_account_queues or self.max_account_bytes)

    def stricter(self, other: Quota) -> Quota:
        """Each cap the lower of the two (a cap beats no cap)."""
        if not other:
            return self  # the usual case: nothing asked beyond the server's own
        return Quota(
            *(
                min(caps) if all(caps) else max(caps)
                for caps in (
                    (self.max_queue_messages, other.max_queue_messages),
                    (self.max_account_queues, other.max_account_queues),
                    (self.max_account_bytes, other.max_account_bytes),
                )
            )
        )

    def check(self, queue_messages: int, account_queues: int, account_bytes: int) -> None:
        """Raise `QuotaExceeded` unless the counts a write would leave are all allowed."""
        for name, count, what in (
            ("max_queue_messages", queue_messages, "messages in the queue"),
            ("max_account_queues", account_queues, "queues in the account"),
            ("max_account_bytes", account_bytes, "bytes of bodies in the account"),
        ):
            cap: int = getattr(self, name)
            if cap and count > cap:
                raise QuotaExceeded(
                    name, f"quota {name} exceeded: {count} {what} would be over {cap}"
                )


NO_QUOTA = Quota()


@dataclass(slots=True)
class Draft:
    """A message as a client submits it: id and attributes may be left out."""

    body: bytes
    id: str | None = None
    ttl: int | None = None
    hide: int | None = None
    meta: bytes = b""


@dataclass(slots=True)
class NewMessage:
    """A message to create or replace, with all attributes resolved.

    `meta` is what a frontend keeps with the message besides its body (an SQS message's
    attributes): stored and reported as given, never read by the backend.
    """

    id: str
    body: bytes
    ttl: int
    hide: int
    meta: bytes = b""


@dataclass(slots=True)
class Message:
    """A stored message as the backend reports it, attributes in seconds remaining.

    Besides: how many receives it has had (see `Attributes.receipt`) and the latest's
    receipt ("" if none), when it was put (created or replaced; epoch seconds) and first
    received (0.0 if never), and its `meta` (see `NewMessage`). A replace starts them
    anew.
    """

    id: str
    body: bytes
    ttl: int
    hide: int
    receives: int = 0
    receipt: str = ""
    sent: float = 0.0
    first_received: float = 0.0
    meta: bytes = b""


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """What a queue holds, for SQS's approximate numbers and the queue stats: visible
    messages, hidden ones that have been received (in flight), hidden ones never received
    (delayed). Expired messages are not counted.

    Besides: `bytes`, the size of the bodies stored (hidden ones too; expired ones may
    count until the backend purges them), and when the messages at the queue's two ends
    in creation order were put (epoch seconds; 0.0 when the queue holds none, or for a
    message stored before put times were kept).
    """

    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    bytes: int = 0
    oldest: float = 0.0
    newest: float = 0.0


def deadline(seconds: int, now: float) -> float:
    """Absolute deadline for a relative attribute; 0 stays 0 ("never" / "visible")."""
    return now + seconds if seconds else 0.0


def remaining(at: float, now: float) -> int:
    """Whole seconds left until `at`, rounded up so a live deadline never reads 0."""
    return math.ceil(at - now) if at > now else 0
