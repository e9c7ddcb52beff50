"""ReceiveMessage's long poll (WaitTimeSeconds), on every backend: woken by a send from
another client, by a message's visibility timeout or delay running out; an empty one
answers when its wait ends.

Each poll waits SQS's longest, 20 s, and must answer within `PATIENCE` of its event, so
a poll never woken, or answered only at its timeout, fails. How fast polls wake
(Burrow's 100 ms target) is measured in bench/, not asserted here.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from tests.sqs.clients import SqsClient
from tests.sqs.conftest import ClientFactory
from tests.waiting import CLOCK_SLACK, PATIENCE, in_background, result_within

LONGEST_WAIT = 20  # SQS's most
Poll = concurrent.futures.Future[dict[str, Any]]


def long_poll(sqs: SqsClient, url: str, **options: Any) -> Poll:
    """A receive waiting on a thread of its own."""

    def receive() -> dict[str, Any]:
        answer: dict[str, Any] = sqs.receive_message(QueueUrl=url, **options)
        return answer

    return in_background(receive)


def still_waiting(poll: Poll) -> None:
    """A moment for the poll to reach its wait, in which nothing may answer it."""
    done, _ = concurrent.futures.wait([poll], timeout=0.3)
    assert not done, "the long poll answered before anything happened"


def answered(poll: Poll, what: str) -> tuple[list[dict[str, Any]], float]:
    """The messages a poll answered, and when (wall clock)."""
    messages: list[dict[str, Any]] = result_within(poll, what).get("Messages", [])
    return messages, time.time()


def test_a_send_from_another_client_wakes_a_long_poll(
    sqs: SqsClient, new_client: ClientFactory
) -> None:
    url = sqs.create_queue(QueueName="waited-on")["QueueUrl"]
    poll = long_poll(sqs, url, WaitTimeSeconds=LONGEST_WAIT)
    still_waiting(poll)
    sent_at = time.time()
    new_client().send_message(QueueUrl=url, MessageBody="wake up")
    messages, at = answered(poll, "the long poll's answer to a send")
    assert [m["Body"] for m in messages] == ["wake up"]
    assert at - sent_at < PATIENCE


def test_the_queues_receive_wait_time_makes_a_receive_long_poll(
    sqs: SqsClient, new_client: ClientFactory
) -> None:
    url = sqs.create_queue(
        QueueName="always-waits", Attributes={"ReceiveMessageWaitTimeSeconds": "20"}
    )["QueueUrl"]
    poll = long_poll(sqs, url)
    still_waiting(poll)
    new_client().send_message(QueueUrl=url, MessageBody="found")
    messages, _ = answered(poll, "the queue-default long poll's answer")
    assert [m["Body"] for m in messages] == ["found"]
    # WaitTimeSeconds=0 asks for no wait, whatever the queue's default.
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert time.monotonic() - started < PATIENCE


def test_a_visibility_timeout_running_out_wakes_a_long_poll_with_the_message_again(
    sqs: SqsClient,
) -> None:
    # (The queue's VisibilityTimeout applies: the receive gives none.)
    url = sqs.create_queue(QueueName="redelivered", Attributes={"VisibilityTimeout": "1"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="not deleted")
    earliest = time.time() + 1  # (the receive hides it from no earlier than now)
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])
    visible_again = time.time() + 1
    [message] = first["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    poll = long_poll(sqs, url, WaitTimeSeconds=LONGEST_WAIT, AttributeNames=["All"])
    [again], at = answered(poll, "the long poll's answer when the visibility ran out")
    assert at >= earliest - CLOCK_SLACK, "received again before its visibility timeout"
    assert at - visible_again < PATIENCE
    assert again["MessageId"] == message["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (
        again["Attributes"]["ApproximateFirstReceiveTimestamp"]
        == message["Attributes"]["ApproximateFirstReceiveTimestamp"]
    )
    assert again["ReceiptHandle"] != message["ReceiptHandle"]


def test_a_delay_running_out_wakes_a_long_poll(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
    earliest = time.time() + 1
    sqs.send_message(QueueUrl=url, MessageBody="in a second", DelaySeconds=1)
    visible_at = time.time() + 1
    poll = long_poll(sqs, url, WaitTimeSeconds=LONGEST_WAIT)
    [message], at = answered(poll, "the delayed message")
    assert message["Body"] == "in a second"
    assert at >= earliest - CLOCK_SLACK, "received before its delay ended"
    assert at - visible_at < PATIENCE


def test_an_empty_long_poll_answers_no_messages_when_its_wait_ends(sqs: SqsClient) -> None:
    wait = 1
    url = sqs.create_queue(QueueName="empty")["QueueUrl"]
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait)
    waited = time.monotonic() - started
    assert wait - CLOCK_SLACK - 0.05 <= waited < wait + PATIENCE
