"""The connections of the `postgresql://` backend: its URL, the pool, and whether it writes.

`parse_url` reads the URL (Burrow's `pool_size` and `command_timeout`, and the options
the driver understands); `Pool` opens asyncpg's pool and migrates the schema, hands out
connections, and makes the driver's errors `BackendUnavailable` at this boundary.
Nothing waits for PostgreSQL longer than the connect or command timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from burrow.backends import redacted
from burrow.backends.postgres_schema import migrate
from burrow.errors import BackendUnavailable, ConfigError

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0
POOL_SIZE = 10
# True where writes would fail: a standby, or a session whose transactions are read-only.
_READ_ONLY = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean"
# What the driver raises when PostgreSQL fails or goes away (a connection lost in the
# middle of an operation can surface as an InternalClientError).
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


# Burrow's own query options, and the connection parameters asyncpg reads from a DSN
# (asyncpg 0.32, `connect_utils`). asyncpg would send any other one to the server as a
# setting, where a misspelt option fails only once connecting: refused here instead.
OPTIONS = ("pool_size", "command_timeout")
DRIVER_OPTIONS = (
    "host",
    "port",
    "dbname",
    "database",
    "user",
    "password",
    "passfile",
    "service",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslnegotiation",
    "sslcrl",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "target_session_attrs",
    "krbsrvname",
    "gsslib",
)


def parse_url(url: str) -> tuple[str, int, float]:
    """(DSN for asyncpg, pool size, command timeout) from a backend URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a postgresql URL: {redacted(url)!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {*OPTIONS, *DRIVER_OPTIONS})
    if unknown:
        raise ConfigError(
            f"backend {redacted(url)!r}: unknown option {unknown[0]!r}; the options are "
            f"{', '.join(OPTIONS)} and the driver's {', '.join(DRIVER_OPTIONS)}"
        )
    try:
        pool_size = int(query.pop("pool_size", POOL_SIZE))
        command_timeout = float(query.pop("command_timeout", COMMAND_TIMEOUT))
        valid = pool_size >= 1 and 0 < command_timeout < math.inf
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"backend {redacted(url)!r}: pool_size must be an integer >= 1 and "
            "command_timeout a number of seconds > 0"
        )
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
    return dsn, pool_size, command_timeout


class Pool:
    """The pooled connections to one PostgreSQL database, and lone ones for listening."""

    def __init__(self, url: str) -> None:
        self._dsn, self._size, self._command_timeout = parse_url(url)
        self._pool: asyncpg.Pool | None = None
        self._refusing = False

    @property
    def opened(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect, and migrate the schema; the caller closes the pool if this fails."""
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._size,
                reset=_keep_session,
                **self._connect_options(),
            )
            async with self._pool.acquire() as conn:
                await migrate(conn)
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"postgresql unavailable: {exc}") from exc

    def _connect_options(self) -> dict[str, Any]:
        return {
            "timeout": CONNECT_TIMEOUT,
            "command_timeout": self._command_timeout,
            # Explicit, whatever the server's default: a write is acknowledged only once
            # its commit record is flushed to disk on the server.
            "server_settings": {"synchronous_commit": "on", "application_name": "burrow"},
        }

    def refuse(self) -> None:
        """Lend no more connections: the backend is closing (its tasks stop before `close`)."""
        self._refusing = True

    async def close(self) -> None:
        self._refusing = True
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), CONNECT_TIMEOUT)
            except (*DRIVER_ERRORS, asyncio.CancelledError):
                self._pool.terminate()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; driver errors become `BackendUnavailable`."""
        if self._pool is None or self._refusing:
            raise BackendUnavailable("postgresql backend is not open")
        try:
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                yield conn
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"postgresql unavailable: {exc}") from exc

    async def connect(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (the caller closes it)."""
        return await asyncpg.connect(self._dsn, **self._connect_options())

    async def read_only(self) -> bool:
        """Whether writes would fail: a standby, or read-only transactions by default."""
        async with self.connection() as conn:
            return bool(await conn.fetchval(_READ_ONLY))


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it is returned to the pool: nothing more than the
    driver does anyway (rolling back a transaction left open). asyncpg's default would
    send `RESET ALL`, `UNLISTEN *`, `CLOSE ALL` and an advisory unlock, one more round
    trip per call (put-1 at 32 connections: 27% more messages/s without it). Nothing
    here leaves session state behind: settings are set at connect, locks are
    transaction locks, and the LISTEN connection is not pooled."""
