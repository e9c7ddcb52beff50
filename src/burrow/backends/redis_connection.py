"""The connections of the Redis backend: standalone, Sentinel or Cluster, its scripts
loaded, reads retried through a failover and durable writes confirmed by replicas.

Every Redis call goes once: a retried write could be applied twice (a pop whose answer
was lost loses its messages). Reads (idempotent scripts and commands) are retried
through a failover, about a second with Sentinel or Cluster. With `replicas` in the URL,
each write script goes down one pipeline with a `WAIT` on the primary that owns its
keys. The driver's errors become `BackendUnavailable` at this module's boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.retry import Retry

from burrow.backends.redis_durability import check_durability
from burrow.backends.redis_url import RedisURL
from burrow.errors import BackendUnavailable

T = TypeVar("T")

Client: TypeAlias = "Redis | RedisCluster"
# What the driver raises; all of it becomes BackendUnavailable at this module's boundary.
DRIVER_ERRORS = (rx.RedisError, rx.RedisClusterException)
READ_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


# No retries in the driver: see the module docstring.
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


class Connection:
    """The clients on the Redis a URL names, and the scripts run through them."""

    def __init__(self, url: RedisURL, scripts: Mapping[str, str]) -> None:
        self.url = url
        self._sources = scripts  # name -> Lua source, registered on the client at open
        self._client: Client | None = None
        self._node_clients: dict[str, Redis] = {}
        self._pubsub_client: Redis | None = None  # Cluster: the node pub/sub is on
        self._sentinels: list[Redis] = []  # Sentinel: a client on each sentinel
        self._scripts: dict[str, AsyncScript] = {}
        self._retrying_reads = True

    @property
    def client(self) -> Client:
        """The client for commands outside the scripts (the indexes, the sweeper's lease)."""
        assert self._client is not None
        return self._client

    async def open(self) -> None:
        """Connect, and check the durability the URL asks for; the caller closes this
        when it fails (`BackendUnavailable`, or `ConfigError` from the check)."""
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
        for name, source in self._sources.items():
            self._scripts[name] = client.register_script(source)
        try:
            await client.ping()
            await check_durability(url.durability, await self._primaries())
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"redis unreachable: {exc}") from exc

    def stop_retrying(self) -> None:
        """Fail a read at once from now on instead of retrying it: the backend is closing."""
        self._retrying_reads = False

    async def close(self) -> None:
        self._retrying_reads = False
        for node in [*self._node_clients.values(), *self._sentinels, self._pubsub_client]:
            if node is not None:
                await node.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def unreachable(self) -> str | None:
        """Why Redis does not answer a PING, or None when it does."""
        if self._client is None:
            return "redis backend is not open"
        try:
            await self._client.ping()
        except DRIVER_ERRORS as exc:
            return f"redis unreachable: {exc}"
        return None

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

    async def connect_pubsub(self) -> PubSub:
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

    # Reads and writes --------------------------------------------------------------------

    async def read(self, script: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run an idempotent script, retrying through a failover."""
        return await self.retrying(lambda: self._scripts[script](keys, args))

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        for delay in (*READ_RETRY_DELAYS, None):
            try:
                return await call()
            except DRIVER_ERRORS as exc:
                if delay is None or not self._retrying_reads or not _transient(exc):
                    raise BackendUnavailable(f"redis unavailable: {exc}") from exc
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def write(self, script: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a script once; in durable mode, also wait for replicas to confirm it."""
        try:
            if not self.url.replicas:
                return await self._scripts[script](keys, args)
            return await self._durably(self._scripts[script], keys, args)
        except DRIVER_ERRORS as exc:
            raise BackendUnavailable(f"redis write failed: {exc}") from exc

    async def write_command(self, *args: Any) -> Any:
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

    # Clients on single nodes ---------------------------------------------------------------

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


def _transient(exc: Exception) -> bool:
    """Errors a failover produces, after which the same read may succeed."""
    transient = rx.ConnectionError | rx.TimeoutError | rx.ClusterError | rx.RedisClusterException
    if isinstance(exc, transient):
        return True
    text = str(exc)
    return text.startswith(
        ("READONLY", "LOADING", "MOVED", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")
    )
