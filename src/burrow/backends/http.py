"""`http://host:port`: a Burrow server whose storage is another Burrow server.

Every backend call goes over the v1.0 API through `burrow.client.AsyncClient`,
whose Backend-shaped operations exist for this: one implementation of the wire
format serves the client and this backend. Connections are pooled and kept
alive; long polls are pushed down to the remote server (a subscription's wait is
a `GET ?wait=` there, with the waiting request's own filters), so nothing polls.

URL: `http://[TOKEN@]host:port[?timeout=SECONDS&connections=N]` (or `https://`).
TOKEN, when given, is sent with every call: the remote server authorizes this
server, which has already authorized its own caller. A refusal of that token
(401/403) is this server's misconfiguration, not the caller's fault: 503.
Quotas passed to `put_messages` travel as stricter-quota parameters, so the
remote server enforces them in its own atomic write.

What the v1.0 API has no word for travels in its extensions (docs/api.md, "Extensions
for proxies"): messages are read at `detail=full`, a receive is a claim with a
`receipt`, a call on one receive names it with `receipt`, meta goes in a batch, and a
queue's counts and info are `/v1.0/{a}/{q}/-/counts` and `/-/info`. So the remote
server must be a Burrow server of this version or later; each of these is one call
there, as atomic as on its own backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from burrow.backends.base import (
    Backend,
    DeleteTarget,
    Health,
    Subscription,
    SubscriptionKey,
    failing,
    healthy,
)
from burrow.client import AsyncClient
from burrow.client.paging import every_page, until_empty
from burrow.client.wire import Call, Request
from burrow.errors import (
    BackendUnavailable,
    BurrowError,
    Forbidden,
    InvalidRequest,
    NoMatch,
    Unauthorized,
)
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Detail,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)

T = TypeVar("T")


DEFAULT_TIMEOUT = 10.0
DEFAULT_CONNECTIONS = 10_000
# After a failed wait on an unreachable server, pause this long before the caller
# tries again (its next attempt will most likely report the outage itself).
RETRY_PAUSE = 0.5


class HttpBackend(Backend):
    """Forwards each operation to the Burrow server at `url`."""

    shared_between_processes = True

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"http backend URL must look like http://host:port, not {url!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = query.keys() - {"timeout", "connections"}
        if unknown:
            raise InvalidRequest(f"unknown http backend option(s): {', '.join(sorted(unknown))}")
        try:
            self._timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
            self._connections = int(query.get("connections", DEFAULT_CONNECTIONS))
        except ValueError as error:
            raise InvalidRequest(f"bad http backend option in {url!r}: {error}") from error
        self._token = unquote(parts.username) if parts.username else None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        self.url = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        self._client: AsyncClient | None = None
        self._subscriptions: set[_RemoteSubscription] = set()
        self._closing = False

    async def open(self) -> None:
        self._client = AsyncClient(
            self.url, token=self._token, timeout=self._timeout, connections=self._connections
        )

    async def close(self) -> None:
        self._closing = True
        for subscription in list(self._subscriptions):
            subscription.interrupt()
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> AsyncClient:
        if self._client is None or self._closing:
            raise BackendUnavailable(f"http backend {self.url} is not open")
        return self._client

    async def health(self) -> Health:
        """The remote server's `/health`, its reason prefixed with the server's URL;
        failing when the server cannot be reached."""
        try:
            report = await self.client.send(_REMOTE_HEALTH)
        except BurrowError as error:
            return failing(error.message)
        if report["status"] == "ok":
            return healthy()
        return {"status": report["status"], "reason": f"{self.url}: {report.get('reason')}"}

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (Unauthorized, Forbidden) as error:
            raise BackendUnavailable(f"{self.url} refused this server: {error.message}") from error

    async def _every(
        self,
        filters: Filters,
        read: Callable[[Filters], Awaitable[list[T]]],
        key: Callable[[T], str],
    ) -> list[T]:
        """Every match of a call that gives no `limit`, as the Backend contract has it.

        The remote server answers such a call with one page (its `default_limit`), so
        this pages on with `marker` until a page comes back empty. The first call
        raises `NoMatch` when nothing matched at all.
        """
        first = await self._call(lambda: read(filters))
        if filters.limit is not None:
            return first

        async def page(marker: str | None) -> list[T]:
            try:
                return await self._call(lambda: read(Filters(None, marker, filters.match_hidden)))
            except NoMatch:
                return []

        return await every_page(page, key, filters.marker, first)

    # Accounts and queues ---------------------------------------------------------------
    # (A remote delete of accounts or queues takes every match: no paging needed.)

    async def get_accounts(self, filters: Filters) -> list[str]:
        return await self._every(filters, self.client.get_accounts, _name)

    async def delete_accounts(self, filters: Filters) -> list[str]:
        return await self._call(lambda: self.client.delete_accounts(filters))

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._every(filters, lambda f: self.client.get_queues(account, f), _name)

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._call(lambda: self.client.delete_queues(account, filters))

    # Messages ---------------------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._every(
            filters, lambda f: self.client.get_messages(account, queue, f), _message_id
        )

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._every(
            filters,
            lambda f: self.client.update_messages(account, queue, attributes, f),
            _message_id,
        )

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        """A delete with no `limit` (a purge) is repeated until nothing is left: the
        remote server deletes one page per call."""
        first = await self._call(lambda: self.client.delete_messages(account, queue, filters))
        if filters.limit is not None:
            return first

        async def again() -> list[Message]:
            try:
                return await self._call(
                    lambda: self.client.delete_messages(account, queue, filters)
                )
            except NoMatch:
                return []

        return first + await until_empty(again)

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        return await self._call(lambda: self.client.put_messages(account, queue, messages, quota))

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._call(lambda: self.client.get_message(account, queue, message_id))

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        return await self._call(
            lambda: self.client.update_message(account, queue, message_id, attributes, receipt)
        )

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        return await self._call(
            lambda: self.client.delete_message(account, queue, message_id, receipt)
        )

    async def delete_listed_messages(
        self, account: str, queue: str, targets: list[DeleteTarget]
    ) -> list[Message]:
        return await self._call(lambda: self.client.delete_listed_messages(account, queue, targets))

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        return await self._call(lambda: self.client.count_messages(account, queue))

    # Queue info --------------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        return await self._call(lambda: self.client.get_queue_info(account, queue))

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        return await self._call(lambda: self.client.set_queue_info(account, queue, info, expected))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        return await self._call(lambda: self.client.delete_queue_info(account, queue))

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        return await self._every(filters, lambda f: self.client.list_queue_infos(account, f), _name)

    # Subscriptions: their documents as stored, which the remote server gives to admins only
    # (they hold webhook secrets), so TOKEN must be an admin's for them.

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        return await self._call(lambda: self.client.get_subscription(account, queue, name))

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        return await self._call(
            lambda: self.client.set_subscription(account, queue, name, document, expected)
        )

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        return await self._call(lambda: self.client.delete_subscription(account, queue, name))

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        return await self._every(
            filters, lambda f: self.client.list_subscriptions(account, queue, f), _name
        )

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        """Pages on until `limit` are found or none is left: the remote answers a page of
        its own `default_limit`, and a short answer here means the end."""
        found: list[SubscriptionKey] = []
        while len(found) < limit:
            page = await self._call(partial(self.client.list_all_subscriptions, after))
            if not page:
                break
            found += page
            after = page[-1]
        return found[:limit]

    # Waiting ------------------------------------------------------------------------------

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        subscription = _RemoteSubscription(self, account, queue, filters)
        if self._closing:
            subscription.interrupt()
        else:
            self._subscriptions.add(subscription)
        return subscription


class _HealthCall(Call[Health]):
    """`GET /health`: the server's report, whether it answers 200 or 503."""

    __slots__ = ()

    def result(self, response: httpx.Response) -> Health:
        if response.status_code == 503:
            return _health_report(response)
        return super().result(response)


def _health_report(response: httpx.Response) -> Health:
    try:
        report = response.json()
    except ValueError:
        report = None
    if isinstance(report, dict) and report.get("status") in ("ok", "degraded", "failing"):
        return report
    return failing(f"HTTP {response.status_code} from /health, with no report")


def _no_health_route() -> Health:
    return failing("the server has no /health")


_REMOTE_HEALTH = _HealthCall(Request("GET", "/health"), _health_report, _no_health_route)


class _RemoteSubscription(Subscription):
    """Waits by long polling the remote server for a message the waiter's filters match."""

    def __init__(self, backend: HttpBackend, account: str, queue: str, filters: Filters) -> None:
        self._backend = backend
        self._account = account
        self._queue = queue
        # One match is enough to wake the waiter, whose own attempt then takes it.
        self._probe = Filters(1, filters.marker, filters.match_hidden)
        self._interrupted = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        if self._interrupted.is_set():
            return False
        if seconds <= 0:
            return True
        poll = asyncio.ensure_future(self._poll(math.ceil(seconds)))
        interrupted = asyncio.ensure_future(self._interrupted.wait())
        try:
            await asyncio.wait({poll, interrupted}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            for task in (poll, interrupted):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(poll, interrupted, return_exceptions=True)
        return not self._interrupted.is_set()

    async def _poll(self, wait: int) -> None:
        try:
            await self._backend.client.get_messages(
                self._account, self._queue, self._probe, wait=wait, detail=Detail.NONE
            )
        except NoMatch:
            pass  # the wait ended with nothing to match
        except BurrowError:
            await asyncio.sleep(RETRY_PAUSE)  # unreachable: the next attempt says so

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._backend._subscriptions.discard(self)


def _name(name: str) -> str:
    return name


def _message_id(message: Message) -> str:
    return message.id
