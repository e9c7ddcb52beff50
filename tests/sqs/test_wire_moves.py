"""SQS's dead-letter actions on the wire (tests/sqs/wire.py): a dead-letter queue's
sources, and the tasks that move its messages back."""

from __future__ import annotations

from tests.sqs.wire import ARN, ENDPOINT, QUEUE, TRICKY, ActionCases, Case

# Each action: the parameters a client sends, and a result the action could answer.
CASES: dict[str, Case] = {
    "CancelMessageMoveTask": (
        {"TaskHandle": "eyJ0YXNrIjoiMSJ9=="},
        {"ApproximateNumberOfMessagesMoved": 2**40},
    ),
    "ListDeadLetterSourceQueues": (
        {"QueueUrl": QUEUE, "NextToken": "t+/=", "MaxResults": 1000},
        {"queueUrls": [QUEUE, f"{ENDPOINT}/acct/other"], "NextToken": "next+/="},
    ),
    "ListMessageMoveTasks": (
        {"SourceArn": ARN, "MaxResults": 10},
        {
            "Results": [
                {
                    "TaskHandle": "handle",
                    "Status": "RUNNING",
                    "SourceArn": ARN,
                    "DestinationArn": ARN + "-back",
                    "MaxNumberOfMessagesPerSecond": 50,
                    "ApproximateNumberOfMessagesMoved": 0,
                    "ApproximateNumberOfMessagesToMove": 2**40,
                    "StartedTimestamp": 1700000000000,
                },
                {"Status": "FAILED", "SourceArn": ARN, "FailureReason": TRICKY},
            ]
        },
    ),
    "StartMessageMoveTask": (
        {"SourceArn": ARN, "DestinationArn": ARN + "-back", "MaxNumberOfMessagesPerSecond": 500},
        {"TaskHandle": "eyJ0YXNrIjoiMSJ9=="},
    ),
}


class TestMoveActions(ActionCases):
    CASES = CASES
