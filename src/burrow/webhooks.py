"""Webhook delivery: every server process delivers the subscriptions that name a webhook.

A scan every `scan_every` seconds looks at each subscription of the store
(`Subscriptions.every`) and takes the delivery of any with a webhook, not disabled,
whose lease is free or has run out: a compare-and-set of its state (`Subscriptions.
change`) names this process the holder until now + `lease` seconds. While it holds the
lease, one task of this process delivers that subscription: it reads the messages after
the cursor, in order, and POSTs each (`webhook_sender`), one at a time, so that the
receiver sees them in queue order; a 2xx acknowledges it (the cursor moves to it).

No two servers deliver one subscription at once: a POST starts only while this
process's lease has more than `timeout` seconds left (it is renewed when half has run
out), and a POST ends within `timeout` seconds, so it has ended before another server
may take the lease. This takes the servers' clocks to agree (NTP).

A failed POST is retried after a backoff that doubles from `backoff` seconds (up to
`max_backoff`), with jitter, or after the wait a 429 or 503's `Retry-After` asks; the
failures and the next attempt's time are kept in the subscription, so a restart or
another server carries on the count. After the webhook's `max_attempts` the message is
put on the dead-letter queue (of the same account, under the same id: a repeat after a
crash replaces it) and acknowledged, and counted. A 410 disables the webhook. Since the
cursor moves only after a 2xx, a server killed mid-delivery loses nothing: whoever
holds the lease next (it, restarted, or another server once the lease has run out)
delivers again from the cursor (at least once).

A POST's outcome (the cursor moved, a failure counted) is stored only if the
subscription still names that webhook under this process's lease: one deleted and made
again, or set with another webhook, while the POST was open is left as it is now, its
messages delivered from its own cursor by whoever takes it next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from burrow.backends.background import stop_tasks
from burrow.errors import BurrowError, NoMatch, NotFound
from burrow.model import Draft, Message
from burrow.service import Service
from burrow.subscriptions import DeliveryError, Subscription, Webhook
from burrow.webhook_sender import Outcome, Sender, Verdict, subscription_path

logger = logging.getLogger(__name__)

BATCH = 100  # messages read after the cursor at a time
MAX_DELIVERING = 10_000  # subscriptions one process delivers at once; others take the rest
PAUSE_AFTER_ERROR = 1.0  # seconds before a delivery tries again after a storage error

Key = tuple[str, str, str]  # (account, queue, subscription name)
Edit = Callable[[Subscription], Subscription | None]


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Timings of delivery (`Settings.webhook_*`), in seconds."""

    timeout: float = 10.0
    lease: float = 30.0
    backoff: float = 1.0
    max_backoff: float = 600.0
    scan_every: float = 5.0

    def backoff_after(self, failures: int) -> float:
        """The wait after the `failures`th failure in a row: doubling, half of it jitter
        (so that endpoints that failed together are not retried together)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** min(failures - 1, 60))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Lost(Exception):
    """The subscription is no longer this process's to deliver (deleted, without that
    webhook, disabled, or its lease taken by another server)."""


class Deliveries:
    """The webhook deliveries of one server process: `open` starts them; `stop` (before
    the service's drain, which ends their long polls) tells them to end after the POST
    they are in, and `close` waits for that and gives up their leases."""

    def __init__(self, service: Service, settings: DeliverySettings) -> None:
        self.service = service
        self.settings = settings
        self.holder = secrets.token_hex(8)  # this process, in the leases it holds
        self.tls = httpx.create_ssl_context()  # (shared: each costs milliseconds)
        self._stopping = asyncio.Event()
        self._scanning: asyncio.Task[None] | None = None
        self._running: dict[Key, asyncio.Task[None]] = {}

    def open(self) -> None:
        self._scanning = asyncio.create_task(self._scan_forever())

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        self.stop()
        await stop_tasks([self._scanning])
        running = list(self._running.values())
        if running:  # each ends after its POST, or is cancelled once that could not have
            await asyncio.wait(running, timeout=self.settings.timeout + 1)
        await stop_tasks(running)

    # Finding subscriptions to deliver -------------------------------------------------

    async def _scan_forever(self) -> None:
        failing = False  # logged once until a scan works again (not every few seconds)
        while True:
            try:
                await self.scan()
            except BurrowError as error:
                if not failing:
                    logger.warning("webhook scans fail (retried): %s", error.message)
                failing = True
            else:
                if failing:
                    logger.info("webhook scans work again")
                failing = False
            await asyncio.sleep(self.settings.scan_every)

    async def scan(self) -> None:
        """Start delivering each subscription that is free to take."""
        async for key in self.service.subscriptions.every():
            if len(self._running) >= MAX_DELIVERING or self._stopping.is_set():
                return
            if key in self._running:
                continue
            try:
                taken = await self._change(key, self._take)
            except (Lost, NotFound):
                continue
            self._running[key] = asyncio.create_task(self._deliver(key, taken))

    def _take(self, subscription: Subscription) -> Subscription | None:
        """The subscription leased to this process, or None if it is not to be taken."""
        delivery = subscription.delivery
        if subscription.webhook is None or delivery.disabled is not None:
            return None
        if delivery.holder not in (None, self.holder) and delivery.until > time.time():
            return None
        return self._leased(subscription)

    def _leased(self, subscription: Subscription) -> Subscription:
        until = time.time() + self.settings.lease
        delivery = dataclasses.replace(subscription.delivery, holder=self.holder, until=until)
        return dataclasses.replace(subscription, delivery=delivery)

    # Delivering one subscription ------------------------------------------------------

    async def _deliver(self, key: Key, subscription: Subscription) -> None:
        account, queue, name = key
        sender = Sender(self.settings.timeout, self.tls)
        try:
            while not self._stopping.is_set():
                try:
                    subscription = await self._renewed(key, subscription)
                    try:
                        messages = await self.service.subscriptions.read(
                            account, queue, name, BATCH, self._poll_wait()
                        )
                    except NoMatch:
                        continue  # (none came during the long poll)
                    for message in messages:
                        subscription = await self._deliver_one(key, subscription, message, sender)
                        if self._stopping.is_set():
                            return
                except (Lost, NotFound):
                    return
                except BurrowError as error:
                    logger.warning(
                        "webhook delivery of %s paused: %s",
                        subscription_path(*key),
                        error.message,
                    )
                    await self._pause(PAUSE_AFTER_ERROR)
        finally:
            try:
                await sender.close()
                await self._release(key)
            finally:  # (only now: a scan meanwhile would take it again, then lose it)
                del self._running[key]

    async def _deliver_one(
        self, key: Key, subscription: Subscription, message: Message, sender: Sender
    ) -> Subscription:
        """POST `message` until it is acknowledged (delivered, or dead-lettered): returns
        the subscription's state after it."""
        path = subscription_path(*key)
        while True:
            subscription = await self._renewed(key, subscription)
            wait = subscription.delivery.next_attempt - time.time()
            if wait > 0:  # (in steps, the lease renewed between them)
                await self._pause(min(wait, self.settings.lease / 4))
                if self._stopping.is_set():
                    raise Lost
                continue
            webhook = subscription.webhook
            assert webhook is not None  # (a lease is only held on one with a webhook)
            outcome = await sender.post(webhook.url, webhook.secret, path, message)
            if outcome.verdict is Verdict.DELIVERED:
                return await self._acknowledge(key, webhook, message, _cleared)
            error = DeliveryError(time.time(), message.id, outcome.why)
            if outcome.verdict is Verdict.GONE:
                await self._record(key, webhook, _disabled(error))
                logger.warning("webhook of %s disabled: %s", path, outcome.why)
                raise Lost
            failures = subscription.delivery.failures + 1
            if failures >= webhook.max_attempts:
                await self._dead_letter(key, webhook.dead_letter_queue, message, outcome)
                return await self._acknowledge(key, webhook, message, _dead_lettered(error))
            delay = outcome.retry_after
            if delay is None:
                delay = self.settings.backoff_after(failures)
            logger.info("webhook of %s: message %s failed (%s)", path, message.id, outcome.why)
            subscription = await self._record(key, webhook, _failed(error, error.at + delay))

    async def _dead_letter(
        self, key: Key, dead_letters: str, message: Message, why: Outcome
    ) -> None:
        account, queue, _ = key
        draft = Draft(message.body, id=message.id, meta=message.meta)
        await self.service.put_messages(account, dead_letters, [draft])
        self.service.activity.of(account, queue).dead_lettered += 1
        logger.warning(
            "webhook of %s: message %s put on %s after its last attempt failed (%s)",
            subscription_path(*key),
            message.id,
            dead_letters,
            why.why,
        )

    # The lease ------------------------------------------------------------------------

    async def _renewed(self, key: Key, subscription: Subscription) -> Subscription:
        """The subscription's latest state, its lease renewed when half of it has run
        out, so that a POST started now ends while the lease is still held."""
        if subscription.delivery.until - time.time() > self.settings.lease / 2:
            return subscription
        return await self._change(key, self._kept)

    def _kept(self, subscription: Subscription) -> Subscription | None:
        delivery = subscription.delivery
        if subscription.webhook is None or delivery.disabled is not None:
            return None
        if delivery.holder != self.holder and delivery.until > time.time():
            return None  # (it ran out, and another server took it)
        return self._leased(subscription)

    async def _release(self, key: Key) -> None:
        """Give the lease up, so that another server may take the delivery at once."""

        def released(subscription: Subscription) -> Subscription | None:
            if subscription.delivery.holder != self.holder:
                return None
            delivery = dataclasses.replace(subscription.delivery, holder=None, until=0.0)
            return dataclasses.replace(subscription, delivery=delivery)

        try:
            await self._change(key, released)
        except (Lost, BurrowError):
            pass  # (it runs out by itself)

    async def _acknowledge(
        self, key: Key, webhook: Webhook, message: Message, then: Edit
    ) -> Subscription:
        """The cursor moved to `message` and `then` applied, in one `_record`."""
        moved = await self.service.subscriptions.acked(*key, message.id)
        return await self._record(key, webhook, lambda subscription: then(moved(subscription)))

    async def _record(self, key: Key, webhook: Webhook, edit: Edit) -> Subscription:
        """`edit` (the outcome of a POST to `webhook`) applied only while the subscription
        is still this process's to deliver to that webhook; else Lost: deleted and made
        again, or set with another webhook, during the POST, the outcome is none of its."""

        def held(subscription: Subscription) -> Subscription | None:
            if subscription.webhook != webhook or subscription.delivery.holder != self.holder:
                return None
            return edit(subscription)

        return await self._change(key, held)

    async def _change(self, key: Key, edit: Edit) -> Subscription:
        """`Subscriptions.change` with `edit`; Lost if `edit` leaves it as it is."""
        changed = await self.service.subscriptions.change(*key, edit)
        if changed is None:
            raise Lost
        return changed

    # Waiting --------------------------------------------------------------------------

    def _poll_wait(self) -> int:
        """Seconds a read long-polls for new messages: well within the lease."""
        return max(1, int(self.settings.lease / 4))

    async def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if the server stops meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass


# Edits of the delivery state (for `Subscriptions.change`) -----------------------------


def _with(
    subscription: Subscription, error: DeliveryError | None = None, **changes: Any
) -> Subscription:
    """The delivery state changed, and `error` the last one if given."""
    delivery = dataclasses.replace(subscription.delivery, **changes)
    last_error = subscription.last_error if error is None else error
    return dataclasses.replace(subscription, delivery=delivery, last_error=last_error)


def _cleared(subscription: Subscription) -> Subscription:
    """Delivered after failures: the next message starts with none."""
    return _with(subscription, failures=0, next_attempt=0.0)


def _failed(error: DeliveryError, next_attempt: float) -> Edit:
    """One more failure of the message after the cursor, tried again at `next_attempt`."""

    def edit(subscription: Subscription) -> Subscription:
        failures = subscription.delivery.failures + 1
        return _with(subscription, error, failures=failures, next_attempt=next_attempt)

    return edit


def _dead_lettered(error: DeliveryError) -> Edit:
    """The message after the cursor dead-lettered after `error`, its last attempt."""

    def edit(subscription: Subscription) -> Subscription:
        dead_lettered = subscription.delivery.dead_lettered + 1
        return _with(subscription, error, failures=0, next_attempt=0.0, dead_lettered=dead_lettered)

    return edit


def _disabled(error: DeliveryError) -> Edit:
    """Delivery stopped (until the webhook is set again), and the lease given up."""
    when = datetime.fromtimestamp(error.at, UTC).isoformat(timespec="seconds")
    reason = f"{error.error} ({when})"

    def edit(subscription: Subscription) -> Subscription:
        return _with(subscription, error, disabled=reason, holder=None, until=0.0)

    return edit
