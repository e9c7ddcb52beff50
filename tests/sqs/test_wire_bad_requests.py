"""Malformed SQS requests get the error SQS answers (`decode`), and what the model does
not know is ignored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_protocol import SqsCall
from tests.sqs.wire import json_request, query_request


def refused(read: Callable[[], SqsCall]) -> tuple[str, str]:
    with pytest.raises(SqsError) as raised:
        read()
    return raised.value.code, raised.value.message


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("DynamoDB_20120810.GetItem", b"{}", "UnknownOperationException"),
        ("AmazonSQS", b"{}", "UnknownOperationException"),
        ("AmazonSQS.Bogus", b"{}", "InvalidAction"),
        ("AmazonSQS.sendmessage", b"{}", "InvalidAction"),
        ("AmazonSQS.ListQueues", b"{not json", "SerializationException"),
        ("AmazonSQS.ListQueues", b"[]", "SerializationException"),
        ("AmazonSQS.ListQueues", b'"text"', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": "10"}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": 1.5}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": true}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": 1e400}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"QueueNamePrefix": 5}', "SerializationException"),
        ("AmazonSQS.DeleteQueue", b"", "MissingParameter"),
        ("AmazonSQS.DeleteQueue", b'{"QueueUrl": null}', "MissingParameter"),
        ("AmazonSQS.UntagQueue", b'{"QueueUrl": "u", "TagKeys": "k"}', "SerializationException"),
        ("AmazonSQS.TagQueue", b'{"QueueUrl": "u", "Tags": ["k"]}', "SerializationException"),
        ("AmazonSQS.TagQueue", b'{"QueueUrl": "u", "Tags": {"k": 1}}', "SerializationException"),
        (
            "AmazonSQS.SendMessageBatch",
            b'{"QueueUrl": "u", "Entries": [{"Id": "a", "MessageBody": "b"}, {"Id": "c"}]}',
            "MissingParameter",
        ),
        (
            "AmazonSQS.SendMessageBatch",
            b'{"QueueUrl": "u", "Entries": ["a"]}',
            "SerializationException",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": {"a": {}}}',
            "MissingParameter",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": '
            b'{"a": {"DataType": "Binary", "BinaryValue": "not base64!"}}}',
            "SerializationException",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": '
            b'{"a": {"DataType": "Binary", "BinaryValue": 12}}}',
            "SerializationException",
        ),
    ],
)
def test_bad_json_requests_get_the_error_sqs_answers(target: str, body: bytes, code: str) -> None:
    assert refused(lambda: json_request(target, body))[0] == code


def test_json_members_the_model_does_not_know_are_ignored() -> None:
    body = b'{"QueueUrl": "u", "Colour": "blue", "Entries": [], "MaxResults": null}'
    call = json_request("AmazonSQS.DeleteQueue", body)
    assert call.params == {"QueueUrl": "u"}
    assert call.query_mode is False  # (no x-amzn-query-mode header)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "MissingParameter"),
        (b"QueueUrl=u", "MissingParameter"),
        (b"Action=", "MissingParameter"),
        (b"Action=Bogus", "InvalidAction"),
        (b"Action=deletequeue&QueueUrl=u", "InvalidAction"),
        (b"Action=DeleteQueue", "MissingParameter"),
        (b"Action=DeleteQueue&QueueUrl=%FF", "MalformedQueryString"),
        (b"Action=DeleteQueue&QueueUrl=\xff", "MalformedQueryString"),
        (b"Action=ListQueues&MaxResults=ten", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=--5", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=1.5", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=%EF%BC%95", "InvalidParameterValue"),  # (a wide 5)
        (b"Action=ListQueues&MaxResults=" + b"9" * 5000, "InvalidParameterValue"),
        (b"Action=SendMessage&QueueUrl=u", "MissingParameter"),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a",
            "MissingParameter",
        ),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a"
            b"&MessageAttribute.1.Value.StringValue=v",
            "MissingParameter",
        ),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a"
            b"&MessageAttribute.1.Value.DataType=Binary"
            b"&MessageAttribute.1.Value.BinaryValue=not+base64!",
            "InvalidParameterValue",
        ),
        (
            b"Action=SendMessageBatch&QueueUrl=u&SendMessageBatchRequestEntry.1.Id=a",
            "MissingParameter",
        ),
    ],
)
def test_bad_query_requests_get_the_error_sqs_answers(body: bytes, code: str) -> None:
    assert refused(lambda: query_request(body))[0] == code


def test_a_missing_parameter_is_named() -> None:
    code, message = refused(lambda: query_request(b"Action=SendMessage&QueueUrl=u"))
    assert code == "MissingParameter"
    assert message == "The request must contain the parameter MessageBody."


def test_query_parameters_the_model_does_not_know_are_ignored() -> None:
    body = b"Action=ListQueues&Colour=blue&MaxResults=5&QueueNamePrefix=&&x"
    assert query_request(body).params == {"MaxResults": 5, "QueueNamePrefix": ""}
