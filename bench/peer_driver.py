"""The closed loop of `bench/loadgen.py` over a peer's own Python client.

A peer (RabbitMQ, NATS, pgmq, Redis Streams) gives one client per worker, each with the
three operations of the peers benchmark; every worker runs one operation after the
other, through `loadgen.closed_loop`, so the rows measure what Burrow's rows measure.
Latency is per client call that waits for the server's answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from bench.loadgen import LoadResult, Recorder, Window, closed_loop
from bench.phases import BATCH, BODY
from bench.servers import Pinning

T = TypeVar("T")
CALL_TIMEOUT = 10.0  # a call that takes longer is an error ("TimeoutError"), not a hang
EMPTY = "empty"  # error label: a consume that found no message
PREFILL_BATCH = 100  # messages per put_batch call while pre-filling (not measured)
PREFILL_CLIENTS = 8
PREFILL_LIMIT = 120.0  # seconds


class PeerClient(Protocol):
    """One worker's connection to a peer, bound to one queue.

    Each operation makes its calls through `timed(rec, ...)` and returns how many
    messages it moved (acknowledged put, or consumed and acknowledged)."""

    async def put_one(self, rec: Recorder, body: bytes) -> int: ...

    async def put_batch(self, rec: Recorder, bodies: list[bytes]) -> int: ...

    async def consume_ack(self, rec: Recorder, count: int) -> int: ...

    async def close(self) -> None: ...


class Peer(Protocol):
    """A running peer server (started by `serve`) and how to talk to it."""

    name: str  # the row's target name
    pids: list[int]  # whose CPU is the server's (children included)

    def settings(self) -> str:
        """Durability settings and versions, for the report."""
        ...

    async def create(self, queue: str) -> None: ...

    async def drop(self, queue: str) -> None: ...

    async def connect(self, queue: str, worker: int) -> PeerClient: ...


# A peer's server as a context manager: (work dir, pinning) → the running peer.
PeerServer = Callable[[Path, Pinning], AbstractAsyncContextManager[Peer]]


async def timed(rec: Recorder, call: Awaitable[T]) -> T | None:
    """Await one client call, recording its latency; None (an error) if it failed."""
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(CALL_TIMEOUT):
            result = await call
    except Exception as exc:  # whatever the client raises is a failed call of this peer
        rec.error(type(exc).__name__)
        await asyncio.sleep(0.01)  # a failing server must not make the loop spin
        return None
    if rec.measuring:
        rec.latencies.append(time.perf_counter() - t0)
        rec.requests += 1
    return result


def empty(rec: Recorder) -> int:
    """Record a consume that found nothing (the queue ran dry): no messages moved."""
    rec.error(EMPTY)
    return 0


@dataclass(frozen=True)
class PeerPhase:
    name: str  # the Burrow phase it matches
    op: Callable[[PeerClient, Recorder], Awaitable[int]]
    prefill: bool = False


PEER_PHASES = {
    p.name: p
    for p in (
        PeerPhase("put-1", lambda c, rec: c.put_one(rec, BODY)),
        PeerPhase("put-batch-10", lambda c, rec: c.put_batch(rec, [BODY] * BATCH)),
        PeerPhase("claim-delete", lambda c, rec: c.consume_ack(rec, BATCH), prefill=True),
    )
}


@dataclass
class PeerRun:
    result: LoadResult | None = None
    notes: list[str] = field(default_factory=list)


async def prefill(peer: Peer, queue: str, count: int) -> tuple[int, float]:
    """Put about `count` messages with batches on a few clients; (messages put, seconds)."""
    clients = [await peer.connect(queue, -1 - i) for i in range(PREFILL_CLIENTS)]
    rec = Recorder()
    remaining = [(count + PREFILL_BATCH - 1) // PREFILL_BATCH]
    done = [0]
    t0 = time.perf_counter()
    deadline = t0 + PREFILL_LIMIT

    async def fill(client: PeerClient) -> None:
        while remaining[0] > 0 and time.perf_counter() < deadline:
            remaining[0] -= 1
            put = await client.put_batch(rec, [BODY] * PREFILL_BATCH)
            done[0] += put  # after the await: `done[0] += await …` would lose updates

    try:
        await asyncio.gather(*(fill(c) for c in clients))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return done[0], time.perf_counter() - t0


async def run_peer_phase(
    peer: Peer,
    phase: PeerPhase,
    queue: str,
    concurrency: int,
    warmup: float,
    duration: float,
    prefill_count: int,
) -> PeerRun:
    """One row: a fresh queue (pre-filled if the phase consumes), `concurrency` clients
    connected before the clock starts, the closed loop, then the queue dropped."""
    run = PeerRun()
    await peer.create(queue)
    try:
        if phase.prefill:
            got, took = await prefill(peer, queue, prefill_count)
            run.notes.append(f"prefilled {got:,} msgs in {took:.1f}s")
        clients = [await peer.connect(queue, i) for i in range(concurrency)]

        async def worker(idx: int, window: Window) -> None:
            client = clients[idx]
            while not window.stopped:
                moved = await phase.op(client, window.rec)
                window.rec.credit(moved)

        try:
            run.result = await closed_loop(
                worker, concurrency, warmup, duration, server_pids=peer.pids
            )
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    finally:
        await peer.drop(queue)
    return run
