"""Helpers for the message tests: queue counts, sending many, receiving until done."""

from __future__ import annotations

from typing import Any

from tests.sqs.clients import SqsClient
from tests.waiting import PATIENCE, wait_until

COUNT_NAMES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def counts(sqs: SqsClient, url: str) -> tuple[int, int, int]:
    """The queue's (visible, in flight, delayed) counts."""
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNT_NAMES))
    visible, in_flight, delayed = (int(found["Attributes"][name]) for name in COUNT_NAMES)
    return visible, in_flight, delayed


def send_all(sqs: SqsClient, url: str, bodies: list[str]) -> list[str]:
    """Send `bodies` in batches of 10; their message ids, every entry checked sent."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        entries = [{"Id": f"m{n}", "MessageBody": body} for n, body in enumerate(chunk)]
        sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not sent.get("Failed"), sent["Failed"]
        by_entry = {entry["Id"]: entry["MessageId"] for entry in sent["Successful"]}
        ids += [by_entry[entry["Id"]] for entry in entries]
    return ids


def receive_one(sqs: SqsClient, url: str, **options: Any) -> dict[str, Any]:
    """The only message one receive answers (it must answer exactly one)."""
    messages = sqs.receive_message(QueueUrl=url, **options).get("Messages", [])
    assert len(messages) == 1, messages
    message: dict[str, Any] = messages[0]
    return message


def receive_n(
    sqs: SqsClient, url: str, expected: int, seconds: float = PATIENCE, **options: Any
) -> list[dict[str, Any]]:
    """Receive (10 at a time) until `expected` messages came, none twice; then no more."""
    received: list[dict[str, Any]] = []

    def more() -> bool:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **options)
        received.extend(answer.get("Messages", []))
        return len(received) >= expected

    wait_until(more, f"{expected} messages received", seconds)
    ids = [message["MessageId"] for message in received]
    assert len(ids) == len(set(ids)) == expected, ids
    return received
