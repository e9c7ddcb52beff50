"""Dead-letter queues and message move tasks, on every backend: a RedrivePolicy moves a
message received more than maxReceiveCount times; StartMessageMoveTask sends the
dead-letter queue's messages back to their source (or to a destination), at a rate,
listed and cancelled with List/CancelMessageMoveTask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.sqs.clients import SqsClient, error_code, queue_arn
from tests.sqs.conftest import frontend_only
from tests.sqs.messages import counts, receive_n, send_all
from tests.waiting import wait_until

MOVABLE = 60  # at 1 a second, far more than a cancel right after the start lets move
ATTRIBUTES = {"origin": {"DataType": "String", "StringValue": "source"}}


def with_dead_letters(sqs: SqsClient, max_receives: int) -> tuple[str, str]:
    """A source queue and its dead-letter queue: (source URL, dead-letter URL)."""
    dead = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dead), "maxReceiveCount": max_receives}
    source = sqs.create_queue(
        QueueName="source", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    return source, dead


def receive_all(sqs: SqsClient, url: str, **options: Any) -> list[dict[str, Any]]:
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **options)
    found: list[dict[str, Any]] = answer.get("Messages", [])
    return found


def dead_letter(sqs: SqsClient, source: str, bodies: list[str]) -> None:
    """Send `bodies` to a source whose maxReceiveCount is 1 and receive them past it."""
    send_all(sqs, source, bodies)
    assert len(receive_n(sqs, source, len(bodies), VisibilityTimeout=0)) == len(bodies)
    assert receive_all(sqs, source, VisibilityTimeout=0) == []


def test_a_message_received_more_than_max_receive_count_moves_to_the_dead_letter_queue(
    sqs: SqsClient,
) -> None:
    source, dead = with_dead_letters(sqs, max_receives=2)
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison", MessageAttributes=ATTRIBUTES)
    for receives in ["1", "2"]:
        [message] = receive_all(sqs, source, VisibilityTimeout=0, AttributeNames=["All"])
        assert message["Attributes"]["ApproximateReceiveCount"] == receives
    assert receive_all(sqs, source, VisibilityTimeout=0) == []
    assert counts(sqs, source) == (0, 0, 0)

    [moved] = receive_all(
        sqs, dead, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]
    )
    assert moved["Body"] == "poison"
    assert moved["MessageAttributes"] == ATTRIBUTES
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn(sqs, source)
    assert moved["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert counts(sqs, dead) == (0, 1, 0)


def test_a_redrive_policy_needs_an_existing_dead_letter_queue(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="lonely")["QueueUrl"]
    missing = queue_arn(sqs, url) + "-nowhere"
    redrive = json.dumps({"deadLetterTargetArn": missing, "maxReceiveCount": 3})
    with pytest.raises(ClientError) as raised:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})
    assert error_code(raised.value) == "InvalidParameterValue"
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "RedrivePolicy" not in found


def task_of(sqs: SqsClient, dead_arn: str) -> dict[str, Any]:
    """The dead-letter queue's latest move task, as ListMessageMoveTasks shows it."""
    results = sqs.list_message_move_tasks(SourceArn=dead_arn)["Results"]
    assert results
    task: dict[str, Any] = results[0]
    return task


def test_a_move_task_sends_dead_letters_back_to_their_source(sqs: SqsClient) -> None:
    source, dead = with_dead_letters(sqs, max_receives=1)
    dead_arn = queue_arn(sqs, dead)
    assert sqs.list_message_move_tasks(SourceArn=dead_arn).get("Results", []) == []
    dead_letter(sqs, source, ["one", "two", "three"])
    wait_until(lambda: counts(sqs, dead) == (3, 0, 0), "three dead letters")

    handle = sqs.start_message_move_task(SourceArn=dead_arn)["TaskHandle"]
    assert handle
    wait_until(lambda: task_of(sqs, dead_arn)["Status"] == "COMPLETED", "the task's end")
    task = task_of(sqs, dead_arn)
    assert task["SourceArn"] == dead_arn
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert task["ApproximateNumberOfMessagesToMove"] == 3
    assert isinstance(task["StartedTimestamp"], int)
    assert "DestinationArn" not in task
    back = receive_n(sqs, source, 3)
    assert sorted(m["Body"] for m in back) == ["one", "three", "two"]
    assert counts(sqs, dead) == (0, 0, 0)
    with pytest.raises(ClientError) as raised:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_code(raised.value) == "ResourceNotFoundException"


def test_a_move_task_to_a_destination_at_a_rate_can_be_cancelled(sqs: SqsClient) -> None:
    _, dead = with_dead_letters(sqs, max_receives=1)
    dead_arn = queue_arn(sqs, dead)
    destination = sqs.create_queue(QueueName="destination")["QueueUrl"]
    send_all(sqs, dead, [f"m{n}" for n in range(MOVABLE)])

    handle = sqs.start_message_move_task(
        SourceArn=dead_arn,
        DestinationArn=queue_arn(sqs, destination),
        MaxNumberOfMessagesPerSecond=1,
    )["TaskHandle"]
    running = task_of(sqs, dead_arn)
    assert running["Status"] == "RUNNING"
    assert running["TaskHandle"] == handle
    assert running["DestinationArn"] == queue_arn(sqs, destination)
    assert running["MaxNumberOfMessagesPerSecond"] == 1
    with pytest.raises(ClientError):
        sqs.start_message_move_task(SourceArn=dead_arn)  # one running task a queue

    cancelled = sqs.cancel_message_move_task(TaskHandle=handle)
    assert 0 <= cancelled["ApproximateNumberOfMessagesMoved"] < MOVABLE
    wait_until(lambda: task_of(sqs, dead_arn)["Status"] == "CANCELLED", "the cancel")

    def every_message_in_one_queue_or_the_other() -> bool:
        left, moved = sum(counts(sqs, dead)), sum(counts(sqs, destination))
        return left + moved == MOVABLE and counts(sqs, dead)[1] == 0

    wait_until(every_message_in_one_queue_or_the_other, "every message, none lost or hidden")
    assert sum(counts(sqs, destination)) < MOVABLE, "the rate of 1 a second was not kept"


@frontend_only
def test_move_tasks_refused(sqs: SqsClient) -> None:
    source, dead = with_dead_letters(sqs, max_receives=1)
    with pytest.raises(ClientError) as raised:
        sqs.start_message_move_task(SourceArn=queue_arn(sqs, source))
    assert error_code(raised.value) == "InvalidParameterValue"  # not a dead-letter queue
    with pytest.raises(ClientError) as raised:
        sqs.start_message_move_task(SourceArn=queue_arn(sqs, dead) + "-nowhere")
    assert error_code(raised.value) in {
        "ResourceNotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
    }
    for rate in [0, 501]:
        with pytest.raises(ClientError) as raised:
            sqs.start_message_move_task(
                SourceArn=queue_arn(sqs, dead), MaxNumberOfMessagesPerSecond=rate
            )
        assert error_code(raised.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as raised:
        sqs.cancel_message_move_task(TaskHandle="not-a-task-handle")
    assert error_code(raised.value) in {"ResourceNotFoundException", "InvalidParameterValue"}
    assert sqs.list_message_move_tasks(SourceArn=queue_arn(sqs, dead)).get("Results", []) == []
