"""Copying queues between backends: what `burrow export`, `import` and `migrate` share.

Only the `Backend` interface is used, so any backend URL is a source or a target. A
source is read as a stream of steps (`Info`, `Batch`, `End`), queue after queue, in
listing order; a target applies them in that order (`apply`), one `put_messages` per
batch. A put of an existing id replaces it, so applying a step again changes nothing:
that is what makes a rerun after a crash safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from burrow.backends.base import Backend
from burrow.errors import NoMatch
from burrow.model import Filters, Message, NewMessage

# Messages per read and per `put_messages`. Each put is a commit (an fsync) on the
# target, so small batches pay for it: SQLite to PostgreSQL (bench/RESULTS.md, "Migrate")
# copied 14,000 msgs/s in batches of 100, 22,000-32,000 in 500s, 75,000 in 1,000s and
# no more in 5,000s; 1,000 is also the most a Burrow server takes in one call or answers
# in one page by default (an http:// source or target).
BATCH = 1000
NAMES_PAGE = 1000
# Batches read ahead of the writer: enough to overlap a read with a write, few enough
# that the remaining ttl and hide taken at the read are still current at the write.
READ_AHEAD = 4
_SUM_MODULUS = 2**256


@dataclass(frozen=True, slots=True)
class Info:
    """A queue's info document; `line` is its dump line."""

    account: str
    queue: str
    document: bytes
    line: int = 0


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages of one queue, in listing order; `line` is the dump line of the last one."""

    account: str
    queue: str
    messages: list[NewMessage]
    line: int = 0


@dataclass(frozen=True, slots=True)
class End:
    """A queue's last step."""

    account: str
    queue: str
    line: int = 0


Step = Info | Batch | End


class Digest:
    """How many messages a queue holds and a checksum of them, whatever their order.

    The checksum is the sum (mod 2**256) of each message's sha256 over its id, body and
    meta (each length-prefixed), so that it is computed in one pass with no memory of
    what came before; ids are unique in a queue, so no two terms are the same message.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, messages: Iterable[NewMessage | Message]) -> None:
        for message in messages:
            parts = hashlib.sha256()
            for part in (message.id.encode(), message.body, message.meta):
                parts.update(len(part).to_bytes(8, "big"))
                parts.update(part)
            self._sum = (self._sum + int.from_bytes(parts.digest(), "big")) % _SUM_MODULUS
            self.count += 1

    def hexdigest(self) -> str:
        return self._sum.to_bytes(32, "big").hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.count, self._sum) == (other.count, other._sum)

    __hash__ = None  # type: ignore[assignment]  # mutable


# Reading a source ---------------------------------------------------------------------


async def _names(listing: Callable[[Filters], Awaitable[list[str]]]) -> list[str]:
    """Every name of a listing, page after page (`NoMatch` ends it)."""
    found: list[str] = []
    marker = None
    while True:
        try:
            page = await listing(Filters(limit=NAMES_PAGE, marker=marker))
        except NoMatch:
            return found
        found += page
        marker = page[-1]


async def queues_of(backend: Backend, accounts: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(account, queue) of every queue holding messages or an info document: the given
    accounts (all by default), in listing order; queues with only an info come last."""
    chosen = list(accounts) or await _names(backend.get_accounts)
    found: list[tuple[str, str]] = []
    for account in chosen:
        with_messages = await _names(partial(backend.get_queues, account))
        with_info = await _names(partial(backend.list_queue_infos, account))
        listed = set(with_messages)
        found += [(account, q) for q in with_messages + [q for q in with_info if q not in listed]]
    return found


async def pages(
    backend: Backend, account: str, queue: str, after: str | None = None, size: int = BATCH
) -> AsyncIterator[list[Message]]:
    """The queue's messages, hidden ones too, oldest first, a page at a time, after the
    message `after` (from the start when None or no longer there).

    A page may be shorter than `size` with more to come (a remote server caps the bytes
    of an answer): only `NoMatch` ends the queue.
    """
    marker = after
    while True:
        try:
            page = await backend.get_messages(
                account, queue, Filters(limit=size, marker=marker, match_hidden=True)
            )
        except NoMatch:
            return
        yield page
        marker = page[-1].id


async def total_messages(backend: Backend, queues: Iterable[tuple[str, str]]) -> int:
    """What the queues hold, for a progress bar's total."""
    total = 0
    for account, queue in queues:
        counts = await backend.count_messages(account, queue)
        total += counts.visible + counts.in_flight + counts.delayed
    return total


async def source_steps(
    backend: Backend,
    queues: Iterable[tuple[str, str]],
    resume: Mapping[tuple[str, str], str] | None = None,
    size: int = BATCH,
) -> AsyncIterator[Step]:
    """Each queue's info (if any), its messages after `resume`'s id for it, then `End`."""
    for account, queue in queues:
        document = await backend.get_queue_info(account, queue)
        if document is not None:
            yield Info(account, queue, document)
        after = (resume or {}).get((account, queue))
        async for page in pages(backend, account, queue, after, size):
            yield Batch(account, queue, [resent(m) for m in page])
        yield End(account, queue)


def resent(message: Message) -> NewMessage:
    """A stored message as a put that recreates it: remaining ttl and hide, as read now
    (receive counts and receipts are not part of a put: they start anew)."""
    return NewMessage(message.id, message.body, message.ttl, message.hide, message.meta)


# Writing a target ---------------------------------------------------------------------


async def apply(target: Backend, step: Step) -> None:
    """Write one step; the target's own info document is replaced, whatever it was."""
    if isinstance(step, Batch):
        await target.put_messages(step.account, step.queue, step.messages)
    elif isinstance(step, Info):
        while True:
            current = await target.get_queue_info(step.account, step.queue)
            if current == step.document or await target.set_queue_info(
                step.account, step.queue, step.document, current
            ):
                return


async def pipeline(
    steps: AsyncIterator[Step], target: Backend, committed: Callable[[Step], None]
) -> None:
    """Apply `steps` to `target` in order, reading the next ones while one is written
    (a bounded queue between a reader and a writer task); `committed` is told of each
    step once it is written.

    If reading fails, what was read before is written first, then the error is raised.
    """
    channel: asyncio.Queue[Step | None] = asyncio.Queue(READ_AHEAD)
    failures: list[Exception] = []

    async def read() -> None:
        try:
            async for step in steps:
                await channel.put(step)
        except Exception as error:  # raised once what came before it is written
            failures.append(error)
        await channel.put(None)

    reader = asyncio.create_task(read())
    try:
        while (step := await channel.get()) is not None:
            await apply(target, step)
            committed(step)
    finally:  # the writer failed, or is cancelled: so is the reader, wherever it waits
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if failures:
        raise failures[0]


# Verifying ---------------------------------------------------------------------------


@dataclass(slots=True)
class QueueState:
    """What one backend holds of a queue: its messages' digest and its info."""

    digest: Digest = field(default_factory=Digest)
    info: bytes | None = None


async def queue_state(backend: Backend, account: str, queue: str, size: int) -> QueueState:
    state = QueueState(info=await backend.get_queue_info(account, queue))
    async for page in pages(backend, account, queue, size=size):
        state.digest.add(page)
    return state


@dataclass(frozen=True, slots=True)
class Check:
    """One queue of the source compared with the target."""

    account: str
    queue: str
    source: QueueState
    target: QueueState

    @property
    def equal(self) -> bool:
        return self.source.digest == self.target.digest and self.source.info == self.target.info

    def describe(self) -> str:
        source, target = self.source, self.target
        problems = []
        if source.digest.count != target.digest.count:
            problems.append(f"{source.digest.count} messages, target {target.digest.count}")
        elif source.digest != target.digest:
            problems.append(f"{source.digest.count} messages, not all the same in the target")
        if source.info != target.info:
            problems.append("its info differs in the target")
        return f"{self.account}/{self.queue}: " + ("; ".join(problems) or "equal")


async def verify(
    source: Backend,
    target: Backend,
    queues: Iterable[tuple[str, str]],
    checked: Callable[[Check], None],
    size: int = BATCH,
) -> list[Check]:
    """Compare each queue of the source with the target (both read at once)."""
    found = []
    for account, queue in queues:
        ours, theirs = await asyncio.gather(
            queue_state(source, account, queue, size), queue_state(target, account, queue, size)
        )
        check = Check(account, queue, ours, theirs)
        checked(check)
        found.append(check)
    return found
