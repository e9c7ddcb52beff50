"""16 receivers, each with a client of its own, share 2,000 messages: every message is
received once, by one of them (0 duplicates, 0 lost). On SQLite and on the shared
engines, whose claims are the ones with concurrency of their own."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.sqs.clients import SqsClient
from tests.sqs.conftest import ClientFactory
from tests.sqs.messages import counts, send_all

MESSAGES = 2000
RECEIVERS = 16
SENDERS = 4
# Far longer than the run: a message received twice was given to two at once.
VISIBILITY = 300
DEADLINE = 60.0


@pytest.mark.parametrize(
    "sqs_server",
    ["sqlite", "redis", "postgres"],
    indirect=True,
)
def test_16_receivers_get_2000_messages_each_once(
    sqs: SqsClient, new_client: ClientFactory
) -> None:
    url = sqs.create_queue(QueueName="shared-work")["QueueUrl"]
    bodies = [f"job {n}" for n in range(MESSAGES)]
    share = MESSAGES // SENDERS
    senders = [new_client() for _ in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        chunks = pool.map(
            lambda n: send_all(senders[n], url, bodies[n * share : (n + 1) * share]),
            range(SENDERS),
        )
        sent = [message_id for chunk in chunks for message_id in chunk]
    assert len(set(sent)) == MESSAGES

    receivers = [new_client() for _ in range(RECEIVERS)]
    received: list[list[str]] = [[] for _ in range(RECEIVERS)]
    lock = threading.Lock()
    total = [0]
    deadline = time.monotonic() + DEADLINE

    def receive(n: int) -> None:
        client = receivers[n]
        while time.monotonic() < deadline:
            with lock:
                if total[0] >= MESSAGES:
                    return
            answer = client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=VISIBILITY,
                WaitTimeSeconds=1,
            )
            messages = answer.get("Messages", [])
            if not messages:
                continue
            assert len(messages) <= 10
            received[n] += [m["MessageId"] for m in messages]
            with lock:
                total[0] += len(messages)
            deleted = client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            assert not deleted.get("Failed"), deleted["Failed"]

    with ThreadPoolExecutor(RECEIVERS) as pool:
        list(pool.map(receive, range(RECEIVERS)))

    every = Counter(message_id for ids in received for message_id in ids)
    duplicates = [message_id for message_id, times in every.items() if times > 1]
    assert duplicates == [], f"{len(duplicates)} messages received twice"
    assert set(every) == set(sent), f"{MESSAGES - len(every)} messages lost"
    assert sum(1 for ids in received if ids) > 1, "one receiver took everything"
    assert counts(sqs, url) == (0, 0, 0)
