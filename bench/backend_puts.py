"""The SQLite backend alone, without HTTP: how many durable puts a second one event loop
takes, and what each costs in CPU (all threads: the loop, the fsync and checkpoint
threads).

    taskset -c 0 python -m bench.backend_puts --callers 32 --seconds 3
    taskset -c 0 python -m bench.backend_puts --callers 32 --batch 10
    taskset -c 0 python -m bench.backend_puts --callers 32 --consume

C callers on one uvloop loop each put in a closed loop (the next put when the last
is acknowledged, that is on disk); with `--consume`, each claims `--batch` (10 unless
given) from a queue filled first and deletes them by id, as a consumer acknowledges
them. The figures say what group commit does: the operations per commit (and fsync)
and the CPU per message.
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
from burrow.model import Attributes, Filters, NewMessage

BODY = b"x" * 100
A, Q = "bench", "puts"
FILLED = 500_000  # what `--consume` fills the queue with (callers stop should it empty)
CLAIM = Attributes(hide=60)


async def run(path: Path, callers: int, seconds: float, batch: int, consume: bool) -> str:
    async with SQLiteBackend(str(path)) as backend:
        if consume:
            for start in range(0, FILLED, 1000):
                await backend.put_messages(A, Q, [new(f"f-{start + i}") for i in range(1000)])
        done = 0
        deadline = time.perf_counter() + seconds

        async def caller(worker: int) -> None:
            nonlocal done
            sent = 0
            while time.perf_counter() < deadline:
                if consume:
                    claimed = await backend.update_messages(A, Q, CLAIM, Filters(batch))
                    await backend.delete_listed_messages(A, Q, [(m.id, None) for m in claimed])
                    done += len(claimed)
                    continue
                await backend.put_messages(
                    A, Q, [new(f"{worker}-{sent}-{i}") for i in range(batch)]
                )
                sent += 1
                done += batch

        started, cpu = time.perf_counter(), sum(os.times()[:2])
        await asyncio.gather(*(caller(worker) for worker in range(callers)))
        elapsed, cpu = time.perf_counter() - started, sum(os.times()[:2]) - cpu
        stats = backend.stats
    what = f"claim {batch} + delete by ids" if consume else f"{batch} per put"
    return (
        f"{callers} callers, {what}: {done / elapsed:,.0f} msgs/s, "
        f"{cpu / done * 1e6:.1f} µs CPU per message, "
        f"{stats.operations / max(stats.commits, 1):.1f} operations per commit and fsync"
    )


def new(message_id: str) -> NewMessage:
    return NewMessage(message_id, BODY, 600, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, help="messages per put [1] or claim [10]")
    parser.add_argument("--consume", action="store_true", help="claim and delete instead")
    args = parser.parse_args()
    batch = args.batch or (10 if args.consume else 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        print(uvloop.run(run(path, args.callers, args.seconds, batch, args.consume)))


if __name__ == "__main__":
    main()
