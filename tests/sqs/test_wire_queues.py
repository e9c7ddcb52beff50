"""SQS's queue actions on the wire (tests/sqs/wire.py): creating, finding, listing,
purging and deleting queues, their attributes, tags and permissions."""

from __future__ import annotations

from tests.sqs.wire import ARN, QUEUE, TRICKY, ActionCases, Case

# Each action: the parameters a client sends, and a result the action could answer.
CASES: dict[str, Case] = {
    "AddPermission": (
        {"QueueUrl": QUEUE, "Label": "l<1>", "AWSAccountIds": ["111", "222"], "Actions": ["*"]},
        {},
    ),
    "CreateQueue": (
        {
            "QueueName": "jobs",
            "Attributes": {"DelaySeconds": "5", "Policy": '{"a": "<&>"}'},
            "tags": {"team": TRICKY, "ü": ""},
        },
        {"QueueUrl": QUEUE},
    ),
    "DeleteQueue": ({"QueueUrl": QUEUE}, {}),
    "GetQueueAttributes": (
        {"QueueUrl": QUEUE, "AttributeNames": ["All", "QueueArn"]},
        {"Attributes": {"QueueArn": ARN, "ApproximateNumberOfMessages": "7"}},
    ),
    "GetQueueUrl": ({"QueueName": "jobs", "QueueOwnerAWSAccountId": "acct"}, {"QueueUrl": QUEUE}),
    "ListQueueTags": ({"QueueUrl": QUEUE}, {"Tags": {"team": TRICKY, "empty": ""}}),
    "ListQueues": (
        {"QueueNamePrefix": "jo", "NextToken": "t", "MaxResults": 1},
        {"QueueUrls": [QUEUE], "NextToken": "n"},
    ),
    "PurgeQueue": ({"QueueUrl": QUEUE}, {}),
    "RemovePermission": ({"QueueUrl": QUEUE, "Label": "l<1>"}, {}),
    "SetQueueAttributes": (
        {"QueueUrl": QUEUE, "Attributes": {"RedrivePolicy": '{"maxReceiveCount": "2"}'}},
        {},
    ),
    "TagQueue": ({"QueueUrl": QUEUE, "Tags": {"team": TRICKY}}, {}),
    "UntagQueue": ({"QueueUrl": QUEUE, "TagKeys": ["team", "ü"]}, {}),
}


class TestQueueActions(ActionCases):
    CASES = CASES
