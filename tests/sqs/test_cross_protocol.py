"""One queue, two APIs, on every backend: what SQS sends the v1.0 API lists, what v1.0
puts SQS receives, and a receive or delete through one is seen through the other."""

from __future__ import annotations

import httpx

from tests.servers import BurrowServer
from tests.sqs.clients import SqsClient, v1_messages
from tests.sqs.messages import receive_one


def test_a_message_sent_through_sqs_is_listed_by_the_v1_api(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="from SQS ✓",
        MessageAttributes={"a": {"DataType": "String", "StringValue": "not in v1.0"}},
    )
    response = httpx.get(f"{sqs_server.url}/v1.0/{sqs_account}/shared", timeout=10)
    assert response.status_code == 200
    [listed] = response.json()
    assert listed["id"] == sent["MessageId"]
    assert listed["body"] == "from SQS ✓"
    assert listed["hide"] == 0
    one = httpx.get(
        f"{sqs_server.url}/v1.0/{sqs_account}/shared/{sent['MessageId']}",
        params={"detail": "body"},
        timeout=10,
    )
    assert one.content == "from SQS ✓".encode()


def test_a_message_put_through_the_v1_api_is_received_through_sqs(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    put = httpx.put(
        f"{sqs_server.url}/v1.0/{sqs_account}/shared/job-1", content="from v1.0 ✓".encode()
    )
    assert put.status_code == 201
    message = receive_one(sqs, url, VisibilityTimeout=600, AttributeNames=["All"])
    assert message["MessageId"] == "job-1"
    assert message["Body"] == "from v1.0 ✓"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    [listed] = v1_messages(sqs_server.url, sqs_account, "shared")
    assert 590 <= listed["hide"] <= 600, "the receive's visibility timeout is the v1.0 hide"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert v1_messages(sqs_server.url, sqs_account, "shared") == []


def test_a_queue_only_v1_made_is_reached_through_sqs(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    put = httpx.put(f"{sqs_server.url}/v1.0/{sqs_account}/implicit/m", content=b"implicit")
    assert put.status_code == 201
    url = sqs.get_queue_url(QueueName="implicit")["QueueUrl"]
    assert url == f"{sqs_server.url}/{sqs_account}/implicit"
    assert receive_one(sqs, url)["Body"] == "implicit"


def test_a_v1_delete_is_seen_by_sqs_and_keeps_the_queue(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    url = sqs.create_queue(QueueName="shared", Attributes={"DelaySeconds": "3"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=0)
    deleted = httpx.delete(f"{sqs_server.url}/v1.0/{sqs_account}/shared", timeout=10)
    assert deleted.status_code == 204
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])
    assert found["Attributes"] == {"DelaySeconds": "3"}


def test_delete_queue_deletes_its_in_flight_and_delayed_messages(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    url = sqs.create_queue(QueueName="doomed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    receive_one(sqs, url, VisibilityTimeout=600)
    sqs.delete_queue(QueueUrl=url)
    assert v1_messages(sqs_server.url, sqs_account, "doomed") == []


def test_an_empty_queue_sqs_created_is_not_in_v1_listings(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    """docs/sqs.md: a queue shows in v1.0 listings while it holds messages, as in v1.0."""
    url = sqs.create_queue(QueueName="empty")["QueueUrl"]
    listing = httpx.get(f"{sqs_server.url}/v1.0/{sqs_account}", timeout=10)
    assert listing.status_code == 404
    sqs.send_message(QueueUrl=url, MessageBody="now it shows")
    listing = httpx.get(f"{sqs_server.url}/v1.0/{sqs_account}", timeout=10)
    assert listing.json() == ["empty"]
