"""kill -9 of a server on SQLite while SQS clients send and delete: after a restart on
the same data, every acknowledged send is there and every acknowledged delete stays
deleted, and the queue keeps its attributes."""

from __future__ import annotations

import threading
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.sqs.clients import sqs_client, v1_messages
from tests.waiting import wait_until

ACCOUNT = "durable"
QUEUE = "kept"


def test_acknowledged_sends_and_deletes_survive_kill_9(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'sqs.db'}", "--auth", "none")
    setup = sqs_client(server.url, ACCOUNT)
    url = setup.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    sent: list[str] = []
    deleted: list[str] = []
    deleting: set[str] = set()  # a delete under way at the kill may have been done
    stop = threading.Event()

    def send() -> None:
        client = sqs_client(server.url, ACCOUNT)
        n = 0
        while not stop.is_set():
            try:
                sent.append(client.send_message(QueueUrl=url, MessageBody=f"m{n}")["MessageId"])
            except (BotoCoreError, ClientError):
                return  # (the server is gone)
            n += 1

    def delete() -> None:
        client = sqs_client(server.url, ACCOUNT)
        while not stop.is_set():
            try:
                found = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                messages = {str(i): m for i, m in enumerate(found.get("Messages", []))}
                if not messages:
                    continue
                deleting.clear()
                deleting.update(m["MessageId"] for m in messages.values())
                answer = client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in messages.items()
                    ],
                )
            except (BotoCoreError, ClientError):
                return
            deleted.extend(messages[entry["Id"]]["MessageId"] for entry in answer["Successful"])

    workers = [threading.Thread(target=send), threading.Thread(target=delete)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(sent) >= 300 and len(deleted) >= 100, "sends and deletes", 60)
        server.kill()
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)

    port = server.url.rsplit(":", 1)[1]
    again = BurrowServer(server.workdir, server.backend, "--auth", "none", "--port", port).start()
    try:
        client = sqs_client(again.url, ACCOUNT)
        assert client.get_queue_url(QueueName=QUEUE)["QueueUrl"] == url
        found = client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        assert found["Attributes"] == {"VisibilityTimeout": "600"}
        stored = v1_messages(again.url, ACCOUNT, QUEUE)
        assert len(stored) < 1000
        kept = {message["id"] for message in stored}
    finally:
        again.kill()
    lost = set(sent) - set(deleted) - deleting - kept
    assert not lost, f"{len(lost)} acknowledged sends lost"
    revived = kept & set(deleted)
    assert not revived, f"{len(revived)} acknowledged deletes undone"
    assert len(kept - set(sent)) <= 1, "more than the send under way at the kill"
