"""What the blocking and the asyncio client share: their servers, who, how long, which account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from burrow.client.calls import AccountCalls, QueueCalls, sign
from burrow.client.operations import AccountOperations, QueueOperations
from burrow.client.routing import L, Raced, Router
from burrow.client.servers import Servers
from burrow.client.wire import Call, Tls, Verify, client_options, headers, tls_setting
from burrow.errors import InvalidRequest

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_TIMEOUT = 10.0
"""Seconds to connect, send or read; long polls add their `wait` to the read timeout."""


class Endpoint(Generic[H]):
    """One Burrow server seen through an `httpx` client of type `H` (keep-alive pool).

    `url` is the server's root URL (see `server_root`); `connections` caps the connections
    open at once (each pending long poll holds one).
    """

    def __init__(
        self, url: str, sent: dict[str, str], timeout: float, connections: int, tls: Tls
    ) -> None:
        self.url = server_root(url)
        self.timeout = timeout
        self._http: H = self._connect(client_options(self.url, sent, timeout, connections, tls))

    def _connect(self, options: dict[str, Any]) -> H:
        raise NotImplementedError


def server_root(url: str) -> str:
    """`url` as a server's root URL, `scheme://host[:port]`; `ValueError` if it is not one.

    The API's paths are the client's to add: a path in the URL (`/v1.0`, a natural
    paste) would become part of every request's, and `/v1.0/v1.0/acct/q` is a queue of
    the account `v1.0`. A query string or fragment would be dropped or misread as well,
    and a token goes in `token=`, where it is sent as Burrow expects it.
    """
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as error:
        raise ValueError(f"bad port in the server URL {url!r}: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s):// URL (like http://127.0.0.1:8080)")
    root = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if "@" in parts.netloc:
        raise ValueError(f"give the token with --token or token=, not in the URL: {root}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"give the server's root URL, {root}, not {url}")
    return root


class ClientBase(Generic[L]):
    """A client of one Burrow server, or of several (see docs/client-servers.md).

    `url` is one server's URL or a list of them. `account` is the one the
    friendly calls (`queues()`, `queue(name)`) work on; it may be left out for
    calls that name their account or span all of them. `token` is sent as
    `X-Auth-Token`; `zone`, the caller's zone, as `X-Burrow-Zone` (ring proxies
    then prefer that zone's servers, whichever proxy answers); `timeout` and
    `connections` apply to each server. `verify` checks https servers' certificates
    as httpx does: True (the default CA bundle), False, a PEM CA bundle's path
    (then only its CAs are trusted), or an `ssl.SSLContext`.

    A URL is a server's root, `http(s)://host[:port]`: one with a path (`/v1.0`), a
    query string, a fragment or a token in it is refused with a `ValueError`.
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
        verify: Verify = True,
    ) -> None:
        self.timeout = timeout
        self.token = token
        self.headers = headers(token, zone)
        self._connections = connections
        self._tls = tls_setting(verify)
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

    def _signing(self, path: str, methods: list[str], seconds: int) -> Call[str]:
        """The call asking the (first) server for a signed URL: only the server holds the
        signing secret, so a token alone cannot sign."""
        if self.token is None:
            raise InvalidRequest("signing a URL needs a client made with a token")
        return sign(path, methods, seconds)


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
