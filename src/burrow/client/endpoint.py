"""What the blocking and the asyncio client share: their servers, who, how long, which account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx

from burrow import keys
from burrow.client.calls import AccountCalls, QueueCalls
from burrow.client.operations import AccountOperations, QueueOperations
from burrow.client.routing import L, Raced, Router
from burrow.client.servers import Servers
from burrow.client.wire import Call, client_options, headers
from burrow.errors import InvalidRequest

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_TIMEOUT = 10.0
"""Seconds to connect, send or read; long polls add their `wait` to the read timeout."""


class Endpoint(Generic[H]):
    """One Burrow server seen through an `httpx` client of type `H` (keep-alive pool).

    `connections` caps the connections open at once (each pending long poll holds one).
    """

    def __init__(self, url: str, sent: dict[str, str], timeout: float, connections: int) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http: H = self._connect(client_options(self.url, sent, timeout, connections))

    def _connect(self, options: dict[str, Any]) -> H:
        raise NotImplementedError


class ClientBase(Generic[L]):
    """A client of one Burrow server, or of several (see docs/client-servers.md).

    `url` is one server's URL or a list of them. `account` is the one the
    friendly calls (`queues()`, `queue(name)`) work on; it may be left out for
    calls that name their account or span all of them. `token` is sent as
    `X-Auth-Token`; `zone`, the caller's zone, as `X-Burrow-Zone` (ring proxies
    then prefer that zone's servers, whichever proxy answers); `timeout` and
    `connections` apply to each server.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        account: str | None = None,
        *,
        token: str | None = None,
        zone: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connections: int = 100,
    ) -> None:
        self.timeout = timeout
        self.token = token
        self.headers = headers(token, zone)
        self._connections = connections
        urls = [url] if isinstance(url, str) else list(url)
        self.servers = Servers([self._open(each) for each in urls])
        self._router = Router(self.servers, self._race)
        self._calls = AccountCalls(account)
        self._operations = AccountOperations(self._router, self._calls)

    def _open(self, url: str) -> L:
        raise NotImplementedError

    async def _race(self, probes: list[tuple[L, Call[bool]]], seconds: float) -> Raced:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The (first) server's URL."""
        return self.servers.all[0].url

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers.all]

    @property
    def account(self) -> str:
        """The client's account (`ValueError` if it was made without one)."""
        return self._calls.name

    def signed_url(self, path: str, methods: list[str], seconds: int = 3600) -> str:
        """A URL that lets anyone call `methods` below `path` (e.g. `/v1.0/acct/queue`)
        for `seconds`, with no token: signed with this client's token, within its rights.
        It points at the (first) server."""
        if self.token is None:
            raise InvalidRequest("signing a URL needs a client made with a token")
        query = keys.sign_with_token(self.token, methods, path, seconds)
        return f"{self.url}{path}?{urlencode(query)}"


C = TypeVar("C", bound=ClientBase[Any])


class QueueHandle(Generic[C]):
    """What both queue handles hold: their client, and the operations of their queue."""

    def __init__(self, client: C, name: str) -> None:
        self._client = client
        self._calls = QueueCalls(client.account, name)
        self._operations: QueueOperations[Any] = QueueOperations(client._router, self._calls)

    @property
    def account(self) -> str:
        return self._calls.account

    @property
    def name(self) -> str:
        return self._calls.name
