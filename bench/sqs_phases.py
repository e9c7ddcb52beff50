"""The benchmark phases in SQS's JSON protocol, for Burrow's SQS frontend and for moto.

Requests are pre-built as botocore sends them: `POST /` with `X-Amz-Target:
AmazonSQS.<Action>`, `Content-Type: application/x-amz-json-1.0`, `x-amzn-query-mode:
true` and a SigV4 `Authorization` header whose access key id is the row's account. The
signature is a placeholder: Burrow with `--auth none` and moto take the account (moto:
the region) from the header's credential scope and verify nothing. SQS names a queue by
its URL, so every builder here takes the URL CreateQueue answered (`create_queue`)
where the v1.0 phases take a queue name. Same 100-byte bodies and batches of 10 as
`phases.py`, and the same crediting rule: a step credits each message it moved as the
response that moved it arrives.

- sqs-send: `SendMessage` of one 100-byte body → 200;
- sqs-send-batch-10: `SendMessageBatch` of 10 → 200, credited per `Successful` entry;
- sqs-receive-delete-10: `ReceiveMessage` with MaxNumberOfMessages=10 (VisibilityTimeout
  60) → 200, then one `DeleteMessageBatch` of the receipt handles that came back → 200,
  credited per `Successful` entry.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from bench.loadgen import Connection, LoadError, Recorder
from bench.phases import BATCH, BODY, CLAIM_HIDE, Api, Draining, PhaseSpec, one_request

JSON_TYPE = "application/x-amz-json-1.0"
REGION = "us-east-1"
SIGNATURE = "0" * 64  # never checked: see the module's docstring
USER_AGENT = "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 lang/python#3.11 Botocore/1.44.8"
BODY_TEXT = BODY.decode()
PREFILL_CONNECTIONS = 4
INVOCATION_ID = str(uuid.uuid4())  # botocore sends a new one each call; the server ignores it


@dataclass
class SqsClient:
    """Builds SQS JSON requests for one account (the access key id) and Host header."""

    host: str
    account: str
    date: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))

    def request(self, action: str, params: Mapping[str, object]) -> bytes:
        body = orjson.dumps(params)
        scope = f"{self.account}/{self.date[:8]}/{REGION}/sqs/aws4_request"
        head = "\r\n".join(
            [
                "POST / HTTP/1.1",
                f"Host: {self.host}",
                "Accept-Encoding: identity",
                f"X-Amz-Target: AmazonSQS.{action}",
                f"Content-Type: {JSON_TYPE}",
                "x-amzn-query-mode: true",
                f"User-Agent: {USER_AGENT}",
                f"X-Amz-Date: {self.date}",
                f"Authorization: AWS4-HMAC-SHA256 Credential={scope}, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode, "
                f"Signature={SIGNATURE}",
                f"amz-sdk-invocation-id: {INVOCATION_ID}",
                "amz-sdk-request: attempt=1; max=3",
                f"Content-Length: {len(body)}",
            ]
        )
        return head.encode("latin-1") + b"\r\n\r\n" + body

    def send_batch(self, queue_url: str, size: int = BATCH) -> bytes:
        entries = [{"Id": str(i), "MessageBody": BODY_TEXT} for i in range(size)]
        return self.request("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})


def successful(body: bytes) -> tuple[int, int]:
    """(successful, failed) entries of a batch action's 200 answer; (0, 0) if unreadable."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, 0
    if not isinstance(answer, dict):
        return 0, 0
    return len(answer.get("Successful") or ()), len(answer.get("Failed") or ())


class SendMessage:
    """`SendMessage` of one 100-byte body → 200."""

    def __init__(self, host: str, account: str, queue_url: str) -> None:
        params = {"QueueUrl": queue_url, "MessageBody": BODY_TEXT}
        self.raw = SqsClient(host, account).request("SendMessage", params)

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, _ = await conn.request(self.raw, 200)
        if status == 200:
            conn.credit(1)


class SendMessageBatch:
    """`SendMessageBatch` of 10 → 200; each `Successful` entry is a message sent."""

    def __init__(self, host: str, account: str, queue_url: str) -> None:
        self.raw = SqsClient(host, account).send_batch(queue_url)
        self.failed_entries = 0  # partial failures: a 200 with `Failed` entries

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, body = await conn.request(self.raw, 200)
        if status == 200:
            sent, failed = successful(body)
            self.failed_entries += failed
            conn.credit(sent)


class ReceiveDelete(Draining):
    """`ReceiveMessage` of up to 10, then one `DeleteMessageBatch` of their receipt
    handles; each `Successful` delete is a message moved."""

    def __init__(self, host: str, account: str, queue_url: str) -> None:
        super().__init__()
        self.client = SqsClient(host, account)
        self.queue_url = queue_url
        receive = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": BATCH,
            "VisibilityTimeout": CLAIM_HIDE,
        }
        self.receive = self.client.request("ReceiveMessage", receive)
        self.failed_entries = 0

    def _handles(self, status: int, body: bytes) -> list[str]:
        if status != 200:
            self.empty += status in (204, 404)
            return []
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            self.bad_body += 1
            return []
        handles = [m.get("ReceiptHandle") for m in answer.get("Messages") or ()]
        if not handles:  # SQS leaves `Messages` out when the queue is empty
            self.empty += 1
        good = [h for h in handles if isinstance(h, str)]
        self.bad_body += len(handles) - len(good)
        return good

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, body = await conn.request(self.receive, 200)
        handles = self._handles(status, body)
        if not handles:
            return
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        raw = self.client.request(
            "DeleteMessageBatch", {"QueueUrl": self.queue_url, "Entries": entries}
        )
        status, body = await conn.request(raw, 200)
        if status == 200:
            deleted, failed = successful(body)
            self.failed_entries += failed
            conn.credit(deleted)


SQS_PHASES: dict[str, PhaseSpec] = {
    p.name: p
    for p in (
        PhaseSpec("sqs-send", "SendMessage of one 100-byte body (200)", SendMessage),
        PhaseSpec("sqs-send-batch-10", "SendMessageBatch of 10 (200)", SendMessageBatch),
        PhaseSpec(
            "sqs-receive-delete-10",
            "ReceiveMessage of 10 (VisibilityTimeout 60), then DeleteMessageBatch (200)",
            ReceiveDelete,
            prefill=True,
        ),
    )
}


# --------------------------------------------------------------------------- setup helpers


async def create_queue(host: str, port: int, account: str, name: str) -> str:
    """`CreateQueue` (unmeasured); returns the queue URL, "" if it failed."""
    raw = SqsClient(f"{host}:{port}", account).request("CreateQueue", {"QueueName": name})
    status, body = await one_request(host, port, raw)
    if status != 200:
        return ""
    answer = orjson.loads(body)
    url = answer.get("QueueUrl") if isinstance(answer, dict) else None
    return url if isinstance(url, str) else ""


SQS = Api(
    phases=SQS_PHASES,
    # ListQueues: answered 200 once the server's SQS API is up.
    ping=lambda host: SqsClient(host, "bench").request("ListQueues", {}),
    fill=lambda host, account, queue_url, n: SqsClient(host, account).send_batch(queue_url, n),
    # DeleteQueue: the queue and its messages.
    cleanup=lambda host, account, queue_url: SqsClient(host, account).request(
        "DeleteQueue", {"QueueUrl": queue_url}
    ),
    fill_batch=BATCH,
)


async def prefill(
    host: str, port: int, account: str, queue_url: str, count: int, time_limit: float = 120.0
) -> tuple[int, float, dict[str, int]]:
    """Send `count` messages with `SendMessageBatch` of 10, shared out over a few
    connections and bounded by `time_limit`. Returns (messages sent, seconds taken,
    failures by status; `entries` counts entries answered as Failed)."""
    raw = SQS.fill(f"{host}:{port}", account, queue_url, BATCH)
    rec = Recorder()
    sent = 0

    async def filler(requests: int) -> None:
        nonlocal sent
        conn = Connection(host, port, rec)
        try:
            for _ in range(requests):
                status, body = await conn.request(raw, 200)
                ok, failed = successful(body) if status == 200 else (0, 0)
                sent += ok
                if failed:
                    rec.warmup_errors["entries"] += failed
        finally:
            conn.close()

    batches, connections = -(-count // BATCH), PREFILL_CONNECTIONS
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(time_limit), asyncio.TaskGroup() as group:
            for i in range(connections):
                group.create_task(filler(batches // connections + (i < batches % connections)))
    except* (TimeoutError, LoadError):
        pass  # what was sent is counted; the row notes the shortfall
    return sent, time.perf_counter() - t0, dict(rec.warmup_errors)
