"""Webhook delivery: deliveries/s of one server to one endpoint, and PUT → webhook latency.

    python -m bench.webhooks [--backend memory] [--subscriptions 64] [--messages 1000]
                             [--rate 1000] [--seconds 10] [--queues 1]

One `burrow serve` (the test suite's `BurrowServer`, on `--backend`: memory, or
sqlite in a temp dir) and one endpoint in this process: a bare asyncio HTTP/1.1 server
on 127.0.0.1 answering 204 to each POST at once, so that what is measured is Burrow.

Throughput: `--messages` messages are put in one queue first, then `--subscriptions`
subscriptions of it start at its oldest message with a webhook to the endpoint (one
path each); deliveries/s is all of them (subscriptions x messages) over the time from
the first POST to the last. Delivery is ordered per subscription, one POST in flight at
a time, so one server reaches its rate over many subscriptions at once, each on a
keep-alive connection of its own.

Latency: `--queues` queues, each with one subscription, get `--rate` messages/s in all
for `--seconds`, one PUT each (paced, spread over the queues, over 16 lean keep-alive
connections of bench/loadgen.py), the time it is sent in the body; the endpoint takes
each POST's arrival time minus that: p50, p99 and max in ms, and the rate the PUTs were
really sent at (below `--rate` if this process fell behind).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httpx
import orjson

from bench.loadgen import Connection, Recorder, build_request, install_uvloop
from tests.servers import BurrowServer

TIMINGS = "[server]\nwebhook_scan_every = 0.2\n"  # start delivering soon after subscribing
BATCH = 1000
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
THROUGHPUT_TARGET = 5000.0
PUT_CONNECTIONS = 16  # of the latency run's PUTs (each one request at a time)


@dataclass
class Records:
    """What the endpoint got: each POST's arrival, and its latency when bodies are timed."""

    timed: bool = False
    arrivals: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds
    wanted: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, body: bytes) -> None:
        now = time.time()
        self.arrivals.append(now)
        if self.timed:
            self.latencies.append(now - float(orjson.loads(body)["body"]))
        if len(self.arrivals) >= self.wanted:
            self.enough.set()

    async def until(self, count: int, seconds: float) -> None:
        """Wait until `count` POSTs have come (SystemExit after `seconds`)."""
        self.wanted = count
        if len(self.arrivals) < count:
            self.enough.clear()
            try:
                await asyncio.wait_for(self.enough.wait(), seconds)
            except TimeoutError:
                raise SystemExit(
                    f"{len(self.arrivals)} of {count} POSTs in {seconds:g} s"
                ) from None


class Endpoint(asyncio.Protocol):
    """One connection to the endpoint: each POST answered 204 as soon as it is read."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            found = CONTENT_LENGTH.search(self.buffer, 0, end)
            length = int(found[1]) if found else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.records.add(self.buffer[end + 4 : end + 4 + length])
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


async def endpoint(records: Records) -> tuple[asyncio.Server, str]:
    """The endpoint listening on a free port of 127.0.0.1, and its URL."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Endpoint(records), "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def subscribe(http: httpx.AsyncClient, queue: str, name: str, url: str) -> None:
    response = await http.put(
        f"/v1.0/bench/{queue}/-/subscriptions/{name}",
        json={"start": "oldest", "webhook": {"url": url}},
    )
    response.raise_for_status()


async def throughput(server: BurrowServer, subscriptions: int, messages: int) -> float:
    records = Records()
    listening, url = await endpoint(records)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        for first in range(0, messages, BATCH):
            batch = [{"body": "x" * 100, "ttl": 3600} for _ in range(min(BATCH, messages - first))]
            (await http.put("/v1.0/bench/wide", json=batch)).raise_for_status()
        for n in range(subscriptions):
            await subscribe(http, "wide", f"s{n}", f"{url}/s{n}")
    await records.until(subscriptions * messages, 600)
    listening.close()
    got = records.arrivals
    return (len(got) - 1) / (got[-1] - got[0])


async def latency(server: BurrowServer, queues: int, rate: float, seconds: float) -> Paced:
    records = Records(timed=True)
    listening, url = await endpoint(records)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        names = [f"timed{n}" for n in range(queues)]
        for name in names:
            await subscribe(http, name, "timed", f"{url}/{name}")
    await asyncio.sleep(1.0)  # every subscription taken by the server's scan
    # The PUTs go over loadgen's lean keep-alive connections: httpx could not send 1,000
    # single PUTs a second from this process (and its backlog would count as latency).
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(PUT_CONNECTIONS):
        free.put_nowait(Connection(host, port, Recorder()))

    async def put(queue: str) -> None:
        connection = await free.get()
        try:
            body = orjson.dumps([{"body": str(time.time())}])  # stamped as it is sent
            request = build_request("PUT", f"/v1.0/bench/{queue}", host, body, "application/json")
            status, answer = await connection.request(request, 201)
            if status != 201:
                raise SystemExit(f"PUT answered {status}: {answer[:200]!r}")
        finally:
            free.put_nowait(connection)

    count = int(rate * seconds)
    started = time.monotonic()
    pending = set()
    for n in range(count):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.add(asyncio.create_task(put(names[n % queues])))
        pending = {task for task in pending if not task.done()}
    await asyncio.gather(*pending)
    sent = count / (time.monotonic() - started)
    await records.until(count, 60)
    listening.close()
    while not free.empty():
        free.get_nowait().close()
    return Paced(sent, sorted(records.latencies))


@dataclass(frozen=True)
class Paced:
    """The rate the PUTs were sent at (below the one asked if the client fell behind), and
    each message's PUT → webhook latency, sorted (seconds)."""

    rate: float
    latencies: list[float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="memory", choices=("memory", "sqlite"))
    parser.add_argument("--subscriptions", type=int, default=64)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--queues", type=int, default=1)
    args = parser.parse_args()
    install_uvloop()  # (the endpoint and the PUTs: the benchmark's own costs kept low)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "timings.toml").write_text(TIMINGS)
        url = "memory://" if args.backend == "memory" else f"sqlite:///{workdir}/bench.db"
        server = BurrowServer(workdir, url, "--config", str(workdir / "timings.toml"))
        server.start()
        try:
            rate = asyncio.run(throughput(server, args.subscriptions, args.messages))
            paced = asyncio.run(latency(server, args.queues, args.rate, args.seconds))
        finally:
            server.stop()
    verdict = "met" if rate >= THROUGHPUT_TARGET else "**not met**"
    print(f"backend {args.backend}")
    print(
        f"throughput: {args.subscriptions} subscriptions x {args.messages} messages: "
        f"{rate:,.0f} deliveries/s (target {THROUGHPUT_TARGET:,.0f}: {verdict})"
    )
    late = paced.latencies
    if not late:
        raise SystemExit("no latency measured")
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    print(
        f"latency at {args.rate:,.0f} msgs/s (sent at {paced.rate:,.0f}/s) over "
        f"{args.queues} queue(s), {len(late):,} messages: p50 "
        f"{statistics.median(late) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {late[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
