"""What the blocking and the asyncio client share: where, who, how long, which account."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx

from burrow.client.calls import AccountCalls, QueueCalls
from burrow.client.wire import client_options

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_TIMEOUT = 10.0
"""Seconds to connect, send or read; long polls add their `wait` to the read timeout."""


class Endpoint(Generic[H]):
    """One Burrow server seen through an `httpx` client of type `H` (keep-alive pool).

    `account` is the one the friendly calls (`queues()`, `queue(name)`) work on;
    it may be left out for calls that name their account or span all of them.
    `token` is sent as `X-Auth-Token`.
    """

    def __init__(
        self,
        url: str,
        account: str | None = None,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._calls = AccountCalls(account)
        self._http: H = self._connect(client_options(self.url, token, timeout))

    def _connect(self, options: dict[str, Any]) -> H:
        raise NotImplementedError

    @property
    def account(self) -> str:
        """The client's account (`ValueError` if it was made without one)."""
        return self._calls.name


C = TypeVar("C", bound=Endpoint[Any])


class QueueHandle(Generic[C]):
    """What both queue handles hold: their client, and the calls of their queue."""

    def __init__(self, client: C, name: str) -> None:
        self._client = client
        self._calls = QueueCalls(client.account, name)

    @property
    def account(self) -> str:
        return self._calls.account

    @property
    def name(self) -> str:
        return self._calls.name
