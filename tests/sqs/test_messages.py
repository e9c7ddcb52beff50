"""SQS's message actions through boto3, on every backend: send (one and batches),
receive with its attributes and digests, delete, change visibility, receipt handles."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.sqs.clients import SqsClient, error_code
from tests.sqs.digests import attributes_digest, body_digest
from tests.sqs.messages import counts, receive_n, receive_one, send_all

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "colour": {"DataType": "String", "StringValue": "blue ✓"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "price": {"DataType": "Number.float", "StringValue": "1.5"},
    "picture": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a\x00\xff"},
    "raw": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "note": {"DataType": "String.custom", "StringValue": "<xml & such>"},
}
TRACE = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe"}}


def test_the_digests_here_are_the_ones_sqs_answers() -> None:
    """Digests of SQS answers published with moto's tests, so the helper is not wrong alike."""
    stamp = {"timestamp": {"StringValue": "1493147359900", "DataType": "Number"}}
    assert attributes_digest(stamp) == "235c5c510d26fb653d073faed50ae77c"
    custom = {"somevalue": {"StringValue": "somevalue", "DataType": "String.custom"}}
    assert attributes_digest(custom) == "9e05cca738e70ff6c6041e82d5e77ef1"
    assert body_digest("") == "d41d8cd98f00b204e9800998ecf8427e"


def test_send_message_answers_the_digests_of_body_and_attributes(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="digests")["QueueUrl"]
    body = "héllo, wörld 🦡 <b>&amp;</b>"
    sent = sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES, MessageSystemAttributes=TRACE
    )
    assert sent["MD5OfMessageBody"] == body_digest(body)
    assert sent["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    assert sent["MD5OfMessageSystemAttributes"] == attributes_digest(TRACE)
    plain = sqs.send_message(QueueUrl=url, MessageBody="plain")
    assert plain["MD5OfMessageBody"] == body_digest("plain")
    assert "MD5OfMessageAttributes" not in plain
    assert "MD5OfMessageSystemAttributes" not in plain
    assert plain["MessageId"] != sent["MessageId"]


def test_a_received_message_has_its_body_attributes_and_their_digests(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="roundtrip")["QueueUrl"]
    body = "line one\nline two\ttabbed 🦡"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    message = receive_one(sqs, url, MessageAttributeNames=["All"])
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == body_digest(body)
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    assert message["ReceiptHandle"]
    assert "Attributes" not in message


def test_message_attribute_names_select_by_name_all_and_prefix(sqs: SqsClient) -> None:
    """The digest is of the attributes answered (the Java SDK checks it so)."""
    url = sqs.create_queue(QueueName="selected")["QueueUrl"]
    given = {
        name: {"DataType": "String", "StringValue": name.upper()}
        for name in ["user.name", "user.id", "userland", "trace"]
    }
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageAttributes=given)

    def answered(*names: str) -> dict[str, Any]:
        message = receive_one(sqs, url, VisibilityTimeout=0, MessageAttributeNames=list(names))
        found: dict[str, Any] = message.get("MessageAttributes", {})
        if found:
            assert message["MD5OfMessageAttributes"] == attributes_digest(found)
        return found

    assert answered("All") == given
    assert answered(".*") == given
    assert answered("user.*") == {k: given[k] for k in ["user.name", "user.id"]}
    assert answered("trace", "user.id") == {k: given[k] for k in ["trace", "user.id"]}
    assert answered("absent") == {}
    message = receive_one(sqs, url, VisibilityTimeout=0)
    assert "MessageAttributes" not in message


def test_system_attributes_as_asked_for(sqs: SqsClient, sqs_account: str) -> None:
    url = sqs.create_queue(QueueName="system")["QueueUrl"]
    before = int(time.time() * 1000)
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageSystemAttributes=TRACE)
    sent = int(time.time() * 1000)
    every = receive_one(sqs, url, VisibilityTimeout=0, AttributeNames=["All"])["Attributes"]
    received = int(time.time() * 1000)
    assert every["ApproximateReceiveCount"] == "1"
    assert every["SenderId"] == sqs_account
    assert every["AWSTraceHeader"] == TRACE["AWSTraceHeader"]["StringValue"]
    # Whole milliseconds; the server's clock may round a millisecond either way.
    assert before - 1 <= int(every["SentTimestamp"]) <= sent + 1
    first = int(every["ApproximateFirstReceiveTimestamp"])
    assert int(every["SentTimestamp"]) - 1 <= first <= received + 1

    again = receive_one(sqs, url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
    assert again["Attributes"] == {"ApproximateReceiveCount": "2"}
    named = receive_one(
        sqs,
        url,
        VisibilityTimeout=0,
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateFirstReceiveTimestamp"],
    )
    assert named["Attributes"] == {
        "SentTimestamp": every["SentTimestamp"],
        "ApproximateFirstReceiveTimestamp": str(first),
    }


def test_delay_seconds_per_message_and_queue_default(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="delays", Attributes={"DelaySeconds": "600"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="queue default")
    sqs.send_message(QueueUrl=url, MessageBody="own delay", DelaySeconds=300)
    sqs.send_message(QueueUrl=url, MessageBody="no delay", DelaySeconds=0)
    assert counts(sqs, url) == (1, 0, 2)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in messages] == ["no delay"]


def test_max_number_of_messages_bounds_a_receive(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="many")["QueueUrl"]
    ids = send_all(sqs, url, [f"body {n}" for n in range(15)])
    assert len(receive_one(sqs, url, VisibilityTimeout=0)["MessageId"]) > 0
    one = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)
    assert len(one["Messages"]) == 1
    for most in [0, 11]:
        with pytest.raises(ClientError) as raised:
            sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=most)
        assert error_code(raised.value) == "InvalidParameterValue", most
    received = receive_n(sqs, url, 15, VisibilityTimeout=600)
    assert sorted(m["MessageId"] for m in received) == sorted(ids)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_a_received_message_is_hidden_for_its_visibility_timeout(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="hidden", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="once")
    receive_one(sqs, url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert counts(sqs, url) == (0, 1, 0)


def test_delete_message_deletes_and_may_be_repeated(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="deletes")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="done with")
    handle = receive_one(sqs, url, VisibilityTimeout=0)["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert counts(sqs, url) == (0, 0, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_stale_receipt_handle_leaves_the_message_received_since(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="stale")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="received twice")
    first = receive_one(sqs, url, VisibilityTimeout=0)
    second = receive_one(sqs, url, VisibilityTimeout=600, AttributeNames=["All"])
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"

    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # as SQS: no error
    assert counts(sqs, url) == (0, 1, 0)
    with pytest.raises(ClientError) as raised:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
        )
    assert error_code(raised.value) == "InvalidParameterValue"
    assert counts(sqs, url) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)


def test_receipt_handles_that_name_no_receive_here_are_invalid(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="handles")["QueueUrl"]
    other = sqs.create_queue(QueueName="other-handles")["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="elsewhere")
    elsewhere = receive_one(sqs, other, VisibilityTimeout=600)["ReceiptHandle"]
    for handle in ["not-a-receipt-handle", elsewhere]:
        with pytest.raises(ClientError) as raised:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
        assert error_code(raised.value) == "ReceiptHandleIsInvalid"
        with pytest.raises(ClientError) as raised:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        assert error_code(raised.value) == "ReceiptHandleIsInvalid"
    assert counts(sqs, other) == (0, 1, 0)


def test_calls_with_a_receipt_handle_on_an_unknown_queue_are_queue_does_not_exist(
    sqs: SqsClient,
) -> None:
    url = sqs.create_queue(QueueName="going")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="soon gone")
    handle = receive_one(sqs, url, VisibilityTimeout=600)["ReceiptHandle"]
    sqs.delete_queue(QueueUrl=url)
    entry = {"Id": "e", "ReceiptHandle": handle}
    calls: list[Callable[[], object]] = [
        lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handle),
        lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle"),
        lambda: sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
        ),
        lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[entry]),
        lambda: sqs.change_message_visibility_batch(
            QueueUrl=url, Entries=[{**entry, "VisibilityTimeout": 0}]
        ),
    ]
    for call in calls:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            call()


def test_change_message_visibility_shows_or_hides_a_received_message(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="visibility")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    handle = receive_one(sqs, url, VisibilityTimeout=600)["ReceiptHandle"]
    with pytest.raises(ClientError) as raised:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=43201)
    assert error_code(raised.value) == "InvalidParameterValue"
    assert counts(sqs, url) == (0, 1, 0)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert counts(sqs, url) == (1, 0, 0)
    again = receive_one(sqs, url, VisibilityTimeout=0)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=600
    )
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert counts(sqs, url) == (0, 1, 0)


def test_send_message_batch_answers_each_entry_and_stores_the_valid_ones(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="batch")["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "plain", "MessageBody": "one"},
            {"Id": "bad-delay", "MessageBody": "two", "DelaySeconds": 901},
            {"Id": "with_attributes", "MessageBody": "three", "MessageAttributes": ATTRIBUTES},
            {"Id": "bad-body", "MessageBody": "nul \x00 is no XML character"},
            {"Id": "delayed", "MessageBody": "four", "DelaySeconds": 600},
        ],
    )
    successful = {entry["Id"]: entry for entry in sent["Successful"]}
    assert set(successful) == {"plain", "with_attributes", "delayed"}
    assert successful["plain"]["MD5OfMessageBody"] == body_digest("one")
    assert "MD5OfMessageAttributes" not in successful["plain"]
    assert successful["with_attributes"]["MD5OfMessageAttributes"] == attributes_digest(ATTRIBUTES)
    failed = {entry["Id"]: entry for entry in sent["Failed"]}
    assert set(failed) == {"bad-delay", "bad-body"}
    assert all(entry["SenderFault"] is True and entry["Message"] for entry in failed.values())
    assert failed["bad-delay"]["Code"] == "InvalidParameterValue"
    assert failed["bad-body"]["Code"] == "InvalidMessageContents"
    assert counts(sqs, url) == (2, 0, 1)
    received = receive_n(sqs, url, 2, MessageAttributeNames=["All"])
    by_id = {m["MessageId"]: m for m in received}
    assert by_id[successful["plain"]["MessageId"]]["Body"] == "one"
    assert by_id[successful["with_attributes"]["MessageId"]]["MessageAttributes"] == ATTRIBUTES


def test_delete_message_batch_answers_each_entry(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="batch-deletes")["QueueUrl"]
    send_all(sqs, url, ["a", "b", "c"])
    handles = [m["ReceiptHandle"] for m in receive_n(sqs, url, 3, VisibilityTimeout=600)]
    answer = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "first", "ReceiptHandle": handles[0]},
            {"Id": "forged", "ReceiptHandle": "forged-receipt-handle"},
            {"Id": "second", "ReceiptHandle": handles[1]},
        ],
    )
    assert sorted(entry["Id"] for entry in answer["Successful"]) == ["first", "second"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in answer["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid", True)
    ]
    assert counts(sqs, url) == (0, 1, 0)


def test_change_message_visibility_batch_answers_each_entry(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="batch-visibility")["QueueUrl"]
    send_all(sqs, url, ["a", "b", "c"])
    handles = [m["ReceiptHandle"] for m in receive_n(sqs, url, 3, VisibilityTimeout=600)]
    answer = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "show", "ReceiptHandle": handles[0], "VisibilityTimeout": 0},
            {"Id": "forged", "ReceiptHandle": "forged-receipt-handle", "VisibilityTimeout": 0},
            {"Id": "too-long", "ReceiptHandle": handles[1], "VisibilityTimeout": 43201},
            {"Id": "keep", "ReceiptHandle": handles[2], "VisibilityTimeout": 900},
        ],
    )
    assert sorted(entry["Id"] for entry in answer["Successful"]) == ["keep", "show"]
    failed = {f["Id"]: f for f in answer["Failed"]}
    assert failed["forged"]["Code"] == "ReceiptHandleIsInvalid"
    assert failed["too-long"]["Code"] == "InvalidParameterValue"
    assert all(f["SenderFault"] is True for f in failed.values())
    assert counts(sqs, url) == (1, 2, 0)
