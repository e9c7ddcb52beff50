"""`burrow migrate` from SQLite to PostgreSQL: how many messages a second it copies.

    python -m bench.migrate                                  # 1,000,000 messages
    python -m bench.migrate --messages 100000 --batch 100,250,500,1000,2000

Fills a SQLite file with MESSAGES messages of 100-byte bodies (in QUEUES queues of one
account), starts a throwaway PostgreSQL (fsync on, bench/engines.py), then runs the real
command, `python -m burrow migrate`, once per batch size into a fresh database, and
reports its own figures: the copy's msgs/s, and the whole run's (with verification,
which reads both sides again) and wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.engines import postgres
from burrow.backends.sqlite import SQLiteBackend
from burrow.model import NewMessage

BODY = b"x" * 100
FILL_BATCH = 1000
COPIED = re.compile(r"copied ([\d,]+) messages of \d+ queues in ([\d.]+) s \(([\d,]+) msgs/s\)")


async def fill(path: Path, messages: int, queues: int) -> None:
    async with SQLiteBackend(str(path)) as backend:
        per_queue = messages // queues
        for queue in range(queues):
            for start in range(0, per_queue, FILL_BATCH):
                batch = [
                    NewMessage(f"m{i:08}", BODY, 0, 0)
                    for i in range(start, min(start + FILL_BATCH, per_queue))
                ]
                await backend.put_messages("bench", f"queue-{queue}", batch)


async def fresh_database(url: str, name: str) -> str:
    """An empty database beside `url`'s, so that each run starts from nothing."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return f"{url.rsplit('/', 1)[0]}/{name}"


def migrate(source: str, target: str, state: Path, batch: int) -> str:
    command = [sys.executable, "-m", "burrow", "migrate", "--from", source, "--to", target]
    command += ["--state", str(state), "--batch", str(batch)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    found = COPIED.search(done.stdout)
    assert found is not None, done.stdout
    count = int(found[1].replace(",", ""))
    return (
        f"batch {batch}: copied {count:,} messages in {found[2]} s = {found[3]} msgs/s; "
        f"with verification {elapsed:.1f} s = {count / elapsed:,.0f} msgs/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--batch", default="1000", help="batch sizes, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        asyncio.run(fill(workdir / "source.db", args.messages, args.queues))
        filled = time.perf_counter() - started
        print(f"filled SQLite with {args.messages:,} messages in {filled:.0f} s", flush=True)
        with postgres(workdir) as url:
            for run, batch in enumerate(int(size) for size in args.batch.split(",")):
                target = asyncio.run(fresh_database(url, f"bench_{run}"))
                source = f"sqlite:///{workdir}/source.db"
                print(migrate(source, target, workdir / f"{run}.json", batch), flush=True)


if __name__ == "__main__":
    main()
