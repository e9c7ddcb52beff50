"""SQS's batch actions on the wire (tests/sqs/wire.py): sends, deletes and visibility
changes of up to ten messages, some entries failing."""

from __future__ import annotations

from tests.sqs.wire import ATTRIBUTES, QUEUE, TRACE, TRICKY, ActionCases, Case

FAILED = [
    {"Id": "b-2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": TRICKY},
    {"Id": "c_3", "SenderFault": False, "Code": "InternalError"},
]
# Each action: the parameters a client sends, and a result the action could answer.
CASES: dict[str, Case] = {
    "ChangeMessageVisibilityBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [
                {"Id": "a1", "ReceiptHandle": "h1", "VisibilityTimeout": 0},
                {"Id": "b-2", "ReceiptHandle": "h2"},
            ],
        },
        {"Successful": [{"Id": "a1"}], "Failed": FAILED},
    ),
    "DeleteMessageBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [{"Id": str(i), "ReceiptHandle": f"h{i}"} for i in range(10)],
        },
        {"Successful": [{"Id": str(i)} for i in range(8)], "Failed": FAILED},
    ),
    "SendMessageBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [
                {
                    "Id": f"m{i}",
                    "MessageBody": f"{TRICKY} {i}",
                    "DelaySeconds": i,
                    "MessageAttributes": ATTRIBUTES,
                    "MessageSystemAttributes": TRACE,
                }
                for i in range(10)
            ],
        },
        {
            "Successful": [
                {"Id": "m0", "MessageId": "id0", "MD5OfMessageBody": "x"},
                {
                    "Id": "m1",
                    "MessageId": "id1",
                    "MD5OfMessageBody": "y",
                    "MD5OfMessageAttributes": "z",
                    "MD5OfMessageSystemAttributes": "w",
                },
            ],
            "Failed": FAILED,
        },
    ),
}


class TestBatchActions(ActionCases):
    CASES = CASES
