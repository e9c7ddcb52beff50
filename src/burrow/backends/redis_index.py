"""The Redis backend's keys outside an account's hash slot: the account index, the index
of every subscription, and the sweeper that walks the accounts (all in the `{idx}` slot).

One account lives on one shard (see `burrow.backends.redis`); only the list of accounts,
and that of every subscription, span slots. `b:{idx}:subs` is a ZSET of
`account NUL queue NUL name` scored 0, so in tuple order; it is added to after each
stored change of a subscription and removed from after its delete, so that a crash
between the two steps is mended by the next change. The ZSET `b:{idx}:accounts` is kept
by a second step after a write: a write learns from its script whether the account may
be unindexed, adds it, then confirms with a token; the sweeper removes an emptied
account in three steps (bump the account's generation if empty, remove the entry,
re-add it if a writer came meanwhile), and the generation makes a confirmation that
raced a removal void. Listings check each entry's account for live messages, so an
entry that outlives its account is never shown.

Expired messages are skipped by every script and purged by the sweeper, which every
server runs; a short lease lets one server do a round at a time, and each purge is a
script, so overlapping rounds are harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from burrow.backends.background import stop_tasks
from burrow.backends.base import SubscriptionKey
from burrow.backends.redis_connection import DRIVER_ERRORS, Connection
from burrow.errors import BackendUnavailable
from burrow.model import Filters

logger = logging.getLogger(__name__)

INDEX, INDEX_SEQ, SWEEP_LEASE = b"b:{idx}:accounts", b"b:{idx}:seq", b"b:{idx}:sweep"
SUBSCRIPTIONS = b"b:{idx}:subs"
PURGE_BUDGET = 1000


def account_key(account: str) -> bytes:
    """The key of an account's hash (`P a`): every script runs on it, in its slot."""
    return f"b:{{{account.encode().hex()}}}:a".encode()


class Index:
    """The `{idx}` slot's keys and the sweeper; see the module docstring."""

    def __init__(self, redis: Connection, origin: str, sweep_interval: float) -> None:
        self._redis = redis
        self._origin = origin
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None

    # Accounts ---------------------------------------------------------------------------

    async def live_accounts(self, filters: Filters) -> AsyncIterator[str]:
        client = self._redis.client
        after: float | None = None
        if filters.marker is not None:
            marker = filters.marker
            after = await self._redis.retrying(lambda: client.zscore(INDEX, marker))
        found = 0
        while True:
            page = await self._index_page(after)
            if not page:
                return
            names = [raw.decode() for raw, _ in page]
            lives = await asyncio.gather(
                *(self._redis.read("ACCOUNT", [account_key(n)], ["live"]) for n in names)
            )
            for name, live in zip(names, lives, strict=True):
                if live:
                    yield name
                    found += 1
                    if found == filters.limit:
                        return
            after = page[-1][1]

    async def add(self, account: str, token: bytes) -> None:
        """Add the account to the index, then mark it indexed (see the module docstring)."""
        await self._redis.write("INDEX_ADD", [INDEX, INDEX_SEQ], [account])
        await self._redis.write("CONFIRM_INDEX", [account_key(account)], [token])

    async def remove(self, account: str) -> None:
        """Drop an empty account's index entry, unless a writer brought it back meanwhile."""
        key = [account_key(account)]
        if await self._redis.write("ACCOUNT", key, ["unindex"]) is not None:
            return
        await self._redis.write_command("ZREM", INDEX, account)
        token = await self._redis.write("ACCOUNT", key, ["unindex"])
        if token is not None:
            await self.add(account, token)

    async def _index_page(self, after: float | None) -> list[tuple[bytes, float]]:
        """Up to 100 entries of the account index, after the one with score `after`."""
        client = self._redis.client
        low = "-inf" if after is None else f"({after!r}"
        page: list[tuple[bytes, float]] = await self._redis.retrying(
            lambda: client.zrangebyscore(INDEX, low, "+inf", 0, 100, withscores=True)  # type: ignore[arg-type,return-value]
        )
        return page

    # Subscriptions ----------------------------------------------------------------------

    async def add_subscription(self, account: str, queue: str, name: str) -> None:
        await self._redis.write_command("ZADD", SUBSCRIPTIONS, 0, _member(account, queue, name))

    async def remove_subscription(self, account: str, queue: str, name: str) -> None:
        await self._redis.write_command("ZREM", SUBSCRIPTIONS, _member(account, queue, name))

    async def subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        client = self._redis.client
        low = b"-" if after is None else b"(" + _member(*after)
        raw: list[bytes] = await self._redis.retrying(
            lambda: client.zrangebylex(SUBSCRIPTIONS, low, b"+", 0, limit)  # type: ignore[arg-type,return-value]
        )
        return [_key(member) for member in raw]

    # Sweeper ----------------------------------------------------------------------------

    def start_sweeper(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop_sweeper(self) -> None:
        await stop_tasks([self._sweeper])

    async def purge_expired(self) -> int:
        """Delete expired messages and unlist the accounts they leave empty."""
        purged = 0
        after: float | None = None
        while True:
            page = await self._index_page(after)
            if not page:
                return purged
            for raw, _ in page:
                account = raw.decode()
                while True:
                    count, more, queues = await self._redis.write(
                        "ACCOUNT", [account_key(account)], ["purge", PURGE_BUDGET]
                    )
                    purged += count
                    if not more:
                        break
                if not queues:
                    await self.remove(account)
            after = page[-1][1]

    async def _sweep_forever(self) -> None:
        client = self._redis.client
        lease_ms = max(1, int(self._sweep_interval * 1000 * 0.9))
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                if await client.set(SWEEP_LEASE, self._origin, nx=True, px=lease_ms):
                    await self.purge_expired()
            except (*DRIVER_ERRORS, BackendUnavailable) as exc:
                logger.warning("redis sweep failed: %s", exc)


def _member(account: str, queue: str, name: str) -> bytes:
    """A subscription's entry in `SUBSCRIPTIONS` (no id holds NUL, which sorts first)."""
    return b"\0".join(part.encode() for part in (account, queue, name))


def _key(member: bytes) -> SubscriptionKey:
    account, queue, name = member.decode().split("\0")
    return account, queue, name
