"""An SQS queue's attributes: which there are, their defaults, what each may be set to.

Values are kept as SQS gives and answers them, text. Settable attributes a Burrow
server cannot act on (encryption's) are checked and stored as given, so that
infrastructure code that sets them works; docs/sqs.md says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from burrow.config import Limits
from burrow.frontends.sqs_addresses import QueueAddress, parse_arn
from burrow.frontends.sqs_errors import SqsError

Check = Callable[[str, str, Limits], str]

# The read-only ones, computed on each GetQueueAttributes.
COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
COMPUTED = (*COUNTS, "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn")
FIFO_ONLY = frozenset(
    {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
)


def _invalid(name: str, value: str, why: str = "") -> SqsError:
    reason = f" Reason: {why}" if why else ""
    return SqsError("InvalidAttributeValue", f"Invalid value for the parameter {name}.{reason}")


def _number(low: int, high: int, cap: str | None = None) -> Check:
    """An integer from `low` to `high`, and no more than the server's limit `cap`."""

    def check(name: str, value: str, limits: Limits) -> str:
        top = min(high, getattr(limits, cap)) if cap else high
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= top:
            raise _invalid(name, value, f"must be an integer from {low} to {top}")
        return str(int(value))

    return check


def _boolean(name: str, value: str, limits: Limits) -> str:
    if value.lower() not in ("true", "false"):
        raise _invalid(name, value, "must be true or false")
    return value.lower()


def _one_of(*choices: str) -> Check:
    def check(name: str, value: str, limits: Limits) -> str:
        if value not in choices:
            raise _invalid(name, value, f"must be one of {', '.join(choices)}")
        return value

    return check


def _text(name: str, value: str, limits: Limits) -> str:
    if len(value) > 2048:
        raise _invalid(name, value, "longer than 2048 characters")
    return value


def _json_object(name: str, value: str) -> dict[str, object]:
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _invalid(name, value, "not valid JSON") from None
    if not isinstance(document, dict):
        raise _invalid(name, value, "not a JSON object")
    return document


def _policy(name: str, value: str, limits: Limits) -> str:
    if value:
        _json_object(name, value)
    if len(value) > 20_480:
        raise _invalid(name, value, "longer than 20 KiB")
    return value


def _redrive_policy(name: str, value: str, limits: Limits) -> str:
    if not value:
        return value  # "" removes it
    redrive = RedrivePolicy.parse(value)
    return orjson.dumps(
        {"deadLetterTargetArn": redrive.arn, "maxReceiveCount": redrive.max_receives}
    ).decode()


def _redrive_allow_policy(name: str, value: str, limits: Limits) -> str:
    if not value:
        return value
    document = _json_object(name, value)
    permission = document.get("redrivePermission")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise _invalid(name, value, "redrivePermission must be allowAll, denyAll or byQueue")
    sources = document.get("sourceQueueArns", [])
    if not isinstance(sources, list) or not all(isinstance(a, str) for a in sources):
        raise _invalid(name, value, "sourceQueueArns must be a list of queue ARNs")
    if (permission == "byQueue") != bool(sources) or len(sources) > 10:
        raise _invalid(name, value, "byQueue takes 1 to 10 sourceQueueArns, the others none")
    for arn in sources:
        parse_arn(arn, name)
    return value


@dataclass(frozen=True, slots=True)
class Attribute:
    default: str | None  # None: not shown unless set
    check: Check


SETTABLE: dict[str, Attribute] = {
    "DelaySeconds": Attribute("0", _number(0, 900)),
    "MaximumMessageSize": Attribute(None, _number(1024, 1_048_576, "max_sqs_message_bytes")),
    "MessageRetentionPeriod": Attribute("345600", _number(60, 1_209_600, "max_ttl")),
    "ReceiveMessageWaitTimeSeconds": Attribute("0", _number(0, 20)),
    "VisibilityTimeout": Attribute("30", _number(0, 43_200, "max_hide")),
    "Policy": Attribute(None, _policy),
    "RedrivePolicy": Attribute(None, _redrive_policy),
    "RedriveAllowPolicy": Attribute(None, _redrive_allow_policy),
    "KmsMasterKeyId": Attribute(None, _text),
    "KmsDataKeyReusePeriodSeconds": Attribute(None, _number(60, 86_400)),
    "SqsManagedSseEnabled": Attribute("false", _boolean),
    "FifoQueue": Attribute(None, _boolean),
    "ContentBasedDeduplication": Attribute(None, _boolean),
    "DeduplicationScope": Attribute(None, _one_of("messageGroup", "queue")),
    "FifoThroughputLimit": Attribute(None, _one_of("perQueue", "perMessageGroupId")),
}
FIFO_DEFAULTS = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
KNOWN = frozenset(SETTABLE) | frozenset(COMPUTED)


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    arn: str
    target: QueueAddress
    max_receives: int

    @classmethod
    def parse(cls, value: str) -> RedrivePolicy:
        name = "RedrivePolicy"
        document = _json_object(name, value)
        arn, count = document.get("deadLetterTargetArn"), document.get("maxReceiveCount")
        if isinstance(count, str) and count.isascii() and count.isdigit():
            count = int(count)  # (SDKs and consoles send either)
        if not isinstance(arn, str) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise _invalid(
                name, value, "needs deadLetterTargetArn and a maxReceiveCount from 1 to 1000"
            )
        return cls(arn, parse_arn(arn, name), count)


def checked(given: Mapping[str, str], limits: Limits, fifo: bool) -> dict[str, str]:
    """`given` attributes, each checked; unknown or read-only names, and FIFO attributes
    on a standard queue, are refused as SQS does."""
    out: dict[str, str] = {}
    for name, value in given.items():
        attribute = SETTABLE.get(name)
        if attribute is None:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        if name in FIFO_ONLY and not fifo:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        if not isinstance(value, str):
            raise _invalid(name, str(value))
        out[name] = attribute.check(name, value, limits)
    return out


def defaults(fifo: bool, limits: Limits) -> dict[str, str]:
    """What a new queue's attributes are before any is set."""
    shown = {name: a.default for name, a in SETTABLE.items() if a.default is not None}
    shown["MaximumMessageSize"] = str(min(1_048_576, limits.max_sqs_message_bytes))
    return shown | (FIFO_DEFAULTS if fifo else {})
