"""An SQS queue's info (attributes, tags, move tasks, times), kept through the service.

Stored as one JSON document per queue (`Backend.set_queue_info`), changed by
compare-and-set so that concurrent changes never lose one another. A queue exists for
SQS once it has info (CreateQueue), or while it holds messages (a v1.0 queue: default
attributes, until something sets one).

Reads are cached for `CACHE_SECONDS` in each server process: every SendMessage and
ReceiveMessage needs its queue's attributes, and one more backend round trip each
would cost a third of a send. SQS itself says attribute changes take up to 60 s to
propagate; here a change made through another process shows within a second (at once
through this one).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from burrow.config import Limits
from burrow.errors import NoMatch
from burrow.frontends.sqs_addresses import QueueAddress
from burrow.frontends.sqs_attributes import RedrivePolicy, defaults
from burrow.frontends.sqs_errors import SqsError
from burrow.model import Filters
from burrow.service import Service

CACHE_SECONDS = 1.0
CACHE_ENTRIES = 10_000
LIST_PAGE = 1000  # queue names read from the backend at a time
CHANGE_ATTEMPTS = 20  # compare-and-set rounds before giving up (503) under contention


@dataclass(slots=True)
class QueueInfo:
    attributes: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    created: int = 0  # epoch seconds
    modified: int = 0
    moves: list[dict[str, Any]] = field(default_factory=list)  # tasks reading this queue
    stored: bytes | None = None  # the document as read (None: the queue has none yet)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "attributes": self.attributes,
                "tags": self.tags,
                "created": self.created,
                "modified": self.modified,
                "moves": self.moves,
            }
        )

    @classmethod
    def decode(cls, stored: bytes) -> QueueInfo:
        document = orjson.loads(stored)
        return cls(
            document["attributes"],
            document["tags"],
            document["created"],
            document["modified"],
            document.get("moves", []),
            stored,
        )

    def integer(self, name: str) -> int:
        return int(self.attributes[name])

    @property
    def redrive(self) -> RedrivePolicy | None:
        value = self.attributes.get("RedrivePolicy")
        return RedrivePolicy.parse(value) if value else None


def no_such_queue() -> SqsError:
    return SqsError("QueueDoesNotExist", "The specified queue does not exist.")


class QueueInfos:
    """Reads (cached) and changes of queue info for the SQS frontend."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._cache: dict[QueueAddress, tuple[float, QueueInfo]] = {}

    def limits(self, address: QueueAddress) -> Limits:
        return self.service.limits_for(address.account)

    async def load(self, address: QueueAddress) -> QueueInfo:
        """The queue's info; QueueDoesNotExist if it has none and holds no message."""
        now = time.monotonic()
        cached = self._cache.get(address)
        if cached is not None and cached[0] > now:
            return cached[1]
        info = await self.read(address)
        if info is None:
            raise no_such_queue()
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[address] = (now + CACHE_SECONDS, info)
        return info

    async def read(self, address: QueueAddress) -> QueueInfo | None:
        """The queue's info as stored now (uncached), None if there is no such queue."""
        stored = await self.service.get_queue_info(address.account, address.queue)
        if stored is not None:
            return QueueInfo.decode(stored)
        counts = await self.service.count_messages(address.account, address.queue)
        if counts.visible or counts.in_flight or counts.delayed:
            return QueueInfo(defaults(address.fifo, self.limits(address)))
        return None

    async def create(self, address: QueueAddress, info: QueueInfo) -> QueueInfo | None:
        """Store a new queue's info; None if the queue has info already (left as it is)."""
        info.created = info.modified = int(time.time())
        encoded = info.encode()
        if not await self.service.set_queue_info(address.account, address.queue, encoded, None):
            return None
        info.stored = encoded
        self._cache.pop(address, None)
        return info

    async def change(self, address: QueueAddress, edit: Callable[[QueueInfo], None]) -> QueueInfo:
        """Apply `edit` to the queue's info as stored, retrying when another change came
        in between; QueueDoesNotExist if there is no such queue."""
        for _ in range(CHANGE_ATTEMPTS):
            info = await self.read(address)
            if info is None:
                raise no_such_queue()
            expected = info.stored
            if expected is None:  # a v1.0 queue given its first info
                info.created = int(time.time())
            edit(info)
            info.modified = int(time.time())
            encoded = info.encode()
            if await self.service.set_queue_info(address.account, address.queue, encoded, expected):
                info.stored = encoded
                self._cache.pop(address, None)
                return info
        raise SqsError("ServiceUnavailable", "The queue is being changed too often; retry.")

    async def delete(self, address: QueueAddress) -> None:
        await self.service.delete_queue_info(address.account, address.queue)
        self._cache.pop(address, None)

    async def names(self, account: str, marker: str | None = None) -> AsyncIterator[str]:
        """The account's queues that have info, in order, after `marker`."""
        while True:
            try:
                page = await self.service.list_queue_infos(account, Filters(LIST_PAGE, marker))
            except NoMatch:
                return
            for name in page:
                yield name
            if len(page) < LIST_PAGE:
                return
            marker = page[-1]

    async def queues(self, account: str) -> AsyncIterator[tuple[str, QueueInfo]]:
        """The account's queues that have info, with it (as stored now)."""
        async for name in self.names(account):
            stored = await self.service.get_queue_info(account, name)
            if stored is not None:  # (deleted meanwhile)
                yield name, QueueInfo.decode(stored)
