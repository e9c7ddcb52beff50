"""What SendMessage and SendMessageBatch refuse, as SQS refuses it: sizes, attribute
names, types and values, characters, batch shapes. A refused message is not stored."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.sqs.clients import SqsClient, error_code
from tests.sqs.conftest import ClientFactory, frontend_only
from tests.sqs.digests import body_digest
from tests.sqs.messages import counts, receive_one

MIB = 1024 * 1024


@pytest.fixture
def url(sqs: SqsClient) -> str:
    found: str = sqs.create_queue(QueueName="limits")["QueueUrl"]
    return found


def test_a_message_of_1_mib_is_accepted_and_one_byte_more_is_not(sqs: SqsClient, url: str) -> None:
    largest = "x" * MIB
    sqs.send_message(QueueUrl=url, MessageBody=largest)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody=largest + "x")
    assert error_code(raised.value) == "InvalidParameterValue"
    # Attributes count towards the size, their names and types included.
    with pytest.raises(ClientError) as raised:
        sqs.send_message(
            QueueUrl=url,
            MessageBody="x" * (MIB - 10),
            MessageAttributes={"name": {"DataType": "String", "StringValue": "1234567"}},
        )
    assert error_code(raised.value) == "InvalidParameterValue"
    got = receive_one(sqs, url)
    assert got["Body"] == largest
    assert got["MD5OfBody"] == body_digest(largest)
    assert counts(sqs, url) == (0, 1, 0)


def test_a_batch_of_more_than_1_mib_is_refused_whole(sqs: SqsClient, url: str) -> None:
    entries = [{"Id": f"e{n}", "MessageBody": "y" * (MIB // 4)} for n in range(5)]
    with pytest.raises(ClientError) as raised:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert error_code(raised.value) == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert counts(sqs, url) == (0, 0, 0)


@frontend_only
def test_the_queues_maximum_message_size_applies(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="y" * 1024)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="y" * 1025)
    assert error_code(raised.value) == "InvalidParameterValue"
    assert counts(sqs, url) == (1, 0, 0)


@frontend_only
@pytest.mark.parametrize(
    "attributes",
    [
        {"": {"DataType": "String", "StringValue": "v"}},
        {"AWS.reserved": {"DataType": "String", "StringValue": "v"}},
        {"amazon.reserved": {"DataType": "String", "StringValue": "v"}},
        {"bad name": {"DataType": "String", "StringValue": "v"}},
        {".starts-with-a-dot": {"DataType": "String", "StringValue": "v"}},
        {"two..dots": {"DataType": "String", "StringValue": "v"}},
        {"x" * 257: {"DataType": "String", "StringValue": "v"}},
        {"n": {"DataType": "Number", "StringValue": "not a number"}},
        {"n": {"DataType": "Integer", "StringValue": "1"}},
        {"n": {"DataType": "String"}},
        {"n": {"DataType": "String", "StringValue": ""}},
        {"n": {"DataType": "Binary", "StringValue": "text is not binary"}},
        {"n": {"StringValue": "no type"}},
        {f"a{n}": {"DataType": "String", "StringValue": "v"} for n in range(11)},
    ],
    ids=lambda attributes: str(len(attributes)) + ":" + next(iter(attributes))[:20],
)
def test_invalid_message_attributes_are_refused(
    new_client: ClientFactory, url: str, attributes: dict[str, Any]
) -> None:
    sqs = new_client(validate=False)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    # (DataType is required by SQS's model: a missing one may be either.)
    refused = {"InvalidParameterValue"} | (
        {"MissingParameter"} if "no type" in str(attributes) else set()
    )
    assert error_code(raised.value) in refused
    assert counts(sqs, url) == (0, 0, 0)


@frontend_only
def test_characters_outside_xml_are_invalid_message_contents(sqs: SqsClient, url: str) -> None:
    for body in ["bell \x07", "nul \x00", "\ufffe", "surrogate-free but \x1f"]:
        with pytest.raises(ClientError) as raised:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        assert error_code(raised.value) == "InvalidMessageContents", repr(body)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(
            QueueUrl=url,
            MessageBody="fine",
            MessageAttributes={"a": {"DataType": "String", "StringValue": "bad \x08"}},
        )
    assert error_code(raised.value) in {"InvalidMessageContents", "InvalidParameterValue"}
    assert counts(sqs, url) == (0, 0, 0)


@frontend_only
def test_an_empty_body_is_missing_parameter(new_client: ClientFactory, url: str) -> None:
    sqs = new_client(validate=False)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="")
    assert error_code(raised.value) == "MissingParameter"
    assert counts(sqs, url) == (0, 0, 0)


@frontend_only
@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([{"Id": f"e{n}", "MessageBody": "x"} for n in range(11)], "TooManyEntriesInBatchRequest"),
        (
            [{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}],
            "BatchEntryIdsNotDistinct",
        ),
        ([], "EmptyBatchRequest"),
        ([{"Id": "no spaces", "MessageBody": "x"}], "InvalidBatchEntryId"),
        ([{"Id": "i" * 81, "MessageBody": "x"}], "InvalidBatchEntryId"),
        ([{"Id": "", "MessageBody": "x"}], "InvalidBatchEntryId"),
    ],
    ids=["eleven", "repeated-id", "empty", "bad-id", "long-id", "empty-id"],
)
def test_batches_refused_whole(
    new_client: ClientFactory, url: str, entries: list[dict[str, Any]], code: str
) -> None:
    sqs = new_client(validate=False)
    with pytest.raises(ClientError) as raised:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert error_code(raised.value) == f"AWS.SimpleQueueService.{code}"
    assert counts(sqs, url) == (0, 0, 0)
    handles = [{"Id": e["Id"], "ReceiptHandle": "h"} for e in entries]
    with pytest.raises(ClientError) as raised:
        sqs.delete_message_batch(QueueUrl=url, Entries=handles)
    assert error_code(raised.value) == f"AWS.SimpleQueueService.{code}"


@frontend_only
@pytest.mark.parametrize("delay", [-1, 901])
def test_delay_seconds_out_of_range_is_invalid(
    new_client: ClientFactory, url: str, delay: int
) -> None:
    sqs = new_client(validate=False)
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=delay)
    assert error_code(raised.value) == "InvalidParameterValue"
    assert counts(sqs, url) == (0, 0, 0)
