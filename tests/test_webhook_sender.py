"""One webhook POST to a real local endpoint: the signature, and what each answer means."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import standardwebhooks

from burrow.model import Message
from burrow.webhook_sender import Sender, Verdict, retry_after, subscription_path
from tests.webhook_receiver import Receiver, always, running

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PATH = subscription_path("acme", "orders", "billing")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as started:
        yield started


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    opened = Sender(2.0, httpx.create_ssl_context())
    yield opened
    await opened.close()


def message(body: bytes = b'{"total": 12}') -> Message:
    return Message("m-1", body, ttl=60, hide=0)


async def test_a_delivery_is_signed_per_standard_webhooks(
    receiver: Receiver, sender: Sender
) -> None:
    outcome = await sender.post(receiver.url + "/hook", SECRET, PATH, message())
    assert outcome.verdict is Verdict.DELIVERED
    (delivery,) = receiver.received()
    assert delivery.verified(SECRET) == {"id": "m-1", "ttl": 60, "hide": 0, "body": '{"total": 12}'}
    assert delivery.message_id == "m-1"
    assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
    assert delivery.subscription == "/v1.0/acme/orders/-/subscriptions/billing"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        delivery.verified("whsec_" + "A" * 32)  # another secret's signature


async def test_a_body_that_is_not_text_travels_in_base64(
    receiver: Receiver, sender: Sender
) -> None:
    await sender.post(receiver.url, SECRET, PATH, message(b"\xff\x00"))
    found = receiver.received()[0].verified(SECRET)
    assert (found["body"], found["base64"]) == ("/wA=", True)


@pytest.mark.parametrize(
    ("status", "headers", "verdict", "wait"),
    [
        (200, {}, Verdict.DELIVERED, None),
        (202, {}, Verdict.DELIVERED, None),
        (410, {}, Verdict.GONE, None),
        (429, {"retry-after": "7"}, Verdict.FAILED, 7.0),
        (503, {"retry-after": "soon"}, Verdict.FAILED, None),
        (500, {"retry-after": "7"}, Verdict.FAILED, None),  # only 429 and 503 ask a wait
        (302, {"location": "/elsewhere"}, Verdict.FAILED, None),  # never followed
    ],
)
async def test_each_answer_means_one_verdict(
    receiver: Receiver,
    sender: Sender,
    status: int,
    headers: dict[str, str],
    verdict: Verdict,
    wait: float | None,
) -> None:
    receiver.answer = always(status, **headers)
    outcome = await sender.post(receiver.url, SECRET, PATH, message())
    assert (outcome.verdict, outcome.retry_after) == (verdict, wait)
    assert len(receiver.received()) == 1, "a redirect is not followed"


async def test_an_endpoint_too_slow_is_a_failure_within_the_timeout(receiver: Receiver) -> None:
    receiver.hold = 3.0
    quick = Sender(0.5, httpx.create_ssl_context())
    try:
        started = time.monotonic()
        outcome = await quick.post(receiver.url, SECRET, PATH, message())
    finally:
        await quick.close()
    assert outcome.verdict is Verdict.FAILED
    assert "0.5 s" in outcome.why
    assert time.monotonic() - started < 2.5


async def test_an_endpoint_nobody_listens_on_is_a_failure(sender: Sender) -> None:
    with running(Receiver()) as gone:
        url = gone.url
    outcome = await sender.post(url, SECRET, PATH, message())
    assert outcome.verdict is Verdict.FAILED
    assert "ConnectError" in outcome.why


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after("Wed, 15 Nov 2023 00:13:20 GMT", now) == 7200.0
    assert retry_after("Tue, 14 Nov 2023 20:00:00 GMT", now) == 0.0  # already past
    assert retry_after("99999999", now) == 24 * 3600.0
    assert retry_after("-1", now) is None
    assert retry_after(None, now) is None
