"""RabbitMQ as a peer: persistent publishes to a quorum queue with publisher confirms;
a consumer with a prefetch of 10, acking the 10 it got at once, via aio-pika.

A quorum queue confirms a publish once Raft has fsynced it to the node's write-ahead
log: acknowledged = fsynced, as on Burrow's SQLite default. The node is a throwaway one
started here: Debian's `rabbitmq-server` (no system service) with its own node name,
data and log dirs in the temp dir, its AMQP, Erlang-distribution and epmd ports free
ones on 127.0.0.1, and its own epmd (started first, stopped last, both by PID).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiormq.abc import FieldTable

from bench.loadgen import Recorder
from bench.peer_driver import empty, timed
from bench.servers import HOST, Pinning, Server, Target, free_port

QUORUM: FieldTable = {"x-queue-type": "quorum"}
PREFETCH = 10  # unacked deliveries per consumer: one batch of the consume phase
DELIVERY_WAIT = 1.0  # seconds a consumer waits for its batch when the queue is empty
CONNECT_TIMEOUT = 30.0  # the AMQP listener opens a moment before the node takes logins
NODE_BIN = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian's, without its su wrapper


def rabbitmq_binary() -> str:
    found = str(NODE_BIN) if NODE_BIN.exists() else shutil.which("rabbitmq-server")
    if found is None:
        raise RuntimeError("rabbitmq-server not found: apt-get install rabbitmq-server")
    return found


def persistent(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


class RabbitClient:
    def __init__(self, conn: AbstractConnection, channel: AbstractChannel, queue: str) -> None:
        self.conn = conn
        self.channel = channel
        self.queue = queue
        self.deliveries: asyncio.Queue[AbstractIncomingMessage] | None = None

    async def put_one(self, rec: Recorder, body: bytes) -> int:
        sent = self.channel.default_exchange.publish(persistent(body), routing_key=self.queue)
        return 1 if await timed(rec, sent) else 0

    async def put_batch(self, rec: Recorder, bodies: list[bytes]) -> int:
        # AMQP has no batch publish: 10 publishes go out together, done when all are confirmed.
        exchange = self.channel.default_exchange
        sent = asyncio.gather(*(exchange.publish(persistent(b), self.queue) for b in bodies))
        return len(bodies) if await timed(rec, sent) else 0

    async def _take(self, count: int) -> list[AbstractIncomingMessage]:
        if self.deliveries is None:
            deliveries: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            self.deliveries = deliveries
            await self.channel.set_qos(prefetch_count=PREFETCH)
            queue = await self.channel.get_queue(self.queue)
            await queue.consume(deliveries.put)
        got: list[AbstractIncomingMessage] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DELIVERY_WAIT):
                while len(got) < count:
                    got.append(await self.deliveries.get())
        return got

    async def consume_ack(self, rec: Recorder, count: int) -> int:
        msgs = await timed(rec, self._take(count))
        if msgs is None:
            return 0
        if not msgs:
            return empty(rec)
        # basic.ack has no answer in AMQP 0-9-1: nothing to wait for, so not timed.
        await msgs[-1].ack(multiple=True)
        return len(msgs)

    async def close(self) -> None:
        await self.conn.close()


class RabbitPeer:
    name = "rabbitmq"

    def __init__(self, server: Server, admin: AbstractChannel) -> None:
        self.url = f"amqp://guest:guest@{HOST}:{server.port}/"
        self.pids = server.cpu_pids
        self.admin = admin

    def settings(self) -> str:
        listed = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "rabbitmq-server", "erlang-base"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found = dict(line.split(" ", 1) for line in listed.splitlines() if " " in line)
        rabbit, erlang = found.get("rabbitmq-server", "?"), found.get("erlang-base", "?")
        return (
            f"RabbitMQ {rabbit} (Debian), Erlang {erlang}; a quorum queue per row (Raft WAL "
            "fsynced before a publisher confirm), persistent messages, publisher confirms, "
            f"manual acks (prefetch {PREFETCH}, one multiple-ack per 10); aio-pika "
            f"{version('aio-pika')}, one connection and channel per worker"
        )

    async def create(self, queue: str) -> None:
        await self.admin.declare_queue(queue, durable=True, arguments=QUORUM)

    async def drop(self, queue: str) -> None:
        await self.admin.queue_delete(queue)

    async def connect(self, queue: str, worker: int) -> RabbitClient:
        conn = await aio_pika.connect(self.url)
        return RabbitClient(conn, await conn.channel(publisher_confirms=True), queue)


def node_env(tmp: Path, amqp_port: int, epmd_port: int) -> dict[str, str]:
    """A private node: its own name, dirs and ports; nothing of /etc or /var is used."""
    (tmp / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {HOST}:{amqp_port}\nloopback_users = none\n"
    )
    (tmp / "enabled_plugins").write_text("[].\n")
    (tmp / "rabbitmq-env.conf").write_text("")
    return {
        "HOME": str(tmp),  # the Erlang cookie goes here
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_NODENAME": f"bench{amqp_port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(tmp / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(tmp / "plugins"),
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_PID_FILE": str(tmp / "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",  # to the server log the bench keeps
    }


async def _admin_connection(url: str) -> AbstractConnection:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            return await aio_pika.connect(url)
        except (OSError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def serve(tmp: Path, pinning: Pinning) -> AsyncIterator[RabbitPeer]:
    workdir = tmp / "rabbitmq"
    workdir.mkdir()
    epmd = Server(
        Target(
            "rabbitmq-epmd", ["epmd", "-port", "{port}"], api=None, env={"ERL_EPMD_ADDRESS": HOST}
        ),
        pinning,
        workdir / "epmd.log",
    )
    node = Server(Target("rabbitmq", [rabbitmq_binary()], api=None), pinning, workdir / "node.log")
    node.target.env = node_env(workdir, node.port, epmd.port)
    node.helpers = [epmd]
    try:
        epmd.start()
        await epmd.wait_ready()
        node.start()
        await node.wait_ready()
        admin = await _admin_connection(f"amqp://guest:guest@{HOST}:{node.port}/")
        try:
            yield RabbitPeer(node, await admin.channel())
        finally:
            await admin.close()
    finally:
        node.stop()
        epmd.stop()
