"""Idle long-poll waiters: memory per waiter, and how fast a write answers them all.

    python -m bench.waiters [--waiters 10000] [--backend sqlite]

Starts one Burrow server, opens N connections that each long-poll
(`GET /v1.0/{a}/q{i}?wait=…`, one queue per waiter), reads the server's RSS, then
puts one message into each queue, one after the other, and measures per waiter the
time from sending its PUT (a durable write) to the waiter's answer. Traffic goes to
127.0.0.1 only; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen import install_uvloop
from bench.servers import HOST, Server, Target, burrow_target, choose_pinning


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return head


async def measure(server: Server, waiters: int, wait: int) -> dict[str, float]:
    port = server.port
    assert server.pid is not None
    baseline = rss_mib(server.pid)
    answered: dict[int, float] = {}

    async def waiter(i: int, reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        answered[i] = time.monotonic()
        assert head.startswith(b"HTTP/1.1 200"), head[:40]

    connections = []
    for i in range(waiters):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(
            f"GET /v1.0/idle/q{i}?wait={wait}&detail=id HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        connections.append((reader, writer))
    await asyncio.sleep(2)  # let every request reach the server and go to sleep
    holding = rss_mib(server.pid)
    tasks = [asyncio.create_task(waiter(i, r)) for i, (r, _) in enumerate(connections)]
    put_sent: dict[int, float] = {}
    for i in range(waiters):
        put = f"PUT /v1.0/idle/q{i}/m HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx".encode()
        put_sent[i] = time.monotonic()
        await request(port, put)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for _, writer in connections:
        writer.close()
    delays = sorted(1000 * (answered[i] - put_sent[i]) for i in range(waiters))
    return {
        "rss_before_mib": baseline,
        "rss_holding_mib": holding,
        "kib_per_waiter": 1024 * (holding - baseline) / waiters,
        "answer_p50_ms": statistics.median(delays),
        "answer_p99_ms": delays[int(0.99 * (len(delays) - 1))],
        "answer_max_ms": delays[-1],
    }


async def amain(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.waiters)), hard))
    with tempfile.TemporaryDirectory(prefix="burrow-waiters-") as tmp:
        target: Target = burrow_target(sys.executable, args.backend, Path(tmp))
        server = Server(target, choose_pinning(0, 1, enabled=False), Path(tmp) / "server.log")
        server.start()
        try:
            await server.wait_ready()
            result = await measure(server, args.waiters, args.wait)
        finally:
            print(server.stop())
    print(f"{args.waiters} idle waiters on {args.backend}:")
    for name, value in result.items():
        print(f"  {name}: {value:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--wait", type=int, default=120)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    args = parser.parse_args()
    install_uvloop()
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
