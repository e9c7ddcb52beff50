"""SQS's queue actions: create, find, list, delete, purge, attributes, tags, permissions.

A queue created here is a queue info (`sqs_queue_info`); it shows in v1.0 listings
only while it holds messages, as every v1.0 queue does. Deleting it deletes its info
and its messages. AddPermission and RemovePermission edit the Policy attribute, which
is kept and shown but not enforced: keys and their roles decide who may do what
(docs/sqs.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson

from burrow.errors import NoMatch
from burrow.frontends.sqs_addresses import QueueAddress, check_queue_name
from burrow.frontends.sqs_attributes import (
    COMPUTED,
    COUNTS,
    FIFO_ONLY,
    KNOWN,
    RedrivePolicy,
    checked,
    defaults,
)
from burrow.frontends.sqs_call import Call, missing, optional_integer
from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_queue_info import QueueInfo
from burrow.model import Detail, Filters

MAX_TAGS = 50
EVERY_MESSAGE = Filters(match_hidden=True)  # a purge takes in-flight and delayed ones too
REMOVABLE = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy"})  # "" removes these
PERMISSION_ACTIONS = frozenset(
    {
        "*",
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "ChangeMessageVisibility",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "PurgeQueue",
        "ListQueueTags",
    }
)


async def _attributes(call: Call, address: QueueAddress, given: Any) -> dict[str, str]:
    """Attributes to set, checked; a redrive policy's dead-letter queue must exist in
    the same account (a move there is a write the caller's credentials must allow)."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise SqsError("InvalidParameterValue", "Attributes must be a map")
    values = checked(given, call.infos.limits(address), address.fifo)
    redrive = values.get("RedrivePolicy")
    if redrive:
        target = RedrivePolicy.parse(redrive).target
        if target.account != address.account or await call.infos.read(target) is None:
            raise SqsError(
                "InvalidParameterValue",
                "Value for parameter RedrivePolicy is invalid. Reason: Dead letter target "
                "does not exist (in this account).",
            )
    return values


def _tags(given: Any) -> dict[str, str]:
    if not given:
        return {}
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given.items()
    ):
        raise SqsError("InvalidParameterValue", "Tags must be a map of strings")
    for key, value in given.items():
        if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
            raise SqsError(
                "InvalidParameterValue",
                f"Tag {key!r}: keys are 1 to 128 characters, not starting with aws:, "
                "values up to 256.",
            )
    return dict(given)


async def create_queue(call: Call) -> dict[str, Any]:
    name = call.params.get("QueueName")
    if name is None:
        raise missing("QueueName")
    address = QueueAddress(call.account, check_queue_name(name))  # ("" is a bad name)
    asked = call.params.get("Attributes") or {}
    if address.fifo or (isinstance(asked, dict) and asked.get("FifoQueue") == "true"):
        if not address.fifo:
            raise SqsError(
                "InvalidParameterValue", "The name of a FIFO queue can only end with .fifo."
            )
        raise SqsError("UnsupportedOperation", "FIFO queues are not supported yet.")
    given = await _attributes(call, address, call.params.get("Attributes"))
    tags = _tags(call.params.get("tags"))
    attributes = defaults(False, call.infos.limits(address)) | given
    if await call.infos.create(address, QueueInfo(attributes, tags)) is None:
        existing = await call.infos.read(address)
        if existing is not None and any(
            existing.attributes.get(name, "") != value for name, value in given.items()
        ):
            raise SqsError(
                "QueueNameExists",
                "A queue already exists with the same name and a different value for "
                "attribute(s) " + ", ".join(sorted(given)),
            )
    return {"QueueUrl": call.origin.url(address)}


async def get_queue_url(call: Call) -> dict[str, Any]:
    address = QueueAddress(call.account, call.required("QueueName"))
    await call.infos.load(address)
    return {"QueueUrl": call.origin.url(address)}


async def delete_queue(call: Call) -> dict[str, Any]:
    address = call.queue
    await call.infos.load(address)
    await call.infos.delete(address)
    await _purge(call, address)
    return {}


async def purge_queue(call: Call) -> dict[str, Any]:
    address = call.queue
    await call.infos.load(address)
    await _purge(call, address)
    return {}


async def _purge(call: Call, address: QueueAddress) -> None:
    try:
        await call.service.delete_messages(
            address.account, address.queue, EVERY_MESSAGE, detail=Detail.NONE
        )
    except NoMatch:
        pass


async def get_queue_attributes(call: Call) -> dict[str, Any]:
    address = call.queue
    info = await call.infos.read(address)  # (uncached: SQS's "approximate" is not stale)
    if info is None:
        raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
    names = call.params.get("AttributeNames") or []
    for name in names:
        if name != "All" and (name not in KNOWN or (name in FIFO_ONLY and not address.fifo)):
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
    every = "All" in names
    wanted = [n for n in (*info.attributes, *COMPUTED) if every or n in names]
    values = {n: info.attributes[n] for n in wanted if n in info.attributes}
    if any(n in COUNTS for n in wanted):
        counts = await call.service.count_messages(address.account, address.queue)
        values |= {
            "ApproximateNumberOfMessages": str(counts.visible),
            "ApproximateNumberOfMessagesNotVisible": str(counts.in_flight),
            "ApproximateNumberOfMessagesDelayed": str(counts.delayed),
        }
    values |= {
        "CreatedTimestamp": str(info.created),
        "LastModifiedTimestamp": str(info.modified),
        "QueueArn": call.origin.arn(address),
    }
    shown = {n: values[n] for n in wanted if n in values}
    return {"Attributes": shown} if shown else {}


async def set_queue_attributes(call: Call) -> dict[str, Any]:
    address = call.queue
    given = await _attributes(call, address, call.required("Attributes"))

    def edit(info: QueueInfo) -> None:
        for name, value in given.items():
            if name in REMOVABLE and not value:
                info.attributes.pop(name, None)
            else:
                info.attributes[name] = value

    await call.infos.change(address, edit)
    return {}


# Tags -------------------------------------------------------------------------------


async def tag_queue(call: Call) -> dict[str, Any]:
    tags = _tags(call.params.get("Tags"))
    if not tags:
        raise missing("Tags")
    address = call.queue

    def edit(info: QueueInfo) -> None:
        if len(info.tags.keys() | tags.keys()) > MAX_TAGS:
            raise SqsError(
                "InvalidParameterValue",
                f"Too many tags added for queue {address.queue}.",
            )
        info.tags |= tags

    await call.infos.change(address, edit)
    return {}


async def untag_queue(call: Call) -> dict[str, Any]:
    keys = call.required("TagKeys")
    if not keys:
        raise SqsError(
            "InvalidParameterValue", "Tag keys must be between 1 and 128 characters in length."
        )

    def edit(info: QueueInfo) -> None:
        for key in keys:
            info.tags.pop(key, None)

    await call.infos.change(call.queue, edit)
    return {}


async def list_queue_tags(call: Call) -> dict[str, Any]:
    info = await call.infos.read(call.queue)
    if info is None:
        raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
    return {"Tags": info.tags} if info.tags else {}


# Permissions (kept in the Policy attribute) --------------------------------------------


async def add_permission(call: Call) -> dict[str, Any]:
    address = call.queue
    label = call.required("Label")
    accounts, actions = call.required("AWSAccountIds"), call.required("Actions")
    unknown = [a for a in actions if a not in PERMISSION_ACTIONS]
    if unknown:
        raise SqsError(
            "InvalidParameterValue", f"Value SQS:{unknown[0]} for parameter ActionName is invalid."
        )
    statement = {
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in accounts]},
        "Action": [f"SQS:{action}" for action in actions],
        "Resource": call.origin.arn(address),
    }

    def edit(info: QueueInfo) -> None:
        policy = _policy(info, call.origin.arn(address))
        if any(s.get("Sid") == label for s in policy["Statement"]):
            raise SqsError(
                "InvalidParameterValue",
                f"Value {label} for parameter Label is invalid. Reason: Already exists.",
            )
        policy["Statement"].append(statement)
        info.attributes["Policy"] = orjson.dumps(policy).decode()

    await call.infos.change(address, edit)
    return {}


async def remove_permission(call: Call) -> dict[str, Any]:
    address = call.queue
    label = call.required("Label")

    def edit(info: QueueInfo) -> None:
        policy = _policy(info, call.origin.arn(address))
        kept = [s for s in policy["Statement"] if s.get("Sid") != label]
        if len(kept) == len(policy["Statement"]):
            raise SqsError(
                "InvalidParameterValue",
                f"Value {label} for parameter Label is invalid. Reason: can't find label.",
            )
        if kept:
            info.attributes["Policy"] = orjson.dumps({**policy, "Statement": kept}).decode()
        else:
            info.attributes.pop("Policy", None)

    await call.infos.change(address, edit)
    return {}


def _policy(info: QueueInfo, arn: str) -> dict[str, Any]:
    stored = info.attributes.get("Policy")
    policy: dict[str, Any] = orjson.loads(stored) if stored else {}
    if not isinstance(policy.get("Statement"), list):
        policy = {"Version": "2012-10-17", "Id": f"{arn}/SQSDefaultPolicy", "Statement": []}
    return policy


# Listings -------------------------------------------------------------------------------


async def list_queues(call: Call) -> dict[str, Any]:
    prefix = call.params.get("QueueNamePrefix") or ""
    urls, token = await _listing(call, lambda name, info: name.startswith(prefix))
    return _page("QueueUrls", urls, token)


async def list_dead_letter_source_queues(call: Call) -> dict[str, Any]:
    address = call.queue
    await call.infos.load(address)

    def feeds(name: str, info: QueueInfo) -> bool:
        redrive = info.redrive
        return redrive is not None and redrive.target == address

    urls, token = await _listing(call, feeds, with_info=True)
    return _page("queueUrls", urls, token)


def _page(field: str, urls: list[str], token: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {field: urls} if urls else {}
    if token is not None:
        page["NextToken"] = token
    return page


async def _listing(
    call: Call, keep: Callable[[str, QueueInfo], bool], with_info: bool = False
) -> tuple[list[str], str | None]:
    """URLs of the account's queues that `keep` keeps, a page of MaxResults (then the
    NextToken of the rest, if any), else all of them up to 1000, with no token."""
    most = optional_integer(call.params, "MaxResults", 1, 1000)
    marker = _marker(call.params.get("NextToken"))
    urls: list[str] = []
    last = None
    async for name in call.infos.names(call.account, marker):
        info = await call.infos.read(QueueAddress(call.account, name)) if with_info else None
        if keep(name, info or QueueInfo({})):
            if len(urls) == (most or 1000):
                token = base64.urlsafe_b64encode(last.encode()).decode() if most and last else None
                return urls, token
            urls.append(call.origin.url(QueueAddress(call.account, name)))
            last = name
    return urls, None


def _marker(token: Any) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(str(token).encode("ascii")).decode()
    except (ValueError, UnicodeError, binascii.Error):
        raise SqsError("InvalidParameterValue", "Invalid NextToken value.") from None
