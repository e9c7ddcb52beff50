"""One webhook POST: the message signed per Standard Webhooks, and what the answer means.

The request: the message's JSON at `detail=all` as the body, and the headers
`webhook-id` (the message id: the same on every retry, for the receiver to drop
repeats), `webhook-timestamp` (when this attempt was signed) and `webhook-signature`
(`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the subscription's
`whsec_` secret, made by the `standardwebhooks` package), and `burrow-subscription`,
the subscription's path, for a receiver of several to choose the secret it verifies
with.

The answer: any 2xx delivers; 410 says the endpoint is gone for good; anything else
(3xx too: redirects are never followed, a webhook's URL is the one it was given), a
timeout or a connection error is a failure, 429 and 503 with the wait their
`Retry-After` asks for. Only the first `MAX_ANSWER_BYTES` of an answer are read.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import math
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import quote

import orjson
import standardwebhooks

from burrow import __version__
from burrow.codec import message_fields
from burrow.model import Message
from burrow.webhook_http import Answer, Client, ProtocolError, origin_of

MAX_ANSWER_BYTES = 64 * 1024  # of an answer's body read, the rest left unread
MAX_RETRY_AFTER = 24 * 3600.0  # seconds: a Retry-After asking longer is held to it
CONNECT_TIMEOUT = 5.0  # seconds, at most (the POST's whole timeout if shorter)
USER_AGENT = f"Burrow/{__version__} webhooks"


class Verdict(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: the webhook is disabled
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended; `why` says it for the subscription's state and the log."""

    verdict: Verdict
    why: str
    retry_after: float | None = None  # seconds the endpoint asked to wait (429, 503)


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> standardwebhooks.Webhook:
    """The signer of a secret (decoded once, not on every POST)."""
    return standardwebhooks.Webhook(secret)


def signed_headers(secret: str, message_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": _signer(secret).sign(message_id, now, body),
    }


def subscription_path(account: str, queue: str, name: str) -> str:
    """`/v1.0/{a}/{q}/-/subscriptions/{name}`, quoted (ids may hold any printable text)."""
    parts = (quote(part, safe="") for part in (account, queue, name))
    return "/v1.0/{}/{}/-/subscriptions/{}".format(*parts)


class Sender:
    """POSTs the deliveries of one subscription over one keep-alive connection of its own
    (`webhook_http`), open until `close`. `tls` is the context shared by all senders (one
    per process: each is costly to make)."""

    def __init__(self, timeout: float, tls: ssl.SSLContext) -> None:
        self.timeout = timeout
        self._client = Client(tls, min(timeout, CONNECT_TIMEOUT), MAX_ANSWER_BYTES)

    async def close(self) -> None:
        self._client.close()

    async def post(self, url: str, secret: str, path: str, message: Message) -> Outcome:
        """Deliver `message` once; ends within `timeout` seconds whatever the endpoint does."""
        body = orjson.dumps(message_fields(message))
        headers = signed_headers(secret, message.id, body, datetime.now(UTC))
        headers["burrow-subscription"] = path
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._client.post(origin_of(url, USER_AGENT), headers, body)
        except TimeoutError:
            return Outcome(Verdict.FAILED, f"no answer within {self.timeout:g} s")
        except (OSError, ProtocolError) as error:
            return Outcome(Verdict.FAILED, f"{type(error).__name__}: {error}".rstrip(": "))
        return judged(answer)


def judged(answer: Answer) -> Outcome:
    status = answer.status
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, f"HTTP {status}")
    if status == 410:
        return Outcome(Verdict.GONE, "HTTP 410 Gone")
    wait = None
    if status in (429, 503):
        wait = retry_after(answer.retry_after, time.time())
    return Outcome(Verdict.FAILED, f"HTTP {status}", wait)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` asks (delay-seconds or an HTTP date); None if none or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)
