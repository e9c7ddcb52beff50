"""Acknowledged PUTs lost when redis-server is killed with -9, per durability mode.

    python -m bench.redis_kill                 # 90 s of writes per row
    python -m bench.redis_kill --seconds 20 --writers 8

Each row starts its own redis-server and `burrow serve` (tests/engines, tests/servers),
PUTs new messages from several threads for the given time, remembering each one that
was acknowledged (201), kills redis-server with SIGKILL, starts it again on the same
directory, and counts the acknowledged messages Burrow no longer lists:

    stock, durability=none       redis-server's own defaults (RDB snapshots after 60 s
                                 and 10,000 changes, no AOF): what came after the last
                                 snapshot is lost, so the share depends on the timing
    appendfsync always, default  the AOF fsynced before each answer: nothing is lost

A kill -9 of the process is the crash measured here; the page cache survives it, so it
does not tell `appendfsync always` from `everysec` (an OS crash or power loss does).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.servers import BurrowServer
from tests.test_redis import Q, ids_in
from tests.test_redis_durability import FSYNC_ALWAYS, redis_server, url_of

SETUPS = {
    "stock, durability=none": ((), "?durability=none"),
    "appendfsync always, default URL": (FSYNC_ALWAYS, ""),
}
ACCOUNT = "kill"
QUEUE = f"/v1.0/{ACCOUNT}/{Q}"


def write_for(server_url: str, seconds: float, writers: int) -> set[str]:
    """PUT new messages from `writers` threads for `seconds`; the ids acknowledged."""
    acknowledged: set[str] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def write(n: int) -> None:
        with httpx.Client(base_url=server_url, timeout=10) as http:
            i = 0
            while time.monotonic() < deadline:
                message = f"w{n}-{i:08}"
                i += 1
                if http.put(f"{QUEUE}/{message}", content=b"x").status_code == 201:
                    with lock:
                        acknowledged.add(message)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acknowledged


def row(name: str, workdir: Path, seconds: float, writers: int) -> str:
    settings, query = SETUPS[name]
    engine = redis_server(workdir, *settings)
    server = BurrowServer(workdir, url_of(engine, query))
    try:
        server.start()
        acknowledged = write_for(server.url, seconds, writers)
        engine.kill()
        engine.start()
        lost = len(acknowledged - ids_in(server.url, ACCOUNT))
    finally:
        server.kill()
        engine.stop()
    share = 100 * lost / len(acknowledged) if acknowledged else 0.0
    return f"| {name} | {seconds:g} s | {len(acknowledged):,} | {lost:,} | {share:.0f} % |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    print("| redis-server, URL | writes for | acknowledged | lost after kill -9 | share |")
    print("|---|---|---|---|---|")
    for name in SETUPS:
        with tempfile.TemporaryDirectory(prefix="burrow-redis-kill-") as tmp:
            print(row(name, Path(tmp), args.seconds, args.writers), flush=True)


if __name__ == "__main__":
    main()
