"""The SQS-compatible API on a proxy: the `http` backend in front of a Burrow server, and
a ring whose two members (Burrow servers, reached over http) hold every account.

Everything SQS keeps goes through the v1.0 API's extensions for proxies: receives and
their receipts, calls on one receive, message attributes as meta, counts, queue info.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.sqs.clients import SqsClient, error_code, sqs_client
from tests.sqs.messages import counts, receive_n, receive_one, send_all
from tests.test_ring import ring_file

ATTRIBUTES = {
    "colour": {"DataType": "String", "StringValue": "blue ✓"},
    "raw": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
}


@pytest.fixture(params=["http", "ring"])
def proxy(request: pytest.FixtureRequest, start_server: ServerFactory, tmp_path: Path) -> str:
    """The URL of a proxy serving SQS with `--auth none`."""
    remotes = [start_server("memory://") for _ in range(1 if request.param == "http" else 2)]
    if request.param == "http":
        backend = remotes[0].url
    else:
        members = [(remote.url, "az1") for remote in remotes]
        backend = f"ring:///{ring_file(tmp_path / 'ring.toml', members, replicas=2)}"
    server: BurrowServer = start_server(backend, "--auth", "none")
    return server.url


def test_queues_their_attributes_and_tags(proxy: str) -> None:
    sqs: SqsClient = sqs_client(proxy, "acct")
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    sqs.create_queue(QueueName="other")
    assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"] == url
    sqs.tag_queue(QueueUrl=url, Tags={"team": "a"})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (found["VisibilityTimeout"], found["DelaySeconds"]) == ("45", "3")
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    listed = sqs.list_queues()["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == ["jobs", "other"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as raised:
        sqs.get_queue_url(QueueName="jobs")
    assert error_code(raised.value) == "AWS.SimpleQueueService.NonExistentQueue"


def test_messages_their_receives_and_stale_receipt_handles(proxy: str) -> None:
    sqs: SqsClient = sqs_client(proxy, "acct")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    sent = send_all(sqs, url, [f"job {n}" for n in range(25)])
    sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=ATTRIBUTES)
    received = receive_n(sqs, url, 26, VisibilityTimeout=60, MessageAttributeNames=["All"])
    assert {m["MessageId"] for m in received} >= set(sent)
    (special,) = [m for m in received if m["Body"] == "with attributes"]
    assert special["MessageAttributes"] == ATTRIBUTES
    assert counts(sqs, url) == (0, 26, 0)

    first = received[0]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    again = receive_one(sqs, url, VisibilityTimeout=60, AttributeNames=["All"])
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # stale: no effect
    assert counts(sqs, url) == (0, 26, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert counts(sqs, url) == (0, 25, 0)
