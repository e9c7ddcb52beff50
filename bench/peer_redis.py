"""Redis Streams as a peer: XADD; XREADGROUP, then XACK + XDEL, via redis-py's asyncio client.

The server is the test suite's throwaway redis-server (`appendonly yes`, `appendfsync
always`: every write is in the fsynced append-only file before Redis answers).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import redis.asyncio as redis

from bench import engines
from bench.loadgen import Recorder
from bench.peer_driver import empty, timed
from bench.servers import HOST, Pinning, pin_tree

GROUP = "workers"
FIELD = "b"


class RedisClient:
    def __init__(self, client: redis.Redis, queue: str, worker: int) -> None:
        self.r = client
        self.queue = queue
        self.consumer = f"c{worker}"

    async def put_one(self, rec: Recorder, body: bytes) -> int:
        return 1 if await timed(rec, self.r.xadd(self.queue, {FIELD: body})) else 0

    async def put_batch(self, rec: Recorder, bodies: list[bytes]) -> int:
        # One MULTI/EXEC: the batch is stored (and fsynced) as a whole, in one round trip.
        pipe = self.r.pipeline(transaction=True)
        for body in bodies:
            pipe.xadd(self.queue, {FIELD: body})
        return len(bodies) if await timed(rec, pipe.execute()) else 0

    async def consume_ack(self, rec: Recorder, count: int) -> int:
        read = self.r.xreadgroup(GROUP, self.consumer, {self.queue: ">"}, count=count)
        got = await timed(rec, read)
        if got is None:
            return 0
        # RESP2, redis-py's default: [[stream, [(id, fields), …]]]
        ids = [mid for _, entries in cast("list[Any]", got) for mid, _ in entries]
        if not ids:
            return empty(rec)
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(self.queue, GROUP, *ids)
        pipe.xdel(self.queue, *ids)
        return len(ids) if await timed(rec, pipe.execute()) else 0

    async def close(self) -> None:
        await self.r.aclose()


class RedisPeer:
    name = "redis-streams"

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.pids = [pid]
        self.admin = self.client()

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, single_connection_client=True)

    def settings(self) -> str:
        server = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        found = next((w for w in server if w.startswith("v=")), "v=?")[2:]
        return (
            f"redis-server {found}, `appendonly yes`, `appendfsync always`, no RDB snapshots; "
            f"one stream per row, consumer group `{GROUP}`; redis-py {version('redis')} "
            "(asyncio), one connection per worker"
        )

    async def create(self, queue: str) -> None:
        await self.admin.xgroup_create(queue, GROUP, id="$", mkstream=True)

    async def drop(self, queue: str) -> None:
        await self.admin.delete(queue)

    async def connect(self, queue: str, worker: int) -> RedisClient:
        return RedisClient(self.client(), queue, worker)


@contextlib.asynccontextmanager
async def serve(tmp: Path, pinning: Pinning) -> AsyncIterator[RedisPeer]:
    with engines.redis_server(tmp / "redis") as server:
        assert server.process is not None
        pin_tree(server.process.pid, pinning)
        peer = RedisPeer(server.port, server.process.pid)
        try:
            yield peer
        finally:
            await peer.admin.aclose()
