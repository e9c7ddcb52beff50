"""The peers benchmark's operations, once each against each peer's real server.

Every peer module starts its throwaway server (stopped by its PID when the test ends);
RabbitMQ and NATS are skipped when their binaries are not installed (`make bench-deps`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import peer_nats, peer_pgmq, peer_rabbitmq, peer_redis
from bench.loadgen import Recorder
from bench.peer_driver import EMPTY, PeerServer
from bench.phases import BODY
from bench.servers import Pinning


def installed(find: Callable[[], str]) -> bool:
    try:
        find()
    except RuntimeError:  # not found
        return False
    return True


PEERS = [
    pytest.param(
        peer_rabbitmq.serve,
        id="rabbitmq",
        marks=pytest.mark.skipif(
            not installed(peer_rabbitmq.rabbitmq_binary) or shutil.which("epmd") is None,
            reason="rabbitmq-server not installed (make bench-deps)",
        ),
    ),
    pytest.param(
        peer_nats.serve,
        id="nats",
        marks=pytest.mark.skipif(
            not installed(peer_nats.nats_binary), reason="nats-server not installed"
        ),
    ),
    pytest.param(peer_pgmq.serve, id="pgmq"),
    pytest.param(peer_redis.serve, id="redis-streams"),
]


@pytest.mark.parametrize("serve", PEERS)
async def test_put_batch_consume_and_ack(serve: PeerServer, tmp_path: Path) -> None:
    """What is put is consumed, in batches of at most 10; acked messages do not return."""
    async with serve(tmp_path, Pinning(None, None, None)) as peer:
        await peer.create("q")
        client = await peer.connect("q", 0)
        rec = Recorder(measuring=True)
        try:
            assert await client.put_one(rec, BODY) == 1
            assert await client.put_batch(rec, [BODY] * 10) == 10
            assert await client.consume_ack(rec, 10) == 10
            assert await client.consume_ack(rec, 10) == 1
            assert await client.consume_ack(rec, 10) == 0
        finally:
            await client.close()
            await peer.drop("q")
        assert dict(rec.errors) == {EMPTY: 1}
        assert rec.requests >= 5  # the calls that wait for the server were timed
        assert peer.pids and peer.settings()
