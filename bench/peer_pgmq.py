"""PostgreSQL 15 with pgmq as a peer: `send`, `send_batch`; `read` with a visibility
timeout, then `delete` of the ids read, via asyncpg.

The server is the test suite's throwaway cluster (`fsync=on`, `synchronous_commit=on`:
a commit answers once its WAL is flushed); pgmq is its released SQL
(bench/pgmq/pgmq-1.5.1.sql), run into the database as plain SQL, no extension build.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import asyncpg
import orjson

from bench import engines
from bench.loadgen import Recorder
from bench.peer_driver import empty, timed
from bench.servers import BENCH, Pinning, pin_tree
from tests.engines import postgres as pg

PGMQ_VERSION = "1.5.1"
PGMQ_SQL = BENCH / "pgmq" / f"pgmq-{PGMQ_VERSION}.sql"
HIDE = 60  # seconds a read message stays invisible: the claim's hide in Burrow's phase

SEND = "SELECT pgmq.send($1::text, $2::jsonb)"
SEND_BATCH = "SELECT pgmq.send_batch($1::text, $2::jsonb[])"
READ = "SELECT msg_id FROM pgmq.read($1::text, $2::integer, $3::integer)"
DELETE = "SELECT pgmq.delete($1::text, $2::bigint[])"


def as_json(body: bytes) -> str:
    """pgmq stores JSONB: the body as a JSON string (asyncpg passes JSON text)."""
    return orjson.dumps(body.decode()).decode()


class PgmqClient:
    def __init__(self, conn: asyncpg.Connection, queue: str) -> None:
        self.conn = conn
        self.queue = queue

    async def put_one(self, rec: Recorder, body: bytes) -> int:
        return 1 if await timed(rec, self.conn.fetchval(SEND, self.queue, as_json(body))) else 0

    async def put_batch(self, rec: Recorder, bodies: list[bytes]) -> int:
        rows = await timed(rec, self.conn.fetch(SEND_BATCH, self.queue, list(map(as_json, bodies))))
        return len(rows) if rows else 0

    async def consume_ack(self, rec: Recorder, count: int) -> int:
        rows = await timed(rec, self.conn.fetch(READ, self.queue, HIDE, count))
        if rows is None:
            return 0
        if not rows:
            return empty(rec)
        ids = [r["msg_id"] for r in rows]
        deleted = await timed(rec, self.conn.fetch(DELETE, self.queue, ids))
        return len(deleted) if deleted else 0

    async def close(self) -> None:
        await self.conn.close()


class PgmqPeer:
    name = "pgmq"

    def __init__(self, cluster: pg.PostgresCluster, admin: asyncpg.Connection) -> None:
        assert cluster.process is not None
        self.url = cluster.url("bench")
        self.pids = [cluster.process.pid]
        self.admin = admin

    def settings(self) -> str:
        server = subprocess.run(
            [pg.binary("postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return (
            f"{server}, `fsync=on`, `synchronous_commit=on` (WAL flushed before a commit "
            f"answers); pgmq {PGMQ_VERSION} SQL, one logged (not partitioned) queue per row; "
            f"asyncpg {version('asyncpg')}, one connection per worker"
        )

    async def create(self, queue: str) -> None:
        await self.admin.execute("SELECT pgmq.create($1::text)", queue)

    async def drop(self, queue: str) -> None:
        await self.admin.execute("SELECT pgmq.drop_queue($1::text)", queue)

    async def connect(self, queue: str, worker: int) -> PgmqClient:
        return PgmqClient(await asyncpg.connect(self.url), queue)


@contextlib.asynccontextmanager
async def serve(tmp: Path, pinning: Pinning) -> AsyncIterator[PgmqPeer]:
    # The cluster lives in a temp dir of its own (the postgres user must reach it).
    with engines.postgres_cluster() as cluster:
        assert cluster.process is not None
        pin_tree(cluster.process.pid, pinning)
        admin = await asyncpg.connect(cluster.url("bench"))
        try:
            await admin.execute(PGMQ_SQL.read_text())
            yield PgmqPeer(cluster, admin)
        finally:
            await admin.close()
