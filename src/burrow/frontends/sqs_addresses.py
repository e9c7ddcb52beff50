"""How the SQS frontend names things: queue names, URLs, ARNs and receipt handles.

A queue URL is `{scheme}://{host}/{account}/{queue}`, built from the request's own Host,
so that a client reaches the queue the way it reached the server; the account plays the
AWS account id's part. An ARN is `arn:aws:sqs:{region}:{account}:{queue}`: its region is
the one the caller signs for, and ignored when an ARN is read (one server is one region).

A receipt handle names one receive of one message: its queue, the message's id and the
receive's receipt (`Attributes.receipt`), in URL-safe base64 so that it is opaque text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from burrow.frontends.sqs_errors import SqsError

DEFAULT_REGION = "us-east-1"
# SQS's rule: up to 80 of these; a FIFO queue's name ends in `.fifo` (within the 80).
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
FIFO_SUFFIX = ".fifo"
_HANDLE_VERSION = "b1"


@dataclass(frozen=True, slots=True)
class QueueAddress:
    account: str
    queue: str

    @property
    def fifo(self) -> bool:
        return self.queue.endswith(FIFO_SUFFIX)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came in: what queue URLs and ARNs given back are built from."""

    # Each read only when an answer needs it (most calls give back no URL or ARN).
    base_url: Callable[[], str]  # scheme://host[:port], as the client addressed the server
    region: Callable[[], str] = lambda: DEFAULT_REGION

    def url(self, address: QueueAddress) -> str:
        return f"{self.base_url()}/{address.account}/{address.queue}"

    def arn(self, address: QueueAddress) -> str:
        return f"arn:aws:sqs:{self.region()}:{address.account}:{address.queue}"


def check_queue_name(name: str) -> str:
    stem = name[: -len(FIFO_SUFFIX)] if name.endswith(FIFO_SUFFIX) else name
    if len(name) > 80 or not _QUEUE_NAME.fullmatch(stem):
        raise SqsError(
            "InvalidParameterValue",
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        )
    return name


@functools.lru_cache(maxsize=4096)  # (a client names the same few queues call after call)
def parse_queue_url(url: str) -> QueueAddress:
    """The account and queue of a queue URL (any host: the path says which queue)."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = ""
    parts = [unquote(part) for part in path.split("/")[1:]]
    if len(parts) != 2 or not all(parts):
        raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
    return QueueAddress(parts[0], parts[1])


def parse_arn(arn: str, parameter: str) -> QueueAddress:
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"] or not (parts[4] and parts[5]):
        raise SqsError(
            "InvalidParameterValue", f"Value {arn} for parameter {parameter} is invalid."
        )
    return QueueAddress(parts[4], parts[5])


@dataclass(frozen=True, slots=True)
class ReceiptHandle:
    address: QueueAddress
    message_id: str
    receipt: str

    def encode(self) -> str:
        raw = "\0".join(
            (
                _HANDLE_VERSION,
                self.address.account,
                self.address.queue,
                self.message_id,
                self.receipt,
            )
        )
        return base64.urlsafe_b64encode(raw.encode()).decode()


def parse_receipt_handle(handle: str, queue: QueueAddress) -> ReceiptHandle:
    """The receive a handle names, which must be of `queue` (else ReceiptHandleIsInvalid)."""
    try:
        raw = base64.urlsafe_b64decode(handle.encode("ascii")).decode()
        version, account, name, message_id, receipt = raw.split("\0")
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid_handle(handle) from None
    if version != _HANDLE_VERSION or QueueAddress(account, name) != queue or not message_id:
        raise _invalid_handle(handle)
    return ReceiptHandle(queue, message_id, receipt)


def _invalid_handle(handle: str) -> SqsError:
    shown = handle if len(handle) <= 100 else handle[:100] + "…"
    return SqsError(
        "ReceiptHandleIsInvalid",
        f'The input receipt handle "{shown}" is not a valid receipt handle.',
    )
