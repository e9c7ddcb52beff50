"""Streams: what 1,000 idle SSE streams cost one server, and PUT → delivery latency.

    python -m bench.streams [--idle 1000] [--rate 1000] [--seconds 5]

On one `burrow serve` (memory backend): the server's RSS before and with `--idle` SSE
streams open and idle (bound: 100 MiB in all for 1,000); then, with them closed, one
SSE reader and one WebSocket reader each while single PUTs arrive at `--rate` msgs/s
for `--seconds` (batch PUTs of 10, every 10 ms at 1,000/s): the time from a PUT's
start to each message's arrival at the reader (p50/p99). Exit status 1 if the RSS bound is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from bench.loadgen import install_uvloop
from bench.wakeups import servers
from burrow.client.events import EventParser

RSS_BOUND = 100 * 1024 * 1024  # the server's whole RSS with 1,000 idle streams
BATCH = 10  # messages a PUT


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def open_idle(host: str, port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` SSE streams, each open once the server's first line came."""

    async def one(n: int) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /v1.0/idle/q%d?stream=sse HTTP/1.1\r\nhost: b\r\n\r\n" % (n % 50))
        while not (await reader.readline()).startswith(b": stream open"):
            pass
        return writer

    opened: list[asyncio.StreamWriter] = []
    for start in range(0, count, 100):  # a hundred at a time: the listen backlog
        opened += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 100))))
    return opened


async def put_paced(url: str, rate: int, seconds: float) -> int:
    """Messages at `rate` a second for `seconds`, as batch PUTs of `BATCH` every
    `BATCH / rate` s (one client process cannot send 1,000 single PUTs a second
    here); each body is its batch's start time."""
    async with httpx.AsyncClient(timeout=30) as http:
        total = int(rate * seconds)
        start = time.monotonic()
        pending: set[asyncio.Task[httpx.Response]] = set()
        for n in range(0, total, BATCH):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = repr(time.time())
            batch = [{"id": f"m{i:07}", "body": body} for i in range(n, n + BATCH)]
            pending.add(asyncio.create_task(http.put(url, json=batch)))
            pending = {task for task in pending if not task.done()}
        await asyncio.gather(*pending)
        return total


async def sse_reader(url: str, count: int, delays: list[float]) -> None:
    parser = EventParser()
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", f"{url}?stream=sse") as response,
    ):
        async for line in response.aiter_lines():
            event = parser.line(line)
            if event is not None:
                delays.append(time.time() - float(orjson.loads(event.data)["body"]))
                if len(delays) == count:
                    return


async def ws_reader(url: str, count: int, delays: list[float]) -> None:
    async with connect(url.replace("http://", "ws://") + "?stream=ws", compression=None) as ws:
        while len(delays) < count:
            frame = orjson.loads(await ws.recv())
            delays.append(time.time() - float(frame["body"]))


Reader = Callable[[str, int, list[float]], Coroutine[Any, Any, None]]


async def latency(base: str, name: str, reader: Reader, rate: int, seconds: float) -> str:
    queue = f"{base}/v1.0/latency/{name}"
    delays: list[float] = []
    reading = asyncio.create_task(reader(queue, int(rate * seconds), delays))
    await asyncio.sleep(0.5)  # the reader's stream open before the first PUT
    await put_paced(queue, rate, seconds)
    await asyncio.wait_for(reading, 60)
    ms = sorted(1000 * d for d in delays)
    p99 = ms[int(len(ms) * 0.99) - 1]
    p50 = statistics.median(ms)
    return f"{name}: {len(ms)} msgs at {rate}/s: p50 {p50:.2f} ms p99 {p99:.2f} ms"


async def measure(base: str, pid: int, idle: int, rate: int, seconds: float) -> bool:
    before = rss(pid)
    host, port = base.removeprefix("http://").split(":")
    streams = await open_idle(host, int(port), idle)
    await asyncio.sleep(2)  # (settled: every stream waiting on its queue)
    held = rss(pid)
    print(
        f"idle SSE streams: {idle}: server RSS {before / 2**20:.1f} MiB before, "
        f"{held / 2**20:.1f} MiB with them ({(held - before) / idle / 1024:.1f} KiB each); "
        f"bound {RSS_BOUND / 2**20:.0f} MiB: {'met' if held <= RSS_BOUND else 'NOT met'}",
        flush=True,
    )
    for writer in streams:
        writer.close()
    print(await latency(base, "sse", sse_reader, rate, seconds), flush=True)
    print(await latency(base, "ws", ws_reader, rate, seconds), flush=True)
    return held <= RSS_BOUND


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000, help="idle SSE streams")
    parser.add_argument("--rate", type=int, default=1000, help="PUTs a second")
    parser.add_argument("--seconds", type=float, default=5.0, help="of PUTs, per reader")
    args = parser.parse_args()
    install_uvloop()
    with (
        tempfile.TemporaryDirectory(prefix="burrow-streams-") as tmp,
        servers(("streams", "memory://"), tmp=Path(tmp)) as (base,),
    ):
        pid = _server_pid(Path(tmp) / "streams.log")
        met = asyncio.run(measure(base, pid, args.idle, args.rate, args.seconds))
    return 0 if met else 1


def _server_pid(log: Path) -> int:
    """The worker's PID, from its ready line (`… (worker PID): …`)."""
    for line in log.read_text().splitlines():
        if "Burrow ready at" in line:
            return int(line.split("(worker ")[1].split(")")[0])
    raise RuntimeError(f"no ready line in {log}")


if __name__ == "__main__":
    sys.exit(main())
