"""The query protocol (form-encoded `Action=…`, XML answers) that older SDKs send,
through a boto3 client on SQS's query-era API (tests/sqs/clients.py): queues, sends
with attributes and their digests, batches with failed entries, receives, deletes,
visibility, errors as their codes."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.servers import BurrowServer
from tests.sqs.clients import SqsClient, error_code
from tests.sqs.conftest import ClientFactory, frontend_only
from tests.sqs.digests import attributes_digest, body_digest
from tests.sqs.messages import counts

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "text": {"DataType": "String", "StringValue": "<xml> & “quotes” ✓"},
    "number": {"DataType": "Number", "StringValue": "-12.5e3"},
    "bytes": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "custom": {"DataType": "String.kind", "StringValue": "x"},
}
XML_NAMESPACE = "{http://queue.amazonaws.com/doc/2012-11-05/}"


@pytest.fixture
def query(new_client: ClientFactory) -> SqsClient:
    return new_client(protocol="query")


@pytest.fixture
def url(query: SqsClient) -> Iterator[str]:
    found: str = query.create_queue(
        QueueName="old-sdk", Attributes={"VisibilityTimeout": "600"}, tags={"team": "q"}
    )["QueueUrl"]
    yield found


def test_queues_through_the_query_protocol(query: SqsClient, url: str, sqs_account: str) -> None:
    assert url.endswith(f"/{sqs_account}/old-sdk")
    assert query.get_queue_url(QueueName="old-sdk")["QueueUrl"] == url
    assert query.list_queues()["QueueUrls"] == [url]
    every = query.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert every["VisibilityTimeout"] == "600"
    assert every["QueueArn"].endswith(f":{sqs_account}:old-sdk")
    query.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "7"})
    found = query.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])
    assert found["Attributes"] == {"DelaySeconds": "7"}
    assert query.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "q"}
    query.tag_queue(QueueUrl=url, Tags={"env": "ci"})
    query.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert query.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "ci"}


def test_send_receive_and_delete_with_attributes_and_digests(query: SqsClient, url: str) -> None:
    body = "line\nnext <b>&amp;</b> ✓ 🐇"
    sent = query.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    assert sent["MD5OfMessageBody"] == body_digest(body)
    assert sent["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    [got] = query.receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert got["MessageId"] == sent["MessageId"]
    assert got["Body"] == body
    assert got["MD5OfBody"] == body_digest(body)
    assert got["MessageAttributes"] == ATTRIBUTES
    assert got["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    assert got["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(got["Attributes"]["SentTimestamp"]) > 0
    query.change_message_visibility(
        QueueUrl=url, ReceiptHandle=got["ReceiptHandle"], VisibilityTimeout=900
    )
    assert counts(query, url) == (0, 1, 0)
    query.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert counts(query, url) == (0, 0, 0)


def test_batches_with_failed_entries(query: SqsClient, url: str) -> None:
    sent = query.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "one", "MessageAttributes": ATTRIBUTES},
            {"Id": "bad", "MessageBody": "bell \x07"},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 0},
        ],
    )
    by_id = {entry["Id"]: entry for entry in sent["Successful"]}
    assert set(by_id) == {"a", "b"}
    assert by_id["a"]["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in sent["Failed"]] == [
        ("bad", "InvalidMessageContents", True)
    ]
    received = query.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["one", "two"]
    entries = [{"Id": f"d{n}", "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)]
    changed = query.change_message_visibility_batch(
        QueueUrl=url, Entries=[{**entries[0], "VisibilityTimeout": 900}]
    )
    assert [e["Id"] for e in changed["Successful"]] == ["d0"]
    deleted = query.delete_message_batch(
        QueueUrl=url, Entries=[*entries, {"Id": "forged", "ReceiptHandle": "forged"}]
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["d0", "d1"]
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid")
    ]
    assert counts(query, url) == (0, 0, 0)


@frontend_only
def test_errors_carry_sqs_query_codes(
    query: SqsClient, url: str, new_client: ClientFactory
) -> None:
    def code_of(call: Any, **params: Any) -> str:
        with pytest.raises(ClientError) as raised:
            call(**params)
        return error_code(raised.value)

    assert code_of(query.get_queue_url, QueueName="absent") == (
        "AWS.SimpleQueueService.NonExistentQueue"
    )
    assert (
        code_of(query.create_queue, QueueName="old-sdk", Attributes={"VisibilityTimeout": "1"})
        == "QueueAlreadyExists"
    )
    assert (
        code_of(query.get_queue_attributes, QueueUrl=url, AttributeNames=["Bogus"])
        == "InvalidAttributeName"
    )
    assert (
        code_of(query.set_queue_attributes, QueueUrl=url, Attributes={"VisibilityTimeout": "-1"})
        == "InvalidAttributeValue"
    )
    assert code_of(query.delete_message, QueueUrl=url, ReceiptHandle="forged") == (
        "ReceiptHandleIsInvalid"
    )
    assert code_of(query.receive_message, QueueUrl=url, MaxNumberOfMessages=11) == (
        "InvalidParameterValue"
    )
    unchecked = new_client(protocol="query", validate=False)
    assert code_of(unchecked.send_message, QueueUrl=url) == "MissingParameter"
    assert (
        code_of(
            unchecked.send_message_batch,
            QueueUrl=url,
            Entries=[{"Id": "x", "MessageBody": "1"}, {"Id": "x", "MessageBody": "2"}],
        )
        == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    )
    assert counts(query, url) == (0, 0, 0)


@frontend_only
def test_a_get_with_the_action_and_the_queue_url_in_its_query_string(
    query: SqsClient, url: str, sqs_server: BurrowServer
) -> None:
    response = httpx.get(
        sqs_server.url + "/",
        params={
            "Action": "GetQueueAttributes",
            "QueueUrl": url,
            "AttributeName.1": "VisibilityTimeout",
        },
    )
    assert attributes_in(response) == {"VisibilityTimeout": "600"}


def attributes_in(response: httpx.Response) -> dict[str | None, str | None]:
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    return {
        a.findtext(XML_NAMESPACE + "Name"): a.findtext(XML_NAMESPACE + "Value")
        for a in root.iter(XML_NAMESPACE + "Attribute")
    }


@frontend_only
def test_a_query_call_to_the_queue_url_acts_on_that_queue(query: SqsClient, url: str) -> None:
    """As SQS's query API was called (its docs' examples): the queue URL is the path."""
    sent = httpx.post(
        url,
        content=b"Action=SendMessage&Version=2012-11-05&MessageBody=by+path",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 200, sent.text
    response = httpx.get(
        url, params={"Action": "GetQueueAttributes", "AttributeName.1": "VisibilityTimeout"}
    )
    assert attributes_in(response) == {"VisibilityTimeout": "600"}
    assert counts(query, url) == (1, 0, 0)
