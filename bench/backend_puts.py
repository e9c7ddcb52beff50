"""The SQLite backend alone, without HTTP: how many durable puts a second one event loop
takes, and what each costs in CPU (all threads: the loop, the fsync and checkpoint
threads).

    taskset -c 0 python -m bench.backend_puts --callers 32 --seconds 3
    taskset -c 0 python -m bench.backend_puts --callers 32 --batch 10

C callers on one uvloop loop each put in a closed loop (the next put when the last
is acknowledged, that is on disk). The figures say what group commit does: the
operations per commit (and fsync) and the CPU per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import uvloop

from burrow.backends.sqlite import SQLiteBackend
from burrow.model import NewMessage

BODY = b"x" * 100


async def run(path: Path, callers: int, seconds: float, batch: int) -> str:
    async with SQLiteBackend(str(path)) as backend:
        put = 0
        deadline = time.perf_counter() + seconds

        async def caller(worker: int) -> None:
            nonlocal put
            sent = 0
            while time.perf_counter() < deadline:
                messages = [NewMessage(f"{worker}-{sent}-{i}", BODY, 600, 0) for i in range(batch)]
                await backend.put_messages("bench", "puts", messages)
                sent += 1
                put += batch

        started, cpu = time.perf_counter(), sum(os.times()[:2])
        await asyncio.gather(*(caller(worker) for worker in range(callers)))
        elapsed, cpu = time.perf_counter() - started, sum(os.times()[:2]) - cpu
        stats = backend.stats
    return (
        f"{callers} callers, {batch} per put: {put / elapsed:,.0f} msgs/s, "
        f"{cpu / put * 1e6:.1f} µs CPU per message, "
        f"{stats.operations / max(stats.commits, 1):.1f} operations per commit and fsync"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=1, help="messages per put")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(uvloop.run(run(Path(tmp) / "bench.db", args.callers, args.seconds, args.batch)))


if __name__ == "__main__":
    main()
