"""`redis://`, `redis+sentinel://`, `redis+cluster://`: many Burrow servers on one Redis.

URLs:
    redis://host:port/db
    redis+sentinel://h1:p1,h2:p2/master-name
    redis+cluster://h1:p1,h2:p2
each optionally with `?durability=fsync|replicas|none` (what an acknowledged write
survives, checked when the backend opens: redis_durability.py), `replicas=N` (replicas
that confirm each write, 1 with durability=replicas or its older spelling `durable=1`)
and `wait_ms` (how long they may take, 1000); see docs/redis.md.

Key layout. Every key of an account shares one hash slot: the hash tag is the
account name in hex, so no name can break it. With P = `b:{<hex account>}:`:
    P a            HASH  seq (one counter for queues and messages), bytes,
                         rgen/idx (account index bookkeeping, below)
    P qs           ZSET  queue name -> seq: the account's queues in creation order
    P xq           ZSET  queue name -> its earliest expiry (what the sweeper visits)
    P qb           HASH  queue name -> bytes of its bodies
    P q:<hex q>:o  ZSET  id -> seq: every message in creation order
    P q:<hex q>:r  ZSET  id -> seq: the visible ones (claims never rescan hidden ones)
    P q:<hex q>:h  ZSET  id -> hidden until (ms, server clock)
    P q:<hex q>:x  ZSET  id -> expires (ms); absent = never
    P q:<hex q>:b  HASH  id -> body (binary-safe)
    P q:<hex q>:m  HASH  id -> `<sent ms>:<meta>` (when put, what the frontend keeps)
    P q:<hex q>:v  HASH  id -> `<receives>:<first received ms>:<latest receipt>`
    P q:<hex q>:f  ZSET  id -> hidden until (ms, 0 = visible) of received messages
    P i            HASH  queue name -> its info document (apart from its messages)
    P io           ZSET  queue name -> seq of its first info: the infos' order
    P s:<hex q>    HASH  subscription name -> its document (apart from the messages)
    P sn:<hex q>   ZSET  subscription name -> 0: the queue's subscriptions by name
A replace keeps the id's seq, hence its place, and starts `m`, `v` and `f` anew.
Only received messages are in `v` and `f`: counts by state are set sizes and score
ranges (`f` beside `h`), not walks. A message stored before `m` and `v` existed reads
as never received, with meta b"" and sent 0.0 (unknown). Queue listings and every quota
are exact: they are read and written by the same script as the messages.

Slot rule. One account lives on one shard: its quotas (`max_account_queues`,
`max_account_bytes`) are checked and spent in the write's own script, so
concurrent writers can never overshoot them; a tenant bigger than a shard is
split across accounts. Only the list of accounts, and that of every subscription
(`b:{idx}:subs`, a ZSET of `account NUL queue NUL name` scored 0, so in tuple order;
added to after each stored change of a subscription, removed from after its delete,
so that a crash between the two steps is mended by the next change), span slots: the ZSET
`b:{idx}:accounts` (in the `{idx}` slot) is kept by a second step. A write
learns from its script whether the account may be unindexed, adds it, then
confirms with a token; the sweeper removes an emptied account in three steps
(bump the account's generation if empty, remove the entry, re-add it if a
writer came meanwhile), and the generation makes a confirmation that raced a
removal void. Listings check each entry's account for live messages, so an
entry that outlives its account is never shown.

Clock: deadlines come from `TIME` inside the scripts, never from this process.
Expired messages are skipped by every script and purged by a sweeper that
every server runs; a short lease lets one server do a round at a time, and
each purge is a script, so overlapping rounds are harmless.

Without `replicas`, a write is acknowledged once the primary ran it (and, in
the default fsync mode, fsynced it to its AOF); replication is asynchronous, so
a primary that fails over loses the writes its replica had not yet received
(usually the last millisecond or so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.retry import Retry

from burrow.backends import redis_scripts as lua
from burrow.backends.background import stop_tasks
from burrow.backends.base import (
    Backend,
    Health,
    Subscription,
    SubscriptionKey,
    degraded,
    failing,
    healthy,
)
from burrow.backends.notify import Notifier
from burrow.backends.redis_durability import check_durability
from burrow.backends.redis_url import RedisURL
from burrow.backends.redis_wakeups import Wakeups, channel_for
from burrow.errors import BackendUnavailable, ConfigError, MessageNotFound, NoMatch
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

Client: TypeAlias = "Redis | RedisCluster"
INDEX, INDEX_SEQ, SWEEP_LEASE = b"b:{idx}:accounts", b"b:{idx}:seq", b"b:{idx}:sweep"
SUBSCRIPTIONS = b"b:{idx}:subs"
# Reads are retried through a failover (about a second with Sentinel or Cluster).
# What the driver raises; all of it becomes BackendUnavailable at this module's boundary.
DRIVER_ERRORS = (rx.RedisError, rx.RedisClusterException)
READ_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
PURGE_BUDGET = 1000
_KEEP = -1  # "leave this attribute as it is" in script arguments


# Every Redis call goes once: a retried write could be applied twice (a pop
# whose answer was lost loses its messages). Reads are retried above this layer.
_CONNECTION: dict[str, Any] = {
    "retry": Retry(NoBackoff(), 0),
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
    "decode_responses": False,
}


_SENTINEL = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
# A call finding every pooled connection busy waits this long for one (then 503):
# a burst of requests queues for Redis rather than failing.
POOL_WAIT = 5.0


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel pool (the primary asked of the sentinels) that waits when full."""


class RedisBackend(Backend):
    """Accounts, queues and messages in Redis, shared by any number of Burrow servers."""

    shared_between_processes = True

    def __init__(self, url: str, *, sweep_interval: float = 1.0) -> None:
        self.url = RedisURL.parse(url)
        self._sweep_interval = sweep_interval
        self._origin = uuid.uuid4().hex
        self._notifier = Notifier()
        self._wakeups = Wakeups(self._connect_pubsub, self._notifier, self._origin)
        self._client: Client | None = None
        self._node_clients: dict[str, Redis] = {}
        self._pubsub_client: Redis | None = None  # Cluster: the node pub/sub is on
        self._sentinels: list[Redis] = []  # Sentinel: a client on each sentinel
        self._scripts: dict[str, AsyncScript] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # Life cycle ------------------------------------------------------------------------

    async def open(self) -> None:
        url = self.url
        client: Client
        if url.kind == "cluster":
            nodes = [ClusterNode(host, port) for host, port in url.hosts]
            # redis-py's cluster node pools cannot wait: past the limit a call fails.
            client = RedisCluster(
                startup_nodes=nodes, max_connections=url.max_connections, **_CONNECTION
            )
        elif url.kind == "sentinel":
            sentinel = Sentinel(url.hosts, sentinel_kwargs=_SENTINEL, **_CONNECTION)  # type: ignore[no-untyped-call]
            client = sentinel.master_for(
                url.master,
                connection_pool_class=_BlockingSentinelPool,
                max_connections=url.max_connections,
                timeout=POOL_WAIT,
            )
            self._sentinels = sentinel.sentinels
        else:
            (host, port), db = url.hosts[0], url.db
            client = self._node(host, port, db)
        self._client = client
        for name in (
            *("PUT", "SELECT", "ONE", "COUNT", "QUEUES", "ACCOUNT", "INFO", "SUBSCRIPTION"),
            *("CONFIRM_INDEX", "INDEX_ADD"),
        ):
            self._scripts[name] = client.register_script(getattr(lua, name))
        try:
            await client.ping()
            await check_durability(url.durability, await self._primaries())
        except DRIVER_ERRORS as exc:
            await self.close()
            raise BackendUnavailable(f"redis unreachable: {exc}") from exc
        except ConfigError:
            await self.close()
            raise
        self._wakeups.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        # Wake-ups from other servers flow once the pub/sub connection is up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._wakeups.connected.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notifier.close()
        await stop_tasks([self._sweeper])
        await self._wakeups.stop()
        for node in [*self._node_clients.values(), *self._sentinels, self._pubsub_client]:
            if node is not None:
                await node.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def health(self) -> Health:
        """Failing when Redis does not answer a PING; degraded while the pub/sub
        connection (wake-ups from other servers) is re-established."""
        if self._client is None or self._closed:
            return failing("redis backend is not open")
        try:
            await self._client.ping()
        except DRIVER_ERRORS as exc:
            return failing(f"redis unreachable: {exc}")
        if not self._wakeups.connected.is_set():
            return degraded("the pub/sub connection is reconnecting")
        return healthy()

    async def _primaries(self) -> list[tuple[str, Redis]]:
        """Each primary's address and a client on it: those the durability check reads.

        Sentinel: the primary the sentinels name now (a later failover is not checked).
        """
        client = self._client
        if isinstance(client, RedisCluster):
            return [(node.name, self._client_for(node)) for node in client.get_primaries()]
        assert client is not None
        pool = client.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            host, port = await pool.get_master_address()  # type: ignore[no-untyped-call]
        else:
            host, port = self.url.hosts[0]
        return [(f"{host}:{port}", client)]

    async def _connect_pubsub(self) -> PubSub:
        client = self._client
        if isinstance(client, RedisCluster):
            # Plain PUBLISH reaches every node of a cluster: any live one will do.
            if self._pubsub_client is not None:
                await self._pubsub_client.aclose()
                self._pubsub_client = None
            for node in client.get_nodes():
                candidate = self._node(node.host, int(node.port))
                try:
                    await candidate.ping()
                except DRIVER_ERRORS:
                    await candidate.aclose()
                    continue
                self._pubsub_client = candidate
                return candidate.pubsub()
            raise rx.ConnectionError("no cluster node reachable")
        assert client is not None
        return client.pubsub()

    def subscribe(self, account: str, queue: str, filters: Filters = ALL_ITEMS) -> Subscription:
        return self._wakeups.subscribe(account, queue)

    # Accounts and queues -------------------------------------------------------------

    async def get_accounts(self, filters: Filters) -> list[str]:
        names = [name async for name in self._live_accounts(filters)]
        if not names:
            raise NoMatch("accounts")
        return names

    async def delete_accounts(self, filters: Filters) -> list[str]:
        names = await self.get_accounts(filters)
        for name in names:
            await self._write("ACCOUNT", [_account_key(name)], ["delete"])
            await self._unindex(name)
        return names

    async def _live_accounts(self, filters: Filters) -> AsyncIterator[str]:
        client = self._client
        assert client is not None
        after: float | None = None
        if filters.marker is not None:
            marker = filters.marker
            after = await self._retrying(lambda: client.zscore(INDEX, marker))
        found = 0
        while True:
            page = await self._index_page(after)
            if not page:
                return
            names = [raw.decode() for raw, _ in page]
            lives = await asyncio.gather(
                *(self._read("ACCOUNT", [_account_key(n)], ["live"]) for n in names)
            )
            for name, live in zip(names, lives, strict=True):
                if live:
                    yield name
                    found += 1
                    if found == filters.limit:
                        return
            after = page[-1][1]

    async def get_queues(self, account: str, filters: Filters) -> list[str]:
        return await self._queues(account, filters, "get")

    async def delete_queues(self, account: str, filters: Filters) -> list[str]:
        names = await self._queues(account, filters, "delete")
        await self._unindex(account)
        return names

    async def _queues(self, account: str, filters: Filters, mode: str) -> list[str]:
        args = [mode, filters.limit or 0, filters.marker or ""]
        keys = [_account_key(account)]
        raw = await (self._read if mode == "get" else self._write)("QUEUES", keys, args)
        if not raw:
            raise NoMatch("queues")
        return [name.decode() for name in raw]

    # Messages in a queue ----------------------------------------------------------------

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._select(account, queue, "get", filters, Attributes())

    async def update_messages(
        self, account: str, queue: str, attributes: Attributes, filters: Filters
    ) -> list[Message]:
        return await self._select(account, queue, "update", filters, attributes)

    async def delete_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        return await self._select(account, queue, "delete", filters, Attributes())

    async def _select(
        self, account: str, queue: str, mode: str, filters: Filters, attributes: Attributes
    ) -> list[Message]:
        unconfirmed = self._wakeups.unconfirmed(account, queue)
        args = [
            *self._queue_args(account, queue),
            mode,
            filters.limit or 0,
            filters.marker or "",
            int(filters.match_hidden),
            _keep(attributes.ttl),
            _keep(attributes.hide),
            _given(attributes.receipt),
        ]
        keys = [_account_key(account)]
        raw = await (self._read if mode == "get" else self._write)("SELECT", keys, args)
        now, earliest_hidden = raw[0], raw[1]
        if len(raw) == 2:
            if unconfirmed:
                self._wakeups.found_nothing(account, queue)
            if earliest_hidden:
                # A waiter that looks now wakes when the next hidden message shows.
                self._notifier.visible_at(account, queue, _local_time(earliest_hidden, now))
            raise NoMatch()
        messages = _messages(raw)
        if mode == "update":
            self._announce(account, queue, attributes)
        return messages

    async def put_messages(
        self, account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
    ) -> list[bool]:
        if not messages:
            return []
        args: list[Any] = [
            *self._queue_args(account, queue),
            quota.max_queue_messages,
            quota.max_account_queues,
            quota.max_account_bytes,
        ]
        for message in messages:
            args += [message.id, message.body, message.ttl, message.hide, message.meta]
        raw = await self._write("PUT", [_account_key(account)], args)
        if raw[0] == -1:
            quota.check(queue_messages=raw[2], account_queues=raw[3], account_bytes=raw[4])
            raise BackendUnavailable("quota refused by redis but not by Quota.check")
        if raw[1]:
            await self._index(account, raw[1])
        hides = [m.hide for m in messages if m.hide]
        now = time.time()
        self._notifier.written(account, queue, (now + h for h in hides))
        return [bool(flag) for flag in raw[2:]]

    # One message --------------------------------------------------------------------

    async def get_message(self, account: str, queue: str, message_id: str) -> Message:
        return await self._one(account, queue, message_id, "get", Attributes())

    async def update_message(
        self,
        account: str,
        queue: str,
        message_id: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        return await self._one(account, queue, message_id, "update", attributes, receipt)

    async def delete_message(
        self, account: str, queue: str, message_id: str, receipt: str | None = None
    ) -> Message:
        return await self._one(account, queue, message_id, "delete", Attributes(), receipt)

    async def _one(
        self,
        account: str,
        queue: str,
        message_id: str,
        mode: str,
        attributes: Attributes,
        receipt: str | None = None,
    ) -> Message:
        args = [
            *self._queue_args(account, queue),
            mode,
            message_id,
            _keep(attributes.ttl),
            _keep(attributes.hide),
            _given(receipt),
        ]
        keys = [_account_key(account)]
        raw = await (self._read if mode == "get" else self._write)("ONE", keys, args)
        if len(raw) == 2:
            raise MessageNotFound(message_id)
        if mode == "update":
            self._announce(account, queue, attributes)
        return _messages(raw)[0]

    async def count_messages(self, account: str, queue: str) -> MessageCounts:
        keys = [_account_key(account)]
        name = queue.encode()
        counts = await self._read("COUNT", keys, [name.hex(), name])
        visible, in_flight, delayed, size, oldest_ms, newest_ms = counts
        return MessageCounts(visible, in_flight, delayed, size, oldest_ms / 1e3, newest_ms / 1e3)

    # Queue info ---------------------------------------------------------------------

    async def get_queue_info(self, account: str, queue: str) -> bytes | None:
        info: bytes | None = await self._read("INFO", [_account_key(account)], ["get", queue])
        return info

    async def set_queue_info(
        self, account: str, queue: str, info: bytes, expected: bytes | None
    ) -> bool:
        args = ["set", queue, info, _given(expected)]
        return bool(await self._write("INFO", [_account_key(account)], args))

    async def delete_queue_info(self, account: str, queue: str) -> bool:
        return bool(await self._write("INFO", [_account_key(account)], ["delete", queue]))

    async def list_queue_infos(self, account: str, filters: Filters) -> list[str]:
        args = ["list", filters.limit or 0, filters.marker or ""]
        raw = await self._read("INFO", [_account_key(account)], args)
        if not raw:
            raise NoMatch("queues")
        return [name.decode() for name in raw]

    # Subscriptions ----------------------------------------------------------------------

    async def get_subscription(self, account: str, queue: str, name: str) -> bytes | None:
        args = ["get", queue.encode().hex(), name]
        document: bytes | None = await self._read("SUBSCRIPTION", [_account_key(account)], args)
        return document

    async def set_subscription(
        self, account: str, queue: str, name: str, document: bytes, expected: bytes | None
    ) -> bool:
        args = ["set", queue.encode().hex(), name, document, _given(expected)]
        if not await self._write("SUBSCRIPTION", [_account_key(account)], args):
            return False
        await self._write_command("ZADD", SUBSCRIPTIONS, 0, _member(account, queue, name))
        return True

    async def delete_subscription(self, account: str, queue: str, name: str) -> bool:
        args = ["delete", queue.encode().hex(), name]
        deleted = await self._write("SUBSCRIPTION", [_account_key(account)], args)
        await self._write_command("ZREM", SUBSCRIPTIONS, _member(account, queue, name))
        return bool(deleted)

    async def list_subscriptions(self, account: str, queue: str, filters: Filters) -> list[str]:
        args = ["list", queue.encode().hex(), filters.limit or 0, filters.marker or ""]
        raw = await self._read("SUBSCRIPTION", [_account_key(account)], args)
        if not raw:
            raise NoMatch("subscriptions")
        return [name.decode() for name in raw]

    async def list_all_subscriptions(
        self, after: SubscriptionKey | None, limit: int
    ) -> list[SubscriptionKey]:
        client = self._client
        assert client is not None
        low = b"-" if after is None else b"(" + _member(*after)
        raw: list[bytes] = await self._retrying(
            lambda: client.zrangebylex(SUBSCRIPTIONS, low, b"+", 0, limit)  # type: ignore[arg-type,return-value]
        )
        return [_key(member) for member in raw]

    # Internals ------------------------------------------------------------------------

    def _queue_args(self, account: str, queue: str) -> list[Any]:
        return [queue, queue.encode().hex(), self._origin, channel_for(account, queue)]

    def _announce(self, account: str, queue: str, attributes: Attributes) -> None:
        if attributes.ttl is None and attributes.hide is None:
            return
        hides = [time.time() + attributes.hide] if attributes.hide else []
        self._notifier.written(account, queue, hides)

    async def _index(self, account: str, token: bytes) -> None:
        """Add the account to the index, then mark it indexed (see the module docstring)."""
        await self._write("INDEX_ADD", [INDEX, INDEX_SEQ], [account])
        await self._write("CONFIRM_INDEX", [_account_key(account)], [token])

    async def _unindex(self, account: str) -> None:
        """Drop an empty account's index entry, unless a writer brought it back meanwhile."""
        key = [_account_key(account)]
        if await self._write("ACCOUNT", key, ["unindex"]) is not None:
            return
        await self._write_command("ZREM", INDEX, account)
        token = await self._write("ACCOUNT", key, ["unindex"])
        if token is not None:
            await self._index(account, token)

    async def _read(self, script: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run an idempotent script, retrying through a failover."""
        return await self._retrying(lambda: self._scripts[script](keys, args))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        for delay in (*READ_RETRY_DELAYS, None):
            try:
                return await call()
            except DRIVER_ERRORS as exc:
                if delay is None or self._closed or not _transient(exc):
                    raise BackendUnavailable(f"redis unavailable: {exc}") from exc
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _index_page(self, after: float | None) -> list[tuple[bytes, float]]:
        """Up to 100 entries of the account index, after the one with score `after`."""
        client = self._client
        assert client is not None
        low = "-inf" if after is None else f"({after!r}"
        page: list[tuple[bytes, float]] = await self._retrying(
            lambda: client.zrangebyscore(INDEX, low, "+inf", 0, 100, withscores=True)  # type: ignore[arg-type,return-value]
        )
        return page

    async def _write(self, script: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a script once; in durable mode, also wait for replicas to confirm it."""
        try:
            if not self.url.replicas:
                return await self._scripts[script](keys, args)
            return await self._durably(self._scripts[script], keys, args)
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"redis write failed: {exc}") from exc

    async def _write_command(self, *args: Any) -> Any:
        assert self._client is not None
        try:
            return await self._client.execute_command(*args)
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"redis write failed: {exc}") from exc

    async def _durably(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        # WAIT counts what this connection wrote: the script and WAIT go down one
        # pipeline, on the connection of the primary that owns the keys.
        node = self._node_client(keys[0])
        try:
            async with node.pipeline(transaction=False) as pipe:
                await script(keys, args, client=pipe)
                pipe.execute_command("WAIT", self.url.replicas, self.url.wait_ms)
                result, acked = await pipe.execute()
        except DRIVER_ERRORS:
            if isinstance(self._client, RedisCluster):
                # The slot may have a new primary: learn the topology again.
                with contextlib.suppress(*DRIVER_ERRORS):
                    await self._client.nodes_manager.initialize()
            raise
        if acked < self.url.replicas:
            raise BackendUnavailable(
                f"write not confirmed by {self.url.replicas} replica(s) in {self.url.wait_ms} ms"
            )
        return result

    def _node_client(self, key: bytes) -> Redis:
        client = self._client
        if not isinstance(client, RedisCluster):
            assert client is not None
            return client
        node = client.get_node_from_key(key.decode())
        if node is None:
            raise rx.ClusterDownError("no primary for the slot")
        return self._client_for(node)

    def _node(self, host: str, port: int, db: int = 0) -> Redis:
        """A client on one Redis server whose pool waits when full."""
        pool = BlockingConnectionPool(
            host=host,
            port=port,
            db=db,
            max_connections=self.url.max_connections,
            timeout=POOL_WAIT,
            **_CONNECTION,
        )
        return Redis.from_pool(pool)

    def _client_for(self, node: ClusterNode) -> Redis:
        found = self._node_clients.get(node.name)
        if found is None:
            found = self._node(node.host, int(node.port))
            self._node_clients[node.name] = found
        return found

    # Sweeper ----------------------------------------------------------------------------

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
                    count, more, queues = await self._write(
                        "ACCOUNT", [_account_key(account)], ["purge", PURGE_BUDGET]
                    )
                    purged += count
                    if not more:
                        break
                if not queues:
                    await self._unindex(account)
            after = page[-1][1]

    async def _sweep_forever(self) -> None:
        assert self._client is not None
        lease_ms = max(1, int(self._sweep_interval * 1000 * 0.9))
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                if await self._client.set(SWEEP_LEASE, self._origin, nx=True, px=lease_ms):
                    await self.purge_expired()
            except (*DRIVER_ERRORS, BackendUnavailable) as exc:
                logger.warning("redis sweep failed: %s", exc)


def _member(account: str, queue: str, name: str) -> bytes:
    """A subscription's entry in `SUBSCRIPTIONS` (no id holds NUL, which sorts first)."""
    return b"\0".join(part.encode() for part in (account, queue, name))


def _key(member: bytes) -> SubscriptionKey:
    account, queue, name = member.decode().split("\0")
    return account, queue, name


def _account_key(account: str) -> bytes:
    return f"b:{{{account.encode().hex()}}}:a".encode()


def _keep(value: int | None) -> int:
    return _KEEP if value is None else value


def _given(value: str | bytes | None) -> bytes:
    """A script argument that may be absent: b"" for None, else `=` and the value (so that
    an empty value is not taken for none)."""
    if value is None:
        return b""
    return b"=" + (value.encode() if isinstance(value, str) else value)


def _transient(exc: Exception) -> bool:
    """Errors a failover produces, after which the same read may succeed."""
    transient = rx.ConnectionError | rx.TimeoutError | rx.ClusterError | rx.RedisClusterException
    if isinstance(exc, transient):
        return True
    text = str(exc)
    return text.startswith(
        ("READONLY", "LOADING", "MOVED", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")
    )


def _local_time(at_ms: int, now_ms: int) -> float:
    return time.time() + (at_ms - now_ms) / 1000


def _remaining(at_ms: int, now_ms: int) -> int:
    return math.ceil((at_ms - now_ms) / 1000) if at_ms > now_ms else 0


def _messages(raw: list[Any]) -> list[Message]:
    """The messages a script reports after its header (see redis_scripts.py)."""
    now, fields = raw[0], iter(raw[2:])
    messages = []
    for message_id, body, expires, hidden, put, receives in zip(*[fields] * 6, strict=True):
        sent, _, meta = put.partition(b":")  # b"" for a message stored before `m` existed
        count, first_received, receipt = receives.split(b":", 2) if receives else (0, 0, b"")
        messages.append(
            Message(
                message_id.decode(),
                body,
                _remaining(expires, now),
                _remaining(hidden, now),
                int(count),
                receipt.decode(),
                int(sent or 0) / 1000,
                int(first_received) / 1000,
                meta,
            )
        )
    return messages
