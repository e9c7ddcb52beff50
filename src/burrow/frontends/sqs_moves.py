"""Message move tasks: a dead-letter queue's messages sent back (redrive).

A task is kept in its source queue's info, so it is as durable as the queue: its
status, its destination (else each message's own source queue, from its
DeadLetterQueueSourceArn), its rate, and how many it has moved. One server process runs
it at a time, holding a lease in the task that it renews after each batch; a server that
starts resumes every running task whose lease has run out (its runner stopped).

Each batch is received (hidden, so consumers of the dead-letter queue do not get it
meanwhile), put in its destination under the same id, then deleted by that receive's
handle: a crash in between repeats a put (a replace), never loses a message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import secrets
import time
from typing import Any

import orjson

from burrow.backends.background import stop_tasks
from burrow.errors import BurrowError, MessageNotFound, NoMatch
from burrow.frontends.sqs_addresses import QueueAddress, parse_arn
from burrow.frontends.sqs_call import Call, optional_integer
from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_message_meta import Meta
from burrow.frontends.sqs_queue_info import QueueInfo, QueueInfos
from burrow.model import Attributes, Detail, Draft, Filters, Message

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
BATCH = 10
HIDE_WHILE_MOVING = 60  # seconds a batch stays hidden in the source while it moves
KEPT_TASKS = 10  # the most ListMessageMoveTasks shows
PUBLIC_FIELDS = (
    "TaskHandle",
    "Status",
    "SourceArn",
    "DestinationArn",
    "MaxNumberOfMessagesPerSecond",
    "ApproximateNumberOfMessagesMoved",
    "ApproximateNumberOfMessagesToMove",
    "FailureReason",
    "StartedTimestamp",
)


def task_handle(source: QueueAddress, task_id: str) -> str:
    raw = orjson.dumps({"a": source.account, "q": source.queue, "t": task_id})
    return base64.urlsafe_b64encode(raw).decode()


def _task_parts(handle: str) -> tuple[QueueAddress, str]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(handle.encode("ascii")))
        return QueueAddress(parts["a"], parts["q"]), parts["t"]
    except (ValueError, UnicodeError, binascii.Error, KeyError, TypeError):
        raise SqsError("ResourceNotFoundException", "The task handle is not valid.") from None


def task_source(handle: str) -> QueueAddress:
    """The source queue of a task handle (whose account the call acts on)."""
    return _task_parts(handle)[0]


def _running(info: QueueInfo) -> dict[str, Any] | None:
    return next((t for t in info.moves if t["Status"] == "RUNNING"), None)


async def _is_dead_letter_queue(call: Call, source: QueueAddress) -> bool:
    async for _, info in call.infos.queues(source.account):
        redrive = info.redrive
        if redrive is not None and redrive.target == source:
            return True
    return False


async def start_message_move_task(call: Call) -> dict[str, Any]:
    source_arn = call.required("SourceArn")
    source = parse_arn(source_arn, "SourceArn")
    await call.infos.load(source)
    if not await _is_dead_letter_queue(call, source):
        raise SqsError(
            "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue."
        )
    task: dict[str, Any] = {"Status": "RUNNING", "SourceArn": source_arn}
    destination_arn = call.params.get("DestinationArn")
    if destination_arn:
        destination = parse_arn(destination_arn, "DestinationArn")
        if destination.account != source.account or await call.infos.read(destination) is None:
            raise SqsError(
                "InvalidParameterValue", "The destination queue does not exist in this account."
            )
        task["DestinationArn"] = destination_arn
    rate = optional_integer(call.params, "MaxNumberOfMessagesPerSecond", 1, 500)
    if rate is not None:
        task["MaxNumberOfMessagesPerSecond"] = rate
    counts = await call.service.count_messages(source.account, source.queue)
    task_id = secrets.token_urlsafe(12)
    task |= {
        "TaskHandle": task_handle(source, task_id),
        "ApproximateNumberOfMessagesMoved": 0,
        "ApproximateNumberOfMessagesToMove": counts.visible,
        "StartedTimestamp": int(time.time() * 1000),
        "id": task_id,
        "owner": "",
        "lease": 0.0,
    }

    def edit(info: QueueInfo) -> None:
        if _running(info) is not None:
            raise SqsError(
                "UnsupportedOperation", "A message move task is already running on this queue."
            )
        info.moves = [task, *info.moves][:KEPT_TASKS]

    await call.infos.change(source, edit)
    call.mover.start(source)
    return {"TaskHandle": task["TaskHandle"]}


async def list_message_move_tasks(call: Call) -> dict[str, Any]:
    source = parse_arn(call.required("SourceArn"), "SourceArn")
    most = call.integer("MaxResults", 1, KEPT_TASKS, 1)
    info = await call.infos.read(source)
    if info is None:
        raise SqsError("ResourceNotFoundException", "The source queue does not exist.")
    results = [
        {name: task[name] for name in PUBLIC_FIELDS if name in task} for task in info.moves[:most]
    ]
    for result in results:
        if result["Status"] != "RUNNING":
            result.pop("TaskHandle", None)
    return {"Results": results}


async def cancel_message_move_task(call: Call) -> dict[str, Any]:
    source, task_id = _task_parts(call.required("TaskHandle"))
    moved = 0

    def edit(info: QueueInfo) -> None:
        nonlocal moved
        task = _running(info)
        if task is None or task["id"] != task_id:
            raise SqsError("ResourceNotFoundException", "No such running task.")
        task["Status"] = "CANCELLED"
        moved = task["ApproximateNumberOfMessagesMoved"]

    await call.infos.change(source, edit)
    return {"ApproximateNumberOfMessagesMoved": moved}


class Mover:
    """Runs this process's share of the move tasks (see the module's docstring)."""

    def __init__(self, infos: QueueInfos) -> None:
        self.infos = infos
        self.service = infos.service
        self._me = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._tasks: dict[QueueAddress, asyncio.Task[None]] = {}
        self._resuming: asyncio.Task[None] | None = None

    def open(self) -> None:
        self._resuming = asyncio.create_task(self._resume_all())

    async def close(self) -> None:
        await stop_tasks([self._resuming, *self._tasks.values()])

    def start(self, source: QueueAddress) -> None:
        running = self._tasks.get(source)
        if running is None or running.done():
            self._tasks[source] = asyncio.create_task(self._run(source))

    async def _resume_all(self) -> None:
        """Start every running task found in the queues of accounts holding messages (a
        task's source holds messages until it is done)."""
        marker = None
        while True:
            try:
                accounts = await self.service.get_accounts(Filters(1000, marker))
            except NoMatch:
                return
            except BurrowError as error:
                logger.error("move tasks not resumed: %s", error.message)
                return
            for account in accounts:
                async for name, info in self.infos.queues(account):
                    if _running(info) is not None:
                        self.start(QueueAddress(account, name))
            if len(accounts) < 1000:
                return
            marker = accounts[-1]

    async def _run(self, source: QueueAddress) -> None:
        try:
            while await self._step(source):
                pass
        except BurrowError as error:  # the backend failed: the lease runs out, another resumes
            logger.error("move task on %s stopped: %s", source.queue, error.message)

    async def _step(self, source: QueueAddress) -> bool:
        """Take or renew the lease, move one batch, record it; False when done here."""
        info = await self.infos.read(source)
        task = None if info is None else _running(info)
        if task is None:
            return False
        if task["owner"] not in ("", self._me) and task["lease"] > time.time():
            await asyncio.sleep(task["lease"] - time.time())  # someone else's: wait it out
            return True
        rate = task.get("MaxNumberOfMessagesPerSecond")
        batch = min(BATCH, rate or BATCH)
        if not await self._record(source, task["id"], 0):  # the lease, before moving any
            return False
        began = time.monotonic()
        moved, failure = await self._move_batch(source, task, batch)
        if not await self._record(source, task["id"], moved, done=moved == 0, failure=failure):
            return False
        if moved == 0 or failure:
            return False
        if rate:
            await asyncio.sleep(max(0.0, batch / rate - (time.monotonic() - began)))
        return True

    async def _record(
        self, source: QueueAddress, task_id: str, moved: int, done: bool = False, failure: str = ""
    ) -> bool:
        """Add `moved` to the task and renew this process's lease; False if the task is no
        longer running (cancelled) or another process holds it."""
        still_mine = True

        def edit(info: QueueInfo) -> None:
            nonlocal still_mine
            task = _running(info)
            free = task is not None and (
                task["owner"] in ("", self._me) or task["lease"] < time.time()
            )
            if task is None or task["id"] != task_id or not free:
                still_mine = False
                return
            task["ApproximateNumberOfMessagesMoved"] += moved
            task["owner"], task["lease"] = self._me, time.time() + LEASE_SECONDS
            if failure:
                task["Status"], task["FailureReason"] = "FAILED", failure
            elif done:
                task["Status"] = "COMPLETED"

        await self.infos.change(source, edit)
        return still_mine

    async def _move_batch(
        self, source: QueueAddress, task: dict[str, Any], batch: int
    ) -> tuple[int, str]:
        """Move up to `batch` messages; how many moved, and why the task fails if it must."""
        receipt = secrets.token_urlsafe(12)
        try:
            taken = await self.service.update_messages(
                source.account,
                source.queue,
                Attributes(hide=HIDE_WHILE_MOVING, receipt=receipt),
                Filters(limit=batch),
                detail=Detail.ALL,
            )
        except NoMatch:
            return 0, ""
        moved = 0
        for message in taken:
            destination = await self._destination(source, task, message)
            if destination is None:
                return moved, f"message {message.id} has no source queue to go back to"
            await self._move(source, destination, message, receipt)
            moved += 1
        return moved, ""

    async def _destination(
        self, source: QueueAddress, task: dict[str, Any], message: Message
    ) -> QueueAddress | None:
        arn = task.get("DestinationArn") or Meta.decode(message.meta).source
        if not arn:
            return None
        try:
            destination = parse_arn(arn, "DestinationArn")
        except SqsError:
            return None
        if destination.account != source.account or await self.infos.read(destination) is None:
            return None
        return destination

    async def _move(
        self, source: QueueAddress, destination: QueueAddress, message: Message, receipt: str
    ) -> None:
        target = await self.infos.load(destination)
        retention = target.integer("MessageRetentionPeriod")
        meta = Meta.decode(message.meta)
        meta.sent, meta.source = meta.sent or message.sent, ""
        ttl = min(message.ttl, retention) if message.ttl else retention
        limits = self.infos.limits(destination)
        await self.service.put_messages(
            destination.account,
            destination.queue,
            [Draft(message.body, message.id, ttl, 0, meta.encode())],
            max_body_bytes=limits.max_sqs_message_bytes,
        )
        try:
            await self.service.delete_message(source.account, source.queue, message.id, receipt)
        except MessageNotFound:
            pass  # (gone meanwhile: nothing to delete)
