"""One SQS call as its action sees it: the checked parameters, who asks, from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from burrow.frontends.sqs_addresses import Origin, QueueAddress, parse_queue_url
from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_queue_info import QueueInfos
from burrow.service import Service


class TaskRunner(Protocol):
    def start(self, source: QueueAddress) -> None:
        """Run the source queue's move task, if it is not running here already."""


@dataclass(slots=True)
class Call:
    service: Service
    infos: QueueInfos
    mover: TaskRunner
    params: dict[str, Any]
    origin: Origin
    account: str  # the account admitted: the queue URL's, else the caller's own

    @property
    def queue(self) -> QueueAddress:
        """The queue the call's QueueUrl names (admission checked its account)."""
        return parse_queue_url(self.required("QueueUrl"))

    async def existing_queue(self) -> QueueAddress:
        """`queue`, once known to exist (QueueDoesNotExist otherwise, as SQS answers
        before it looks at a receipt handle)."""
        address = self.queue
        await self.infos.load(address)
        return address

    def required(self, name: str) -> Any:
        value = self.params.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        """An integer parameter from `low` to `high` (InvalidParameterValue otherwise), or
        `default` when not given."""
        value = optional_integer(self.params, name, low, high)
        return default if value is None else value


def missing(name: str) -> SqsError:
    return SqsError("MissingParameter", f"The request must contain the parameter {name}.")


def optional_integer(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise SqsError(
            "InvalidParameterValue",
            f"Value {value} for parameter {name} is invalid. Reason: must be between "
            f"{low} and {high}.",
        )
    return value
