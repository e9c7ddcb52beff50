"""SQS's message actions, on the service: send, receive, delete, change visibility.

A send is a put with a new id (the MessageId): ttl from MessageRetentionPeriod, hide
from DelaySeconds. A receive is a claim that counts (`Attributes.receipt`): hidden for
the VisibilityTimeout, and its receipt handle names that receive only, so a handle
kept from an earlier receive touches nothing once the message is received again.

A message received more than its queue's RedrivePolicy maxReceiveCount is not
answered: it is put in the dead-letter queue under the same id (so that a repeat is a
replace) and then deleted from its queue by that receive's handle. Nothing is lost if
the server stops in between: the message shows again when the receive's hide ends,
and moves then.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from burrow.errors import MessageNotFound, NoMatch
from burrow.frontends.sqs_addresses import QueueAddress, ReceiptHandle, parse_receipt_handle
from burrow.frontends.sqs_attributes import RedrivePolicy
from burrow.frontends.sqs_call import Call, missing, optional_integer
from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_md5 import md5_of_attributes, md5_of_body
from burrow.frontends.sqs_message_meta import Meta, check_attributes, check_text, selected, size
from burrow.frontends.sqs_queue_info import QueueInfo
from burrow.ids import new_id
from burrow.model import Attributes, Detail, Draft, Filters, Message

MAX_BATCH = 10
MAX_VISIBILITY = 43_200
SYSTEM_NAMES = frozenset(
    {
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
        "SentTimestamp",
        "SenderId",
        "AWSTraceHeader",
        "MessageGroupId",
        "DeadLetterQueueSourceArn",
    }
)
_BATCH_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# Sending ------------------------------------------------------------------------------


@dataclass(slots=True)
class Outgoing:
    """A checked message to send, and what the answer says of it."""

    draft: Draft
    answer: dict[str, Any]


def outgoing(params: dict[str, Any], info: QueueInfo, address: QueueAddress) -> Outgoing:
    """A SendMessage's (or a batch entry's) message, checked as SQS checks it."""
    body = params.get("MessageBody")
    if body is None or body == "":
        raise missing("MessageBody")
    check_text(body, "the message body")
    delay = optional_integer(params, "DelaySeconds", 0, 900)
    if delay is None:
        delay = info.integer("DelaySeconds")
    attributes = check_attributes(params.get("MessageAttributes"))
    system = check_attributes(params.get("MessageSystemAttributes"), system=True)
    if params.get("MessageDeduplicationId") is not None and not address.fifo:
        raise SqsError(
            "InvalidParameterValue",
            "The request includes parameter MessageDeduplicationId that is not valid for "
            "this queue type.",
        )
    encoded = body.encode()
    largest = info.integer("MaximumMessageSize")
    if len(encoded) + size(attributes) > largest:
        raise SqsError(
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than "
            f"{largest} bytes.",
        )
    group = params.get("MessageGroupId") or ""
    meta = Meta(attributes, system, group).encode()
    message_id = new_id()
    draft = Draft(encoded, message_id, info.integer("MessageRetentionPeriod"), delay, meta)
    answer = {"MessageId": message_id, "MD5OfMessageBody": md5_of_body(body)}
    _add_md5(answer, "MD5OfMessageAttributes", attributes)
    _add_md5(answer, "MD5OfMessageSystemAttributes", system)
    return Outgoing(draft, answer)


def _add_md5(answer: dict[str, Any], field: str, attributes: dict[str, Any]) -> None:
    digest = md5_of_attributes(attributes)
    if digest is not None:
        answer[field] = digest


async def _put(call: Call, address: QueueAddress, drafts: list[Draft]) -> None:
    limits = call.infos.limits(address)
    await call.service.put_messages(
        address.account, address.queue, drafts, max_body_bytes=limits.max_sqs_message_bytes
    )


async def send_message(call: Call) -> dict[str, Any]:
    address = call.queue
    message = outgoing(call.params, await call.infos.load(address), address)
    await _put(call, address, [message.draft])
    return message.answer


async def send_message_batch(call: Call) -> dict[str, Any]:
    address = call.queue
    info = await call.infos.load(address)
    entries = batch_entries(call.params, "SendMessageBatchRequestEntry")
    failed: list[dict[str, Any]] = []
    ready: list[tuple[str, Outgoing]] = []
    for entry in entries:
        try:
            ready.append((entry["Id"], outgoing(entry, info, address)))
        except SqsError as error:
            failed.append(_failure(entry["Id"], error))
    total = sum(len(m.draft.body) + len(m.draft.meta) for _, m in ready)
    if total > call.infos.limits(address).max_sqs_message_bytes:
        raise SqsError(
            "BatchRequestTooLong",
            f"Batch requests cannot be longer than "
            f"{call.infos.limits(address).max_sqs_message_bytes} bytes.",
        )
    if ready:
        await _put(call, address, [m.draft for _, m in ready])
    successful = [{"Id": entry_id, **m.answer} for entry_id, m in ready]
    return {"Successful": successful, "Failed": failed}


def batch_entries(params: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """A batch's entries (of `kind`, as SQS names them): 1 to 10, each with a distinct,
    well-formed Id."""
    entries = params.get("Entries")
    if not entries:
        raise SqsError("EmptyBatchRequest", f"There should be at least one {kind} in the request.")
    if len(entries) > MAX_BATCH:
        raise SqsError(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(entries)}.",
        )
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id") if isinstance(entry, dict) else None
        if entry_id is None:
            raise missing("Id")
        if not 1 <= len(entry_id) <= 80 or not _BATCH_ID_CHARS.issuperset(entry_id):
            raise SqsError(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and "
                "underscores. It can be at most 80 letters long.",
            )
        if entry_id in seen:
            raise SqsError("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return list(entries)


def _failure(entry_id: str, error: SqsError) -> dict[str, Any]:
    return {
        "Id": entry_id,
        "SenderFault": error.sender_fault,
        "Code": error.code,
        "Message": error.message,
    }


# Receiving ---------------------------------------------------------------------------------


async def receive_message(call: Call) -> dict[str, Any]:
    address = call.queue
    info = await call.infos.load(address)
    most = call.integer("MaxNumberOfMessages", 1, MAX_BATCH, 1)
    hide = call.integer("VisibilityTimeout", 0, MAX_VISIBILITY, info.integer("VisibilityTimeout"))
    wait = call.integer("WaitTimeSeconds", 0, 20, info.integer("ReceiveMessageWaitTimeSeconds"))
    system_names = set(call.params.get("AttributeNames") or ())
    system_names |= set(call.params.get("MessageSystemAttributeNames") or ())
    attribute_names = call.params.get("MessageAttributeNames") or ()
    redrive = info.redrive
    deadline = time.monotonic() + wait
    while True:
        receipt = secrets.token_urlsafe(12)
        taken = await _receive(call, address, hide, receipt, most, wait)
        if redrive is not None:
            taken = await _dead_letter(call, address, redrive, receipt, taken)
        left = round(deadline - time.monotonic())
        if taken or left <= 0:
            break
        wait = min(wait, left)  # all were dead-lettered: wait on for the rest of the time
    answered = [_received(call, address, m, receipt, system_names, attribute_names) for m in taken]
    return {"Messages": answered} if answered else {}


async def _receive(
    call: Call, address: QueueAddress, hide: int, receipt: str, most: int, wait: int
) -> list[Message]:
    try:
        return await call.service.update_messages(
            address.account,
            address.queue,
            Attributes(hide=hide, receipt=receipt),
            Filters(limit=most),
            wait,
            detail=Detail.ALL,
        )
    except NoMatch:
        return []


def _received(
    call: Call,
    address: QueueAddress,
    message: Message,
    receipt: str,
    system_names: set[str],
    attribute_names: Any,
) -> dict[str, Any]:
    body = message.body.decode(errors="replace")  # (a v1.0 body need not be text)
    meta = Meta.decode(message.meta)
    handle = ReceiptHandle(address, message.id, receipt).encode()
    answer: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": handle,
        "MD5OfBody": md5_of_body(body),
        "Body": body,
    }
    system = _system_attributes(call, message, meta, system_names)
    if system:
        answer["Attributes"] = system
    attributes = selected(meta.attributes, attribute_names)
    if attributes:
        answer["MessageAttributes"] = attributes
        _add_md5(answer, "MD5OfMessageAttributes", attributes)
    return answer


def _system_attributes(call: Call, message: Message, meta: Meta, names: set[str]) -> dict[str, str]:
    if not names:
        return {}
    every = "All" in names
    values = {
        "ApproximateReceiveCount": str(message.receives),
        "ApproximateFirstReceiveTimestamp": str(int(message.first_received * 1000)),
        "SentTimestamp": str(int((meta.sent or message.sent) * 1000)),
        "SenderId": call.account,
    }
    trace = meta.system.get("AWSTraceHeader")
    if trace is not None:
        values["AWSTraceHeader"] = trace["StringValue"]
    if meta.group:
        values["MessageGroupId"] = meta.group
    if meta.source:
        values["DeadLetterQueueSourceArn"] = meta.source
    return {name: value for name, value in values.items() if every or name in names}


async def _dead_letter(
    call: Call,
    address: QueueAddress,
    redrive: RedrivePolicy,
    receipt: str,
    taken: list[Message],
) -> list[Message]:
    """Move the messages received more often than `redrive` allows; returns the others."""
    over = [m for m in taken if m.receives > redrive.max_receives]
    if not over:
        return taken
    try:
        target = await call.infos.load(redrive.target)
    except SqsError:
        return taken  # no dead-letter queue (deleted since): delivered as they are
    retention = target.integer("MessageRetentionPeriod")
    drafts = []
    for message in over:
        meta = Meta.decode(message.meta)
        meta.sent = meta.sent or message.sent
        meta.source = call.origin.arn(address)
        ttl = min(message.ttl, retention) if message.ttl else retention
        drafts.append(Draft(message.body, message.id, ttl, 0, meta.encode()))
    await _put(call, redrive.target, drafts)
    call.service.activity.of(address.account, address.queue).dead_lettered += len(over)
    await asyncio.gather(*(_delete_quietly(call, address, m.id, receipt) for m in over))
    return [m for m in taken if m.receives <= redrive.max_receives]


async def _delete_quietly(call: Call, address: QueueAddress, message_id: str, receipt: str) -> None:
    """Delete one receive of a message; one received again since is left alone."""
    try:
        await call.service.delete_message(address.account, address.queue, message_id, receipt)
    except MessageNotFound:
        pass


# Deleting and changing visibility ------------------------------------------------------------


async def delete_message(call: Call) -> dict[str, Any]:
    address = await call.existing_queue()
    handle = parse_receipt_handle(call.required("ReceiptHandle"), address)
    await _delete_quietly(call, address, handle.message_id, handle.receipt)
    return {}


async def change_message_visibility(call: Call) -> dict[str, Any]:
    address = await call.existing_queue()
    await _change_visibility(call, address, call.params)
    return {}


async def _change_visibility(call: Call, address: QueueAddress, params: dict[str, Any]) -> None:
    text = params.get("ReceiptHandle") or ""
    if not text:
        raise missing("ReceiptHandle")
    handle = parse_receipt_handle(text, address)
    hide = optional_integer(params, "VisibilityTimeout", 0, MAX_VISIBILITY)
    if hide is None:
        raise missing("VisibilityTimeout")
    try:
        await call.service.update_message(
            address.account, address.queue, handle.message_id, Attributes(hide=hide), handle.receipt
        )
    except MessageNotFound:
        raise SqsError(
            "InvalidParameterValue",
            f"Value {text} for parameter ReceiptHandle is invalid. Reason: Message does not "
            "exist or is not available for visibility timeout change.",
        ) from None


async def delete_message_batch(call: Call) -> dict[str, Any]:
    address = await call.existing_queue()

    async def one(entry: dict[str, Any]) -> None:
        text = entry.get("ReceiptHandle") or ""
        if not text:
            raise missing("ReceiptHandle")
        handle = parse_receipt_handle(text, address)
        await _delete_quietly(call, address, handle.message_id, handle.receipt)

    return await _each_entry(call.params, "DeleteMessageBatchRequestEntry", one)


async def change_message_visibility_batch(call: Call) -> dict[str, Any]:
    address = await call.existing_queue()
    return await _each_entry(
        call.params,
        "ChangeMessageVisibilityBatchRequestEntry",
        lambda entry: _change_visibility(call, address, entry),
    )


async def _each_entry(
    params: dict[str, Any], kind: str, act: Callable[[dict[str, Any]], Awaitable[None]]
) -> dict[str, Any]:
    """Run `act` on every entry at once (a backend groups their writes); an entry's
    SQS error is its Failed entry, not the request's."""
    entries = batch_entries(params, kind)
    outcomes = await asyncio.gather(*(act(e) for e in entries), return_exceptions=True)
    successful, failed = [], []
    for entry, outcome in zip(entries, outcomes, strict=True):
        if isinstance(outcome, SqsError):
            failed.append(_failure(entry["Id"], outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            successful.append({"Id": entry["Id"]})
    return {"Successful": successful, "Failed": failed}
