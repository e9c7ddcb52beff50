"""SQS's actions on one message on the wire (tests/sqs/wire.py): sending, receiving,
deleting and changing the visibility of messages."""

from __future__ import annotations

from tests.sqs.wire import ATTRIBUTES, QUEUE, TRACE, TRICKY, ActionCases, Case

MESSAGE = {
    "MessageId": "0190f0b8-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
    "ReceiptHandle": "AQEB+/=",
    "MD5OfBody": "md5 of the body",
    "Body": TRICKY,
    "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
    "MD5OfMessageAttributes": "md5 of the attributes",
    "MessageAttributes": ATTRIBUTES,
}
# Each action: the parameters a client sends, and a result the action could answer.
CASES: dict[str, Case] = {
    "ChangeMessageVisibility": (
        {"QueueUrl": QUEUE, "ReceiptHandle": "AQEB+/=", "VisibilityTimeout": 43200},
        {},
    ),
    "DeleteMessage": ({"QueueUrl": QUEUE, "ReceiptHandle": "AQEB+/="}, {}),
    "ReceiveMessage": (
        {
            "QueueUrl": QUEUE,
            "AttributeNames": ["All"],
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            "MessageAttributeNames": ["All", "meta.*"],
            "MaxNumberOfMessages": 10,
            "VisibilityTimeout": 0,
            "WaitTimeSeconds": 20,
            "ReceiveRequestAttemptId": "attempt",
        },
        {"Messages": [MESSAGE, {**MESSAGE, "MessageId": "second", "Body": ""}]},
    ),
    "SendMessage": (
        {
            "QueueUrl": QUEUE,
            "MessageBody": TRICKY,
            "DelaySeconds": 900,
            "MessageAttributes": ATTRIBUTES,
            "MessageSystemAttributes": TRACE,
            "MessageDeduplicationId": "d",
            "MessageGroupId": "g",
        },
        {
            "MD5OfMessageBody": "md5 of the body",
            "MD5OfMessageAttributes": "md5 of the attributes",
            "MD5OfMessageSystemAttributes": "md5 of the system attributes",
            "MessageId": "id",
            "SequenceNumber": "10000000000000000000",
        },
    ),
}


class TestMessageActions(ActionCases):
    CASES = CASES
